//! Ready-to-use configuration for the hosts people put static sites on. Each maps the live URLs
//! onto the export's layout (see `plan`), sets the content types and CORS `hortus serve` sends,
//! answers 410 for what is gone (deleted posts, revoked stamps), and passes the inboxes to
//! `hortus serve`:
//!
//! - `nginx.conf`: `map` blocks and a `server` block, to include inside `http { }`. Negotiates
//!   on Accept (a post's page or its Note, the actor or a redirect home).
//! - `Caddyfile`: one site block, the same behaviour.
//! - `_headers` / `_redirects` (Netlify and hosts that copy its format): content types, CORS,
//!   rewrites, 410s and proxies. These hosts cannot negotiate on Accept: `/posts/SLUG` is always
//!   the page (servers find the Note through its `rel="alternate"` link) and `/users/USER`
//!   always the actor.

pub mod caddy;
pub mod netlify;
pub mod nginx;

use std::path::PathBuf;

use url::Url;

use super::plan::{Gone, Webfinger};

/// What a configuration needs to know about the site and where it runs.
#[derive(Debug, Clone)]
pub struct HostSpec {
    pub base_url: Url,
    pub user: String,
    /// The directory the web server reads (absolute).
    pub root: PathBuf,
    /// nginx `listen` (`80`, `127.0.0.7:8123`…); Caddy binds to its host part, if an address.
    pub listen: String,
    /// Where `hortus serve` answers, as a URL (`http://127.0.0.1:8080`).
    pub upstream: String,
    /// What answers 410 Gone: deleted posts, revoked stamps.
    pub gone: Vec<Gone>,
    pub webfinger: Vec<Webfinger>,
    /// ActivityPub documents: URL path, file, content type as the live server sends it.
    pub documents: Vec<(String, String, String)>,
}

impl HostSpec {
    /// The base URL without its trailing slash.
    pub fn base(&self) -> &str {
        self.base_url.as_str().trim_end_matches('/')
    }

    /// A name safe for nginx variables, unique per site: `example_net`, `127_0_0_7_8123`.
    pub fn id(&self) -> String {
        let host = self.base_url.host_str().unwrap_or("site");
        let mut id: String = match self.base_url.port() {
            Some(p) => format!("{host}_{p}"),
            None => host.to_string(),
        }
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
        id.truncate(60);
        id
    }

    pub fn actor_path(&self) -> String {
        format!("/users/{}", self.user)
    }

    /// The host part of `listen` when it is an IP address (Caddy's `bind`).
    pub fn bind_host(&self) -> Option<&str> {
        let (host, _) = self.listen.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host.parse::<std::net::IpAddr>().ok().map(|_| host)
    }
}

/// The default `listen`: the base URL's own port when it names one (tests, development), else
/// port 80 (put TLS in front, or add it to the generated block).
pub fn default_listen(base_url: &Url) -> String {
    match (base_url.host_str(), base_url.port()) {
        (Some(host), Some(port)) if host.parse::<std::net::IpAddr>().is_ok() => {
            format!("{host}:{port}")
        }
        (_, Some(port)) => port.to_string(),
        _ => "80".to_string(),
    }
}

/// `127.0.0.1:8080` → `http://127.0.0.1:8080`; URLs are kept, without a trailing slash.
pub fn upstream_url(upstream: &str) -> String {
    let u = upstream.trim_end_matches('/');
    if u.starts_with("http://") || u.starts_with("https://") {
        u.to_string()
    } else {
        format!("http://{u}")
    }
}

/// Escapes `s` for a PCRE/RE2 pattern.
pub fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A pattern for `s` as it may arrive still percent-encoded (nginx's `$arg_` variables are not
/// decoded): every reserved character matches itself or its `%XX` form. Use case-insensitively.
pub fn encoded_pattern(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else if c == '.' || c == '-' || c == '~' {
            out.push_str(&regex_escape(&c.to_string()));
        } else if c.is_ascii() {
            out.push_str(&format!(
                "(?:{}|%{:02X})",
                regex_escape(&c.to_string()),
                c as u32
            ));
        } else {
            out.push_str(&regex_escape(&c.to_string()));
        }
    }
    out
}

/// The WebFinger resources that name `w`, as case-insensitive patterns over the raw (encoded)
/// or decoded query value: `acct:user@domain`, `user@domain`, `@user@domain` and its URLs.
/// Same rules as `web::wellknown::resolve_resource`.
pub fn webfinger_patterns(w: &Webfinger, encoded: bool) -> Vec<String> {
    let p = |s: &str| {
        if encoded {
            encoded_pattern(s)
        } else {
            regex_escape(s)
        }
    };
    let (user, domain) = w.account.rsplit_once('@').unwrap_or((&w.account, ""));
    let mut out = vec![format!(
        "^(?:{})?(?:{})?{}{}{}$",
        p("acct:"),
        p("@"),
        p(user),
        p("@"),
        p(domain)
    )];
    out.extend(w.urls.iter().map(|u| format!("^{}$", p(u))));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_patterns_accept_both_spellings() {
        assert_eq!(encoded_pattern("a:b"), "a(?::|%3A)b");
        assert_eq!(encoded_pattern("x.y"), "x\\.y");
        let w = Webfinger {
            account: "alice@example.net".into(),
            urls: vec!["https://example.net/users/alice".into()],
            file: String::new(),
        };
        let pats = webfinger_patterns(&w, false);
        assert_eq!(pats[0], "^(?:acct:)?(?:@)?alice@example\\.net$");
        assert_eq!(pats[1], "^https://example\\.net/users/alice$");
    }

    /// Every host answers 410 for every gone URL: a deleted post's page (negotiated) and Note,
    /// and a revoked stamp (JSON for everyone).
    #[test]
    fn every_host_answers_410_for_posts_and_stamps() {
        let gone = |path: &str, stem: &str, page| Gone {
            path: path.into(),
            stem: stem.into(),
            page,
        };
        let h = HostSpec {
            base_url: Url::parse("https://example.net").unwrap(),
            user: "alice".into(),
            root: "/srv/site".into(),
            listen: "80".into(),
            upstream: "http://127.0.0.1:8080".into(),
            gone: vec![
                gone("/posts/old", "_gone/posts/old", true),
                gone("/posts/old.json", "_gone/posts/old", false),
                gone(
                    "/quote-authorizations/t1",
                    "_gone/quote-authorizations/t1",
                    false,
                ),
            ],
            webfinger: vec![],
            documents: vec![],
        };
        let nginx = nginx::render(&h);
        for line in [
            "location = /posts/old { error_page 410 /_gone/posts/old$hortus_ext_example_net; return 410; }",
            "location = /posts/old.json { error_page 410 /_gone/posts/old.json; return 410; }",
            "location = /quote-authorizations/t1 { error_page 410 /_gone/quote-authorizations/t1.json; return 410; }",
        ] {
            assert!(nginx.contains(line), "{line}");
        }
        let caddy = caddy::render(&h);
        for line in [
            "rewrite /posts/old /_gone/posts/old{hortus_ext}",
            "rewrite /posts/old.json /_gone/posts/old.json",
            "rewrite /quote-authorizations/t1 /_gone/quote-authorizations/t1.json",
        ] {
            assert!(caddy.contains(line), "{line}");
        }
        let redirects = netlify::redirects(&h);
        for line in [
            "/posts/old /_gone/posts/old.html 410",
            "/posts/old.json /_gone/posts/old.json 410",
            "/quote-authorizations/t1 /_gone/quote-authorizations/t1.json 410",
        ] {
            assert!(redirects.contains(line), "{line}");
        }
        let headers = netlify::headers(&h);
        assert!(headers.contains(
            "/quote-authorizations/t1\n  Content-Type: application/activity+json\n  Access-Control-Allow-Origin: *"
        ));
        assert!(!headers.contains("/posts/old\n"), "the page is HTML");
    }

    #[test]
    fn listen_defaults_follow_the_base_url() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            default_listen(&u("http://127.0.0.7:8123")),
            "127.0.0.7:8123"
        );
        assert_eq!(default_listen(&u("https://example.net")), "80");
        assert_eq!(default_listen(&u("http://example.net:8000")), "8000");
        assert_eq!(upstream_url("127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(
            upstream_url("https://inbox.example.net/"),
            "https://inbox.example.net"
        );
    }
}
