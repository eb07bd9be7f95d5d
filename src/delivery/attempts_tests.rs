//! Recording attempts: leases, acknowledged once, all or nothing, the circuit breaker.

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
        changes.push(update_server(&conn, host, &failure, Some("503"), 1_000, &backoff).unwrap());
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

/// A batch records exactly what the same attempts recorded one transaction each record: the
/// shortcut for a server that already answered in the batch (only `last_success_ms` moves,
/// written once, before the server's next change or at the end of the batch) gives the same
/// rows, through failures, a pause, its closing and the backlog brought forward.
#[test]
fn a_batch_records_what_one_attempt_at_a_time_records() {
    use crate::delivery::queue::{claim, enqueue_at};
    use std::collections::HashMap;
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let ok = attempt(Verdict::Delivered, Some(202));
    let down = attempt(Verdict::Retry { retry_after: None }, Some(503));
    let slow = attempt(
        Verdict::RateLimited {
            retry_after: Some(Duration::from_secs(30)),
        },
        Some(429),
    );
    let refused = attempt(Verdict::Rejected, None);
    let gone = attempt(Verdict::Gone, Some(410));
    let plan: Vec<(&AttemptResult, u64)> = [
        &ok, &ok, &down, &down, &down, &down, &down, &ok, &ok, &refused, &ok, &slow, &ok, &gone,
        &ok, &down, &ok, &ok,
    ]
    .into_iter()
    .zip(0..)
    .collect();
    let dumps: Vec<Vec<String>> = [true, false]
        .into_iter()
        .map(|batched| {
            let mut conn = crate::db::open_in_memory().unwrap();
            let inboxes: Vec<String> = (0..plan.len())
                .map(|i| format!("https://庭.example/users/u{i}/inbox"))
                .chain((0..3).map(|i| format!("https://other.example/users/ü{i}/inbox")))
                .collect();
            let a = serde_json::json!({"id": "https://me.example/p/🌱#create", "type": "Create"});
            enqueue_at(&conn, &a, &inboxes, t0).unwrap();
            let mut wide = limits(100);
            wide.per_server = 100;
            let got = claim(&mut conn, "pool", t0, wide, &HashMap::new()).unwrap();
            // In the order queued (the claim takes turns between the two servers).
            let mut got: Vec<&Claimed> = got.iter().filter(|c| c.host != "other.example").collect();
            got.sort_by_key(|c| c.id);
            assert_eq!(got.len(), plan.len());
            let items: Vec<_> = got
                .iter()
                .zip(&plan)
                .map(|(c, (r, ms))| (*c, *r, t0 + Duration::from_millis(*ms)))
                .collect();
            let backoff = Backoff::default();
            let outcomes = if batched {
                record_batch(&mut conn, &items, &backoff).unwrap()
            } else {
                items
                    .iter()
                    .map(|one| {
                        record_batch(&mut conn, std::slice::from_ref(one), &backoff).unwrap()[0]
                    })
                    .collect()
            };
            let mut dump: Vec<String> = outcomes.iter().map(|o| format!("{o:?}")).collect();
            for sql in [
                "SELECT host || consecutive_failures || COALESCE(paused_until_ms, '-') ||
                        COALESCE(last_error, '-') || COALESCE(last_failure_ms, '-') ||
                        COALESCE(last_success_ms, '-') FROM delivery_servers ORDER BY host",
                "SELECT id || state || attempts || COALESCE(last_status, '-') ||
                        COALESCE(last_error, '-') || next_attempt_ms || COALESCE(finished_ms, '-')
                        || COALESCE(lease_owner, '-') FROM deliveries ORDER BY id",
                "SELECT delivery_id || '/' || attempt || '/' || started_ms || '/' ||
                        COALESCE(status, '-') || COALESCE(error, '-')
                 FROM delivery_attempts ORDER BY delivery_id, attempt",
            ] {
                let mut stmt = conn.prepare(sql).unwrap();
                let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
                dump.extend(rows.map(Result::unwrap));
            }
            dump
        })
        .collect();
    assert!(
        dumps[0].iter().any(|l| l.contains("Retrying")),
        "{:#?}",
        dumps[0]
    );
    assert_eq!(dumps[0], dumps[1]);
}
