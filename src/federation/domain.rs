//! Server names as the owner writes them (entries) and as requests carry them (hosts), both
//! normalised the same way: ASCII lower case (IDNA), no trailing dot, IPv6 in brackets, and an
//! optional port.

use std::borrow::Cow;
use std::fmt;
use std::net::Ipv6Addr;

use url::{Host, Url};

/// Longest host name DNS allows (RFC 1035), without the trailing dot.
const MAX_NAME: usize = 253;
const MAX_LABEL: usize = 63;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is not a server name: {problem}\n  fix: write a host such as example.net, \
     *.example.net (the domain and its subdomains) or 127.0.0.3:8080"
)]
pub struct PatternError {
    pub input: String,
    pub problem: PatternProblem,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternProblem {
    #[error("it is empty")]
    Empty,
    #[error("a wildcard is only allowed as a leading `*.`")]
    Wildcard,
    #[error("the port is not a number between 1 and 65535")]
    Port,
    #[error("an IP address has no subdomains")]
    IpWithSubdomains,
    #[error("it is longer than 253 characters")]
    TooLong,
    #[error("the label {0:?} is empty, longer than 63 characters, or starts or ends with '-'")]
    Label(String),
    #[error("it contains {0:?}, which no host name can contain")]
    Character(char),
    #[error("{0}")]
    Host(String),
}

/// A host as a request carries it, normalised: the form every comparison uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// `example.net`, `xn--bcher-kva.example`, `127.0.0.3`, `[::1]`.
    pub name: String,
    /// Only when written out: `url::Url` drops a scheme's default port, so does this.
    pub port: Option<u16>,
    pub is_ip: bool,
}

impl HostPort {
    /// Normalises `host`, `host:port`, `[v6]:port` or a bare IPv6 address.
    pub fn parse(input: &str) -> Result<HostPort, PatternError> {
        let err = |problem| PatternError {
            input: input.to_string(),
            problem,
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(err(PatternProblem::Empty));
        }
        let (name, port) = split_port(s).map_err(err)?;
        let (name, is_ip) = normalise_name(name).map_err(err)?;
        Ok(HostPort { name, port, is_ip })
    }

    /// The host of a URL: `url` has already lower-cased and IDNA-encoded it.
    pub fn from_url(url: &Url) -> Option<HostPort> {
        let (name, is_ip) = match url.host()? {
            Host::Domain(d) => (d.trim_end_matches('.').to_string(), false),
            Host::Ipv4(ip) => (ip.to_string(), true),
            Host::Ipv6(ip) => (format!("[{ip}]"), true),
        };
        Some(HostPort {
            name,
            port: url.port(),
            is_ip,
        })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// An allow or block entry.
///
/// - `example.net` matches exactly that host, on any port.
/// - `*.example.net` matches `example.net` and every name under it (`a.example.net`,
///   `b.a.example.net`); `.example.net` is accepted as input and stored as `*.example.net`.
/// - A port (`127.0.0.3:41234`) narrows the entry to hosts that carry that port explicitly.
///   URLs leave a scheme's default port out, so entries for real servers should not carry one.
/// - IP addresses match exactly; they have no subdomains.
/// - A URL (`https://example.net/@bob`) is accepted as input and reduced to its host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pattern {
    pub name: String,
    pub subdomains: bool,
    pub port: Option<u16>,
    pub is_ip: bool,
}

impl Pattern {
    pub fn parse(input: &str) -> Result<Pattern, PatternError> {
        let err = |problem| PatternError {
            input: input.to_string(),
            problem,
        };
        let mut s = input.trim();
        if s.contains("://") {
            let url = Url::parse(s).map_err(|e| err(PatternProblem::Host(e.to_string())))?;
            let host = HostPort::from_url(&url).ok_or_else(|| err(PatternProblem::Empty))?;
            return Ok(Pattern {
                name: host.name,
                subdomains: false,
                port: host.port,
                is_ip: host.is_ip,
            });
        }
        let subdomains = if let Some(rest) = s.strip_prefix("*.") {
            s = rest;
            true
        } else if let Some(rest) = s.strip_prefix('.') {
            s = rest;
            true
        } else {
            false
        };
        if s.is_empty() {
            return Err(err(PatternProblem::Empty));
        }
        if s.contains('*') {
            return Err(err(PatternProblem::Wildcard));
        }
        let (name, port) = split_port(s).map_err(err)?;
        let (name, is_ip) = normalise_name(name).map_err(err)?;
        if is_ip && subdomains {
            return Err(err(PatternProblem::IpWithSubdomains));
        }
        Ok(Pattern {
            name,
            subdomains,
            port,
            is_ip,
        })
    }

    /// The same domain, this time with its subdomains (what a Mastodon domain block means).
    pub fn with_subdomains(mut self) -> Pattern {
        self.subdomains = !self.is_ip;
        self
    }

    pub fn matches(&self, host: &HostPort) -> bool {
        if self.port.is_some() && self.port != host.port {
            return false;
        }
        if host.name == self.name {
            return true;
        }
        self.subdomains
            && !host.is_ip
            && host
                .name
                .strip_suffix(self.name.as_str())
                .is_some_and(|head| head.ends_with('.'))
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.subdomains {
            f.write_str("*.")?;
        }
        f.write_str(&self.name)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Pattern {
    type Err = PatternError;
    fn from_str(s: &str) -> Result<Pattern, PatternError> {
        Pattern::parse(s)
    }
}

/// `host[:port]`, `[v6][:port]` or a bare IPv6 address → (name, port).
fn split_port(s: &str) -> Result<(&str, Option<u16>), PatternProblem> {
    let (name, port) = if s.starts_with('[') {
        match s.find(']') {
            Some(end) => {
                let rest = &s[end + 1..];
                match rest.strip_prefix(':') {
                    Some(port) => (&s[..=end], Some(port)),
                    None if rest.is_empty() => (s, None),
                    None => return Err(PatternProblem::Character(first_char(rest))),
                }
            }
            None => return Err(PatternProblem::Character('[')),
        }
    } else if s.parse::<Ipv6Addr>().is_ok() {
        (s, None)
    } else {
        match s.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (s, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match parse_port(p) {
            Some(p) => Some(p),
            None => return Err(PatternProblem::Port),
        },
    };
    Ok((name, port))
}

/// Digits only (`u16::from_str` would take `+80`), 1 to 65535.
fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|p| *p != 0)
}

fn first_char(s: &str) -> char {
    s.chars().next().unwrap_or(' ')
}

/// IDNA to ASCII, lower case, no trailing dot; IPv4 canonical, IPv6 bracketed.
fn normalise_name(name: &str) -> Result<(String, bool), PatternProblem> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err(PatternProblem::Empty);
    }
    let bare_v6 = !name.starts_with('[') && name.parse::<Ipv6Addr>().is_ok();
    let to_parse: Cow<str> = if bare_v6 {
        Cow::Owned(format!("[{name}]"))
    } else {
        Cow::Borrowed(name)
    };
    if let Some(c) = to_parse
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || "/\\@#?%<>|^\"'`,;".contains(*c))
    {
        return Err(PatternProblem::Character(c));
    }
    match Host::parse(&to_parse) {
        Ok(Host::Domain(d)) => {
            check_labels(&d)?;
            Ok((d, false))
        }
        Ok(Host::Ipv4(ip)) => Ok((ip.to_string(), true)),
        Ok(Host::Ipv6(ip)) => Ok((format!("[{ip}]"), true)),
        Err(e) => Err(PatternProblem::Host(e.to_string())),
    }
}

/// What `Host::parse` lets through but DNS does not: WHATWG hosts are looser than host names.
fn check_labels(name: &str) -> Result<(), PatternProblem> {
    if name.len() > MAX_NAME {
        return Err(PatternProblem::TooLong);
    }
    for label in name.split('.') {
        if label.is_empty()
            || label.len() > MAX_LABEL
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(PatternProblem::Label(label.to_string()));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
        {
            return Err(PatternProblem::Character(c));
        }
    }
    Ok(())
}

/// The fast path of a policy decision: a host already in normal form (what `url` produces) is
/// borrowed as is; anything else goes through [`HostPort::parse`].
pub(crate) fn request_host(host: &str) -> Option<(Cow<'_, str>, Option<u16>, bool)> {
    let fast = !host.is_empty()
        && host.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_' | b':')
        })
        && host.bytes().filter(|b| *b == b':').count() <= 1;
    if fast {
        let (name, port) = match host.split_once(':') {
            Some((name, port)) => (name, Some(parse_port(port)?)),
            None => (host, None),
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        // A last label that is a number makes WHATWG read the host as IPv4 (`0x7f.1` is
        // 127.0.0.1): let the full parser decide those.
        let last = name.rsplit('.').next().unwrap_or("");
        let numeric =
            last.is_empty() || last.bytes().all(|b| b.is_ascii_digit()) || last.starts_with("0x");
        if !numeric && check_labels(name).is_ok() {
            return Some((Cow::Borrowed(name), port, false));
        }
    }
    let parsed = HostPort::parse(host).ok()?;
    Some((Cow::Owned(parsed.name), parsed.port, parsed.is_ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Pattern::parse(s)
            .map(|p| p.to_string())
            .unwrap_or_else(|e| format!("ERR {}", e.problem))
    }

    #[test]
    fn entries_are_normalised() {
        let cases = [
            ("example.net", "example.net"),
            ("  Example.NET.  ", "example.net"),
            ("*.Example.net", "*.example.net"),
            (".example.net", "*.example.net"),
            ("bücher.example", "xn--bcher-kva.example"),
            ("*.BÜCHER.example.", "*.xn--bcher-kva.example"),
            ("127.0.0.3:41234", "127.0.0.3:41234"),
            ("example.net:8443", "example.net:8443"),
            ("[::1]:8080", "[::1]:8080"),
            ("::1", "[::1]"),
            ("[FD00::1]", "[fd00::1]"),
            ("https://Mastodon.Social/@bob", "mastodon.social"),
            ("http://127.0.0.3:41234/users/a", "127.0.0.3:41234"),
            ("localhost", "localhost"),
            ("under_score.example", "under_score.example"),
        ];
        for (input, want) in cases {
            assert_eq!(norm(input), want, "input {input:?}");
        }
    }

    #[test]
    fn junk_is_refused_with_a_reason() {
        let cases = [
            "",
            "   ",
            "*.",
            ".",
            "ex*mple.net",
            "*.*.example.net",
            "exa mple.net",
            "example.net/path",
            "bob@example.net",
            "example.net:0",
            "example.net:99999",
            "example.net:http",
            "*.127.0.0.1",
            "-bad.example",
            "a..b",
            "example.net,suspend",
            "[::1",
        ];
        for input in cases {
            let err = Pattern::parse(input).expect_err(input);
            assert!(err.to_string().contains("fix:"), "{err}");
        }
        let long = format!("{}.example", "a".repeat(64));
        assert!(Pattern::parse(&long).is_err());
    }

    #[test]
    fn matching_respects_subdomains_and_ports() {
        let h = |s: &str| HostPort::parse(s).unwrap();
        let p = |s: &str| Pattern::parse(s).unwrap();
        assert!(p("example.net").matches(&h("example.net")));
        assert!(p("example.net").matches(&h("example.net:8443")));
        assert!(!p("example.net").matches(&h("a.example.net")));
        assert!(p("*.example.net").matches(&h("example.net")));
        assert!(p("*.example.net").matches(&h("b.a.example.net")));
        assert!(!p("*.example.net").matches(&h("badexample.net")));
        assert!(p("example.net:8443").matches(&h("example.net:8443")));
        assert!(!p("example.net:8443").matches(&h("example.net")));
        assert!(!p("example.net:8443").matches(&h("example.net:9000")));
    }

    #[test]
    fn request_hosts_take_the_fast_path_only_when_already_normal() {
        let r = |s: &str| request_host(s).map(|(n, p, ip)| (n.into_owned(), p, ip));
        assert_eq!(r("example.net"), Some(("example.net".into(), None, false)));
        assert_eq!(
            r("example.net:443"),
            Some(("example.net".into(), Some(443), false))
        );
        assert_eq!(r("Example.Net."), Some(("example.net".into(), None, false)));
        assert_eq!(
            r("127.0.0.3:41234"),
            Some(("127.0.0.3".into(), Some(41234), true))
        );
        assert_eq!(r("0x7f.1"), Some(("127.0.0.1".into(), None, true)));
        assert_eq!(r("[::1]:80"), Some(("[::1]".into(), Some(80), true)));
        assert_eq!(r("exa mple.net"), None);
        assert_eq!(r("example.net:x"), None);
        assert_eq!(r(""), None);
    }
}
