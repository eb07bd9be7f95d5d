use super::*;
use crate::conversation::note::RemoteNote;
use crate::conversation::store::receive_note_kept;
use crate::urls::Urls;
use serde_json::json;

fn urls() -> Urls {
    Urls::new(&url::Url::parse("https://me.example").unwrap(), "alice")
}

/// A followed account's post, stored as the inbox stores it, with its timeline entry at `at`.
fn post(conn: &Connection, n: usize, text: &str, at: &str) -> String {
    let id = format!("https://m.example/notes/{n}");
    let raw = json!({
        "id": id, "type": "Note", "attributedTo": "https://m.example/users/bob",
        "to": ["as:Public"], "content": format!("<p>{text}</p>"),
        "published": "2026-01-01T00:00:00Z",
    });
    let note = RemoteNote::parse(&raw).unwrap();
    receive_note_kept(conn, &urls(), &note, &raw, "m.example", at, true).unwrap();
    assert!(add_post(conn, &id, at).unwrap());
    id
}

fn follow(conn: &Connection, actor: &str) {
    conn.execute(
        "INSERT INTO remote_actors (id, host, inbox, raw, fetched_at) VALUES (?1, 'm.example', ?1 || '/inbox', '{}', 'x')",
        [actor],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO following (actor_id, follow_id, state, created_at) VALUES (?1, ?1 || '#f', 'accepted', 'x')",
        [actor],
    )
    .unwrap();
}

fn rows(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn entries_are_idempotent_and_read_newest_first() {
    let conn = crate::db::open_in_memory().unwrap();
    follow(&conn, "https://m.example/users/bob");
    let a = post(&conn, 1, "静かな庭 🌱", "2026-01-01T00:00:00Z");
    let b = post(&conn, 2, "حديقة مغلقة", "2026-01-01T00:00:01Z");
    assert!(
        !add_post(&conn, &a, "2026-01-02T00:00:00Z").unwrap(),
        "once"
    );
    assert!(
        add_boost(
            &conn,
            "https://m.example/users/bob",
            "https://x.example/1",
            None,
            "https://m.example/a/1",
            "2026-01-01T00:00:02Z"
        )
        .unwrap()
    );
    assert!(
        !add_boost(
            &conn,
            "https://m.example/users/bob",
            "https://x.example/1",
            None,
            "https://m.example/a/2",
            "2026-01-01T00:00:03Z"
        )
        .unwrap()
    );
    let page1 = page(&conn, None, 2).unwrap();
    assert_eq!(page1.len(), 2);
    assert!(page1[0].refused && page1[0].post.is_none());
    assert_eq!(page1[1].object_id, b);
    assert_eq!(page1[1].post.as_ref().unwrap().text, "حديقة مغلقة");
    let older = page(&conn, Some(page1[1].id), 10).unwrap();
    assert_eq!(older.len(), 1);
    assert_eq!(older[0].object_id, a);
    // An account no longer followed leaves the timeline at once.
    conn.execute("UPDATE following SET state = 'rejected'", [])
        .unwrap();
    assert!(page(&conn, None, 10).unwrap().is_empty());
    conn.execute("UPDATE following SET state = 'accepted'", [])
        .unwrap();
    assert_eq!(page(&conn, None, 10).unwrap().len(), 3);
    // A blocked or muted author leaves the timeline.
    conn.execute(
        "INSERT INTO account_relations (actor_id, muted, updated_at) VALUES ('https://m.example/users/bob', 1, 'x')",
        [],
    )
    .unwrap();
    assert!(page(&conn, None, 10).unwrap().is_empty());
}

#[test]
fn pruning_bounds_storage_and_keeps_what_the_owner_acted_on() {
    let conn = crate::db::open_in_memory().unwrap();
    let mut ids = Vec::new();
    for n in 0..1200 {
        // Old entries, each with a post of some size: what a busy follow list leaves behind.
        ids.push(post(
            &conn,
            n,
            &"🌿 e\u{301} 庭 ".repeat(40),
            "2026-01-01T00:00:00Z",
        ));
    }
    for n in 1200..1210 {
        post(&conn, n, "fresh", "2026-03-01T00:00:00Z");
    }
    assert!(
        add_action(
            &conn,
            ActionKind::Like,
            &ids[0],
            "https://m.example/users/bob",
            Some(&json!({"type": "Like"})),
            "x"
        )
        .unwrap()
    );
    assert!(
        add_action(
            &conn,
            ActionKind::Bookmark,
            &ids[1],
            "https://m.example/users/bob",
            None,
            "x"
        )
        .unwrap()
    );
    let size = |c: &Connection| -> i64 {
        c.query_row(
            "SELECT COALESCE(SUM(length(raw) + length(content_html)), 0) FROM remote_notes",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let before = size(&conn);
    let mut total = Pruned::default();
    loop {
        let p = prune(&conn, "2026-02-01T00:00:00Z", 500).unwrap();
        total.entries += p.entries;
        total.posts += p.posts;
        if p.entries < 500 {
            break;
        }
    }
    assert_eq!(
        total,
        Pruned {
            entries: 1198,
            posts: 1198
        }
    );
    assert_eq!(
        rows(&conn, "timeline_entries"),
        12,
        "10 fresh + liked + bookmarked"
    );
    assert_eq!(rows(&conn, "remote_notes"), 12);
    assert!(
        size(&conn) * 50 < before,
        "storage shrank: {} -> {}",
        before,
        size(&conn)
    );
    // Once the owner takes the like back, the next prune lets that post go too.
    assert_eq!(
        take_action(&conn, ActionKind::Like, &ids[0]).unwrap(),
        Some(json!({"type": "Like"}))
    );
    assert_eq!(
        prune(&conn, "2026-02-01T00:00:00Z", 500).unwrap(),
        Pruned {
            entries: 1,
            posts: 1
        }
    );
    assert_eq!(take_action(&conn, ActionKind::Like, &ids[0]).unwrap(), None);
    // A post fetched for an action that was undone has no entry: it goes too.
    conn.execute("DELETE FROM timeline_entries WHERE note_id = ?1", [&ids[1]])
        .unwrap();
    take_action(&conn, ActionKind::Bookmark, &ids[1]).unwrap();
    assert_eq!(
        prune(&conn, "2026-02-01T00:00:00Z", 500).unwrap(),
        Pruned {
            entries: 0,
            posts: 1
        }
    );
    assert_eq!(rows(&conn, "remote_notes"), 10);
}

#[test]
fn a_post_that_concerns_the_owner_outlives_its_timeline_entry() {
    let conn = crate::db::open_in_memory().unwrap();
    let raw = json!({
        "id": "https://m.example/notes/m", "type": "Note", "attributedTo": "https://m.example/users/bob",
        "to": ["as:Public"], "cc": ["https://me.example/users/alice"], "content": "<p>hi @alice</p>",
        "tag": [{"type": "Mention", "href": "https://me.example/users/alice"}],
    });
    let note = RemoteNote::parse(&raw).unwrap();
    receive_note_kept(
        &conn,
        &urls(),
        &note,
        &raw,
        "m.example",
        "2026-01-01T00:00:00Z",
        true,
    )
    .unwrap();
    add_post(&conn, &note.id, "2026-01-01T00:00:00Z").unwrap();
    assert_eq!(
        prune(&conn, "2026-02-01T00:00:00Z", 10).unwrap(),
        Pruned {
            entries: 1,
            posts: 0
        }
    );
    assert_eq!(
        rows(&conn, "remote_notes"),
        1,
        "a mention stays in `hortus inbox`"
    );
}

#[test]
fn windows_walk_a_burst_oldest_first_without_skipping() {
    let conn = crate::db::open_in_memory().unwrap();
    follow(&conn, "https://m.example/users/bob");
    for n in 0..7 {
        post(&conn, n, &format!("波 {n} 🌊 موجة"), "2026-01-01T00:00:00Z");
    }
    let ids: Vec<i64> = page(&conn, None, 100)
        .unwrap()
        .iter()
        .rev()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids.len(), 7);
    // Windows of 3 after nothing, then after each window's end, cover every entry once.
    let mut seen = Vec::new();
    let mut after = 0;
    while let Some(end) = window_end(&conn, after, 3).unwrap() {
        let mut window: Vec<i64> = page(&conn, Some(end + 1), 100)
            .unwrap()
            .iter()
            .map(|e| e.id)
            .filter(|id| *id > after)
            .collect();
        assert_eq!(window.len(), 3);
        window.reverse();
        seen.extend(window);
        after = end;
    }
    seen.extend(
        page(&conn, None, 100)
            .unwrap()
            .iter()
            .rev()
            .map(|e| e.id)
            .filter(|id| *id > after),
    );
    assert_eq!(seen, ids);
    assert_eq!(window_end(&conn, ids[6], 1).unwrap(), None);
}
