//! Backups that restore (issue 16): `hortus backup` run beside a live `hortus serve` that is
//! fanning posts out to slow servers and taking a stream of signed replies, then `hortus
//! restore` into a new directory. Everything that existed before the backup began is in the
//! restored site, and nothing that did not exist by its end.

mod common;
#[path = "support/mock_inbox.rs"]
mod mock_inbox;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::TestSite;
use common::peer::Peer;
use mock_inbox::{MockInbox, Reply, add_follower};
use rusqlite::{Connection, OpenFlags};
use serde_json::json;

fn hortus(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hortus"))
        .args(args)
        .output()
        .expect("run hortus")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The identities in `sql`'s first column, as text.
fn ids(conn: &Connection, sql: &str) -> BTreeSet<String> {
    conn.prepare(sql)
        .unwrap()
        .query_map([], |r| r.get::<_, rusqlite::types::Value>(0))
        .unwrap()
        .map(|v| format!("{:?}", v.unwrap()))
        .collect()
}

/// What must survive a backup, table by table.
const TABLES: [(&str, &str); 7] = [
    (
        "posts",
        "SELECT slug || ' ' || coalesce(title, '') || ' ' || content_html FROM posts",
    ),
    (
        "followers",
        "SELECT actor_id || ' ' || state FROM followers",
    ),
    (
        "keys",
        "SELECT name || ' ' || private_pem || ' ' || public_pem FROM keys",
    ),
    ("deliveries", "SELECT id FROM deliveries"),
    ("outgoing_activities", "SELECT id FROM outgoing_activities"),
    ("remote_notes", "SELECT id FROM remote_notes"),
    ("inbox_seen", "SELECT activity_id FROM inbox_seen"),
];

fn read_only(path: &Path) -> Connection {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

const POSTS: [(&str, &str); 3] = [
    (
        "garden.md",
        "+++\ntitle = \"庭園の朝 🌅\"\n+++\n朝の庭で、新しい芽が出ました。\n",
    ),
    (
        "arabic.md",
        "+++\ntitle = \"حديقة مغلقة\"\n+++\nمرحبا بالعالم، هذه تدوينة عن الحديقة.\n",
    ),
    ("mixed.md", "Ме́ста hai 🌱 e\u{301}tude — 한국어 and עברית\n"),
];

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_during_a_fan_out_and_inbound_stream_restores_every_row() {
    let mut site = TestSite::federating("127.0.0.2");
    // Three slow servers with 40 followers each, every follower on its own inbox: each post is
    // 120 deliveries, answered 4 at a time per server after 40 ms.
    let servers = [
        MockInbox::start("127.0.0.3").await,
        MockInbox::start("127.0.0.4").await,
        MockInbox::start("127.0.0.5").await,
    ];
    for server in &servers {
        server.set_default(Reply::status(202).delayed(Duration::from_millis(40)));
        site.allow(&server.host());
        for i in 0..40 {
            let name = format!("f{i}");
            add_follower(
                &site.db(),
                &server.actor(&name),
                &server.actor_inbox(&name),
                None,
            );
        }
    }
    let peer = Peer::start("127.0.0.6", false);
    site.allow(&peer.host);
    for (name, text) in POSTS {
        site.write_post(name, text);
    }
    site.write_media(
        "猫 cat.png",
        b"\x89PNG not really an image \xf0\x9f\x90\x88",
    );
    let mut serve = site.spawn_serve(1).await;

    let follow = peer.activity("Follow", json!(site.url("/users/alice")));
    assert_eq!(peer.post(&site.url("/inbox"), &follow).await.status(), 202);
    // A stream of signed replies from the peer, one after the other, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicUsize::new(0));
    let stream = {
        let (stop, accepted, peer) = (stop.clone(), accepted.clone(), peer.clone());
        let (inbox, post) = (site.url("/inbox"), site.url("/posts/garden"));
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let note = json!({
                    "id": format!("{}/notes/{i}", peer.base),
                    "type": "Note",
                    "attributedTo": peer.actor,
                    "inReplyTo": post,
                    "to": ["https://www.w3.org/ns/activitystreams#Public"],
                    "content": format!("<p>返信 {i}: رد جميل 🌷 e\u{301}</p>"),
                    "published": "2026-11-29T06:00:00Z",
                });
                let status = peer
                    .post(&inbox, &peer.activity("Create", note))
                    .await
                    .status();
                assert_eq!(status, 202, "reply {i}");
                accepted.fetch_add(1, Ordering::SeqCst);
            }
        })
    };

    let db_path = site.dir.join("hortus.db");
    let live = || read_only(&db_path);
    let pending = "SELECT COUNT(*) FROM deliveries WHERE state = 'pending'";
    let done = "SELECT COUNT(*) FROM deliveries WHERE state = 'done'";
    // Wait until the fan-out and the stream are both under way.
    for _ in 0..400 {
        if count(&live(), done) > 20 && accepted.load(Ordering::SeqCst) > 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let before_conn = live();
    let before: Vec<BTreeSet<String>> = TABLES
        .iter()
        .map(|(_, sql)| ids(&before_conn, sql))
        .collect();
    let (pending_before, replies_before) = (
        count(&before_conn, pending),
        accepted.load(Ordering::SeqCst),
    );
    drop(before_conn);
    assert_eq!(before[0].len(), 3, "three posts published: {:?}", before[0]);
    assert_eq!(before[1].len(), 121, "120 followers and the peer");
    assert!(
        pending_before > 50,
        "the fan-out is under way: {pending_before} pending\n{}",
        serve.log()
    );
    assert!(replies_before > 5, "replies are arriving");

    let file = site.tmp.path().join("バックアップ 🌿.tar.gz");
    let out = {
        let (dir, file) = (site.dir.clone(), file.clone());
        tokio::task::spawn_blocking(move || {
            hortus(&[
                "--dir".as_ref(),
                dir.as_os_str(),
                "backup".as_ref(),
                file.as_os_str(),
            ])
        })
        .await
        .unwrap()
    };
    let summary = ok(&out);

    let after_conn = live();
    let after: Vec<BTreeSet<String>> = TABLES
        .iter()
        .map(|(_, sql)| ids(&after_conn, sql))
        .collect();
    drop(after_conn);
    stop.store(true, Ordering::SeqCst);
    stream.await.unwrap();
    let replies_after = accepted.load(Ordering::SeqCst);
    assert!(
        replies_after > replies_before,
        "the stream went on during the backup"
    );
    assert!(
        count(&live(), done) > 0 && count(&live(), pending) < pending_before,
        "the fan-out went on during the backup"
    );
    serve.child.kill().unwrap();
    serve.child.wait().unwrap();
    assert!(
        summary.contains("3 posts") && summary.contains("121 followers"),
        "{summary}"
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(
        mode & 0o077,
        0,
        "the archive holds private keys: owner only"
    );

    let restored = site.tmp.path().join("復元 استعادة");
    ok(&hortus(&[
        "restore".as_ref(),
        file.as_os_str(),
        restored.as_os_str(),
    ]));
    let conn = read_only(&restored.join("hortus.db"));
    for (i, (table, sql)) in TABLES.iter().enumerate() {
        let got = ids(&conn, sql);
        let missing: Vec<_> = before[i].difference(&got).collect();
        assert!(
            missing.is_empty(),
            "{table}: rows from before the backup are missing: {missing:?}"
        );
        let extra: Vec<_> = got.difference(&after[i]).collect();
        // Deliveries change state, not identity; every other query names the whole row.
        assert!(
            extra.is_empty(),
            "{table}: rows that never existed: {extra:?}"
        );
    }
    // The queue travels: deliveries still waiting at the backup's moment wait in the copy.
    assert!(count(&conn, pending) > 0, "queued deliveries restored");
    let titles = ids(&conn, "SELECT title FROM posts WHERE title IS NOT NULL");
    assert!(
        titles.contains("Text(\"庭園の朝 🌅\")") && titles.contains("Text(\"حديقة مغلقة\")"),
        "{titles:?}"
    );
    // The files come back byte for byte.
    for rel in [
        "hortus.toml",
        "content/posts/garden.md",
        "content/posts/arabic.md",
        "content/posts/mixed.md",
        "media/猫 cat.png",
    ] {
        assert_eq!(
            std::fs::read(site.dir.join(rel)).unwrap(),
            std::fs::read(restored.join(rel)).unwrap(),
            "{rel}"
        );
    }
    // The restored site works: the owner's commands read it.
    let queue = ok(&hortus(&[
        "--dir".as_ref(),
        restored.as_os_str(),
        "followers".as_ref(),
    ]));
    assert!(queue.contains(&peer.actor), "{queue}");

    // Never over a site, never over an existing backup; both errors say what to do.
    let again = hortus(&["restore".as_ref(), file.as_os_str(), site.dir.as_os_str()]);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("already holds a Hortus site")
            && err.contains(&*site.dir.to_string_lossy())
            && err.contains("fix:"),
        "{err}"
    );
    let again = hortus(&[
        "--dir".as_ref(),
        site.dir.as_os_str(),
        "backup".as_ref(),
        file.as_os_str(),
    ]);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("already exists") && err.contains("fix:"),
        "{err}"
    );
}
