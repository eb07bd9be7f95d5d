//! Recording one attempt, in one transaction with what it changes: the delivery moves on (done,
//! retry later, failed), and the per-server circuit breaker counts the failure or closes.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::DeliveryError;
use super::schedule::{Backoff, Verdict, unix_ms};

/// A delivery a worker has leased and is about to send.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub activity_id: String,
    pub inbox: String,
    pub host: String,
    /// Attempts made before this one.
    pub attempts: u32,
    /// The activity's JSON, shared by every delivery of it in a batch.
    pub body: std::sync::Arc<str>,
    /// The pool that holds the lease: only it may record a failure (a late one from a pool
    /// whose lease expired must not reschedule a row another pool is sending).
    pub owner: std::sync::Arc<str>,
}

/// One attempt's result, ready to record.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub verdict: Verdict,
    /// The HTTP status, when the peer answered.
    pub status: Option<u16>,
    /// What went wrong (with a short excerpt of the peer's answer), `None` on success.
    pub error: Option<String>,
    pub started: SystemTime,
    pub duration: Duration,
}

/// Where a delivery stands after [`record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Done,
    /// Will be tried again at this time (Unix ms).
    Retrying(i64),
    Failed,
    /// The row was no longer pending (e.g. `hortus queue` changed it): nothing recorded.
    Stale,
}

/// Records an attempt and moves the delivery on: done, retry later (backoff, Retry-After, never
/// past its expiry), or failed. Updates the server's health: an answer other than 408/429/5xx
/// closes its circuit and brings its waiting deliveries forward; a failure may pause it.
/// A 410 from an actor's own inbox removes that follower.
pub fn record(
    conn: &mut Connection,
    delivery: &Claimed,
    result: &AttemptResult,
    now: SystemTime,
    backoff: &Backoff,
) -> Result<Recorded, DeliveryError> {
    let outcomes = record_batch(conn, &[(delivery, result, now)], backoff)?;
    Ok(outcomes.into_iter().next().unwrap_or(Recorded::Stale))
}

/// [`record`] for many attempts in ONE transaction, in order: the workers record what finished
/// together, so a fan-out of thousands commits tens of times, not thousands. All or nothing: on
/// an error nothing is recorded and the leases stay, so those deliveries are sent again after
/// the lease (at-least-once), never marked done without a 2xx.
pub fn record_batch(
    conn: &mut Connection,
    batch: &[(&Claimed, &AttemptResult, SystemTime)],
    backoff: &Backoff,
) -> Result<Vec<Recorded>, DeliveryError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut changes = Vec::new();
    let mut answering = Answering::new();
    for (delivery, result, now) in batch {
        let (outcome, circuit) = record_one(&tx, delivery, result, *now, backoff, &mut answering)?;
        outcomes.push(outcome);
        if let Some(change) = circuit {
            changes.push((change, delivery, result));
        }
    }
    for (host, last_success_ms) in &answering {
        if let Some(ms) = last_success_ms {
            write_last_success(&tx, host, *ms)?;
        }
    }
    tx.commit()?;
    for (change, delivery, result) in changes {
        let error = result.error.as_deref().map(|e| truncate(e, 500));
        change.log(&delivery.host, error.as_deref());
    }
    Ok(outcomes)
}

/// One attempt inside the caller's transaction, and the change of its server's circuit.
/// `answering`: the servers whose answer this transaction has recorded last (circuit closed, no
/// failure counted, no pause), for which another answer only moves `last_success_ms`.
fn record_one<'a>(
    tx: &Connection,
    delivery: &'a Claimed,
    result: &AttemptResult,
    now: SystemTime,
    backoff: &Backoff,
    answering: &mut Answering<'a>,
) -> Result<(Recorded, Option<Circuit>), DeliveryError> {
    let now_ms = unix_ms(now);
    if result.verdict == Verdict::Delivered {
        return record_delivered(tx, delivery, result, now_ms, backoff, answering);
    }
    let row: Option<(i64, i64, Option<String>)> = tx
        .prepare_cached(
            "SELECT attempts, expires_ms, lease_owner FROM deliveries
             WHERE id = ?1 AND state = 'pending'",
        )?
        .query_row([delivery.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((attempts, expires_ms, owner)) = row else {
        return Ok((Recorded::Stale, None));
    };
    // Anything but a 2xx (done whoever sent it: `record_delivered` above) only counts from the
    // lease's holder.
    if owner.as_deref() != Some(&*delivery.owner) {
        return Ok((Recorded::Stale, None));
    }
    let attempt = attempts + 1;
    let error = result.error.as_deref().map(|e| truncate(e, 500));
    insert_attempt(tx, delivery.id, attempt, result, error.as_deref())?;

    let finish =
        |state: &str, error: Option<&str>| -> rusqlite::Result<()> {
            tx.prepare_cached(
            "UPDATE deliveries SET state = ?2, attempts = ?3, last_status = ?4, last_error = ?5,
                 finished_ms = ?6, lease_owner = NULL, lease_until_ms = NULL
             WHERE id = ?1",
        )?
        .execute(params![delivery.id, state, attempt, result.status, error, now_ms])?;
            Ok(())
        };
    let retry_after = match &result.verdict {
        Verdict::Retry { retry_after } | Verdict::RateLimited { retry_after } => Some(*retry_after),
        _ => None,
    };
    let outcome = match &result.verdict {
        Verdict::Delivered => unreachable!("a 2xx is recorded by record_delivered"),
        Verdict::Gone => {
            finish("failed", error.as_deref())?;
            // The actor is gone (mitra and Mastodon drop it too). A shared inbox is a server's,
            // not an actor's, so only actors whose own inbox this is are removed.
            crate::graph::followers::remove_by_inbox(tx, &delivery.inbox)?;
            Recorded::Failed
        }
        Verdict::Rejected => {
            finish("failed", error.as_deref())?;
            Recorded::Failed
        }
        Verdict::Retry { .. } | Verdict::RateLimited { .. } => {
            if now_ms >= expires_ms {
                let gave_up = format!(
                    "gave up after {} attempts: {}",
                    attempt,
                    error.as_deref().unwrap_or("no answer")
                );
                finish("failed", Some(&gave_up))?;
                Recorded::Failed
            } else {
                let delay = backoff
                    .retry_delay(attempt as u32, delivery.id)
                    .max(retry_after.flatten().unwrap_or_default());
                // The last try happens at the expiry, not never.
                let next = now_ms
                    .saturating_add(delay.as_millis() as i64)
                    .min(expires_ms);
                tx.prepare_cached(
                    "UPDATE deliveries SET attempts = ?2, last_status = ?3, last_error = ?4,
                         next_attempt_ms = ?5, lease_owner = NULL, lease_until_ms = NULL
                     WHERE id = ?1",
                )?
                .execute(params![
                    delivery.id,
                    attempt,
                    result.status,
                    error,
                    next
                ])?;
                Recorded::Retrying(next)
            }
        }
    };
    let circuit = server_after(
        tx,
        delivery,
        result,
        error.as_deref(),
        now_ms,
        backoff,
        answering,
    )?;
    Ok((outcome, circuit))
}

/// A 2xx, the common case of a fan-out, in two statements: the row moves to done (if it is
/// still pending: a 2xx counts whoever sent it) and returns its attempt number, which the
/// attempt's row takes.
fn record_delivered<'a>(
    tx: &Connection,
    delivery: &'a Claimed,
    result: &AttemptResult,
    now_ms: i64,
    backoff: &Backoff,
    answering: &mut Answering<'a>,
) -> Result<(Recorded, Option<Circuit>), DeliveryError> {
    let error = result.error.as_deref().map(|e| truncate(e, 500));
    let attempt: Option<i64> = tx
        .prepare_cached(
            "UPDATE deliveries SET state = 'done', attempts = attempts + 1, last_status = ?2,
                 last_error = ?3, finished_ms = ?4, lease_owner = NULL, lease_until_ms = NULL
             WHERE id = ?1 AND state = 'pending'
             RETURNING attempts",
        )?
        .query_row(params![delivery.id, result.status, error, now_ms], |r| {
            r.get(0)
        })
        .optional()?;
    let Some(attempt) = attempt else {
        return Ok((Recorded::Stale, None));
    };
    insert_attempt(tx, delivery.id, attempt, result, error.as_deref())?;
    let circuit = server_after(
        tx,
        delivery,
        result,
        error.as_deref(),
        now_ms,
        backoff,
        answering,
    )?;
    Ok((Recorded::Done, circuit))
}

/// An answer from the server that was not a failure: it closes the circuit (`update_server`),
/// and a batch records it for a server once (`server_after`). A request refused before it left
/// (policy, signing) has no status and says nothing about the server.
fn closes_circuit(result: &AttemptResult) -> bool {
    result.status.is_some()
        && !matches!(
            result.verdict,
            Verdict::Retry { .. } | Verdict::RateLimited { .. }
        )
}

/// The attempt's row, for `hortus queue`.
fn insert_attempt(
    tx: &Connection,
    delivery_id: i64,
    attempt: i64,
    result: &AttemptResult,
    error: Option<&str>,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO delivery_attempts
             (delivery_id, attempt, started_ms, duration_ms, status, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        delivery_id,
        attempt,
        unix_ms(result.started),
        result.duration.as_millis() as i64,
        result.status,
        error,
    ])?;
    Ok(())
}

/// [`update_server`], except for a server that already answered in this transaction with
/// nothing counted against it since: its circuit is closed, nothing of its waits, so only the
/// time of its last success moves (one statement instead of three for every 2xx after the first
/// to one server in a batch; that one written once, at the end).
fn server_after<'a>(
    tx: &Connection,
    delivery: &'a Claimed,
    result: &AttemptResult,
    error: Option<&str>,
    now_ms: i64,
    backoff: &Backoff,
    answering: &mut Answering<'a>,
) -> rusqlite::Result<Option<Circuit>> {
    let host = delivery.host.as_str();
    let failing = matches!(
        result.verdict,
        Verdict::Retry { .. } | Verdict::RateLimited { .. }
    );
    let answered = closes_circuit(result);
    if answered && let Some(last_success_ms) = answering.get_mut(host) {
        // Written once per server at the end of the batch (or before its next change).
        *last_success_ms = Some(now_ms);
        return Ok(None);
    }
    if let Some(pending) = answering.get_mut(host)
        && let Some(ms) = pending.take()
    {
        write_last_success(tx, host, ms)?;
    }
    let circuit = update_server(tx, host, result, error, now_ms, backoff)?;
    if answered {
        answering.insert(host, None);
    } else if failing {
        answering.remove(host);
    }
    Ok(circuit)
}

/// The servers whose answer a batch has recorded last (circuit closed, nothing counted against
/// them since), each with the time of its latest answer when that is not written yet: a batch
/// of a fan-out holds tens of answers per server, and moving that one column at each wrote the
/// same row again and again.
type Answering<'a> = HashMap<&'a str, Option<i64>>;

fn write_last_success(tx: &Connection, host: &str, now_ms: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE delivery_servers SET last_success_ms = ?2 WHERE host = ?1")?
        .execute(params![host, now_ms])?;
    Ok(())
}

/// A change of a server's circuit breaker, logged once, after the attempt that caused it is
/// committed.
#[derive(Debug, PartialEq, Eq)]
enum Circuit {
    /// Paused after `failures` failures in a row (again, for longer, after a failed probe);
    /// `gave_up` deliveries to it that had run out of time were failed with it.
    Opened {
        failures: i64,
        pause: Duration,
        gave_up: usize,
    },
    /// Paused for its `Retry-After` (429); not counted as failing.
    RateLimited { pause: Duration },
    /// An answer after a pause: its waiting deliveries go now.
    Closed,
}

impl Circuit {
    fn log(&self, host: &str, error: Option<&str>) {
        let error = error.unwrap_or_default();
        match self {
            Circuit::Opened {
                failures,
                pause,
                gave_up,
            } => tracing::warn!(
                host,
                failures,
                pause_seconds = pause.as_secs(),
                gave_up,
                error,
                "circuit opened: deliveries to this server paused"
            ),
            Circuit::RateLimited { pause } => tracing::warn!(
                host,
                pause_seconds = pause.as_secs(),
                error,
                "circuit opened: the server asked to slow down (429)"
            ),
            Circuit::Closed => {
                tracing::info!(host, "circuit closed: the server answers again")
            }
        }
    }
}

/// The circuit breaker's bookkeeping for one attempt.
fn update_server(
    tx: &Connection,
    host: &str,
    result: &AttemptResult,
    error: Option<&str>,
    now_ms: i64,
    backoff: &Backoff,
) -> rusqlite::Result<Option<Circuit>> {
    tx.prepare_cached(
        "INSERT INTO delivery_servers (host) VALUES (?1) ON CONFLICT (host) DO NOTHING",
    )?
    .execute([host])?;
    let mut change = None;
    match &result.verdict {
        Verdict::Retry { .. } => {
            let failures: i64 = tx.query_row(
                "UPDATE delivery_servers SET consecutive_failures = consecutive_failures + 1,
                     last_error = ?2, last_failure_ms = ?3
                 WHERE host = ?1 RETURNING consecutive_failures",
                params![host, error, now_ms],
                |r| r.get(0),
            )?;
            if let Some(pause) = backoff.pause_for(failures.max(0) as u32) {
                tx.execute(
                    "UPDATE delivery_servers SET paused_until_ms = ?2 WHERE host = ?1",
                    params![host, now_ms.saturating_add(pause.as_millis() as i64)],
                )?;
                // While it stays down, whatever has run out of time is given up.
                let gave_up = tx.execute(
                    "UPDATE deliveries SET state = 'failed', finished_ms = ?2,
                         last_error = 'gave up: the server kept failing: ' || COALESCE(last_error, ?3)
                     WHERE host = ?1 AND state = 'pending' AND expires_ms <= ?2
                       AND (lease_until_ms IS NULL OR lease_until_ms <= ?2)",
                    params![host, now_ms, error],
                )?;
                change = Some(Circuit::Opened {
                    failures,
                    pause,
                    gave_up,
                });
            }
        }
        Verdict::RateLimited { retry_after } => {
            let pause = retry_after.unwrap_or(backoff.rate_limit_pause);
            tx.execute(
                "UPDATE delivery_servers SET paused_until_ms = MAX(COALESCE(paused_until_ms, 0), ?2),
                     last_error = ?3, last_failure_ms = ?4
                 WHERE host = ?1",
                params![host, now_ms.saturating_add(pause.as_millis() as i64), error, now_ms],
            )?;
            change = Some(Circuit::RateLimited { pause });
        }
        // Refused before any request (policy, signing): says nothing about the server.
        _ if !closes_circuit(result) => {}
        _ => {
            // Every success passes here: cached statements.
            let (was_failing, was_paused): (i64, bool) = tx
                .prepare_cached(
                    "SELECT consecutive_failures, paused_until_ms IS NOT NULL
                     FROM delivery_servers WHERE host = ?1",
                )?
                .query_row([host], |r| Ok((r.get(0)?, r.get(1)?)))?;
            if was_paused {
                change = Some(Circuit::Closed);
            }
            tx.prepare_cached(
                "UPDATE delivery_servers SET consecutive_failures = 0, paused_until_ms = NULL,
                     last_success_ms = ?2
                 WHERE host = ?1",
            )?
            .execute(params![host, now_ms])?;
            if was_failing > 0 {
                // It is back: what waited for it goes now rather than at its backoff time.
                tx.execute(
                    "UPDATE deliveries SET next_attempt_ms = ?2
                     WHERE host = ?1 AND state = 'pending' AND next_attempt_ms > ?2",
                    params![host, now_ms],
                )?;
            }
        }
    }
    Ok(change)
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
#[path = "attempts_tests.rs"]
mod tests;
