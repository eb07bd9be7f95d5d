//! Recording one attempt, in one transaction with what it changes: the delivery moves on (done,
//! retry later, failed), and the per-server circuit breaker counts the failure or closes.

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
    for (delivery, result, now) in batch {
        let (outcome, circuit) = record_one(&tx, delivery, result, *now, backoff)?;
        outcomes.push(outcome);
        if let Some(change) = circuit {
            changes.push((change, delivery, result));
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
fn record_one(
    tx: &Connection,
    delivery: &Claimed,
    result: &AttemptResult,
    now: SystemTime,
    backoff: &Backoff,
) -> Result<(Recorded, Option<Circuit>), DeliveryError> {
    let now_ms = unix_ms(now);
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
    // A 2xx is done whoever sent it; anything else only counts from the lease's holder.
    if result.verdict != Verdict::Delivered && owner.as_deref() != Some(&*delivery.owner) {
        return Ok((Recorded::Stale, None));
    }
    let attempt = attempts + 1;
    let error = result.error.as_deref().map(|e| truncate(e, 500));
    tx.prepare_cached(
        "INSERT OR REPLACE INTO delivery_attempts
             (delivery_id, attempt, started_ms, duration_ms, status, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        delivery.id,
        attempt,
        unix_ms(result.started),
        result.duration.as_millis() as i64,
        result.status,
        error,
    ])?;

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
        Verdict::Delivered => {
            finish("done", None)?;
            Recorded::Done
        }
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
    let circuit = update_server(
        tx,
        &delivery.host,
        result,
        error.as_deref(),
        now_ms,
        backoff,
    )?;
    Ok((outcome, circuit))
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
        _ if result.status.is_none() => {}
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
mod tests {
    use super::*;

    fn attempt(verdict: Verdict, status: Option<u16>) -> AttemptResult {
        AttemptResult {
            verdict,
            status,
            error: status
                .filter(|s| *s >= 400)
                .map(|s| format!("answered {s}")),
            started: SystemTime::UNIX_EPOCH,
            duration: Duration::ZERO,
        }
    }

    fn limits(want: usize) -> crate::delivery::queue::ClaimLimits {
        crate::delivery::queue::ClaimLimits {
            want,
            per_server: 4,
            breaker_threshold: 5,
            lease: Duration::from_secs(60),
        }
    }

    fn column(conn: &Connection, sql: &str) -> Vec<i64> {
        conn.prepare(sql)
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// A batch is leased in one claim and recorded in one transaction; a pool whose lease
    /// expired and whose deliveries another pool sent and recorded cannot record them again
    /// (no double acknowledgement, no second attempt row).
    #[test]
    fn batches_lease_expire_and_are_acknowledged_once() {
        use crate::delivery::queue::{claim, enqueue_at};
        use std::collections::HashMap;
        let mut conn = crate::db::open_in_memory().unwrap();
        let now = SystemTime::now();
        let a = serde_json::json!({"id": "https://me.example/p/庭#create", "type": "Create",
                                   "content": "حديقة 🌱"});
        let inboxes: Vec<String> = (0..6)
            .map(|i| format!("https://s{}.example/users/u{i}/inbox", i % 3))
            .collect();
        enqueue_at(&conn, &a, &inboxes, now).unwrap();
        let first = claim(&mut conn, "pool-a", now, limits(10), &HashMap::new()).unwrap();
        assert_eq!(first.len(), 6);
        // One body for the whole batch, not a copy per delivery.
        assert!(std::sync::Arc::ptr_eq(&first[0].body, &first[5].body));
        assert!(first[0].body.contains("حديقة"));
        assert!(
            claim(&mut conn, "pool-b", now, limits(10), &HashMap::new())
                .unwrap()
                .is_empty()
        );
        // pool-a stalls past its lease: pool-b takes the same rows.
        let later = now + Duration::from_secs(61);
        let second = claim(&mut conn, "pool-b", later, limits(10), &HashMap::new()).unwrap();
        let ids = |b: &[Claimed]| {
            let mut v: Vec<i64> = b.iter().map(|c| c.id).collect();
            v.sort();
            v
        };
        assert_eq!(ids(&first), ids(&second));
        let ok = attempt(Verdict::Delivered, Some(202));
        let backoff = Backoff::default();
        let batch: Vec<_> = second.iter().map(|c| (c, &ok, later)).collect();
        let recorded = record_batch(&mut conn, &batch, &backoff).unwrap();
        assert_eq!(recorded, vec![Recorded::Done; 6]);
        let late = first.iter().map(|c| (c, &ok, later)).collect::<Vec<_>>();
        assert_eq!(
            record_batch(&mut conn, &late, &backoff).unwrap(),
            vec![Recorded::Stale; 6]
        );
        assert_eq!(
            column(&conn, "SELECT attempts FROM deliveries ORDER BY id"),
            vec![1; 6]
        );
        assert_eq!(
            column(&conn, "SELECT COUNT(*) FROM delivery_attempts"),
            vec![6]
        );
    }

    /// A pool whose lease expired and was taken over cannot record a failure: the row stays as
    /// its new holder has it (no attempt counted, no retry time moved, the lease kept).
    #[test]
    fn a_late_failure_from_an_expired_lease_changes_nothing() {
        use crate::delivery::queue::{claim, enqueue_at};
        use std::collections::HashMap;
        let mut conn = crate::db::open_in_memory().unwrap();
        let now = SystemTime::now();
        let a = serde_json::json!({"id": "https://me.example/p/ق#create", "type": "Create"});
        enqueue_at(&conn, &a, &["https://s.example/inbox".to_string()], now).unwrap();
        let first = claim(&mut conn, "pool-a", now, limits(10), &HashMap::new()).unwrap();
        let later = now + Duration::from_secs(61);
        let second = claim(&mut conn, "pool-b", later, limits(10), &HashMap::new()).unwrap();
        assert_eq!(second.len(), 1);
        let failed = attempt(Verdict::Retry { retry_after: None }, Some(503));
        let backoff = Backoff::default();
        assert_eq!(
            record_batch(&mut conn, &[(&first[0], &failed, later)], &backoff).unwrap(),
            vec![Recorded::Stale]
        );
        let (attempts, owner): (i64, Option<String>) = conn
            .query_row("SELECT attempts, lease_owner FROM deliveries", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((attempts, owner.as_deref()), (0, Some("pool-b")));
        // The holder's own failure counts.
        assert!(matches!(
            record_batch(&mut conn, &[(&second[0], &failed, later)], &backoff).unwrap()[..],
            [Recorded::Retrying(_)]
        ));
    }

    /// Claims read the oldest due rows first; when one server's backlog fills that window and
    /// that server is at its limit, every due row is read: another server is served at the next
    /// claim, not after the backlog.
    #[test]
    fn a_backlog_that_fills_the_window_does_not_starve_other_servers() {
        use crate::delivery::queue::{claim, enqueue_at};
        use std::collections::HashMap;
        let mut conn = crate::db::open_in_memory().unwrap();
        let t0 = SystemTime::now();
        let big: Vec<String> = (0..300)
            .map(|i| format!("https://big.example/users/読者{i}/inbox"))
            .collect();
        let a = serde_json::json!({"id": "https://me.example/p/1#create", "type": "Create"});
        enqueue_at(&conn, &a, &big, t0).unwrap();
        let b = serde_json::json!({"id": "https://me.example/p/2#create", "type": "Create"});
        let later = t0 + Duration::from_millis(5);
        enqueue_at(&conn, &b, &["https://small.example/inbox".into()], later).unwrap();
        let first = claim(&mut conn, "w", later, limits(2), &HashMap::new()).unwrap();
        assert_eq!(first.len(), 2);
        let busy = HashMap::from([("big.example".to_string(), 4)]);
        let next = claim(&mut conn, "w", later, limits(2), &busy).unwrap();
        assert_eq!(next.len(), 1, "{next:?}");
        assert_eq!(next[0].host, "small.example");
    }

    /// A batch that cannot be recorded records nothing: its deliveries stay pending under
    /// their lease, and are claimed again once it expires (sent again: at-least-once).
    #[test]
    fn a_failed_batch_records_nothing_and_its_leases_expire() {
        use crate::delivery::queue::{claim, enqueue_at};
        use std::collections::HashMap;
        let mut conn = crate::db::open_in_memory().unwrap();
        let now = SystemTime::now();
        let a = serde_json::json!({"id": "https://me.example/p/1#create", "type": "Create"});
        let inboxes = vec![
            "https://one.example/inbox".to_string(),
            "https://two.example/inbox".to_string(),
        ];
        enqueue_at(&conn, &a, &inboxes, now).unwrap();
        let got = claim(&mut conn, "pool", now, limits(10), &HashMap::new()).unwrap();
        assert_eq!(got.len(), 2);
        let ok = attempt(Verdict::Delivered, Some(202));
        // The second attempt's row cannot be written: the whole batch rolls back.
        conn.execute_batch(
            "CREATE TRIGGER fail_second BEFORE INSERT ON delivery_attempts
             WHEN NEW.delivery_id = (SELECT MAX(id) FROM deliveries)
             BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
        )
        .unwrap();
        let batch: Vec<_> = got.iter().map(|c| (c, &ok, now)).collect();
        assert!(record_batch(&mut conn, &batch, &Backoff::default()).is_err());
        assert_eq!(
            column(
                &conn,
                "SELECT COUNT(*) FROM deliveries WHERE state = 'pending' AND lease_owner = 'pool'"
            ),
            vec![2]
        );
        assert_eq!(
            column(&conn, "SELECT COUNT(*) FROM delivery_attempts"),
            vec![0]
        );
        conn.execute_batch("DROP TRIGGER fail_second").unwrap();
        let later = now + Duration::from_secs(61);
        let again = claim(&mut conn, "next", later, limits(10), &HashMap::new()).unwrap();
        assert_eq!(again.len(), 2);
        let batch: Vec<_> = again.iter().map(|c| (c, &ok, later)).collect();
        assert_eq!(
            record_batch(&mut conn, &batch, &Backoff::default()).unwrap(),
            vec![Recorded::Done; 2]
        );
    }

    /// Each change of the breaker is reported once (and so logged once): opened at the
    /// threshold and at each failed probe after it, closed by the first answer, rate limited by
    /// a 429; an attempt that changes nothing reports nothing.
    #[test]
    fn circuit_changes_are_reported_once() {
        let conn = crate::db::open_in_memory().unwrap();
        let backoff = Backoff::default();
        let host = "例え.example";
        let failure = attempt(Verdict::Retry { retry_after: None }, Some(503));
        let mut changes = Vec::new();
        for _ in 0..6 {
            changes
                .push(update_server(&conn, host, &failure, Some("503"), 1_000, &backoff).unwrap());
        }
        assert_eq!(&changes[..4], &[None, None, None, None]);
        assert_eq!(
            changes[4],
            Some(Circuit::Opened {
                failures: 5,
                pause: Duration::from_secs(60),
                gave_up: 0
            })
        );
        assert_eq!(
            changes[5],
            Some(Circuit::Opened {
                failures: 6,
                pause: Duration::from_secs(120),
                gave_up: 0
            })
        );
        let ok = attempt(Verdict::Delivered, Some(202));
        assert_eq!(
            update_server(&conn, host, &ok, None, 2_000, &backoff).unwrap(),
            Some(Circuit::Closed)
        );
        assert_eq!(
            update_server(&conn, host, &ok, None, 3_000, &backoff).unwrap(),
            None
        );
        let slow_down = attempt(
            Verdict::RateLimited {
                retry_after: Some(Duration::from_secs(90)),
            },
            Some(429),
        );
        assert_eq!(
            update_server(&conn, host, &slow_down, Some("429"), 4_000, &backoff).unwrap(),
            Some(Circuit::RateLimited {
                pause: Duration::from_secs(90)
            })
        );
    }
}
