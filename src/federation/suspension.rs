//! What refusing a server does to its followers: they are suspended (no delivery goes to them)
//! with the state they had kept in `follower_suspensions`, and only an explicit restore brings
//! them back. Which hosts are refused is decided here; the rows are written by `graph`.

use rusqlite::Connection;
use url::Url;

use super::FederationError;
use super::domain::{HostPort, Pattern};
use super::policy::{Decision, Policy};
use crate::config::FederationMode;
use crate::db::write_transaction;
use crate::graph::{followers, suspensions};
use crate::times::now;

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

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RestoreReport {
    pub restored: Vec<SuspendedFollower>,
    /// Matched, but their server is still refused: left suspended.
    pub still_refused: Vec<SuspendedFollower>,
}

/// The host deliveries to a follower are about: that of its actor id (authoritative, with the
/// port), else `remote_actors.host`.
pub(super) fn follower_host(actor_id: &str, fallback: Option<&str>) -> Option<HostPort> {
    Url::parse(actor_id)
        .ok()
        .and_then(|u| HostPort::from_url(&u))
        .or_else(|| fallback.and_then(|h| HostPort::parse(h).ok()))
}

/// Suspends every follower (not already suspended) for which `reason_for` gives a reason.
pub(super) fn suspend_where(
    conn: &Connection,
    mut reason_for: impl FnMut(&HostPort) -> Option<String>,
) -> Result<Vec<SuspendedFollower>, FederationError> {
    let candidates = followers::active_with_hosts(conn)?;
    let at = now();
    let mut suspended = Vec::new();
    for (actor_id, state, fallback) in candidates {
        let Some(host) = follower_host(&actor_id, fallback.as_deref()) else {
            continue;
        };
        let Some(reason) = reason_for(&host) else {
            continue;
        };
        suspensions::suspend(conn, &actor_id, &state, &reason, &at)?;
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
    let mut out = Vec::new();
    for row in suspensions::all(conn)? {
        let suspensions::SuspendedRow {
            actor_id,
            host: fallback,
            previous_state,
            reason,
            suspended_at,
        } = row;
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

pub(super) fn suspended_under(
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
        suspensions::restore(&tx, &follower.actor_id, &follower.previous_state)?;
        report.restored.push(follower);
    }
    tx.commit()?;
    Ok(report)
}
