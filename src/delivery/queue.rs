//! The queue's SQL: plain functions over a `&Connection`, testable against `:memory:`.

use std::time::{Duration, SystemTime};

use rusqlite::{Connection, params};
use serde_json::Value;

use super::{DeliveryError, unix_ms};

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
/// the activity and its deliveries then commit together) or on its own. Running workers are
/// woken; a worker pool in another process finds the rows within its poll interval.
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
            if added > 0 {
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

#[cfg(test)]
mod tests {
    use super::*;
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
}
