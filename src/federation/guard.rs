//! The guard on outgoing connections: Hortus fetches URLs that strangers hand it (keyIds, actor
//! ids, inboxes), so it must not be steered into its own network (SSRF) nor to a refused server.
//!
//! Three layers, all in [`http_client`] except the first:
//! 1. [`check_url`] before every request: scheme, policy, and literal IP hosts.
//! 2. [`GuardedResolver`]: every name is resolved here and private addresses are dropped, so a
//!    name that answers 127.0.0.1 (DNS rebinding) cannot reach loopback. The connection uses
//!    exactly the addresses that were checked.
//! 3. The redirect policy re-runs [`check_url`] on every hop, at most [`MAX_REDIRECTS`].
//!
//! hyper connects to a literal IP host (`http://10.0.0.1/`) without asking the resolver, which
//! is why [`check_url`] checks those itself and must run before the first request.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use super::FederationError;
use super::policy::{Decision, Policy, PolicyHandle, Refusal};
use crate::config::FederationConfig;

pub const MAX_REDIRECTS: usize = 3;
/// Whole request, body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether Hortus may open a connection to `ip`. Refuses everything that is not a public
/// unicast address (loopback, private, link-local, CGNAT, unique-local, multicast, broadcast,
/// documentation, benchmarking, reserved), and IPv6 forms that embed such an IPv4 address
/// (IPv4-mapped, IPv4-compatible, NAT64, 6to4), unless `allow_private` (tests only).
pub fn address_allowed(ip: IpAddr, allow_private: bool) -> bool {
    allow_private
        || match ip {
            IpAddr::V4(v4) => v4_public(v4),
            IpAddr::V6(v6) => v6_public(v6),
        }
}

fn v4_public(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0                                   // 0.0.0.0/8 "this network", unspecified
        || a == 10                             // 10/8 private
        || (a == 100 && (64..128).contains(&b)) // 100.64/10 CGNAT
        || a == 127                            // loopback
        || (a == 169 && b == 254)              // link-local, cloud metadata 169.254.169.254
        || (a == 172 && (16..32).contains(&b)) // 172.16/12 private
        || (a == 192 && b == 0 && c == 0)      // 192.0.0/24 IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)      // TEST-NET-1
        || (a == 192 && b == 88 && c == 99)    // 6to4 relay anycast (deprecated)
        || (a == 192 && b == 168)              // 192.168/16 private
        || (a == 198 && (b == 18 || b == 19))  // 198.18/15 benchmarking
        || (a == 198 && b == 51 && c == 100)   // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)    // TEST-NET-3
        || a >= 224) // multicast 224/4, reserved 240/4, broadcast 255.255.255.255
}

fn v6_public(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_public(v4); // ::ffff:a.b.c.d
    }
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        // ::/96: unspecified, loopback, deprecated IPv4-compatible: nothing public lives here.
        [0, 0, 0, 0, 0, 0, _, _] => false,
        // 64:ff9b::/96 NAT64: only as public as the IPv4 address inside.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => v4_public(embedded(hi, lo)),
        // 64:ff9b:1::/48 local-use NAT64.
        [0x64, 0xff9b, 1, ..] => false,
        // 100::/64 discard-only.
        [0x100, 0, 0, 0, ..] => false,
        // 2001::/32 Teredo, 2001:2::/48 benchmarking, 2001:10::/28 and 2001:20::/28 ORCHID,
        // 2001:db8::/32 documentation.
        [0x2001, 0, ..] | [0x2001, 2, 0, ..] | [0x2001, 0xdb8, ..] => false,
        [0x2001, b, ..] if (0x10..0x30).contains(&b) => false,
        // 2002::/16 6to4: the IPv4 address sits in the next 32 bits.
        [0x2002, hi, lo, ..] => v4_public(embedded(hi, lo)),
        // 3fff::/20 documentation (RFC 9637), 5f00::/16 SRv6 SIDs (RFC 9602).
        [a, ..] if a & 0xfff0 == 0x3ff0 => false,
        [0x5f00, ..] => false,
        // fc00::/7 unique-local, fe80::/10 link-local, fec0::/10 site-local, ff00::/8 multicast.
        [a, ..] if a & 0xfe00 == 0xfc00 || a & 0xffc0 == 0xfe80 || a & 0xffc0 == 0xfec0 => false,
        [a, ..] if a & 0xff00 == 0xff00 => false,
        _ => true,
    }
}

/// Resolves names with the system resolver (through tokio) and keeps only the addresses
/// [`address_allowed`] accepts.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("cannot resolve {name}: {source}")]
    Lookup {
        name: String,
        source: std::io::Error,
    },
    #[error(
        "refusing to connect to {name}: it resolves only to private or reserved addresses \
         ({addresses})"
    )]
    OnlyPrivate { name: String, addresses: String },
    #[error("cannot resolve {name}: no addresses")]
    NoAddresses { name: String },
}

impl GuardedResolver {
    pub async fn lookup(&self, name: &str) -> Result<Vec<SocketAddr>, ResolveError> {
        let found: Vec<SocketAddr> = tokio::net::lookup_host((name, 0))
            .await
            .map_err(|source| ResolveError::Lookup {
                name: name.to_string(),
                source,
            })?
            .collect();
        if found.is_empty() {
            return Err(ResolveError::NoAddresses {
                name: name.to_string(),
            });
        }
        let allowed: Vec<SocketAddr> = found
            .iter()
            .copied()
            .filter(|a| address_allowed(a.ip(), self.allow_private))
            .collect();
        if allowed.is_empty() {
            let addresses = found
                .iter()
                .map(|a| a.ip().to_string())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(ResolveError::OnlyPrivate {
                name: name.to_string(),
                addresses,
            });
        }
        Ok(allowed)
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = *self;
        Box::pin(async move {
            let addrs = resolver.lookup(name.as_str()).await?;
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// Why Hortus will not fetch from or deliver to a URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefusedFetch {
    #[error("refusing {url}: only https:// is allowed (allow_http is off)")]
    Scheme { url: String },
    #[error("refusing {url}: it has no host")]
    NoHost { url: String },
    #[error("refusing {url}: {ip} is a private or reserved address")]
    PrivateAddress { url: String, ip: IpAddr },
    #[error("refusing {url}: the server is {reason}")]
    Policy { url: String, reason: Refusal },
}

/// Checks a URL before any request to it: https only (http too when `allow_http`), a host the
/// policy allows, and no private literal IP address.
pub fn check_url(url: &Url, cfg: &FederationConfig, policy: &Policy) -> Result<(), RefusedFetch> {
    let refused_url = || url.as_str().to_string();
    match url.scheme() {
        "https" => {}
        "http" if cfg.allow_http => {}
        _ => return Err(RefusedFetch::Scheme { url: refused_url() }),
    }
    let ip = match url.host() {
        None => return Err(RefusedFetch::NoHost { url: refused_url() }),
        Some(Host::Domain(_)) => None,
        Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
    };
    if let Some(ip) = ip
        && !address_allowed(ip, cfg.allow_private_addresses)
    {
        return Err(RefusedFetch::PrivateAddress {
            url: refused_url(),
            ip,
        });
    }
    match policy.decide_url(url) {
        Decision::Allowed => Ok(()),
        Decision::Refused(reason) => Err(RefusedFetch::Policy {
            url: refused_url(),
            reason,
        }),
    }
}

/// `Hortus/<version> (+https://example.net/)`: peers' admins can see who is calling.
pub fn user_agent(base_url: &Url) -> String {
    format!("Hortus/{} (+{base_url})", env!("CARGO_PKG_VERSION"))
}

/// The client for every request to another server. Callers run [`check_url`] before each
/// request (the first hop is theirs; redirects are checked here).
///
/// Decompression is off (the crate is built without it): bodies are read with
/// [`read_capped`] and a compressed body could expand past any cap. No Referer, no proxy.
pub fn http_client(
    cfg: &FederationConfig,
    policy: PolicyHandle,
    user_agent: &str,
) -> Result<reqwest::Client, FederationError> {
    http_client_with(cfg, policy, user_agent, |builder| builder)
}

/// [`http_client`], with a last word on the builder before it is built. Tests use it to reach
/// pretend servers by their real names (`resolve` to a loopback address, `add_root_certificate`
/// for a throwaway CA); the guard's redirect policy and per-hop checks stay in place.
pub fn http_client_with(
    cfg: &FederationConfig,
    policy: PolicyHandle,
    user_agent: &str,
    customize: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
) -> Result<reqwest::Client, FederationError> {
    let redirect_cfg = cfg.clone();
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        // `previous` starts with the original URL, so it holds one URL per hop already taken.
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(TooManyRedirects);
        }
        match check_url(attempt.url(), &redirect_cfg, &policy.current()) {
            Ok(()) => attempt.follow(),
            Err(refused) => attempt.error(refused),
        }
    });
    let builder = reqwest::Client::builder()
        .user_agent(user_agent)
        .dns_resolver(GuardedResolver {
            allow_private: cfg.allow_private_addresses,
        })
        .redirect(redirects)
        .https_only(!cfg.allow_http)
        .no_proxy()
        .referer(false)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT);
    customize(builder)
        .build()
        .map_err(FederationError::HttpClient)
}

#[derive(Debug, thiserror::Error)]
#[error("more than {MAX_REDIRECTS} redirects")]
pub struct TooManyRedirects;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("response body larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("reading the response failed: {0}")]
    Http(#[from] reqwest::Error),
}

/// Reads a body chunk by chunk and gives up as soon as it passes `max_bytes` (a declared
/// Content-Length over the cap fails before reading anything).
pub async fn read_capped(
    mut resp: reqwest::Response,
    max_bytes: usize,
) -> Result<Vec<u8>, ReadError> {
    let too_large = ReadError::TooLarge { limit: max_bytes };
    let declared = resp.content_length();
    if declared.is_some_and(|n| n > max_bytes as u64) {
        return Err(too_large);
    }
    let mut body = Vec::with_capacity(
        declared
            .map_or(0, |n| usize::try_from(n).unwrap_or(max_bytes))
            .min(max_bytes),
    );
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > max_bytes {
            return Err(too_large);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FederationMode;
    use crate::federation::Pattern;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[test]
    fn address_table() {
        #[rustfmt::skip]
        let table: &[(&str, bool)] = &[
            ("93.184.215.14", true),
            ("1.1.1.1", true),
            ("2606:4700:4700::1111", true),
            ("2a01:4f8::1", true),
            ("127.0.0.1", false),
            ("127.255.0.9", false),
            ("0.0.0.0", false),
            ("10.1.2.3", false),
            ("172.16.0.1", false),
            ("172.31.255.255", false),
            ("172.32.0.1", true),
            ("192.168.1.1", false),
            ("169.254.169.254", false),
            ("100.64.0.1", false),
            ("100.127.255.255", false),
            ("100.128.0.1", true),
            ("192.0.0.8", false),
            ("192.0.2.1", false),
            ("198.18.0.1", false),
            ("198.51.100.7", false),
            ("203.0.113.9", false),
            ("224.0.0.1", false),
            ("239.255.255.250", false),
            ("240.0.0.1", false),
            ("255.255.255.255", false),
            ("::", false),
            ("::1", false),
            ("::ffff:127.0.0.1", false),
            ("::ffff:10.0.0.1", false),
            ("::ffff:169.254.169.254", false),
            ("::ffff:1.1.1.1", true),
            ("::127.0.0.1", false),
            ("64:ff9b::7f00:1", false),
            ("64:ff9b::101:101", true),
            ("2002:7f00:1::", false),
            ("2002:101:101::", true),
            ("2001::1", false),
            ("2001:db8::1", false),
            ("3fff::1", false),
            ("fd00::1", false),
            ("fc00::1", false),
            ("fe80::1", false),
            ("fec0::1", false),
            ("ff02::1", false),
            ("100::1", false),
        ];
        for (ip, want) in table {
            let parsed: IpAddr = ip.parse().unwrap();
            assert_eq!(address_allowed(parsed, false), *want, "{ip}");
            assert!(address_allowed(parsed, true), "{ip} with allow_private");
        }
    }

    fn cfg(allow_http: bool, allow_private: bool) -> FederationConfig {
        FederationConfig {
            allow_http,
            allow_private_addresses: allow_private,
            ..FederationConfig::default()
        }
    }

    fn policy(mode: FederationMode, allow: &[&str]) -> Policy {
        let allow: Vec<Pattern> = allow.iter().map(|s| Pattern::parse(s).unwrap()).collect();
        Policy::from_patterns(mode, None, &allow, &[])
    }

    #[test]
    fn check_url_refusals() {
        let open = policy(FederationMode::Blocklist, &[]);
        let url = |s: &str| Url::parse(s).unwrap();
        let strict = cfg(false, false);
        assert_eq!(
            check_url(&url("https://example.net/x"), &strict, &open),
            Ok(())
        );
        assert!(matches!(
            check_url(&url("http://example.net/x"), &strict, &open),
            Err(RefusedFetch::Scheme { .. })
        ));
        assert!(check_url(&url("http://example.net/x"), &cfg(true, false), &open).is_ok());
        assert!(matches!(
            check_url(&url("ftp://example.net/x"), &cfg(true, true), &open),
            Err(RefusedFetch::Scheme { .. })
        ));
        for private in [
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://[::ffff:7f00:1]/",
            "https://169.254.169.254/latest/meta-data",
            "https://0x7f.1/",
            "https://2130706433/",
        ] {
            assert!(
                matches!(
                    check_url(&url(private), &strict, &open),
                    Err(RefusedFetch::PrivateAddress { .. })
                ),
                "{private}"
            );
        }
        assert!(check_url(&url("https://127.0.0.1/"), &cfg(false, true), &open).is_ok());
        let closed = policy(FederationMode::Allowlist, &["friend.example"]);
        assert!(check_url(&url("https://friend.example/u"), &strict, &closed).is_ok());
        let err = check_url(&url("https://stranger.example/u"), &strict, &closed).unwrap_err();
        assert_eq!(
            err,
            RefusedFetch::Policy {
                url: "https://stranger.example/u".into(),
                reason: Refusal::NotAllowed
            }
        );
    }

    #[test]
    fn user_agent_names_the_site() {
        let ua = user_agent(&Url::parse("https://example.net").unwrap());
        assert_eq!(
            ua,
            format!(
                "Hortus/{} (+https://example.net/)",
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    fn error_chain(err: &dyn std::error::Error) -> String {
        let mut text = err.to_string();
        let mut source = err.source();
        while let Some(e) = source {
            text = format!("{text}: {e}");
            source = e.source();
        }
        text
    }

    type Hits = tokio::sync::mpsc::UnboundedReceiver<()>;

    async fn serve(response: String) -> (u16, Hits) {
        serve_with(move |_| response.clone()).await
    }

    /// Answers every connection on 127.0.0.1 with `response(port)`, counting connections.
    async fn serve_with(response: impl Fn(u16) -> String + Send + 'static) -> (u16, Hits) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let response = response(port);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let _ = tx.send(());
                let response = response.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut seen = Vec::new();
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = sock.write_all(response.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        (port, rx)
    }

    fn ok_response(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    fn client(allow_private: bool, allow: &[&str]) -> reqwest::Client {
        let mode = if allow.is_empty() {
            FederationMode::Blocklist
        } else {
            FederationMode::Allowlist
        };
        let handle = PolicyHandle::new(policy(mode, allow));
        http_client(&cfg(true, allow_private), handle, "Hortus/test").unwrap()
    }

    async fn no_connection(rx: &mut Hits) -> bool {
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err()
    }

    #[tokio::test]
    async fn guarded_client_refuses_loopback_unless_allowed() {
        let (port, mut conns) = serve(ok_response("hello")).await;
        // A name, so the request goes through the resolver (literal IPs are check_url's job).
        let url = format!("http://localhost:{port}/");

        let err = client(false, &[]).get(&url).send().await.unwrap_err();
        let chain = error_chain(&err);
        assert!(chain.contains("private or reserved"), "{chain}");
        assert!(
            no_connection(&mut conns).await,
            "a connection reached the listener"
        );

        let resp = client(true, &[]).get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(read_capped(resp, 1024).await.unwrap(), b"hello");
        assert!(conns.recv().await.is_some());
    }

    #[tokio::test]
    async fn redirects_are_checked_on_every_hop() {
        let (target_port, mut target_conns) = serve(ok_response("secret")).await;
        let location = format!("http://127.0.0.1:{target_port}/");
        let (port, _) = serve(format!(
            "HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\n\r\n"
        ))
        .await;
        let url = format!("http://localhost:{port}/");
        // Only localhost is allowed: the hop to 127.0.0.1 is refused by policy.
        let err = client(true, &["localhost"])
            .get(&url)
            .send()
            .await
            .unwrap_err();
        assert!(err.is_redirect(), "{err:?}");
        assert!(
            error_chain(&err).contains("not on the allowlist"),
            "{err:?}"
        );
        assert!(no_connection(&mut target_conns).await);
        // With 127.0.0.1 allowed too, the hop is followed.
        let resp = client(true, &["localhost", "127.0.0.1"])
            .get(&url)
            .send()
            .await
            .unwrap();
        assert_eq!(read_capped(resp, 1024).await.unwrap(), b"secret");
    }

    #[tokio::test]
    async fn redirect_loops_stop_after_three_hops() {
        let (port, mut hits) = serve_with(|port| {
            format!(
                "HTTP/1.1 302 Found\r\nlocation: http://localhost:{port}/\r\n\
                 content-length: 0\r\nconnection: close\r\n\r\n"
            )
        })
        .await;
        let err = client(true, &[])
            .get(format!("http://localhost:{port}/"))
            .send()
            .await
            .unwrap_err();
        assert!(
            error_chain(&err).contains("more than 3 redirects"),
            "{err:?}"
        );
        let mut requests = 0;
        while hits.try_recv().is_ok() {
            requests += 1;
        }
        assert_eq!(requests, 1 + MAX_REDIRECTS);
    }

    #[tokio::test]
    async fn read_capped_stops_at_the_cap() {
        let (port, _) = serve(ok_response(&"x".repeat(5000))).await;
        let url = format!("http://localhost:{port}/");
        let resp = client(true, &[]).get(&url).send().await.unwrap();
        assert!(matches!(
            read_capped(resp, 1000).await,
            Err(ReadError::TooLarge { limit: 1000 })
        ));
        // Without a Content-Length the cap is enforced while streaming.
        let (port, _) = serve(format!(
            "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n{}",
            "y".repeat(5000)
        ))
        .await;
        let resp = client(true, &[])
            .get(format!("http://localhost:{port}/"))
            .send()
            .await
            .unwrap();
        assert!(matches!(
            read_capped(resp, 1000).await,
            Err(ReadError::TooLarge { .. })
        ));
    }
}
