//! An existing site upgraded to migration 22 (issue 15): the export's post versions and
//! mentions are filled in for the posts already stored, so a like on an old post or an account
//! mentioned in one becoming known re-renders what shows it. Without the backfill the triggers
//! would update no row, and the export would keep the stale page.

mod common;

use std::path::Path;

use common::export::{assert_same_as_full, export_to, post_id};
use common::*;

/// Takes the database back to before migration 22: every object it creates dropped (named from
/// its own up.sql, so a later edit of the migration is followed), `user_version` 21. The next
/// open runs it again on the posts already there, as an upgrade does.
fn back_to_before_22(db: &rusqlite::Connection) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let up = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("22-"))
        .map(|e| std::fs::read_to_string(e.path().join("up.sql")).unwrap())
        .expect("migration 22");
    let mut dropped = 0;
    for line in up.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let ["CREATE", kind @ ("TABLE" | "INDEX" | "TRIGGER"), name, ..] = words[..] {
            db.execute_batch(&format!("DROP {kind} IF EXISTS {name};"))
                .unwrap();
            dropped += 1;
        }
    }
    assert!(dropped >= 3, "nothing found to drop in migration 22");
    db.pragma_update(None, "user_version", 21).unwrap();
}

#[test]
fn an_upgraded_site_re_renders_what_a_like_or_a_known_mention_changes() {
    use hortus::actors::{RemoteActor, store_actor};
    use hortus::conversation::store;
    let site = TestSite::federating("127.0.0.6");
    site.allow("m.example");
    site.write_post(
        "old.md",
        "+++\ntitle = \"Alt — 古い — قديم\"\n+++\nVor dem Upgrade geschrieben 🌱 e\u{301}",
    );
    site.write_post(
        "mention.md",
        "+++\ntags = [\"花\"]\n+++\nHallo @Fern@m.example — مرحبا 👋",
    );
    site.publish();
    back_to_before_22(&site.db());

    // The upgrade: the next open migrates and fills the versions in.
    let out = site.tmp.path().join("out");
    export_to(&site, &out);
    let db = site.db();
    let posts: i64 = db
        .query_row("SELECT count(*) FROM posts", [], |r| r.get(0))
        .unwrap();
    let versions: i64 = db
        .query_row("SELECT count(*) FROM post_versions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(versions, posts, "a post without its versions row");
    let mentioned: Vec<String> = db
        .prepare("SELECT handle FROM post_mentions")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(mentioned, ["fern@m.example"]);
    assert_same_as_full(&site, &out, "full-upgraded");

    let id_of = |name: &str| post_id(&db, name);
    let (old, _) = id_of("old.md");
    let (_, mention_slug) = id_of("mention.md");

    // A like on the old post.
    let like = serde_json::json!({"id": "https://m.example/likes/1", "type": "Like"});
    store::add_reaction(
        &db,
        store::ReactionKind::Like,
        "https://m.example/users/bob",
        old,
        "https://m.example/likes/1",
        &like,
        "2026-03-01T00:00:00Z",
    )
    .unwrap();
    export_to(&site, &out);
    assert_same_as_full(&site, &out, "full-liked");

    // The account the old post mentions becomes known: its Note now names the actor.
    let fern = RemoteActor {
        id: "https://m.example/users/fern".into(),
        host: "m.example".into(),
        inbox: "https://m.example/users/fern/inbox".into(),
        shared_inbox: None,
        handle: Some("fern@m.example".into()),
        name: Some("Fern 蕨".into()),
        url: Some("https://m.example/@fern".into()),
        public_key_id: None,
        public_key_pem: None,
    };
    let raw = serde_json::json!({"id": fern.id, "type": "Person", "name": "Fern 蕨"});
    store_actor(&db, &fern, &raw).unwrap();
    export_to(&site, &out);
    let note = std::fs::read_to_string(out.join(format!("posts/{mention_slug}.json"))).unwrap();
    assert!(note.contains("https://m.example/users/fern"), "{note}");
    assert_same_as_full(&site, &out, "full-mentioned");
}
