//! The public URL against `hortus serve` itself: a sample of URLs fetched through both must
//! answer with the same status, content type and CORS header. A static export served by nginx
//! or Caddy, or a proxy that rewrites headers, shows here.

use reqwest::header;

use super::http::{Answer, BROWSER_ACCEPT, Clients, MASTODON_ACCEPT};
use super::report::Check;
use crate::context::Context;

/// A sample of URLs through the public URL and from `hortus serve` on `listen` directly: the
/// same status, content type and CORS header, as peers and browsers rely on.
pub async fn same_as_serve(ctx: &Context, http: &Clients) -> Check {
    const NAME: &str = "same-as-serve";
    let Some(local) = local_address(&ctx.config.listen) else {
        return Check::skip(
            NAME,
            format!("listen = {:?} is not an address", ctx.config.listen),
        );
    };
    let host = match (ctx.config.base_url.host_str(), ctx.config.base_url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => return Check::skip(NAME, "base_url has no host"),
    };
    let mut differences = Vec::new();
    let sample = sample(ctx).await;
    for (path, accept) in &sample {
        let public = format!("{}{}", ctx.urls.base(), path);
        let direct = http
            .exact
            .get(format!("http://{local}{path}"))
            .header(header::HOST, &host)
            .header(header::ACCEPT, *accept)
            .send()
            .await;
        let direct = match direct {
            Ok(r) => Answer::read(r).await,
            Err(_) => {
                return Check::skip(
                    NAME,
                    format!(
                        "hortus serve does not answer on {local}: run `hortus check` on the server to compare"
                    ),
                );
            }
        };
        let seen = match http.get(&http.exact, &public, accept).await {
            Ok(a) => a,
            Err(e) => {
                differences.push(e);
                continue;
            }
        };
        let mut what = Vec::new();
        if seen.status != direct.status {
            what.push(format!(
                "status {} (hortus serve: {})",
                seen.status, direct.status
            ));
        }
        let redirect = (300..400).contains(&seen.status) && seen.status == direct.status;
        if redirect {
            // A redirect's body is for nobody: what matters is where it points.
            let target = |a: &Answer| {
                let location = a.location.as_deref().unwrap_or_default();
                url::Url::parse(&public)
                    .and_then(|u| u.join(location))
                    .map_or_else(|_| location.to_string(), String::from)
            };
            if target(&seen) != target(&direct) {
                what.push(format!(
                    "redirect to {:?} (hortus serve: {:?})",
                    seen.location, direct.location
                ));
            }
        } else if seen.essence() != direct.essence() {
            what.push(format!(
                "type {:?} (hortus serve: {:?})",
                seen.content_type, direct.content_type
            ));
        }
        if seen.cors != direct.cors {
            what.push(format!(
                "Access-Control-Allow-Origin {:?} (hortus serve: {:?})",
                seen.cors, direct.cors
            ));
        }
        if !what.is_empty() {
            differences.push(format!("{path} [{accept}]: {}", what.join(", ")));
        }
    }
    if differences.is_empty() {
        Check::pass(
            NAME,
            format!(
                "{} URLs answer with hortus serve's status, type and CORS",
                sample.len()
            ),
        )
    } else {
        Check::fail(
            NAME,
            differences.join("; "),
            "the public URL must answer as hortus serve does: with a static export, run \
             `hortus export` again and include OUT/.hortus/nginx.conf (or the Caddyfile) \
             unchanged, then reload; behind a proxy, pass hortus serve's headers through \
             (no proxy_hide_header, no add_header for these)",
        )
    }
}

/// The URLs compared: discovery, the actor for servers and browsers, a post page and its
/// Note (the newest public post), the feed, and a URL that does not exist.
async fn sample(ctx: &Context) -> Vec<(String, &'static str)> {
    let cfg = &ctx.config;
    let user = &cfg.user.name;
    let mut sample: Vec<(String, &'static str)> = vec![
        ("/".into(), BROWSER_ACCEPT),
        (format!("/users/{user}"), MASTODON_ACCEPT),
        (format!("/users/{user}"), BROWSER_ACCEPT),
        (format!("/users/{user}/outbox"), MASTODON_ACCEPT),
        ("/actor".into(), MASTODON_ACCEPT),
        (
            format!("/.well-known/webfinger?resource=acct:{user}@{}", cfg.domain),
            "application/jrd+json",
        ),
        ("/.well-known/host-meta".into(), "application/xrd+xml"),
        ("/.well-known/nodeinfo".into(), "application/json"),
        ("/feed.xml".into(), "application/atom+xml"),
        ("/privacy".into(), BROWSER_ACCEPT),
        (
            format!("/posts/no-such-post-{}", std::process::id()),
            BROWSER_ACCEPT,
        ),
    ];
    let newest = ctx
        .db
        .read(|c| {
            crate::posts::store::list(c, crate::posts::store::Listing::Public, 1, 0)
                .map_err(crate::db::DbError::from)
        })
        .await
        .ok()
        .and_then(|posts| posts.into_iter().next());
    if let Some(post) = newest {
        sample.push((format!("/posts/{}", post.slug), BROWSER_ACCEPT));
        sample.push((format!("/posts/{}", post.slug), MASTODON_ACCEPT));
    }
    sample
}

/// Where to reach `hortus serve` from this machine: `listen`, with a wildcard address read as
/// loopback.
fn local_address(listen: &str) -> Option<std::net::SocketAddr> {
    let mut addr: std::net::SocketAddr = listen.parse().ok()?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    Some(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listen_is_reached_on_loopback() {
        assert_eq!(
            local_address("0.0.0.0:8080").unwrap().to_string(),
            "127.0.0.1:8080"
        );
        assert_eq!(
            local_address("[::]:8080").unwrap().to_string(),
            "[::1]:8080"
        );
        assert_eq!(
            local_address("127.0.0.5:80").unwrap().to_string(),
            "127.0.0.5:80"
        );
        assert!(local_address("localhost:8080").is_none());
    }
}
