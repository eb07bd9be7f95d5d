//! The allow and block lists in SQLite. What a change does to followers is in `suspension`,
//! bulk imports in `import`.
//!
//! Blocking a server (or taking it off the allowlist in allowlist mode) suspends its followers
//! at once: their `state` becomes 'suspended', so no delivery goes to them, and the previous
//! state is kept in `follower_suspensions`. Allowing the server again does not restore them:
//! the owner sees them in [`ListChange::still_suspended`] and calls [`restore_followers`].

use rusqlite::{Connection, OptionalExtension, params};

use super::FederationError;
use super::domain::Pattern;
use super::policy::Policy;
use super::suspension::{SuspendedFollower, suspend_where, suspended_under};
use crate::config::FederationMode;
use crate::db::write_transaction;
use crate::times::now;

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

pub(super) fn insert(
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
mod tests;
