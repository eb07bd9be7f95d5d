//! The queue's SQL: plain functions over a `&Connection`, testable against `:memory:`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, params};
use serde_json::Value;

use super::DeliveryError;
use super::schedule::unix_ms;

// Recording an attempt and the queue's status have their own files; their items keep their
// `queue::` paths (the worker, `hortus queue` and the tests use them).
pub use super::attempts::{AttemptResult, Claimed, Recorded, record, record_batch};
pub use super::claim::{ClaimLimits, any_due, claim};
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
    let mut seen: HashSet<String> = HashSet::with_capacity(inboxes.len());
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
        if seen.insert(normal.clone()) {
            targets.push((normal, server));
        }
    }
    in_turns(&mut targets);
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

/// Orders a fan-out's deliveries in turns between servers (each server's first, then each
/// one's second…), keeping the given order within a server and between servers: rows are
/// claimed oldest first, so a claim's window of the oldest rows then holds every server's next
/// turns. Followers come sorted by inbox, that is grouped by server; in that order the window
/// held one or two servers, both at their limit, and every claim read the whole queue.
fn in_turns(targets: &mut [(String, String)]) {
    let mut servers: HashMap<&str, (usize, usize)> = HashMap::new();
    let mut keys = Vec::with_capacity(targets.len());
    for (_, server) in targets.iter() {
        let next = servers.len();
        let (rank, turns) = servers.entry(server).or_insert((next, 0));
        keys.push((*turns, *rank));
        *turns += 1;
    }
    let mut order: Vec<usize> = (0..targets.len()).collect();
    order.sort_by_key(|&i| keys[i]);
    let sorted: Vec<(String, String)> = order
        .into_iter()
        .map(|i| std::mem::take(&mut targets[i]))
        .collect();
    for (slot, target) in targets.iter_mut().zip(sorted) {
        *slot = target;
    }
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
