//! The allow and block lists in SQLite, what a change does to followers, and bulk imports.
//!
//! Blocking a server (or taking it off the allowlist in allowlist mode) suspends its followers
//! at once: their `state` becomes 'suspended', so no delivery goes to them, and the previous
//! state is kept in `follower_suspensions`. Allowing the server again does not restore them:
//! the owner sees them in [`ListChange::still_suspended`] and calls [`restore_followers`].

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use url::Url;

use super::FederationError;
use super::domain::{HostPort, Pattern};
use super::policy::{Decision, Policy, Rules};
use crate::config::FederationMode;
use crate::times::rfc3339 as timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    Allow,
    Block,
}

impl List {
    pub fn as_str(self) -> &'static str {
        match self {
            List::Allow => "allow",
            List::Block => "block",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// Normalised: `example.net`, `*.example.net`, `127.0.0.3:41234`.
    pub pattern: String,
    pub note: Option<String>,
    pub created_at: String,
}

/// A follower held back because of the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuspendedFollower {
    pub actor_id: String,
    /// `host[:port]` of the actor id.
    pub host: String,
    /// 'accepted' or 'pending': what a restore goes back to.
    pub previous_state: String,
    pub reason: String,
    pub suspended_at: String,
}

/// What one list command did, for the owner to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListChange {
    /// The entry as stored.
    pub pattern: String,
    /// False when the entry was already there (add) or absent (remove).
    pub changed: bool,
    /// Followers this change suspended.
    pub suspended: Vec<SuspendedFollower>,
    /// Followers under this entry that stay suspended until [`restore_followers`].
    pub still_suspended: Vec<SuspendedFollower>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RestoreReport {
    pub restored: Vec<SuspendedFollower>,
    /// Matched, but their server is still refused: left suspended.
    pub still_refused: Vec<SuspendedFollower>,
}

pub fn allow_list(conn: &Connection) -> Result<Vec<ListEntry>, FederationError> {
    entries(conn, List::Allow)
}

pub fn block_list(conn: &Connection) -> Result<Vec<ListEntry>, FederationError> {
    entries(conn, List::Block)
}

fn entries(conn: &Connection, list: List) -> Result<Vec<ListEntry>, FederationError> {
    let mut stmt = conn.prepare(
        "SELECT pattern, note, created_at FROM federation_domains WHERE list = ?1
         ORDER BY pattern",
    )?;
    let rows = stmt.query_map([list.as_str()], |r| {
        Ok(ListEntry {
            pattern: r.get(0)?,
            note: r.get(1)?,
            created_at: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Adds an allow entry. Never restores suspended followers: see `still_suspended`.
pub fn allow_add(conn: &Connection, entry: &str) -> Result<ListChange, FederationError> {
    let pattern = Pattern::parse(entry)?;
    let tx = write_transaction(conn)?;
    let changed = insert(&tx, List::Allow, &pattern, None)?;
    let still_suspended = suspended_under(&tx, &pattern)?;
    tx.commit()?;
    Ok(ListChange {
        pattern: pattern.to_string(),
        changed,
        suspended: Vec::new(),
        still_suspended,
    })
}

/// Removes an allow entry. In allowlist mode, followers under it that are now refused are
/// suspended (another allow entry may still cover some of them).
pub fn allow_remove(
    conn: &Connection,
    mode: FederationMode,
    entry: &str,
) -> Result<ListChange, FederationError> {
    let pattern = Pattern::parse(entry)?;
    let tx = write_transaction(conn)?;
    let changed = delete(&tx, List::Allow, &pattern)?;
    let suspended = if mode == FederationMode::Allowlist {
        let policy = Policy::load(&tx, mode, None)?;
        let reason = format!("{pattern} was removed from the allowlist");
        suspend_where(&tx, |host| {
            (pattern.matches(host) && !policy.decide_host(host).is_allowed())
                .then(|| reason.clone())
        })?
    } else {
        Vec::new()
    };
    tx.commit()?;
    Ok(ListChange {
        pattern: pattern.to_string(),
        changed,
        suspended,
        still_suspended: Vec::new(),
    })
}

/// Adds a block entry and suspends every follower it covers.
pub fn block_add(conn: &Connection, entry: &str) -> Result<ListChange, FederationError> {
    let pattern = Pattern::parse(entry)?;
    let tx = write_transaction(conn)?;
    let changed = insert(&tx, List::Block, &pattern, None)?;
    let reason = format!("blocked by {pattern}");
    let suspended = suspend_where(&tx, |host| pattern.matches(host).then(|| reason.clone()))?;
    tx.commit()?;
    Ok(ListChange {
        pattern: pattern.to_string(),
        changed,
        suspended,
        still_suspended: Vec::new(),
    })
}

/// Removes a block entry. Never restores suspended followers: see `still_suspended`.
pub fn block_remove(conn: &Connection, entry: &str) -> Result<ListChange, FederationError> {
    let pattern = Pattern::parse(entry)?;
    let tx = write_transaction(conn)?;
    let changed = delete(&tx, List::Block, &pattern)?;
    let still_suspended = suspended_under(&tx, &pattern)?;
    tx.commit()?;
    Ok(ListChange {
        pattern: pattern.to_string(),
        changed,
        suspended: Vec::new(),
        still_suspended,
    })
}

fn insert(
    conn: &Connection,
    list: List,
    pattern: &Pattern,
    note: Option<&str>,
) -> Result<bool, FederationError> {
    let n = conn.execute(
        "INSERT INTO federation_domains (list, pattern, note, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (list, pattern) DO NOTHING",
        params![list.as_str(), pattern.to_string(), note, now()],
    )?;
    Ok(n == 1)
}

fn delete(conn: &Connection, list: List, pattern: &Pattern) -> Result<bool, FederationError> {
    let n = conn.execute(
        "DELETE FROM federation_domains WHERE list = ?1 AND pattern = ?2",
        params![list.as_str(), pattern.to_string()],
    )?;
    Ok(n == 1)
}

/// IMMEDIATE: these transactions read then write, and a deferred one could not upgrade its read
/// lock if the server wrote in between (SQLITE_BUSY without waiting); this one waits its turn.
/// Fails if `conn` is already inside a transaction.
fn write_transaction(conn: &Connection) -> rusqlite::Result<Transaction<'_>> {
    Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
}

fn now() -> String {
    timestamp(time::OffsetDateTime::now_utc())
}

/// The host deliveries to a follower are about: that of its actor id (authoritative, with the
/// port), else `remote_actors.host`.
fn follower_host(actor_id: &str, fallback: Option<&str>) -> Option<HostPort> {
    Url::parse(actor_id)
        .ok()
        .and_then(|u| HostPort::from_url(&u))
        .or_else(|| fallback.and_then(|h| HostPort::parse(h).ok()))
}

/// Suspends every follower (not already suspended) for which `reason_for` gives a reason.
fn suspend_where(
    conn: &Connection,
    mut reason_for: impl FnMut(&HostPort) -> Option<String>,
) -> Result<Vec<SuspendedFollower>, FederationError> {
    let candidates: Vec<(String, String, Option<String>)> = {
        let mut stmt = conn.prepare(
            "SELECT f.actor_id, f.state, r.host FROM followers f
             LEFT JOIN remote_actors r ON r.id = f.actor_id
             WHERE f.state IN ('pending', 'accepted')",
        )?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?
    };
    let at = now();
    let mut suspended = Vec::new();
    for (actor_id, state, fallback) in candidates {
        let Some(host) = follower_host(&actor_id, fallback.as_deref()) else {
            continue;
        };
        let Some(reason) = reason_for(&host) else {
            continue;
        };
        conn.execute(
            "INSERT INTO follower_suspensions (actor_id, previous_state, reason, suspended_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (actor_id) DO UPDATE SET previous_state = excluded.previous_state,
                 reason = excluded.reason, suspended_at = excluded.suspended_at",
            params![actor_id, state, reason, at],
        )?;
        conn.execute(
            "UPDATE followers SET state = 'suspended' WHERE actor_id = ?1",
            [&actor_id],
        )?;
        suspended.push(SuspendedFollower {
            actor_id,
            host: host.to_string(),
            previous_state: state,
            reason,
            suspended_at: at.clone(),
        });
    }
    Ok(suspended)
}

/// Suspends every follower the policy refuses, e.g. at start-up after the mode changed from
/// blocklist to allowlist. Idempotent.
pub fn enforce_policy(
    conn: &Connection,
    policy: &Policy,
) -> Result<Vec<SuspendedFollower>, FederationError> {
    let tx = write_transaction(conn)?;
    let suspended = suspend_where(&tx, |host| match policy.decide_host(host) {
        Decision::Allowed => None,
        Decision::Refused(why) => Some(format!("server {why}")),
    })?;
    tx.commit()?;
    Ok(suspended)
}

fn all_suspended(conn: &Connection) -> Result<Vec<SuspendedFollower>, FederationError> {
    let mut stmt = conn.prepare(
        "SELECT s.actor_id, r.host, s.previous_state, s.reason, s.suspended_at
         FROM follower_suspensions s
         JOIN followers f ON f.actor_id = s.actor_id AND f.state = 'suspended'
         LEFT JOIN remote_actors r ON r.id = s.actor_id
         ORDER BY s.actor_id",
    )?;
    let rows = stmt.query_map([], |r| {
        let actor_id: String = r.get(0)?;
        let fallback: Option<String> = r.get(1)?;
        Ok((actor_id, fallback, r.get(2)?, r.get(3)?, r.get(4)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (actor_id, fallback, previous_state, reason, suspended_at) = row?;
        let host = follower_host(&actor_id, fallback.as_deref())
            .map(|h| h.to_string())
            .or(fallback)
            .unwrap_or_default();
        out.push(SuspendedFollower {
            actor_id,
            host,
            previous_state,
            reason,
            suspended_at,
        });
    }
    Ok(out)
}

fn suspended_under(
    conn: &Connection,
    pattern: &Pattern,
) -> Result<Vec<SuspendedFollower>, FederationError> {
    Ok(all_suspended(conn)?
        .into_iter()
        .filter(|s| HostPort::parse(&s.host).is_ok_and(|h| pattern.matches(&h)))
        .collect())
}

/// Followers suspended by the policy whose host `entry` covers (`example.net` exactly,
/// `*.example.net` with subdomains).
pub fn suspended_followers(
    conn: &Connection,
    entry: &str,
) -> Result<Vec<SuspendedFollower>, FederationError> {
    suspended_under(conn, &Pattern::parse(entry)?)
}

/// Puts followers under `entry` back into the state they had before suspension, but only those
/// whose server the current lists allow; the others are reported in `still_refused`.
pub fn restore_followers(
    conn: &Connection,
    mode: FederationMode,
    entry: &str,
) -> Result<RestoreReport, FederationError> {
    let pattern = Pattern::parse(entry)?;
    let tx = write_transaction(conn)?;
    let policy = Policy::load(&tx, mode, None)?;
    let mut report = RestoreReport::default();
    for follower in suspended_under(&tx, &pattern)? {
        let allowed =
            HostPort::parse(&follower.host).is_ok_and(|h| policy.decide_host(&h).is_allowed());
        if !allowed {
            report.still_refused.push(follower);
            continue;
        }
        tx.execute(
            "UPDATE followers SET state = ?2 WHERE actor_id = ?1 AND state = 'suspended'",
            params![follower.actor_id, follower.previous_state],
        )?;
        tx.execute(
            "DELETE FROM follower_suspensions WHERE actor_id = ?1",
            [&follower.actor_id],
        )?;
        report.restored.push(follower);
    }
    tx.commit()?;
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// Import

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// One entry per line; `#` starts a comment.
    Lines,
    /// Mastodon's domain block (or allow) CSV export.
    MastodonCsv,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedLine {
    /// 1-based line of the file where the entry starts.
    pub line: usize,
    pub text: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub format: ImportFormat,
    /// Entries added, normalised.
    pub added: Vec<String>,
    pub already_present: usize,
    pub skipped: Vec<SkippedLine>,
    /// Followers suspended by the new block entries.
    pub suspended: Vec<SuspendedFollower>,
}

/// Imports many entries in one transaction.
///
/// Two formats, told apart by the first non-blank line:
/// - Mastodon's CSV export, header `#domain,#severity,#reject_media,…` (with or without the
///   `#`s). Only `domain` matters; rows with severity `noop` are skipped, and so are
///   obfuscated domains (any `*`). Mastodon applies a domain block to subdomains too, so a block
///   row `example.net` is stored as `*.example.net`; an allow row stays exact, as in Mastodon.
///   Every other severity (`silence`, `suspend`) becomes a full block here: Hortus has no
///   "limit".
/// - Anything else: one entry per line in the syntax of [`Pattern`]; `#` starts a comment,
///   blank lines are ignored.
pub fn import_domains(
    conn: &Connection,
    list: List,
    text: &str,
) -> Result<ImportReport, FederationError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (format, rows) = parse_import(text, list);
    let tx = write_transaction(conn)?;
    let mut report = ImportReport {
        format,
        added: Vec::new(),
        already_present: 0,
        skipped: Vec::new(),
        suspended: Vec::new(),
    };
    let mut new_blocks = Rules::default();
    for row in rows {
        match row {
            ImportRow::Entry { pattern, note } => {
                if insert(&tx, list, &pattern, note.as_deref())? {
                    if list == List::Block {
                        new_blocks.insert(&pattern);
                    }
                    report.added.push(pattern.to_string());
                } else {
                    report.already_present += 1;
                }
            }
            ImportRow::Skipped(skipped) => report.skipped.push(skipped),
        }
    }
    if new_blocks.len() > 0 {
        report.suspended = suspend_where(&tx, |host| {
            new_blocks
                .entry_for(host)
                .map(|entry| format!("blocked by {entry} (import)"))
        })?;
    }
    tx.commit()?;
    Ok(report)
}

enum ImportRow {
    Entry {
        pattern: Pattern,
        note: Option<String>,
    },
    Skipped(SkippedLine),
}

fn parse_import(text: &str, list: List) -> (ImportFormat, Vec<ImportRow>) {
    let first = text.lines().map(str::trim).find(|l| !l.is_empty());
    let is_csv = first.is_some_and(|l| {
        let l = l.to_ascii_lowercase();
        l == "#domain" || l == "domain" || l.starts_with("#domain,") || l.starts_with("domain,")
    });
    if is_csv {
        (ImportFormat::MastodonCsv, parse_mastodon_csv(text, list))
    } else {
        (ImportFormat::Lines, parse_lines(text))
    }
}

fn parse_lines(text: &str) -> Vec<ImportRow> {
    let mut rows = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        rows.push(match Pattern::parse(line) {
            Ok(pattern) => ImportRow::Entry {
                pattern,
                note: None,
            },
            Err(e) => ImportRow::Skipped(SkippedLine {
                line: i + 1,
                text: clip(raw.trim()),
                reason: e.problem.to_string(),
            }),
        });
    }
    rows
}

fn parse_mastodon_csv(text: &str, list: List) -> Vec<ImportRow> {
    let mut records = csv_records(text).into_iter();
    let Some((_, Ok(header))) = records.next() else {
        return Vec::new();
    };
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h.trim().trim_start_matches('#').eq_ignore_ascii_case(name))
    };
    let domain_at = column("domain").unwrap_or(0);
    let severity_at = column("severity");
    let comment_at = column("public_comment");
    let mut rows = Vec::new();
    for (line, fields) in records {
        let fields = match fields {
            Ok(fields) => fields,
            Err(reason) => {
                rows.push(ImportRow::Skipped(SkippedLine {
                    line,
                    text: String::new(),
                    reason,
                }));
                continue;
            }
        };
        let field = |i: Option<usize>| i.and_then(|i| fields.get(i)).map(|s| s.trim());
        let domain = field(Some(domain_at)).unwrap_or("");
        if domain.is_empty() && fields.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let skip = |reason: &str| {
            ImportRow::Skipped(SkippedLine {
                line,
                text: clip(&fields.join(",")),
                reason: reason.to_string(),
            })
        };
        if field(severity_at).is_some_and(|s| s.eq_ignore_ascii_case("noop")) {
            rows.push(skip("severity noop: Mastodon does nothing with it either"));
            continue;
        }
        if domain.contains('*') {
            rows.push(skip(
                "obfuscated domain (contains '*'): the real name is unknown",
            ));
            continue;
        }
        match Pattern::parse(domain) {
            Ok(pattern) => {
                let pattern = match list {
                    List::Block => pattern.with_subdomains(),
                    List::Allow => pattern,
                };
                let note = field(comment_at).filter(|c| !c.is_empty()).map(clip);
                rows.push(ImportRow::Entry { pattern, note });
            }
            Err(e) => rows.push(skip(&e.problem.to_string())),
        }
    }
    rows
}

/// RFC 4180 records (read by the `csv` crate) with the 1-based line each starts on: quoted
/// fields may hold commas, doubled quotes and newlines (Mastodon's public comments do). A record
/// the reader cannot make sense of is kept as its error, so the report can name its line.
fn csv_records(text: &str) -> Vec<(usize, Result<Vec<String>, String>)> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = Vec::new();
    let mut record = csv::StringRecord::new();
    // Lines counted from byte offsets: after "\r\n" the reader may place a record at its "\n".
    let line_at = |byte: u64| {
        let bytes = text.as_bytes();
        let mut end = usize::try_from(byte).unwrap_or(usize::MAX).min(bytes.len());
        while bytes.get(end).is_some_and(|b| matches!(b, b'\r' | b'\n')) {
            end += 1;
        }
        1 + bytes[..end].iter().filter(|&&b| b == b'\n').count()
    };
    loop {
        let start = reader.position().byte();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let at = record.position().map_or(start, |p| p.byte());
                let fields: Vec<String> = record.iter().map(str::to_string).collect();
                if !(fields.len() == 1 && fields[0].trim().is_empty()) {
                    records.push((line_at(at), Ok(fields)));
                }
            }
            Err(e) => {
                let at = e.position().map_or(start, |p| p.byte());
                // An I/O error would repeat forever; a bad record does not stop the reader.
                let stop = matches!(e.kind(), csv::ErrorKind::Io(_));
                records.push((line_at(at), Err(e.to_string())));
                if stop {
                    break;
                }
            }
        }
    }
    records
}

/// Keeps reports readable when a file holds junk.
fn clip(s: &str) -> String {
    const MAX: usize = 200;
    let head = crate::text::truncate_chars(s, MAX);
    if head.len() < s.len() {
        format!("{head}…")
    } else {
        s.to_string()
    }
}

/// Whether an entry exists (for tools and tests).
pub fn contains(conn: &Connection, list: List, entry: &str) -> Result<bool, FederationError> {
    let pattern = Pattern::parse(entry)?;
    Ok(conn
        .query_row(
            "SELECT 1 FROM federation_domains WHERE list = ?1 AND pattern = ?2",
            params![list.as_str(), pattern.to_string()],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::open_in_memory;

    fn add_follower(conn: &Connection, actor_id: &str, state: &str) {
        let host = Url::parse(actor_id)
            .unwrap()
            .host_str()
            .unwrap()
            .to_string();
        conn.execute(
            "INSERT INTO remote_actors (id, host, inbox, raw, fetched_at)
             VALUES (?1, ?2, ?1 || '/inbox', '{}', '2026-01-01T00:00:00Z')",
            params![actor_id, host],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO followers (actor_id, follow_id, state, created_at)
             VALUES (?1, ?1 || '#follow', ?2, '2026-01-01T00:00:00Z')",
            params![actor_id, state],
        )
        .unwrap();
    }

    fn state(conn: &Connection, actor_id: &str) -> String {
        conn.query_row(
            "SELECT state FROM followers WHERE actor_id = ?1",
            [actor_id],
            |r| r.get(0),
        )
        .unwrap()
    }

    #[test]
    fn add_list_remove_report_what_changed() {
        let conn = open_in_memory().unwrap();
        let c = allow_add(&conn, "Example.NET.").unwrap();
        assert_eq!((c.pattern.as_str(), c.changed), ("example.net", true));
        assert!(!allow_add(&conn, "example.net").unwrap().changed);
        block_add(&conn, ".bad.example").unwrap();
        let allow: Vec<_> = allow_list(&conn)
            .unwrap()
            .into_iter()
            .map(|e| e.pattern)
            .collect();
        let block: Vec<_> = block_list(&conn)
            .unwrap()
            .into_iter()
            .map(|e| e.pattern)
            .collect();
        assert_eq!(allow, ["example.net"]);
        assert_eq!(block, ["*.bad.example"]);
        assert!(contains(&conn, List::Block, "*.bad.example").unwrap());
        assert!(
            allow_remove(&conn, FederationMode::Allowlist, "example.net")
                .unwrap()
                .changed
        );
        assert!(!block_remove(&conn, "bad.example").unwrap().changed);
        assert!(block_remove(&conn, "*.bad.example").unwrap().changed);
        assert!(allow_add(&conn, "not a domain").is_err());
    }

    #[test]
    fn blocking_suspends_and_only_an_explicit_restore_brings_back() {
        let conn = open_in_memory().unwrap();
        add_follower(&conn, "https://example.net/users/a", "accepted");
        add_follower(&conn, "https://a.example.net/users/b", "pending");
        add_follower(&conn, "https://other.example/users/c", "accepted");
        allow_add(&conn, "*.example.net").unwrap();

        let c = block_add(&conn, "*.example.net").unwrap();
        assert_eq!(c.suspended.len(), 2);
        assert_eq!(state(&conn, "https://example.net/users/a"), "suspended");
        assert_eq!(state(&conn, "https://a.example.net/users/b"), "suspended");
        assert_eq!(state(&conn, "https://other.example/users/c"), "accepted");
        // Idempotent: nobody is suspended twice.
        assert!(
            block_add(&conn, "*.example.net")
                .unwrap()
                .suspended
                .is_empty()
        );

        // Unblocking does not restore, but tells who is waiting.
        let c = block_remove(&conn, "*.example.net").unwrap();
        assert_eq!(c.still_suspended.len(), 2);
        assert_eq!(state(&conn, "https://example.net/users/a"), "suspended");
        assert_eq!(suspended_followers(&conn, "example.net").unwrap().len(), 1);
        assert_eq!(
            suspended_followers(&conn, "*.example.net").unwrap().len(),
            2
        );

        let r = restore_followers(&conn, FederationMode::Allowlist, "*.example.net").unwrap();
        assert_eq!(r.restored.len(), 2);
        assert!(r.still_refused.is_empty());
        assert_eq!(state(&conn, "https://example.net/users/a"), "accepted");
        assert_eq!(state(&conn, "https://a.example.net/users/b"), "pending");
        assert!(
            suspended_followers(&conn, "*.example.net")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn leaving_the_allowlist_suspends_only_in_allowlist_mode() {
        let conn = open_in_memory().unwrap();
        add_follower(&conn, "https://example.net/users/a", "accepted");
        add_follower(&conn, "https://a.example.net/users/b", "accepted");
        allow_add(&conn, "example.net").unwrap();
        allow_add(&conn, "*.example.net").unwrap();

        let c = allow_remove(&conn, FederationMode::Blocklist, "*.example.net").unwrap();
        assert!(c.suspended.is_empty());
        allow_add(&conn, "*.example.net").unwrap();

        // example.net stays allowed by its exact entry; a.example.net loses its only one.
        let c = allow_remove(&conn, FederationMode::Allowlist, "*.example.net").unwrap();
        let who: Vec<_> = c.suspended.iter().map(|s| s.actor_id.as_str()).collect();
        assert_eq!(who, ["https://a.example.net/users/b"]);
        assert!(c.suspended[0].reason.contains("allowlist"));

        // Restoring while still refused leaves them suspended.
        let r = restore_followers(&conn, FederationMode::Allowlist, "*.example.net").unwrap();
        assert!(r.restored.is_empty());
        assert_eq!(r.still_refused.len(), 1);
        let c = allow_add(&conn, "a.example.net").unwrap();
        assert_eq!(c.still_suspended.len(), 1);
        assert_eq!(state(&conn, "https://a.example.net/users/b"), "suspended");
        let r = restore_followers(&conn, FederationMode::Allowlist, "a.example.net").unwrap();
        assert_eq!(r.restored.len(), 1);
        assert_eq!(state(&conn, "https://a.example.net/users/b"), "accepted");
    }

    #[test]
    fn enforce_policy_suspends_everyone_refused() {
        let conn = open_in_memory().unwrap();
        add_follower(&conn, "https://example.net/users/a", "accepted");
        add_follower(&conn, "http://127.0.0.3:41234/users/b", "accepted");
        allow_add(&conn, "127.0.0.3:41234").unwrap();
        let policy = Policy::load(&conn, FederationMode::Allowlist, None).unwrap();
        let s = enforce_policy(&conn, &policy).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].host, "example.net");
        assert_eq!(state(&conn, "http://127.0.0.3:41234/users/b"), "accepted");
        assert!(enforce_policy(&conn, &policy).unwrap().is_empty());
    }

    #[test]
    fn suspension_record_goes_with_the_follower() {
        let conn = open_in_memory().unwrap();
        add_follower(&conn, "https://example.net/users/a", "accepted");
        block_add(&conn, "example.net").unwrap();
        conn.execute("DELETE FROM followers", []).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM follower_suspensions", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn import_plain_lines() {
        let conn = open_in_memory().unwrap();
        allow_add(&conn, "already.example").unwrap();
        let text = "# my friends\n\
                    example.net\n\
                    \n\
                    *.Social.Example   # with subdomains\n\
                    already.example\n\
                    not a domain\n\
                    ex*mple.org\n\
                    127.0.0.3:41234\n\
                    example.net\n";
        let r = import_domains(&conn, List::Allow, text).unwrap();
        assert_eq!(r.format, ImportFormat::Lines);
        assert_eq!(
            r.added,
            ["example.net", "*.social.example", "127.0.0.3:41234"]
        );
        assert_eq!(r.already_present, 2);
        let lines: Vec<_> = r.skipped.iter().map(|s| s.line).collect();
        assert_eq!(lines, [6, 7]);
        assert!(r.skipped[1].reason.contains("wildcard"), "{:?}", r.skipped);
    }

    #[test]
    fn import_mastodon_csv() {
        let conn = open_in_memory().unwrap();
        add_follower(&conn, "https://sub.spam.example/users/x", "accepted");
        let text = "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\r\n\
                    spam.example,suspend,true,true,\"Spam, lots of it\",false\r\n\
                    loud.example,silence,false,false,,false\r\n\
                    meh.example,noop,false,false,,false\r\n\
                    ha*sh.example,suspend,false,false,,true\r\n\
                    multi.example,suspend,false,false,\"一行目, \"\"引用\"\"\nسطر 2 👩‍👩‍👧\",false\r\n\
                    bad domain,suspend,false,false,,false\r\n\
                    spam.example,suspend,false,false,,false\r\n";
        let r = import_domains(&conn, List::Block, text).unwrap();
        assert_eq!(r.format, ImportFormat::MastodonCsv);
        assert_eq!(
            r.added,
            ["*.spam.example", "*.loud.example", "*.multi.example"]
        );
        assert_eq!(r.already_present, 1);
        let skipped: Vec<_> = r
            .skipped
            .iter()
            .map(|s| (s.line, s.reason.as_str()))
            .collect();
        assert_eq!(skipped.len(), 3, "{skipped:?}");
        assert_eq!(skipped[0].0, 4);
        assert!(skipped[0].1.contains("noop"));
        assert_eq!(skipped[1].0, 5);
        assert!(skipped[1].1.contains("obfuscated"));
        assert_eq!(skipped[2].0, 8, "line count survives a quoted newline");
        assert_eq!(r.suspended.len(), 1);
        assert_eq!(
            state(&conn, "https://sub.spam.example/users/x"),
            "suspended"
        );
        let notes: Vec<_> = block_list(&conn)
            .unwrap()
            .into_iter()
            .filter_map(|e| e.note)
            .collect();
        assert!(notes.contains(&"Spam, lots of it".to_string()), "{notes:?}");
        assert!(
            notes.contains(&"一行目, \"引用\"\nسطر 2 👩‍👩‍👧".to_string()),
            "{notes:?}"
        );
    }

    #[test]
    fn import_mastodon_allow_export_stays_exact() {
        let conn = open_in_memory().unwrap();
        let r = import_domains(&conn, List::Allow, "#domain\nfriend.example\n").unwrap();
        assert_eq!(r.format, ImportFormat::MastodonCsv);
        assert_eq!(r.added, ["friend.example"]);
    }
}
