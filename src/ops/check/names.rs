//! The names a peer uses: the handle's domain and the host of `base_url` must resolve to a
//! public address, and answer TLS with a certificate valid for that name (checked with OpenSSL
//! directly, so the failure names the reason: expired, wrong name, unknown issuer).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use openssl::ssl::{HandshakeError, SslConnector, SslMethod, SslVerifyMode};
use openssl::x509::X509;

use super::{Check, Options};
use crate::context::Context;

const TIMEOUT: Duration = Duration::from_secs(10);

/// The handle's domain and the site's host, each once.
fn names(ctx: &Context) -> Vec<String> {
    let mut names = vec![ctx.config.domain.to_ascii_lowercase()];
    if let Some(host) = ctx.config.base_url.host_str() {
        let host = host.to_ascii_lowercase();
        if !names.contains(&host) {
            names.push(host);
        }
    }
    names
}

fn port(ctx: &Context) -> u16 {
    ctx.config.base_url.port_or_known_default().unwrap_or(443)
}

async fn addresses(name: &str, port: u16, opts: &Options) -> Result<Vec<IpAddr>, String> {
    if let Some(ip) = opts.address_of(name) {
        return Ok(vec![ip]);
    }
    let found = tokio::time::timeout(TIMEOUT, tokio::net::lookup_host((name, port)))
        .await
        .map_err(|_| "the lookup timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let mut ips: Vec<IpAddr> = found.map(|a| a.ip()).collect();
    ips.dedup();
    Ok(ips)
}

/// Each name resolves, to addresses other servers will connect to.
pub async fn dns(ctx: &Context, opts: &Options) -> Vec<Check> {
    let mut checks = Vec::new();
    for name in names(ctx) {
        let given = opts.address_of(&name).is_some();
        let check = match addresses(&name, port(ctx), opts).await {
            Ok(ips) if ips.is_empty() => Check::fail(
                "dns",
                format!("{name} has no address"),
                format!("add an A (and AAAA) record for {name} pointing at this server"),
            ),
            Ok(ips) => {
                let private: Vec<&IpAddr> = ips
                    .iter()
                    .filter(|ip| !crate::federation::address_allowed(**ip, false))
                    .collect();
                let shown = ips.iter().map(IpAddr::to_string).collect::<Vec<_>>();
                let from = if given { " (--resolve)" } else { "" };
                if !private.is_empty() && !ctx.config.federation.allow_private_addresses {
                    Check::fail(
                        "dns",
                        format!("{name} resolves to {}{from}", shown.join(", ")),
                        format!(
                            "other servers refuse private and loopback addresses: point {name} at \
                             the server's public address"
                        ),
                    )
                } else {
                    Check::pass("dns", format!("{name} → {}{from}", shown.join(", ")))
                }
            }
            Err(e) => Check::fail(
                "dns",
                format!("{name} does not resolve: {e}"),
                format!("add an A (and AAAA) record for {name} pointing at this server"),
            ),
        };
        checks.push(check);
    }
    checks
}

/// Each name answers TLS with a certificate valid for it, from a CA peers trust.
pub async fn tls(ctx: &Context, opts: &Options) -> Vec<Check> {
    if ctx.config.base_url.scheme() != "https" {
        let detail = format!("base_url is {}", ctx.config.base_url);
        return vec![if ctx.config.federation.allow_http {
            Check::skip("tls", format!("{detail} (allow_http is on: tests only)"))
        } else {
            Check::fail(
                "tls",
                detail,
                "other servers speak only https: set base_url to https://… and terminate TLS \
                 in the reverse proxy (see the README, Deployment)",
            )
        }];
    }
    let mut checks = Vec::new();
    for name in names(ctx) {
        let addrs = match addresses(&name, port(ctx), opts).await {
            Ok(ips) if !ips.is_empty() => ips,
            _ => {
                checks.push(Check::skip(
                    "tls",
                    format!("{name}: no address to connect to"),
                ));
                continue;
            }
        };
        let addr = SocketAddr::new(addrs[0], port(ctx));
        let ca = opts.ca_pem.clone();
        let n = name.clone();
        let result = tokio::task::spawn_blocking(move || handshake(&n, addr, ca.as_deref()))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        checks.push(match result {
            Ok(not_after) => Check::pass(
                "tls",
                format!("{name}: certificate valid, expires {not_after}"),
            ),
            Err(e) => Check::fail(
                "tls",
                format!("{name} ({addr}): {e}"),
                format!(
                    "serve a certificate for {name} from a public CA with its full chain \
                     (nginx: `ssl_certificate …/fullchain.pem` from certbot; Caddy gets one itself)"
                ),
            ),
        });
    }
    checks
}

/// A TLS handshake with `name` at `addr`, verifying the chain and the name; the certificate's
/// expiry date when it is valid, OpenSSL's reason otherwise.
fn handshake(name: &str, addr: SocketAddr, ca_pem: Option<&[u8]>) -> Result<String, String> {
    let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(|e| e.to_string())?;
    builder.set_verify(SslVerifyMode::PEER);
    if let Some(pem) = ca_pem {
        for cert in X509::stack_from_pem(pem).map_err(|e| format!("the CA file: {e}"))? {
            builder
                .cert_store_mut()
                .add_cert(cert)
                .map_err(|e| format!("the CA file: {e}"))?;
        }
    }
    let connector = builder.build();
    let tcp = std::net::TcpStream::connect_timeout(&addr, TIMEOUT)
        .map_err(|e| format!("cannot connect: {e}"))?;
    tcp.set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    tcp.set_write_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    match connector.connect(name, tcp) {
        Ok(stream) => Ok(stream
            .ssl()
            .peer_certificate()
            .map(|c| c.not_after().to_string())
            .unwrap_or_default()),
        Err(e) => {
            let verify = match &e {
                HandshakeError::Failure(mid) | HandshakeError::WouldBlock(mid) => {
                    Some(mid.ssl().verify_result()).filter(|r| r.as_raw() != 0)
                }
                HandshakeError::SetupFailure(_) => None,
            };
            Err(match verify {
                Some(reason) => format!("certificate not valid: {}", reason.error_string()),
                None => format!("TLS handshake failed: {e}"),
            })
        }
    }
}
