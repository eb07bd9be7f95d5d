//! Issue 9.6: every lookup an inbox POST makes, and the lookup made per mention, must use an
//! index. Each statement below is the one the code runs (its shared constant where the code
//! has one), planned with `EXPLAIN QUERY PLAN` on the full schema; a `SCAN` of a table (or a
//! whole index) fails the test. `cargo test --lib query_plans -- --nocapture` prints the plans.

use crate::db::query_plan as plan;

use crate::conversation::store;

/// `(what, sql)` for every statement on the inbox path that reads or writes by a key.
fn inbox_path() -> Vec<(&'static str, &'static str)> {
    vec![
        // Dedupe, before any effect; and the retry path and hourly prune.
        ("a blocked account", crate::graph::accounts::IS_BLOCKED),
        ("mark an activity seen", super::MARK_SEEN),
        ("forget a failed activity", super::FORGET_SEEN),
        ("prune old activity ids", super::PRUNE_SEEN),
        // The signer: cached actors by id and by key id (activitypub/fetch.rs `cached_actor`,
        // `cached_by_key`; the key id's unique index is migration 08).
        (
            "cached actor by id",
            "SELECT id FROM remote_actors WHERE id = ?1",
        ),
        (
            "cached actor by key id",
            "SELECT id FROM remote_actors WHERE public_key_id = ?1",
        ),
        // Follow / Undo / Accept / Reject / Delete of an actor (inbox/effects.rs, SQL in graph/).
        ("follower state", crate::graph::followers::STATE_OF),
        (
            "remove a follower's Follow",
            crate::graph::followers::REMOVE_FOLLOW,
        ),
        ("answer to our Follow", crate::graph::following::SET_STATE),
        // Replies, mentions, quotes, edits and deletes (conversation/store.rs).
        ("what is stored of a post", store::EXISTING_NOTE),
        (
            "the post a reply answers, by id or url (its thread, its author)",
            store::REMOTE_NOTE_NAMED,
        ),
        (
            "earlier replies join a thread",
            store::ADOPT_EARLIER_REPLIES,
        ),
        ("a deleted actor's posts", store::FORGET_ACTOR_NOTES),
        (
            "a deleted post",
            "UPDATE remote_notes SET deleted_at = ?3 WHERE id = ?1 AND actor_id = ?2 AND deleted_at IS NULL",
        ),
        (
            "our post a reply names",
            "SELECT id FROM posts WHERE slug = ?1",
        ),
        // Likes and boosts, and their Undo.
        (
            "undo a reaction by its activity",
            "DELETE FROM reactions WHERE activity_id = ?1 AND actor_id = ?2",
        ),
        (
            "undo a reaction by what it was",
            "DELETE FROM reactions WHERE kind = ?1 AND actor_id = ?2 AND post_id = ?3",
        ),
        (
            "a deleted actor's reactions",
            "DELETE FROM reactions WHERE actor_id = ?1",
        ),
        // Who a reply of ours answers (conversation/replying.rs), and mentions by handle, the
        // form `posts::resolve_mentions` and the delivery fan-out use (index remote_actors_handle).
        (
            "a mention by handle",
            "SELECT id FROM remote_actors WHERE lower(handle) = lower(?1) ORDER BY fetched_at DESC LIMIT 1",
        ),
        // The home timeline (timeline/receive.rs, SQL in timeline/store.rs and graph/).
        (
            "is the sender followed",
            crate::graph::following::IS_ACCEPTED,
        ),
        ("a timeline post", crate::timeline::store::ADD_POST),
        ("a timeline boost", crate::timeline::store::ADD_BOOST),
        (
            "undo a timeline boost",
            crate::timeline::store::REMOVE_BOOST,
        ),
        // A refused server's knock (federation/knocks.rs).
        (
            "record a knock",
            "INSERT INTO knocks (host, actor, activity_type, count, first_seen, last_seen)
             VALUES (?1, ?2, ?3, 1, ?4, ?4)
             ON CONFLICT (host, actor, activity_type) DO UPDATE SET count = count + 1",
        ),
    ]
}

/// Whether a plan line reads more than the rows a key names.
fn not_by_key(line: &str, range_allowed: bool) -> bool {
    line.starts_with("SCAN")
        || (line.starts_with("SEARCH")
            && !range_allowed
            && !line.contains("=?)")
            && !line.contains("=? AND"))
}

#[test]
fn every_inbox_lookup_uses_an_index() {
    let conn = crate::db::open_in_memory().unwrap();
    let mut scans = Vec::new();
    for (what, sql) in inbox_path() {
        let lines = plan(&conn, sql);
        println!("{what}:");
        for line in &lines {
            println!("    {line}");
        }
        // A statement with no lookup at all (a plain INSERT) has no plan lines; anything
        // that looks up must SEARCH by key (an `=` on the index), never SCAN, nor walk a
        // range of an index (which can be most of a table) unless the lookup is a range.
        let by_range = what == "prune old activity ids";
        scans.extend(
            lines
                .iter()
                .filter(|l| not_by_key(l, by_range))
                .map(|l| format!("{what}: {l}")),
        );
    }
    assert!(scans.is_empty(), "full scans on the inbox path: {scans:#?}");
}

/// The test above would notice a missing index: without migration 09's indexes, the url half
/// of a reply's parent lookup walks every threaded reply, and the mention by handle and a
/// deleted actor's reactions read whole tables.
#[test]
fn the_plans_fail_without_the_indexes() {
    let conn = crate::db::open_in_memory().unwrap();
    conn.execute_batch(
        "DROP INDEX remote_notes_url; DROP INDEX remote_actors_handle; DROP INDEX reactions_actor;",
    )
    .unwrap();
    for sql in [
        "DELETE FROM reactions WHERE actor_id = ?1",
        store::REMOTE_NOTE_NAMED,
        "SELECT id FROM remote_actors WHERE lower(handle) = lower(?1) ORDER BY fetched_at DESC LIMIT 1",
    ] {
        let lines = plan(&conn, sql);
        assert!(
            lines.iter().any(|l| not_by_key(l, false)),
            "{sql}: {lines:?}"
        );
    }
}
