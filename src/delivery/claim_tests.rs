//! The claim's statements read bounded index ranges (query plans), and a claim's work does not
//! grow with what is pending (counted in SQLite VM steps, which the machine's load cannot move).

use super::*;
use crate::db::query_plan as plan;
use crate::delivery::queue::{AttemptResult, Recorded};
use crate::delivery::queue::{enqueue_at, record_batch};
use crate::delivery::schedule::{Backoff, Verdict};
use std::sync::atomic::{AtomicU64, Ordering};

/// Every statement a claim runs reads `deliveries` through an index (the due index for the
/// time-ordered ones, without sorting them), and the other tables by key; the only scans are
/// of the JSON arrays it passes and of its own subquery's rows.
#[test]
fn query_plans() {
    let conn = crate::db::open_in_memory().unwrap();
    for (what, sql, due) in [
        ("anything due", ANY_DUE, true),
        ("the oldest due rows", CANDIDATES, true),
        ("lease a batch", LEASE, false),
        ("an activity's body", BODY, false),
    ] {
        let lines = plan(&conn, sql);
        println!("{what}:\n    {}", lines.join("\n    "));
        for line in &lines {
            let scan = line.starts_with("SCAN")
                && !line.contains("json_each")
                && line != "SCAN d"
                && !line.starts_with("SCAN CONSTANT");
            assert!(!scan, "{what}: {line}\n{lines:#?}");
        }
        if due {
            assert!(
                lines
                    .iter()
                    .any(|l| l.contains("USING INDEX deliveries_due (next_attempt_ms<?)")),
                "{what}: {lines:#?}"
            );
        }
    }
    // The window is read in the index's order: only the few rows it keeps are sorted again
    // after the join, never the range before its LIMIT.
    let lines = plan(&conn, CANDIDATES);
    let sorts = lines.iter().filter(|l| l.contains("TEMP B-TREE")).count();
    assert!(sorts <= 1, "{lines:#?}");
}

fn limits(want: usize) -> ClaimLimits {
    ClaimLimits {
        want,
        per_server: 4,
        breaker_threshold: 5,
        lease: Duration::from_secs(60),
    }
}

/// One post to `followers` followers on 32 servers, queued as `publish` queues it (inboxes
/// sorted, so grouped by server).
fn fan_out(conn: &Connection, followers: usize, now: SystemTime) {
    let mut inboxes: Vec<String> = (0..followers)
        .map(|i| format!("https://s{}.example/users/読者{i}/inbox", i % 32))
        .collect();
    inboxes.sort();
    let a = serde_json::json!({"id": "https://me.example/p/庭#create", "type": "Create",
                               "content": "حديقة 🌱"});
    enqueue_at(conn, &a, &inboxes, now).unwrap();
}

/// VM instructions (in hundreds) SQLite runs for `f` on `conn`.
fn steps<T>(conn: &mut Connection, f: impl FnOnce(&mut Connection) -> T) -> (u64, T) {
    let count = std::sync::Arc::new(AtomicU64::new(0));
    let counter = count.clone();
    conn.progress_handler(
        100,
        Some(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            false
        }),
    )
    .unwrap();
    let out = f(conn);
    conn.progress_handler(0, None::<fn() -> bool>).unwrap();
    (count.load(Ordering::Relaxed), out)
}

/// The middle of a fan-out: 128 in flight, 32 of them just recorded done, a claim for 32 more.
/// Its SQLite work with 8,000 pending is that with 1,000 (it was 8 times more: every claim read
/// the whole queue), and so is the check that anything is due.
#[test]
fn a_claims_work_does_not_grow_with_the_queue() {
    let mut work = Vec::new();
    for followers in [1_000, 8_000] {
        let mut conn = crate::db::open_in_memory().unwrap();
        let now = SystemTime::now();
        fan_out(&conn, followers, now);
        let first = claim(&mut conn, "pool", now, limits(128), &HashMap::new()).unwrap();
        assert_eq!(first.len(), 128, "every server's four");
        let ok = AttemptResult {
            verdict: Verdict::Delivered,
            status: Some(202),
            error: None,
            started: now,
            duration: Duration::ZERO,
        };
        // Claimed in turns: the first 32 are every server's first.
        let done: Vec<_> = first[..32].iter().map(|c| (c, &ok, now)).collect();
        assert_eq!(
            record_batch(&mut conn, &done, &Backoff::default()).unwrap(),
            vec![Recorded::Done; 32]
        );
        let mut in_flight: HashMap<String, usize> = HashMap::new();
        for c in &first[32..] {
            *in_flight.entry(c.host.clone()).or_default() += 1;
        }
        assert_eq!(in_flight.len(), 32);
        let (due_steps, due) = steps(&mut conn, |c| any_due(c, now).unwrap());
        assert!(due);
        let (claim_steps, next) = steps(&mut conn, |c| {
            claim(c, "pool", now, limits(32), &in_flight).unwrap()
        });
        assert_eq!(next.len(), 32, "one for each server");
        let servers: HashSet<&str> = next.iter().map(|c| c.host.as_str()).collect();
        assert_eq!(servers.len(), 32);
        work.push((followers, due_steps, claim_steps));
    }
    println!("(pending, any_due, claim) in hundreds of VM steps: {work:?}");
    let (_, due_small, claim_small) = work[0];
    let (_, due_big, claim_big) = work[1];
    assert!(due_big <= due_small + 2, "{work:?}");
    assert!(claim_big * 10 <= claim_small * 13, "{work:?}");
}

/// A fan-out is queued in turns between servers: the oldest rows hold every server's first
/// delivery, then every server's second, each server's own in the given order.
#[test]
fn a_fan_out_is_queued_in_turns_between_servers() {
    let conn = crate::db::open_in_memory().unwrap();
    let now = SystemTime::now();
    let a = serde_json::json!({"id": "https://me.example/p/1#create", "type": "Create"});
    let inboxes: Vec<String> = [
        "https://a.example/users/ä1/inbox",
        "https://a.example/users/ä2/inbox",
        "https://a.example/users/ä3/inbox",
        "https://b.example/users/بـ1/inbox",
        "https://c.example/users/ç1/inbox",
        "https://c.example/users/ç2/inbox",
        "https://a.example/users/ä1/inbox",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(enqueue_at(&conn, &a, &inboxes, now).unwrap(), 6);
    let order: Vec<String> = conn
        .prepare("SELECT inbox FROM deliveries ORDER BY next_attempt_ms, id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let short: Vec<&str> = order
        .iter()
        .map(|u| u.split("/users/").nth(1).unwrap_or(""))
        .collect();
    assert_eq!(
        short,
        [
            "%C3%A41/inbox",
            "%D8%A8%D9%801/inbox",
            "%C3%A71/inbox",
            "%C3%A42/inbox",
            "%C3%A72/inbox",
            "%C3%A43/inbox"
        ]
    );
}

/// Two servers' backlogs fill several windows and both are at their limit; the claim leaves them
/// out and reads on until it finds the server behind them.
#[test]
fn a_claim_reads_past_backlogs_of_busy_servers() {
    let mut conn = crate::db::open_in_memory().unwrap();
    let t0 = SystemTime::now();
    for (n, server) in [(600, "big"), (600, "huge")] {
        let inboxes: Vec<String> = (0..n)
            .map(|i| format!("https://{server}.example/users/u{i}/inbox"))
            .collect();
        let a = serde_json::json!({"id": format!("https://me.example/p/{server}#create"),
                                   "type": "Create"});
        enqueue_at(&conn, &a, &inboxes, t0).unwrap();
    }
    let later = t0 + Duration::from_millis(5);
    let a = serde_json::json!({"id": "https://me.example/p/small#create", "type": "Create"});
    enqueue_at(&conn, &a, &["https://small.example/inbox".into()], later).unwrap();
    let busy = HashMap::from([
        ("big.example".to_string(), 4),
        ("huge.example".to_string(), 4),
    ]);
    let got = claim(&mut conn, "w", later, limits(2), &busy).unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].host, "small.example");
    // Nothing else anywhere: the rounds end with nothing, and lease nothing.
    let busy = HashMap::from([
        ("big.example".to_string(), 4),
        ("huge.example".to_string(), 4),
        ("small.example".to_string(), 4),
    ]);
    assert!(
        claim(&mut conn, "w", later, limits(2), &busy)
            .unwrap()
            .is_empty()
    );
}

/// Servers at their limit with older rows do not hide a free server's row from a small claim:
/// four busy servers each with an older due row, one idle server with a newer one, `want = 1`.
#[test]
fn a_free_server_behind_busy_ones_is_claimed_by_a_small_claim() {
    let mut conn = crate::db::open_in_memory().unwrap();
    let t0 = SystemTime::now();
    let mut busy = HashMap::new();
    for (i, server) in ["a", "b", "c", "d"].into_iter().enumerate() {
        let a = serde_json::json!({"id": format!("https://me.example/p/{server}#create"),
                                   "type": "Create"});
        let at = t0 + Duration::from_millis(i as u64);
        let inbox = format!("https://{server}.example/users/読者_قارئ_🌱/inbox");
        enqueue_at(&conn, &a, &[inbox], at).unwrap();
        busy.insert(format!("{server}.example"), 4);
    }
    let later = t0 + Duration::from_millis(10);
    let a = serde_json::json!({"id": "https://me.example/p/e#create", "type": "Create"});
    let inbox = "https://e.example/users/e\u{301}crivain/inbox".to_string();
    enqueue_at(&conn, &a, &[inbox], later).unwrap();
    let got = claim(&mut conn, "w", later, limits(1), &busy).unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].host, "e.example");
}

/// Claims of every size, one after another while what earlier ones took is still in flight (or
/// answered and waiting for the recorder), take every due row exactly once, never more than a
/// server's limit at once: the claim's small window (`2 × want`) hides no row and hands none out
/// twice.
#[test]
fn successive_claims_take_every_due_row_exactly_once() {
    let mut conn = crate::db::open_in_memory().unwrap();
    let now = SystemTime::now();
    fan_out(&conn, 700, now);
    let ok = AttemptResult {
        verdict: Verdict::Delivered,
        status: Some(202),
        error: None,
        started: now,
        duration: Duration::ZERO,
    };
    let mut taken: HashSet<i64> = HashSet::new();
    // On the wire (counted against each server), then answered and waiting for the recorder.
    let mut sending: Vec<Claimed> = Vec::new();
    let mut answered: Vec<Claimed> = Vec::new();
    let sizes = [1, 7, 32, 3, 64, 128, 2];
    for round in 0.. {
        assert!(round < 10_000, "the claims never ended");
        let mut in_flight: HashMap<String, usize> = HashMap::new();
        for c in &sending {
            *in_flight.entry(c.host.clone()).or_default() += 1;
        }
        let want = sizes[round % sizes.len()];
        let got = claim(&mut conn, "pool", now, limits(want), &in_flight).unwrap();
        assert!(got.len() <= want);
        for c in &got {
            assert!(taken.insert(c.id), "row {} claimed twice", c.id);
            *in_flight.entry(c.host.clone()).or_default() += 1;
        }
        assert!(in_flight.values().all(|n| *n <= 4), "{in_flight:?}");
        sending.extend(got);
        if sending.is_empty() && answered.is_empty() {
            break;
        }
        // Every other round, the older half on the wire is answered; every third, what was
        // answered is recorded (one batch, as the recorder does).
        if round % 2 == 0 {
            let half = sending.len().div_ceil(2);
            answered.extend(sending.drain(..half));
        }
        if round % 3 == 0 || sending.is_empty() {
            let batch: Vec<_> = answered.iter().map(|c| (c, &ok, now)).collect();
            let recorded = record_batch(&mut conn, &batch, &Backoff::default()).unwrap();
            assert!(
                recorded.iter().all(|r| *r == Recorded::Done),
                "{recorded:?}"
            );
            answered.clear();
        }
    }
    assert_eq!(taken.len(), 700);
    let pending: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM deliveries WHERE state != 'done'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(pending, 0);
}
