//! Claiming: which due deliveries a worker pool leases next. Every statement here runs once per
//! claim, many times a second in a fan-out, so a usual claim reads a bounded range of an index,
//! not every pending row: with 9,000 pending, reading them all cost several milliseconds per
//! claim and the fan-out rate fell as the queue grew (issue 15). `query_plans` (tests) holds
//! that. Only a claim that finds every server in its window at its limit reads on, past those
//! servers' due rows (walking the due index, so it still reads them): see [`claim`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::DeliveryError;
use super::attempts::Claimed;
use super::schedule::unix_ms;

/// What a worker may take right now.
#[derive(Debug, Clone, Copy)]
pub struct ClaimLimits {
    /// Free slots in the global pool.
    pub want: usize,
    /// Most requests in flight to one server.
    pub per_server: usize,
    /// A server with this many consecutive failures is probed one request at a time.
    pub breaker_threshold: u32,
    pub lease: Duration,
}

/// Whether any delivery can be sent now: due, not leased, its server not paused. The due index
/// in time order, stopping at the first such row (it passes over the rows in flight, and those
/// of paused servers, only).
pub(crate) const ANY_DUE: &str = "SELECT EXISTS (
        SELECT 1 FROM deliveries d
        WHERE d.state = 'pending' AND d.next_attempt_ms <= ?1
          AND (d.lease_until_ms IS NULL OR d.lease_until_ms <= ?1)
          AND NOT EXISTS (SELECT 1 FROM delivery_servers s
                          WHERE s.host = d.host AND s.paused_until_ms > ?1))";

/// Whether [`claim`] would find anything now: a cheap read, so that most idle polls take no
/// write lock.
pub fn any_due(conn: &Connection, now: SystemTime) -> Result<bool, DeliveryError> {
    Ok(conn
        .prepare_cached(ANY_DUE)?
        .query_row([unix_ms(now)], |r| r.get(0))?)
}

/// The `?2` oldest due rows `(id, host, failures, paused)`, leaving out paused servers and the
/// servers named in `?3` (a JSON array: those already at their limit), in time order: a range of
/// the due index, then one lookup per row in `delivery_servers`.
pub(crate) const CANDIDATES: &str = "SELECT d.id, d.host, COALESCE(s.consecutive_failures, 0),
            COALESCE(s.paused_until_ms > ?1, 0)
     FROM (SELECT id, host, next_attempt_ms FROM deliveries
           WHERE state = 'pending' AND next_attempt_ms <= ?1
             AND (lease_until_ms IS NULL OR lease_until_ms <= ?1)
             -- A paused server's backlog must not fill the window (a down server with
             -- thousands due would otherwise leave every claim empty-handed).
             AND NOT EXISTS (SELECT 1 FROM delivery_servers s
                             WHERE s.host = deliveries.host AND s.paused_until_ms > ?1)
             AND host NOT IN (SELECT value FROM json_each(?3))
           ORDER BY next_attempt_ms, id LIMIT ?2) d
     LEFT JOIN delivery_servers s ON s.host = d.host
     ORDER BY d.next_attempt_ms, d.id";

/// Leases a batch in one statement; a row no longer pending is skipped.
pub(crate) const LEASE: &str = "UPDATE deliveries SET lease_owner = ?2, lease_until_ms = ?3
     WHERE id IN (SELECT value FROM json_each(?1)) AND state = 'pending'
     RETURNING id, activity_id, inbox, host, attempts";

/// An activity's body, once per activity in a batch.
pub(crate) const BODY: &str = "SELECT body FROM outgoing_activities WHERE id = ?1";

/// Leases up to `limits.want` due deliveries to `owner`, oldest first, taking turns between
/// servers so one big server cannot starve the rest. `in_flight` counts this owner's requests
/// per server. Paused servers are skipped; a server past its pause but still failing gets one
/// request at a time (the probe).
///
/// Reads the oldest `2 × want` due rows, at least [`MIN_WINDOW`] (a fan-out is queued in turns
/// between servers, `queue::enqueue`, so they hold every server's next turns). When they give
/// nothing to send (every server in them is at its limit: one big backlog is all that is
/// oldest), it reads the next oldest rows of the other servers, naming the busy ones to leave
/// out, until it finds one or the queue ends: another server waits at most one claim behind a
/// backlog, never until it drains. Such a round walks the due index past the busy servers' rows (it does not sort them);
/// it happens only when every server in the window is at its limit, not on the usual refills.
pub fn claim(
    conn: &mut Connection,
    owner: &str,
    now: SystemTime,
    limits: ClaimLimits,
    in_flight: &HashMap<String, usize>,
) -> Result<Vec<Claimed>, DeliveryError> {
    if limits.want == 0 {
        return Ok(Vec::new());
    }
    let now_ms = unix_ms(now);
    // IMMEDIATE: take the write lock before reading, so two processes never lease one row.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Twice what is wanted: a fan-out is queued in turns, so the oldest free rows hold the next
    // two turns of every server. A window of 8 × want (at least 256) read four times as many
    // rows, each with its server's lookup, for a claim that took the same (issue 15: a quarter
    // of the writer's CPU in a fan-out).
    let window = (limits.want * 2).max(MIN_WINDOW);
    let mut busy: HashSet<String> = HashSet::new();
    let chosen = loop {
        let (found, scanned) = candidates(&tx, now_ms, limits, window, &busy)?;
        let chosen = choose(&found, limits, in_flight);
        if !chosen.is_empty() || scanned < window {
            break chosen;
        }
        // Nothing to take among a full window: every server in it is at its limit. Leave them
        // out (and every other server at its limit) and read on; each round leaves out at
        // least one more server, so this ends.
        let before = busy.len();
        busy.extend(found.into_iter().map(|(_, host, _)| host));
        busy.extend(
            in_flight
                .iter()
                .filter(|(_, n)| **n >= limits.per_server)
                .map(|(h, _)| h.clone()),
        );
        if busy.len() == before {
            break chosen;
        }
    };
    let lease_until = now_ms.saturating_add(limits.lease.as_millis() as i64);
    let claimed = lease(&tx, &chosen, owner, lease_until)?;
    tx.commit()?;
    Ok(claimed)
}

/// The fewest rows a claim reads at once: a small claim (a few slots freed) still sees several
/// servers' next turns.
const MIN_WINDOW: usize = 32;

/// A due delivery a claim may take: id, server, the server's failures in a row.
type Candidate = (i64, String, u32);

/// Takes candidates in order while the global limit and each server's limit (one request for a
/// server whose circuit is open: the probe) allow.
fn choose(
    candidates: &[Candidate],
    limits: ClaimLimits,
    in_flight: &HashMap<String, usize>,
) -> Vec<i64> {
    let mut taken: HashMap<&str, usize> = HashMap::new();
    let mut chosen = Vec::new();
    for (id, host, failures) in candidates {
        if chosen.len() >= limits.want {
            break;
        }
        let cap = if *failures >= limits.breaker_threshold {
            1
        } else {
            limits.per_server
        };
        let busy = in_flight.get(host).copied().unwrap_or(0)
            + taken.get(host.as_str()).copied().unwrap_or(0);
        if busy < cap {
            *taken.entry(host.as_str()).or_default() += 1;
            chosen.push(*id);
        }
    }
    chosen
}

/// The due rows `(id, host, failures)` among the `window` oldest, servers in
/// `busy` left out, in turns: every server's oldest first, then every server's second… Paused
/// servers are left out. Also returns how many rows were read.
fn candidates(
    tx: &Connection,
    now_ms: i64,
    limits: ClaimLimits,
    window: usize,
    busy: &HashSet<String>,
) -> Result<(Vec<Candidate>, usize), DeliveryError> {
    let busy = serde_json::to_string(busy).unwrap_or_else(|_| "[]".into());
    let mut stmt = tx.prepare_cached(CANDIDATES)?;
    let mut rows = stmt.query(params![now_ms, window as i64, busy])?;
    let mut turns: HashMap<String, usize> = HashMap::new();
    let mut found: Vec<(usize, usize, i64, String, u32)> = Vec::new();
    let mut scanned = 0;
    while let Some(r) = rows.next()? {
        let (id, host): (i64, String) = (r.get(0)?, r.get(1)?);
        let failures = r.get::<_, i64>(2)?.max(0) as u32;
        let paused: bool = r.get(3)?;
        // The server's name is copied once per claim, not once per row.
        let turn = match turns.get_mut(host.as_str()) {
            Some(turn) => {
                *turn += 1;
                *turn
            }
            None => {
                turns.insert(host.clone(), 1);
                1
            }
        };
        if turn <= limits.per_server && !paused {
            found.push((turn, scanned, id, host, failures));
        }
        scanned += 1;
    }
    // Not cut to a multiple of `want` here: the busy servers' rows come first in turn order, and
    // a cut before `choose` skips them would drop the free server behind them (review, issue 15).
    found.sort_by_key(|(turn, order, ..)| (*turn, *order));
    let found = found
        .into_iter()
        .map(|(_, _, id, host, failures)| (id, host, failures))
        .collect();
    Ok((found, scanned))
}

/// Leases the rows `ids` to `owner` until `lease_until` (Unix ms) in one statement, and reads
/// each activity's body once for all its deliveries. A row that is no longer pending is skipped.
fn lease(
    tx: &Connection,
    ids: &[i64],
    owner: &str,
    lease_until: i64,
) -> Result<Vec<Claimed>, DeliveryError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids_json = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
    let mut rows: Vec<(i64, String, String, String, u32)> = tx
        .prepare_cached(LEASE)?
        .query_map(params![ids_json, owner, lease_until], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get::<_, i64>(4)?.max(0) as u32,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    // RETURNING gives rows in no promised order: keep the claim's (turns, oldest first).
    let rank: HashMap<i64, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    rows.sort_by_key(|r| rank.get(&r.0).copied().unwrap_or(usize::MAX));
    let mut bodies: HashMap<String, Arc<str>> = HashMap::new();
    {
        let mut body = tx.prepare_cached(BODY)?;
        for (_, activity_id, ..) in &rows {
            if !bodies.contains_key(activity_id) {
                let text: Option<String> =
                    body.query_row([activity_id], |r| r.get(0)).optional()?;
                bodies.insert(activity_id.clone(), text.unwrap_or_default().into());
            }
        }
    }
    let holder: Arc<str> = owner.into();
    Ok(rows
        .into_iter()
        .map(|(id, activity_id, inbox, host, attempts)| Claimed {
            owner: holder.clone(),
            body: bodies
                .get(&activity_id)
                .cloned()
                .unwrap_or_else(|| "".into()),
            id,
            activity_id,
            inbox,
            host,
            attempts,
        })
        .collect())
}

#[cfg(test)]
#[path = "claim_tests.rs"]
mod tests;
