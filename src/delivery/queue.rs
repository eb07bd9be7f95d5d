//! The queue's SQL: plain functions over a `&Connection`, testable against `:memory:`.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::Value;

use super::DeliveryError;
use super::schedule::unix_ms;

// Recording an attempt and the queue's status have their own files; their items keep their
// `queue::` paths (the worker, `hortus queue` and the tests use them).
pub use super::attempts::{AttemptResult, Claimed, Recorded, record, record_batch};
pub use super::status::{QueueStatus, ServerStatus, status};

/// How long Hortus keeps trying one delivery before giving up: a peer down for a day or two
/// still gets everything.
pub const MAX_AGE: Duration = Duration::from_secs(3 * 24 * 60 * 60);

/// The unit of per-server limits and of the circuit breaker: `host` or `host:port` of an inbox.
pub fn server_of(inbox: &url::Url) -> Option<String> {
    let host = inbox.host_str()?.to_ascii_lowercase();
    Some(match inbox.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    })
}

/// Stores `activity` (must have an "id") once and one pending delivery per distinct inbox URL.
/// Idempotent on (activity id, inbox). Returns how many deliveries were added.
///
/// Runs in a savepoint, so it can be called inside the caller's transaction (the row that made
/// the activity and its deliveries then commit together) or on its own. On its own it wakes this
/// process's workers; inside a transaction, call [`super::wake_workers`] after the commit. A
/// worker pool in another process finds the rows within its poll interval either way.
pub fn enqueue(
    conn: &Connection,
    activity: &Value,
    inboxes: &[String],
) -> Result<usize, DeliveryError> {
    enqueue_at(conn, activity, inboxes, SystemTime::now())
}

/// [`enqueue`] at a given time (tests drive the clock).
pub fn enqueue_at(
    conn: &Connection,
    activity: &Value,
    inboxes: &[String],
    now: SystemTime,
) -> Result<usize, DeliveryError> {
    let id = activity
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(DeliveryError::MissingActivityId)?;
    let kind = activity.get("type").and_then(Value::as_str).unwrap_or("");
    // Parse every inbox before writing anything: one bad URL queues nothing.
    let mut targets: Vec<(String, String)> = Vec::with_capacity(inboxes.len());
    for inbox in inboxes {
        let invalid = |reason: String| DeliveryError::InvalidInbox {
            inbox: inbox.chars().take(200).collect(),
            reason,
        };
        let url = url::Url::parse(inbox).map_err(|e| invalid(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("not an http(s) URL".into()));
        }
        let server = server_of(&url).ok_or_else(|| invalid("no host".into()))?;
        let normal = url.to_string();
        if !targets.iter().any(|(u, _)| *u == normal) {
            targets.push((normal, server));
        }
    }
    // No recipient, nothing to keep: a site without followers would otherwise store every
    // activity it ever made (40 MB for a 10,000-post first publish).
    if targets.is_empty() {
        return Ok(0);
    }
    let now_ms = unix_ms(now);
    let expires_ms = now_ms.saturating_add(MAX_AGE.as_millis() as i64);
    conn.execute_batch("SAVEPOINT delivery_enqueue")?;
    let result = (|| -> Result<usize, DeliveryError> {
        conn.prepare_cached(
            "INSERT INTO outgoing_activities (id, activity_type, body, created_ms)
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (id) DO NOTHING",
        )?
        .execute(params![id, kind, activity.to_string(), now_ms])?;
        let mut insert = conn.prepare_cached(
            "INSERT INTO deliveries (activity_id, inbox, host, state, created_ms, next_attempt_ms,
                                     expires_ms)
             VALUES (?1, ?2, ?3, 'pending', ?4, ?4, ?5)
             ON CONFLICT (activity_id, inbox) DO NOTHING",
        )?;
        let mut added = 0;
        for (inbox, server) in &targets {
            added += insert.execute(params![id, inbox, server, now_ms, expires_ms])?;
        }
        Ok(added)
    })();
    match result {
        Ok(added) => {
            conn.execute_batch("RELEASE delivery_enqueue")?;
            // Inside the caller's transaction the rows are not visible yet: the caller wakes
            // the workers after its commit.
            if added > 0 && conn.is_autocommit() {
                super::wake_workers();
            }
            Ok(added)
        }
        Err(e) => {
            // Undo this call's writes only; the caller's transaction (if any) stays usable.
            let _ = conn.execute_batch("ROLLBACK TO delivery_enqueue; RELEASE delivery_enqueue");
            Err(e)
        }
    }
}

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

/// Leases up to `limits.want` due deliveries to `owner`, oldest first, taking turns between
/// servers so one big server cannot starve the rest. `in_flight` counts this owner's requests
/// per server. Paused servers are skipped; a server past its pause but still failing gets one
/// request at a time (the probe).
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
    // The oldest due rows first (an index range, not every pending row): a fan-out interleaves
    // servers, so they hold every server's next turns. When they give nothing to send (one busy
    // server's backlog is all that is oldest), every due row is read: another server waits at
    // most one claim behind a backlog, never until it drains.
    let window = (limits.want * 8).max(256);
    let (found, scanned) = candidates(&tx, now_ms, limits, window as i64)?;
    let mut chosen = choose(&found, limits, in_flight);
    if chosen.is_empty() && scanned == window {
        chosen = choose(&candidates(&tx, now_ms, limits, -1)?.0, limits, in_flight);
    }
    let lease_until = now_ms.saturating_add(limits.lease.as_millis() as i64);
    let claimed = lease(&tx, &chosen, owner, lease_until)?;
    tx.commit()?;
    Ok(claimed)
}

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

/// Up to `limits.want * 4` due rows `(id, host, failures)` among the `window` oldest (`-1`: all),
/// in turns: every server's oldest first, then every server's second… Paused servers are left
/// out. Also returns how many rows were read.
fn candidates(
    tx: &Connection,
    now_ms: i64,
    limits: ClaimLimits,
    window: i64,
) -> Result<(Vec<Candidate>, usize), DeliveryError> {
    let mut stmt = tx.prepare_cached(
        "SELECT d.id, d.host, COALESCE(s.consecutive_failures, 0),
                COALESCE(s.paused_until_ms > ?1, 0)
         FROM (SELECT id, host, next_attempt_ms FROM deliveries
               WHERE state = 'pending' AND next_attempt_ms <= ?1
                 AND (lease_until_ms IS NULL OR lease_until_ms <= ?1)
                 -- A paused server's backlog must not fill the window (a down server with
                 -- thousands due would send every claim to the read of the whole queue).
                 AND host NOT IN (SELECT host FROM delivery_servers WHERE paused_until_ms > ?1)
               ORDER BY next_attempt_ms, id LIMIT ?2) d
         LEFT JOIN delivery_servers s ON s.host = d.host
         ORDER BY d.next_attempt_ms, d.id",
    )?;
    let mut rows = stmt.query(params![now_ms, window])?;
    let mut turns: HashMap<String, usize> = HashMap::new();
    let mut found: Vec<(usize, usize, i64, String, u32)> = Vec::new();
    let mut scanned = 0;
    while let Some(r) = rows.next()? {
        let (id, host): (i64, String) = (r.get(0)?, r.get(1)?);
        let failures = r.get::<_, i64>(2)?.max(0) as u32;
        let paused: bool = r.get(3)?;
        let turn = turns.entry(host.clone()).or_default();
        *turn += 1;
        if *turn <= limits.per_server && !paused {
            found.push((*turn, scanned, id, host, failures));
        }
        scanned += 1;
    }
    found.sort_by_key(|(turn, order, ..)| (*turn, *order));
    found.truncate(limits.want * 4);
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
        .prepare_cached(
            "UPDATE deliveries SET lease_owner = ?2, lease_until_ms = ?3
             WHERE id IN (SELECT value FROM json_each(?1)) AND state = 'pending'
             RETURNING id, activity_id, inbox, host, attempts",
        )?
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
    let mut bodies: HashMap<String, std::sync::Arc<str>> = HashMap::new();
    {
        let mut body = tx.prepare_cached("SELECT body FROM outgoing_activities WHERE id = ?1")?;
        for (_, activity_id, ..) in &rows {
            if !bodies.contains_key(activity_id) {
                let text: Option<String> =
                    body.query_row([activity_id], |r| r.get(0)).optional()?;
                bodies.insert(activity_id.clone(), text.unwrap_or_default().into());
            }
        }
    }
    let holder: std::sync::Arc<str> = owner.into();
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

/// Gives back this owner's leases (graceful shutdown): the rows are due again at once.
pub fn release(conn: &Connection, owner: &str) -> Result<usize, DeliveryError> {
    Ok(conn.execute(
        "UPDATE deliveries SET lease_owner = NULL, lease_until_ms = NULL
         WHERE lease_owner = ?1 AND state = 'pending'",
        [owner],
    )?)
}

/// At start-up, with the site's worker lock held: every other owner's lease belongs to a worker
/// pool that died (kill -9, power cut), so its deliveries are due again now.
pub fn recover_leases(conn: &Connection, owner: &str) -> Result<usize, DeliveryError> {
    Ok(conn.execute(
        "UPDATE deliveries SET lease_owner = NULL, lease_until_ms = NULL
         WHERE lease_owner IS NOT NULL AND lease_owner != ?1 AND state = 'pending'",
        [owner],
    )?)
}

/// When the next pending delivery becomes due (Unix ms), if any: lets an idle worker sleep
/// exactly as long as it needs to.
pub fn next_due_ms(conn: &Connection) -> Result<Option<i64>, DeliveryError> {
    Ok(conn.query_row(
        "SELECT MIN(MAX(d.next_attempt_ms, COALESCE(d.lease_until_ms, 0), COALESCE(s.paused_until_ms, 0)))
         FROM deliveries d LEFT JOIN delivery_servers s ON s.host = d.host
         WHERE d.state = 'pending'",
        [],
        |r| r.get(0),
    )?)
}

/// Forgets finished deliveries after `keep` (their attempts go with them) and activities that
/// have none left. Followers' servers deduplicate by activity id for far less long.
pub fn prune(conn: &Connection, now: SystemTime, keep: Duration) -> Result<usize, DeliveryError> {
    let before = unix_ms(now).saturating_sub(keep.as_millis() as i64);
    let n = conn.execute(
        "DELETE FROM deliveries WHERE state IN ('done', 'failed') AND finished_ms < ?1",
        [before],
    )?;
    conn.execute(
        "DELETE FROM outgoing_activities WHERE created_ms < ?1
           AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.activity_id = outgoing_activities.id)",
        [before],
    )?;
    Ok(n)
}

/// Makes every pending or failed delivery to `server` due now, with a fresh three days, and
/// closes its circuit: `hortus queue retry SERVER`. `server` is `host`, `host:port` or a URL.
pub fn retry_server(
    conn: &Connection,
    server: &str,
    now: SystemTime,
) -> Result<usize, DeliveryError> {
    let host = normalise_server(server);
    let now_ms = unix_ms(now);
    let expires = now_ms.saturating_add(MAX_AGE.as_millis() as i64);
    let n = conn.execute(
        "UPDATE deliveries SET state = 'pending', next_attempt_ms = ?2, finished_ms = NULL,
             expires_ms = MAX(expires_ms, ?3)
         WHERE host = ?1 AND state IN ('pending', 'failed')",
        params![host, now_ms, expires],
    )?;
    conn.execute(
        "UPDATE delivery_servers SET consecutive_failures = 0, paused_until_ms = NULL WHERE host = ?1",
        [&host],
    )?;
    if n > 0 {
        super::wake_workers();
    }
    Ok(n)
}

/// `example.net`, `Example.NET:8443` or `https://example.net/inbox` → the form stored in
/// `deliveries.host`.
pub fn normalise_server(server: &str) -> String {
    let s = server.trim();
    if let Ok(url) = url::Url::parse(s)
        && let Some(host) = server_of(&url)
        && s.contains("://")
    {
        return host;
    }
    s.trim_end_matches('/').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::schedule::{Backoff, Verdict};
    use serde_json::json;

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn enqueue_is_idempotent_per_activity_and_inbox() {
        let conn = crate::db::open_in_memory().unwrap();
        let a = json!({"id": "https://me.example/a#accept", "type": "Accept"});
        let inboxes = vec![
            "https://one.example/inbox".to_string(),
            "https://ONE.example/inbox".to_string(),
            "https://two.example:8443/users/b/inbox".to_string(),
        ];
        assert_eq!(enqueue(&conn, &a, &inboxes).unwrap(), 2);
        assert_eq!(enqueue(&conn, &a, &inboxes).unwrap(), 0);
        assert_eq!(
            enqueue(&conn, &a, &["https://three.example/inbox".into()]).unwrap(),
            1
        );
        assert_eq!(count(&conn, "SELECT COUNT(*) FROM outgoing_activities"), 1);
        let hosts: Vec<String> = conn
            .prepare("SELECT host FROM deliveries ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(hosts, ["one.example", "two.example:8443", "three.example"]);
    }

    #[test]
    fn an_activity_without_recipients_is_not_stored() {
        let conn = crate::db::open_in_memory().unwrap();
        let a = json!({"id": "https://me.example/p/1#create", "type": "Create"});
        assert_eq!(enqueue(&conn, &a, &[]).unwrap(), 0);
        assert_eq!(count(&conn, "SELECT COUNT(*) FROM outgoing_activities"), 0);
    }

    #[test]
    fn enqueue_refuses_bad_input_and_writes_nothing() {
        let conn = crate::db::open_in_memory().unwrap();
        let no_id = json!({"type": "Accept"});
        assert!(matches!(
            enqueue(&conn, &no_id, &[]),
            Err(DeliveryError::MissingActivityId)
        ));
        let a = json!({"id": "https://me.example/x", "type": "Create"});
        let bad = vec!["https://ok.example/inbox".into(), "ftp://x/inbox".into()];
        assert!(matches!(
            enqueue(&conn, &a, &bad),
            Err(DeliveryError::InvalidInbox { .. })
        ));
        assert_eq!(count(&conn, "SELECT COUNT(*) FROM deliveries"), 0);
        assert_eq!(count(&conn, "SELECT COUNT(*) FROM outgoing_activities"), 0);
    }

    #[test]
    fn enqueue_works_inside_a_callers_transaction() {
        let mut conn = crate::db::open_in_memory().unwrap();
        let tx = conn.transaction().unwrap();
        let a = json!({"id": "https://me.example/y", "type": "Reject"});
        assert_eq!(
            enqueue(&tx, &a, &["https://one.example/inbox".into()]).unwrap(),
            1
        );
        tx.rollback().unwrap();
        assert_eq!(count(&conn, "SELECT COUNT(*) FROM deliveries"), 0);
    }

    fn limits(want: usize) -> ClaimLimits {
        ClaimLimits {
            want,
            per_server: 2,
            breaker_threshold: 5,
            lease: Duration::from_secs(60),
        }
    }

    fn queue_five(conn: &Connection, now: SystemTime) {
        for i in 0..5 {
            let a = json!({"id": format!("https://me.example/a{i}"), "type": "Create"});
            let inboxes = vec![
                "https://big.example/inbox".to_string(),
                format!("https://small{i}.example/inbox"),
            ];
            enqueue_at(conn, &a, &inboxes, now).unwrap();
        }
    }

    #[test]
    fn claims_respect_global_and_per_server_limits_and_take_turns() {
        let mut conn = crate::db::open_in_memory().unwrap();
        let now = SystemTime::now();
        queue_five(&conn, now);
        // Turns: every server's oldest first, so six servers share six slots.
        let got = claim(&mut conn, "w1", now, limits(6), &HashMap::new()).unwrap();
        assert_eq!(got.iter().filter(|c| c.host == "big.example").count(), 1);
        release(&conn, "w1").unwrap();
        // With room to spare, big.example still gets no more than its two.
        let got = claim(&mut conn, "w1", now, limits(20), &HashMap::new()).unwrap();
        assert_eq!(got.len(), 7);
        assert_eq!(got.iter().filter(|c| c.host == "big.example").count(), 2);
        release(&conn, "w1").unwrap();
        // Already two in flight to big.example: none of its rows this time.
        let busy = HashMap::from([("big.example".to_string(), 2)]);
        let more = claim(&mut conn, "w1", now, limits(10), &busy).unwrap();
        assert_eq!(more.len(), 5, "{more:?}");
        assert!(more.iter().all(|c| c.host != "big.example"));
        assert!(!more[0].body.is_empty());
    }

    #[test]
    fn a_lease_hides_a_row_until_it_expires_or_is_recovered() {
        let mut conn = crate::db::open_in_memory().unwrap();
        let now = SystemTime::now();
        let a = json!({"id": "https://me.example/a", "type": "Create"});
        enqueue_at(&conn, &a, &["https://x.example/inbox".into()], now).unwrap();
        assert_eq!(
            claim(&mut conn, "dead", now, limits(9), &HashMap::new())
                .unwrap()
                .len(),
            1
        );
        assert!(
            claim(&mut conn, "w2", now, limits(9), &HashMap::new())
                .unwrap()
                .is_empty()
        );
        let later = now + Duration::from_secs(61);
        assert_eq!(
            claim(&mut conn, "w2", later, limits(9), &HashMap::new())
                .unwrap()
                .len(),
            1
        );
        // Or at once, when a new pool holding the site lock recovers foreign leases.
        assert_eq!(recover_leases(&conn, "w3").unwrap(), 1);
        assert_eq!(
            claim(&mut conn, "w3", now, limits(9), &HashMap::new())
                .unwrap()
                .len(),
            1
        );
        assert_eq!(release(&conn, "w3").unwrap(), 1);
    }

    #[test]
    fn a_delivery_is_given_up_after_its_three_days() {
        let mut conn = crate::db::open_in_memory().unwrap();
        let start = SystemTime::now();
        let a = json!({"id": "https://me.example/a", "type": "Create"});
        enqueue_at(&conn, &a, &["https://x.example/inbox".into()], start).unwrap();
        let backoff = Backoff {
            breaker_threshold: 1000,
            ..Backoff::default()
        };
        let mut now = start;
        let mut attempts = 0;
        loop {
            let got = claim(&mut conn, "w", now, limits(1), &HashMap::new()).unwrap();
            let Some(d) = got.first() else {
                now += Duration::from_secs(60);
                assert!(
                    now < start + MAX_AGE + Duration::from_secs(3600),
                    "never gave up"
                );
                continue;
            };
            attempts += 1;
            let result = AttemptResult {
                verdict: Verdict::Retry { retry_after: None },
                status: Some(503),
                error: Some("HTTP 503".into()),
                started: now,
                duration: Duration::ZERO,
            };
            match record(&mut conn, d, &result, now, &backoff).unwrap() {
                Recorded::Retrying(at) => assert!(at <= unix_ms(start + MAX_AGE)),
                Recorded::Failed => break,
                other => panic!("{other:?}"),
            }
        }
        assert!((15..=22).contains(&attempts), "{attempts}");
        assert!(now >= start + MAX_AGE);
        let (state, error): (String, String) = conn
            .query_row("SELECT state, last_error FROM deliveries", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(state, "failed");
        assert!(error.starts_with("gave up after"), "{error}");
    }
}
