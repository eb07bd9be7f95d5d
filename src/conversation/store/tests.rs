use super::*;
use serde_json::json;

fn urls() -> Urls {
    Urls::new(&url::Url::parse("https://me.example").unwrap(), "alice")
}

fn setup() -> (Connection, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("content/posts")).unwrap();
    std::fs::write(dir.path().join("content/posts/hi.md"), "Hello").unwrap();
    let mut conn = crate::db::open_in_memory().unwrap();
    posts::publish(&mut conn, dir.path(), &urls()).unwrap();
    (conn, dir)
}

fn reply(id: &str, parent: &str, content: &str, updated: Option<&str>) -> (RemoteNote, Value) {
    let mut v = json!({
        "id": id, "type": "Note", "attributedTo": "https://m.example/users/bob",
        "inReplyTo": parent, "to": ["as:Public"], "content": content,
        "published": "2026-01-01T00:00:00Z",
    });
    if let Some(u) = updated {
        v["updated"] = json!(u);
    }
    (RemoteNote::parse(&v).unwrap(), v)
}

fn content(conn: &Connection, id: &str) -> (String, Option<String>, Option<i64>) {
    conn.query_row(
        "SELECT content_html, deleted_at, thread_post_id FROM remote_notes WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}

/// Issue 9.6: another connection (a second inbox request, or `hortus` beside the server)
/// stores a newer edit while an older one is being received. SQLite's authorizer runs the
/// other connection's write exactly between the first connection's read of what is stored
/// and its upsert (when the statement after that read is prepared), so the interleaving
/// is exact, not timed. The newer edit must win.
#[test]
fn a_newer_edit_racing_an_older_one_is_never_lost() {
    use rusqlite::hooks::{AuthAction, Authorization};
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("content/posts")).unwrap();
    std::fs::write(dir.path().join("content/posts/hi.md"), "Hello").unwrap();
    let path = dir.path().join("t.db");
    let u = urls();
    let now = "2026-01-03T00:00:00Z";
    let id = "https://m.example/n/1";
    let parent = "https://me.example/posts/hi.json";
    let (first, raw) = reply(id, parent, "<p>最初の版</p>", Some("2026-01-01T00:00:00Z"));
    {
        let mut setup = crate::db::open(&path).unwrap();
        posts::publish(&mut setup, dir.path(), &u).unwrap();
        receive_note(&setup, &u, &first, &raw, "m.example", now).unwrap();
    }
    let (older, older_raw) = reply(id, parent, "<p>قديم</p>", Some("2026-01-01T06:00:00Z"));
    let (newest, newest_raw) = reply(id, parent, "<p>最新 ✓ 🌱</p>", Some("2026-01-02T00:00:00Z"));

    // A fresh connection, so every statement of A's is prepared (and authorized) anew.
    let a = crate::db::open(&path).unwrap();
    // B never waits for a lock, so a held lock shows at once as SQLITE_BUSY.
    let b = crate::db::open(&path).unwrap();
    b.busy_timeout(std::time::Duration::ZERO).unwrap();
    let raced: Arc<Mutex<Option<rusqlite::Result<Outcome>>>> = Arc::default();
    let slot = raced.clone();
    let (bu, bn, braw) = (u.clone(), newest.clone(), newest_raw.clone());
    let mut selects = 0;
    a.authorizer(Some(move |ctx: rusqlite::hooks::AuthContext<'_>| {
        // The first SELECT is the read of what is stored; B writes as the next statement
        // (a SELECT or the upsert itself) is prepared.
        let next_statement = match ctx.action {
            AuthAction::Select => {
                selects += 1;
                selects > 1
            }
            AuthAction::Insert { .. } | AuthAction::Update { .. } => selects > 0,
            _ => false,
        };
        let mut slot = slot.lock().unwrap();
        if next_statement && slot.is_none() {
            *slot = Some(receive_note(&b, &bu, &bn, &braw, "m.example", now));
        }
        Authorization::Allow
    }))
    .unwrap();
    let a_result = receive_note(&a, &u, &older, &older_raw, "m.example", now);
    a.authorizer(None::<fn(rusqlite::hooks::AuthContext<'_>) -> Authorization>)
        .unwrap();
    assert!(
        a_result.is_ok(),
        "the older edit fails no one: {a_result:?}"
    );
    let b_result = raced.lock().unwrap().take().expect("B ran during A");
    if b_result.is_err() {
        // A held the write lock from its first read on: B, like a peer, tries again.
        assert!(
            matches!(&b_result, Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy),
            "{b_result:?}"
        );
        receive_note(&a, &u, &newest, &newest_raw, "m.example", now).unwrap();
    }
    assert_eq!(content(&a, id).0, "<p>最新 ✓ 🌱</p>");
}

#[test]
fn local_urls() {
    let u = urls();
    assert_eq!(
        local_post_slug(&u, "https://me.example/posts/hi.json").as_deref(),
        Some("hi")
    );
    assert_eq!(
        local_post_slug(&u, "https://me.example/posts/hi").as_deref(),
        Some("hi")
    );
    assert_eq!(
        local_post_slug(&u, "https://me.example/posts/hi.json#create").as_deref(),
        Some("hi")
    );
    assert_eq!(local_post_slug(&u, "https://other.example/posts/hi"), None);
    assert_eq!(local_post_slug(&u, "https://me.example/posts/a/b"), None);
}

#[test]
fn replies_thread_edit_and_delete() {
    let (conn, _dir) = setup();
    let u = urls();
    let now = "2026-01-01T00:00:01Z";
    let (r1, raw1) = reply(
        "https://m.example/n/1",
        "https://me.example/posts/hi.json",
        "<p>one</p>",
        None,
    );
    assert_eq!(
        receive_note(&conn, &u, &r1, &raw1, "m.example", now).unwrap(),
        Outcome::Stored
    );
    assert_eq!(
        receive_note(&conn, &u, &r1, &raw1, "m.example", now).unwrap(),
        Outcome::Updated,
        "a repeat changes nothing but is harmless"
    );
    let (r2, raw2) = reply(
        "https://m.example/n/2",
        "https://m.example/n/1",
        "<p>two</p>",
        None,
    );
    receive_note(&conn, &u, &r2, &raw2, "m.example", now).unwrap();
    let post_id = content(&conn, "https://m.example/n/1").2.unwrap();
    assert_eq!(
        content(&conn, "https://m.example/n/2").2,
        Some(post_id),
        "reply to a reply"
    );
    let (unrelated, raw) = reply("https://m.example/n/3", "https://else.example/x", "x", None);
    assert_eq!(
        receive_note(&conn, &u, &unrelated, &raw, "m.example", now).unwrap(),
        Outcome::Ignored
    );

    let (edit, raw) = reply(
        "https://m.example/n/1",
        "https://me.example/posts/hi.json",
        "<p>edited</p>",
        Some("2026-01-02T00:00:00Z"),
    );
    receive_note(&conn, &u, &edit, &raw, "m.example", now).unwrap();
    assert_eq!(content(&conn, "https://m.example/n/1").0, "<p>edited</p>");
    let (old, raw) = reply(
        "https://m.example/n/1",
        "https://me.example/posts/hi.json",
        "<p>older</p>",
        Some("2026-01-01T12:00:00Z"),
    );
    assert_eq!(
        receive_note(&conn, &u, &old, &raw, "m.example", now).unwrap(),
        Outcome::Ignored
    );

    assert_eq!(
        delete_note(
            &conn,
            "https://m.example/n/1",
            "https://evil.example/u",
            &json!({}),
            now
        )
        .unwrap(),
        Outcome::Ignored,
        "only the author deletes"
    );
    assert_eq!(
        delete_note(
            &conn,
            "https://m.example/n/1",
            "https://m.example/users/bob",
            &json!({}),
            now
        )
        .unwrap(),
        Outcome::Deleted
    );
    let (c, deleted, _) = content(&conn, "https://m.example/n/1");
    assert!(c.is_empty() && deleted.is_some());
    assert_eq!(
        receive_note(&conn, &u, &r1, &raw1, "m.example", now).unwrap(),
        Outcome::Ignored,
        "a replayed Create does not bring it back"
    );
}

#[test]
fn reactions_count_once_and_undo() {
    let (conn, _dir) = setup();
    let post = posts::by_slug(&conn, "hi").unwrap().unwrap();
    let bob = "https://m.example/users/bob";
    let now = "2026-01-01T00:00:00Z";
    let add = |id: &str| {
        add_reaction(&conn, ReactionKind::Like, bob, post.id, id, &json!({}), now).unwrap()
    };
    assert_eq!(add("https://m.example/l/1"), Outcome::Stored);
    assert_eq!(add("https://m.example/l/1"), Outcome::Ignored);
    assert_eq!(add("https://m.example/l/2"), Outcome::Stored);
    let count = || -> i64 {
        conn.query_row("SELECT COUNT(*) FROM reactions", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(count(), 1);
    assert_eq!(
        remove_reaction(
            &conn,
            "https://x.example/u",
            Some("https://m.example/l/2"),
            None
        )
        .unwrap(),
        0
    );
    assert_eq!(
        remove_reaction(&conn, bob, Some("https://m.example/l/2"), None).unwrap(),
        1
    );
    assert_eq!(count(), 0);
}
