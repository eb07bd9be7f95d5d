//! A publish of many posts at once writes exactly what publishing them one at a time writes:
//! the same rows (posts, tags, what followers were told) and the same activities queued, for
//! posts in many scripts. Issue 15 made the bulk path faster (statement journal in memory,
//! bodies built only for activities someone receives); this is what must not move.

use std::path::Path;
use std::time::{Duration, SystemTime};

use hortus::config::Config;
use hortus::delivery::{Federated, fanout, federate_posts};
use hortus::posts::publish;
use hortus::urls::Urls;
use rusqlite::{Connection, params, types::ValueRef};

fn config() -> Config {
    toml::from_str(
        "domain = \"example.net\"\nbase_url = \"https://example.net\"\n[user]\nname = \"alice\"\n",
    )
    .unwrap()
}

/// Texts in several scripts, with hashtags and mentions in them.
const LINES: &[&str] = &[
    "東京の庭で #日本語 のテストをしています。雨が降っています。",
    "مرحبا بالعالم، هذا نص عربي مع وسم #العربية وإشارة إلى @bob@peer.example هنا.",
    "Emoji 🌱🍅🐝 and a family 👩‍👩‍👧 with #emoji_day and a flag 🇳🇴.",
    "Combining marks: e\u{301}te\u{301}, n\u{303}, a\u{308} — #Cafe\u{301} stays one tag.",
    "עברית: שלום עולם #עברית, and **bold** with `code #not_a_tag` inline.",
    "Ελληνικά και кириллица: #Ελλάδα #Россия, [a link](https://example.org/ü?q=1).",
    "> A quote from @carol@other.example\n\n- a list\n- with `#no` tags",
    "```rust\nfn main() { println!(\"#not @a@b.c\"); }\n```",
    "<b>raw</b> HTML <script>alert(1)</script> is sanitised; 한국어 #한국어 too.",
];

/// Post `i`: explicit date (so both runs store the same time), a title on some, tags, a
/// content warning, other visibilities, and long bodies that federate as a teaser.
fn post(i: usize) -> String {
    let mut front = format!(
        "+++\ndate = 2025-03-{:02}T{:02}:{:02}:00Z\n",
        1 + i % 28,
        i % 24,
        i % 60
    );
    if i.is_multiple_of(3) {
        front.push_str(&format!("title = \"Título {i} — 題名 🌿\"\n"));
    }
    if i.is_multiple_of(5) {
        front.push_str("tags = [\"Garten\", \"日本語\"]\n");
    }
    if i.is_multiple_of(7) {
        front.push_str("summary = \"CW: تحذير\"\n");
    }
    match i % 11 {
        4 => front.push_str("visibility = \"unlisted\"\n"),
        8 => front.push_str("visibility = \"followers\"\n"),
        _ => {}
    }
    let mut body = String::new();
    for k in 0..(1 + i % 9) * (1 + i % 4) {
        body.push_str(LINES[(i + k) % LINES.len()]);
        body.push_str("\n\n");
    }
    format!("{front}+++\n{body}")
}

/// One table as text, row by row in `order`, the columns given.
fn rows(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        Ok((0..n)
            .map(|i| match r.get_ref(i).unwrap() {
                ValueRef::Null => "NULL".to_string(),
                ValueRef::Integer(v) => v.to_string(),
                ValueRef::Real(v) => v.to_string(),
                ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
            })
            .collect::<Vec<_>>()
            .join(" | "))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Everything a publish writes that does not depend on the clock.
fn written(conn: &Connection) -> Vec<Vec<String>> {
    [
        "SELECT * FROM posts ORDER BY id",
        "SELECT post_id, tag, published, public FROM post_tags ORDER BY post_id, tag",
        "SELECT post_id, state, source_hash, activity_id FROM post_federation ORDER BY post_id",
        "SELECT id, activity_type, body FROM outgoing_activities ORDER BY id",
        "SELECT activity_id, inbox FROM deliveries ORDER BY activity_id, inbox",
    ]
    .iter()
    .map(|sql| rows(conn, sql))
    .collect()
}

/// A site directory with a database file, a follower on another server and a known account
/// that posts mention (so its inbox is addressed too).
fn site(followed: bool) -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("content/posts")).unwrap();
    let conn = hortus::db::open(&dir.path().join("hortus.db")).unwrap();
    let actor = |id: &str, inbox: &str, shared: Option<&str>, handle: &str| {
        conn.execute(
            "INSERT INTO remote_actors (id, host, inbox, shared_inbox, handle, url, raw, fetched_at)
             VALUES (?1, 'h', ?2, ?3, ?4, NULL, '{}', '2026-01-01T00:00:00Z')",
            params![id, inbox, shared, handle],
        )
        .unwrap();
    };
    actor(
        "https://peer.example/users/bob",
        "https://peer.example/users/bob/inbox",
        None,
        "bob@peer.example",
    );
    if followed {
        actor(
            "https://f.example/u/1",
            "https://f.example/u/1/inbox",
            Some("https://f.example/inbox"),
            "one@f.example",
        );
        conn.execute(
            "INSERT INTO followers (actor_id, follow_id, state, created_at)
             VALUES ('https://f.example/u/1', 'https://f.example/f/1', 'accepted', '2026-01-01T00:00:00Z')",
            [],
        )
        .unwrap();
    }
    (dir, conn)
}

fn publish_and_federate(dir: &Path, conn: &mut Connection, now: SystemTime) -> Federated {
    let (config, urls) = (config(), Urls::new(&config().base_url, "alice"));
    let site = hortus::activitypub::Site {
        config: &config,
        urls: &urls,
    };
    publish(conn, dir, &urls).unwrap();
    federate_posts(conn, &site, now, &fanout::everyone).unwrap()
}

const POSTS: usize = 150; // more than one chunk of `map_on_all_cores` (64)

#[test]
fn publishing_many_posts_at_once_writes_what_publishing_one_at_a_time_does() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000);
    let name = |i: usize| format!("{i:04}-post.md");

    let (bulk_dir, mut bulk) = site(true);
    for i in 0..POSTS {
        std::fs::write(bulk_dir.path().join("content/posts").join(name(i)), post(i)).unwrap();
    }
    let at_once = publish_and_federate(bulk_dir.path(), &mut bulk, now);

    let (single_dir, mut single) = site(true);
    let mut one_by_one = Federated::default();
    for i in 0..POSTS {
        std::fs::write(
            single_dir.path().join("content/posts").join(name(i)),
            post(i),
        )
        .unwrap();
        let f = publish_and_federate(single_dir.path(), &mut single, now);
        one_by_one.activities.extend(f.activities);
        one_by_one.deliveries += f.deliveries;
    }

    let (a, b) = (written(&bulk), written(&single));
    assert_eq!(a[0].len(), POSTS);
    assert!(a[1].iter().any(|r| r.contains("日本語")), "{:?}", a[1]);
    assert!(a[1].iter().any(|r| r.contains("العربية")), "{:?}", a[1]);
    assert!(a[0].iter().any(|r| r.contains("👩‍👩‍👧")));
    assert_eq!(
        a[3].len(),
        POSTS,
        "one Create per post is kept for its receivers"
    );
    // What followers are recorded as told is the id of the activity queued (its body's `id`).
    let told: std::collections::BTreeSet<&str> =
        a[2].iter().filter_map(|r| r.split(" | ").nth(3)).collect();
    let queued: std::collections::BTreeSet<&str> =
        a[3].iter().filter_map(|r| r.split(" | ").next()).collect();
    assert_eq!(told, queued);
    for row in &a[3] {
        let (id, rest) = row.split_once(" | ").unwrap();
        let body: serde_json::Value =
            serde_json::from_str(rest.split_once(" | ").unwrap().1).unwrap();
        assert_eq!(body["id"], id);
    }
    // Every post goes to the follower's shared inbox; those mentioning Bob to his too.
    assert!(a[4].len() > POSTS, "{}", a[4].len());
    for (table, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x.len(), y.len(), "table {table}");
        for (row_x, row_y) in x.iter().zip(y) {
            assert_eq!(row_x, row_y, "table {table}");
        }
    }
    // The same activities; a bulk publish queues them by publication time, not file order.
    assert_eq!(at_once.deliveries, one_by_one.deliveries);
    let sorted = |f: &Federated| {
        let mut v = f.activities.clone();
        v.sort();
        v
    };
    assert_eq!(sorted(&at_once), sorted(&one_by_one));

    // Nobody follows: nothing is queued but to Bob, and followers are recorded as told of the
    // same activities (the bodies nobody receives are not built, their ids are the same).
    let (alone_dir, mut alone) = site(false);
    for i in 0..POSTS {
        std::fs::write(
            alone_dir.path().join("content/posts").join(name(i)),
            post(i),
        )
        .unwrap();
    }
    let unheard = publish_and_federate(alone_dir.path(), &mut alone, now);
    let c = written(&alone);
    assert_eq!(c[..3], a[..3]);
    assert_eq!(unheard.activities, at_once.activities);
    let to_bob = |rows: &[String]| -> Vec<String> {
        rows.iter()
            .filter(|r| r.ends_with("https://peer.example/users/bob/inbox"))
            .cloned()
            .collect()
    };
    assert!(!to_bob(&a[4]).is_empty());
    assert_eq!(c[4], to_bob(&a[4]));
    assert_eq!(unheard.deliveries, c[4].len());
}
