//! `hortus check`: the live deployment seen from outside, as another server sees it. Each check
//! says pass or fail and, when it fails, the fix in words. Run it on the server after setting up
//! the reverse proxy, and again after changing it.
//!
//! What a peer needs, in the order it needs it: the handle's domain resolves ([`names`]) and
//! serves WebFinger ([`web`]), the certificate is valid for every name ([`names`]), the actor
//! answers JSON with the right content type, a request Hortus signs for its own inbox through the
//! public URL verifies (the proxy passes `Host` and the request target unchanged — see
//! `inbox::probe`), an unsigned POST is refused with 401, the clock agrees with the public URL's
//! `Date`, the policy pages Threads requires exist, and the public URL answers a sample of URLs
//! with the status, type and CORS `hortus serve` gives them (a static export, or a proxy that
//! rewrites headers, shows here).

mod compare;
mod http;
mod names;
mod report;
mod web;

use std::net::SocketAddr;

use crate::context::Context;
pub use report::{Check, CheckError, Options, Report, Status};

/// Runs every check against the public URL of the site `ctx` describes.
pub async fn run(ctx: &Context, opts: &Options) -> Result<Report, CheckError> {
    let clients = http::Clients::new(opts)?;
    let web = web::Web::new(ctx, &clients);
    let mut checks = names::dns(ctx, opts).await;
    checks.extend(names::tls(ctx, opts).await);
    checks.push(web.webfinger().await);
    let (actor, date) = web.actor().await;
    checks.push(actor);
    checks.push(web.signed_probe().await);
    checks.push(web.unsigned_post().await);
    checks.push(web::clock(date, std::time::SystemTime::now()));
    checks.push(web.policy_pages().await);
    checks.push(compare::same_as_serve(ctx, &clients).await);
    Ok(Report::new(ctx, checks))
}

/// Parses `NAME:ADDRESS` (curl's `--resolve` without the port: the URL's is used).
pub fn parse_resolve(s: &str) -> Result<(String, std::net::IpAddr), String> {
    let (name, addr) = s.split_once(':').ok_or_else(|| {
        format!("--resolve {s}: expected NAME:ADDRESS, e.g. example.net:203.0.113.7")
    })?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    let ip = addr
        .parse()
        .or_else(|_| addr.parse::<SocketAddr>().map(|a| a.ip()))
        .map_err(|_| format!("--resolve {s}: {addr} is not an IP address"))?;
    Ok((name.to_ascii_lowercase(), ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_argument() {
        assert_eq!(
            parse_resolve("Example.net:203.0.113.7").unwrap(),
            ("example.net".into(), "203.0.113.7".parse().unwrap())
        );
        assert_eq!(
            parse_resolve("example.net:[2001:db8::1]").unwrap().1,
            "2001:db8::1".parse::<std::net::IpAddr>().unwrap()
        );
        assert!(parse_resolve("example.net").is_err());
        assert!(parse_resolve("example.net:nope").is_err());
    }
}
