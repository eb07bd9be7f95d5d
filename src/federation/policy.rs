//! The policy snapshot every request consults, and the handle a running server keeps it in.
//!
//! # Precedence
//!
//! For a host (with its port, if the request carried one), in this order:
//!
//! 1. Our own host (the host and port of `base_url`) is never remote: **allowed**.
//! 2. A host that is not a valid host name is **refused** (`InvalidHost`).
//! 3. If any block entry matches, the host is **refused** (`Blocked`). A block always wins, even
//!    over a more specific allow entry: `*.example.net` blocked and `a.example.net` allowed
//!    refuses `a.example.net`.
//! 4. Allowlist mode (the default): **allowed** only if an allow entry matches, otherwise
//!    **refused** (`NotAllowed`). An empty allowlist is a closed gate.
//! 5. Blocklist mode: everything not blocked is **allowed**; allow entries are kept but unused.
//!
//! An entry matches as [`Pattern`] documents: `example.net` exactly that host, `*.example.net`
//! the domain and all its subdomains; an entry without a port matches any port, an entry with a
//! port only a host that carries that port.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use rusqlite::Connection;
use url::Url;

use super::FederationError;
use super::domain::{HostPort, Pattern, request_host};
use crate::config::FederationMode;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Refused(Refusal),
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("blocked by the entry {entry}")]
    Blocked { entry: String },
    #[error("not on the allowlist")]
    NotAllowed,
    #[error("not a valid host name")]
    InvalidHost,
}

/// Which ports of one name an entry list covers.
#[derive(Debug, Default, Clone)]
struct Ports {
    any: bool,
    only: Vec<u16>,
}

impl Ports {
    /// The port of the entry that matched: `Some(None)` for a port-less entry.
    fn matching(&self, port: Option<u16>) -> Option<Option<u16>> {
        if self.any {
            Some(None)
        } else {
            port.filter(|p| self.only.contains(p)).map(Some)
        }
    }
}

/// One list (allow or block) as hash maps: a decision costs one lookup per label.
#[derive(Debug, Default, Clone)]
pub(crate) struct Rules {
    exact: HashMap<String, Ports>,
    /// Keyed by the domain of a `*.domain` entry.
    subtree: HashMap<String, Ports>,
    len: usize,
}

/// The entry that matched, for the refusal message.
struct Matched<'a> {
    name: &'a str,
    subdomains: bool,
    port: Option<u16>,
}

impl fmt::Display for Matched<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.subdomains {
            f.write_str("*.")?;
        }
        f.write_str(self.name)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

impl Rules {
    pub(crate) fn insert(&mut self, p: &Pattern) {
        let map = if p.subdomains {
            &mut self.subtree
        } else {
            &mut self.exact
        };
        let ports = map.entry(p.name.clone()).or_default();
        match p.port {
            None => ports.any = true,
            Some(port) if !ports.only.contains(&port) => ports.only.push(port),
            Some(_) => {}
        }
        self.len += 1;
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn find<'a>(&'a self, name: &str, port: Option<u16>, is_ip: bool) -> Option<Matched<'a>> {
        if let Some((key, ports)) = self.exact.get_key_value(name)
            && let Some(port) = ports.matching(port)
        {
            return Some(Matched {
                name: key,
                subdomains: false,
                port,
            });
        }
        if is_ip || self.subtree.is_empty() {
            return None;
        }
        // `b.a.example.net`, then `a.example.net`, `example.net`, `net`.
        let mut suffix = name;
        loop {
            if let Some((key, ports)) = self.subtree.get_key_value(suffix)
                && let Some(port) = ports.matching(port)
            {
                return Some(Matched {
                    name: key,
                    subdomains: true,
                    port,
                });
            }
            match suffix.split_once('.') {
                Some((_, rest)) => suffix = rest,
                None => return None,
            }
        }
    }

    /// The entry (normalised text) matching `host`, if any.
    pub(crate) fn entry_for(&self, host: &HostPort) -> Option<String> {
        self.find(&host.name, host.port, host.is_ip)
            .map(|m| m.to_string())
    }
}

/// A snapshot of the allow and block lists with the mode and our own host. Cheap to query;
/// replace it (through [`PolicyHandle`]) when the lists change.
#[derive(Debug, Clone)]
pub struct Policy {
    mode: FederationMode,
    local: Option<HostPort>,
    allow: Rules,
    block: Rules,
    version: i64,
}

/// The counter bumped (by triggers) on every change to the lists.
pub fn policy_version(conn: &Connection) -> Result<i64, FederationError> {
    Ok(conn.query_row(
        "SELECT version FROM federation_policy_version WHERE id = 1",
        [],
        |r| r.get(0),
    )?)
}

impl Policy {
    /// Reads the lists. `local` is our own host: `HostPort::from_url(&config.base_url)`.
    pub fn load(
        conn: &Connection,
        mode: FederationMode,
        local: Option<HostPort>,
    ) -> Result<Policy, FederationError> {
        // The version is read before the entries: if a change lands in between, the snapshot
        // is newer than its version says and the next reload_if_changed merely reloads again.
        let version = policy_version(conn)?;
        let mut allow = Rules::default();
        let mut block = Rules::default();
        let mut stmt = conn.prepare("SELECT list, pattern FROM federation_domains")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let list: String = row.get(0)?;
            let text: String = row.get(1)?;
            let pattern =
                Pattern::parse(&text).map_err(|source| FederationError::CorruptEntry {
                    list: list.clone(),
                    pattern: text.clone(),
                    source,
                })?;
            match list.as_str() {
                "block" => block.insert(&pattern),
                _ => allow.insert(&pattern),
            }
        }
        Ok(Policy {
            mode,
            local,
            allow,
            block,
            version,
        })
    }

    /// A policy built in memory (tests, tools).
    pub fn from_patterns(
        mode: FederationMode,
        local: Option<HostPort>,
        allow: &[Pattern],
        block: &[Pattern],
    ) -> Policy {
        let mut policy = Policy {
            mode,
            local,
            allow: Rules::default(),
            block: Rules::default(),
            version: -1,
        };
        allow.iter().for_each(|p| policy.allow.insert(p));
        block.iter().for_each(|p| policy.block.insert(p));
        policy
    }

    pub fn mode(&self) -> FederationMode {
        self.mode
    }

    pub fn local(&self) -> Option<&HostPort> {
        self.local.as_ref()
    }

    /// The list version this snapshot was loaded at (-1 if built in memory).
    pub fn version(&self) -> i64 {
        self.version
    }

    pub fn allow_len(&self) -> usize {
        self.allow.len()
    }

    pub fn block_len(&self) -> usize {
        self.block.len()
    }

    /// Decides for a host as a request carries it: `example.net`, `example.net:8443`,
    /// `[::1]:8080`. Any case, trailing dot and IDNA are handled; an already normal host (what
    /// `url::Url::host_str` gives) is not copied.
    pub fn decide(&self, host: &str) -> Decision {
        match request_host(host) {
            Some((name, port, is_ip)) => self.decide_parts(&name, port, is_ip),
            None => Decision::Refused(Refusal::InvalidHost),
        }
    }

    /// Decides for the host of a URL (e.g. a keyId or an inbox).
    pub fn decide_url(&self, url: &Url) -> Decision {
        let (name, is_ip): (Cow<str>, bool) = match url.host() {
            Some(url::Host::Domain(d)) => (Cow::Borrowed(d.trim_end_matches('.')), false),
            Some(url::Host::Ipv4(ip)) => (Cow::Owned(ip.to_string()), true),
            Some(url::Host::Ipv6(ip)) => (Cow::Owned(format!("[{ip}]")), true),
            None => return Decision::Refused(Refusal::InvalidHost),
        };
        self.decide_parts(&name, url.port(), is_ip)
    }

    pub fn decide_host(&self, host: &HostPort) -> Decision {
        self.decide_parts(&host.name, host.port, host.is_ip)
    }

    fn decide_parts(&self, name: &str, port: Option<u16>, is_ip: bool) -> Decision {
        if self
            .local
            .as_ref()
            .is_some_and(|l| l.name == name && l.port == port)
        {
            return Decision::Allowed;
        }
        if let Some(entry) = self.block.find(name, port, is_ip) {
            return Decision::Refused(Refusal::Blocked {
                entry: entry.to_string(),
            });
        }
        match self.mode {
            FederationMode::Blocklist => Decision::Allowed,
            FederationMode::Allowlist => {
                if self.allow.find(name, port, is_ip).is_some() {
                    Decision::Allowed
                } else {
                    Decision::Refused(Refusal::NotAllowed)
                }
            }
        }
    }
}

/// The policy a running server shares between its handlers and workers. Clones share one
/// snapshot; [`PolicyHandle::reload_if_changed`] swaps in a new one when the lists changed in
/// the database, e.g. by `hortus block add` run in another process.
#[derive(Debug, Clone)]
pub struct PolicyHandle {
    inner: Arc<RwLock<Arc<Policy>>>,
}

impl PolicyHandle {
    pub fn new(policy: Policy) -> PolicyHandle {
        PolicyHandle {
            inner: Arc::new(RwLock::new(Arc::new(policy))),
        }
    }

    pub fn load(
        conn: &Connection,
        mode: FederationMode,
        local: Option<HostPort>,
    ) -> Result<PolicyHandle, FederationError> {
        Ok(PolicyHandle::new(Policy::load(conn, mode, local)?))
    }

    /// The current snapshot. A swap only replaces an `Arc`, so a poisoned lock still holds a
    /// whole policy and is used as is.
    pub fn current(&self) -> Arc<Policy> {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn decide(&self, host: &str) -> Decision {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .decide(host)
    }

    pub fn decide_url(&self, url: &Url) -> Decision {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .decide_url(url)
    }

    pub fn replace(&self, policy: Policy) {
        *self.inner.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(policy);
    }

    /// One indexed single-row read; reloads the lists only when their version moved. Returns
    /// whether it reloaded. On error the old snapshot stays in force.
    pub fn reload_if_changed(&self, conn: &Connection) -> Result<bool, FederationError> {
        let current = self.current();
        if policy_version(conn)? == current.version {
            return Ok(false);
        }
        let fresh = Policy::load(conn, current.mode, current.local.clone())?;
        self.replace(fresh);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FederationMode::{Allowlist, Blocklist};

    fn policy(mode: FederationMode, allow: &[&str], block: &[&str]) -> Policy {
        let parse =
            |l: &[&str]| -> Vec<Pattern> { l.iter().map(|s| Pattern::parse(s).unwrap()).collect() };
        Policy::from_patterns(
            mode,
            Some(HostPort::parse("home.example").unwrap()),
            &parse(allow),
            &parse(block),
        )
    }

    fn verdict(d: Decision) -> &'static str {
        match d {
            Decision::Allowed => "allowed",
            Decision::Refused(Refusal::Blocked { .. }) => "blocked",
            Decision::Refused(Refusal::NotAllowed) => "not-allowed",
            Decision::Refused(Refusal::InvalidHost) => "invalid",
        }
    }

    #[test]
    fn precedence_table() {
        type Row = (
            FederationMode,
            &'static [&'static str],
            &'static [&'static str],
            &'static str,
            &'static str,
        );
        // (mode, allow, block, host, expected)
        #[rustfmt::skip]
        let table: &[Row] = &[
            // allowlist mode: closed unless allowed
            (Allowlist, &[], &[], "example.net", "not-allowed"),
            (Allowlist, &["example.net"], &[], "example.net", "allowed"),
            (Allowlist, &["example.net"], &[], "EXAMPLE.net.", "allowed"),
            (Allowlist, &["example.net"], &[], "a.example.net", "not-allowed"),
            (Allowlist, &["*.example.net"], &[], "example.net", "allowed"),
            (Allowlist, &["*.example.net"], &[], "b.a.example.net", "allowed"),
            (Allowlist, &["*.example.net"], &[], "notexample.net", "not-allowed"),
            (Allowlist, &["a.example.net"], &[], "example.net", "not-allowed"),
            // a block always wins, whatever is more specific
            (Allowlist, &["example.net"], &["example.net"], "example.net", "blocked"),
            (Allowlist, &["a.example.net"], &["*.example.net"], "a.example.net", "blocked"),
            (Allowlist, &["*.example.net"], &["a.example.net"], "a.example.net", "blocked"),
            (Allowlist, &["*.example.net"], &["a.example.net"], "b.example.net", "allowed"),
            (Allowlist, &["*.example.net"], &["a.example.net"], "x.a.example.net", "allowed"),
            // blocklist mode: open unless blocked
            (Blocklist, &[], &[], "example.net", "allowed"),
            (Blocklist, &[], &["example.net"], "example.net", "blocked"),
            (Blocklist, &[], &["example.net"], "a.example.net", "allowed"),
            (Blocklist, &[], &["*.example.net"], "a.example.net", "blocked"),
            (Blocklist, &["example.net"], &["example.net"], "example.net", "blocked"),
            // ports: an entry without a port matches every port; with one, only that port
            (Allowlist, &["127.0.0.3"], &[], "127.0.0.3:41234", "allowed"),
            (Allowlist, &["127.0.0.3:41234"], &[], "127.0.0.3:41234", "allowed"),
            (Allowlist, &["127.0.0.3:41234"], &[], "127.0.0.3:41235", "not-allowed"),
            (Allowlist, &["127.0.0.3:41234"], &[], "127.0.0.3", "not-allowed"),
            (Allowlist, &["127.0.0.3"], &["127.0.0.3:41234"], "127.0.0.3:41234", "blocked"),
            (Allowlist, &["127.0.0.3"], &["127.0.0.3:41234"], "127.0.0.3:9", "allowed"),
            (Allowlist, &["*.example.net:8443"], &[], "a.example.net:8443", "allowed"),
            (Allowlist, &["*.example.net:8443"], &[], "a.example.net", "not-allowed"),
            (Blocklist, &[], &["[::1]"], "[::1]:8080", "blocked"),
            // our own host is never remote
            (Allowlist, &[], &[], "home.example", "allowed"),
            (Allowlist, &[], &["*.example"], "home.example", "allowed"),
            (Allowlist, &[], &[], "home.example:8080", "not-allowed"),
            // junk
            (Blocklist, &[], &[], "exa mple.net", "invalid"),
            (Blocklist, &[], &[], "", "invalid"),
        ];
        for (mode, allow, block, host, want) in table {
            let p = policy(*mode, allow, block);
            assert_eq!(
                verdict(p.decide(host)),
                *want,
                "{mode:?} allow={allow:?} block={block:?} host={host}"
            );
        }
    }

    #[test]
    fn refusal_names_the_entry() {
        let p = policy(Allowlist, &["a.example.net"], &["*.example.net"]);
        assert_eq!(
            p.decide("a.example.net"),
            Decision::Refused(Refusal::Blocked {
                entry: "*.example.net".into()
            })
        );
        let url = Url::parse("https://A.Example.NET/users/bob#main-key").unwrap();
        assert!(!p.decide_url(&url).is_allowed());
    }

    #[test]
    fn changes_by_another_connection_are_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let server = crate::db::open(&path).unwrap();
        let cli = crate::db::open(&path).unwrap();
        let handle = PolicyHandle::load(&server, Allowlist, None).unwrap();
        assert!(!handle.decide("example.net").is_allowed());
        assert!(!handle.reload_if_changed(&server).unwrap());

        crate::federation::allow_add(&cli, "example.net").unwrap();
        assert!(handle.reload_if_changed(&server).unwrap());
        assert!(handle.decide("example.net").is_allowed());
        assert!(!handle.reload_if_changed(&server).unwrap());

        crate::federation::block_add(&cli, "*.example.net").unwrap();
        assert!(handle.reload_if_changed(&server).unwrap());
        assert!(!handle.decide("example.net").is_allowed());
    }
}
