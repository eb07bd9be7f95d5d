use super::*;

/// Tables a cached page or document reads: migration 18 gives each the three triggers.
const READ_BY_PAGES: &[&str] = &[
    "posts",
    "post_tags",
    "remote_notes",
    "remote_actors",
    "reactions",
    "reply_settings_post",
    "reply_settings_site",
    "reply_targets",
    "account_moves",
    "account_relations",
    "federation_domains",
    "federation_policy_version",
    "followers",
    "following",
    "timeline_actions",
    "quote_requests",      // which quotes of the owner's posts are authorised
    "own_quote_requests",  // the owner's quote: pending, authorised or refused
    "own_reply_approvals", // the owner's reply: pending, approved or refused (GoToSocial)
    "keys",                // the actors show them (a running server loads them at start)
];

/// Tables no cached page reads, and why.
const NOT_ON_PAGES: &[&str] = &[
    "knocks",               // inbox rate limiting
    "outgoing_activities",  // the delivery queue
    "deliveries",           // the delivery queue
    "delivery_attempts",    // the delivery queue
    "delivery_servers",     // the delivery queue
    "post_federation",      // what was sent for a post
    "inbox_seen",           // inbox dedupe
    "inbox_refusals",       // `hortus inbox`
    "follower_suspensions", // a suspended follower is not `accepted`: `followers` moves too
    "timeline_entries",     // the owner's private timeline
    "posts_generation",     // listing counts (migration 07)
    "page_generation",      // this cache's own number
    "signature_forms",      // how deliveries are signed, per server
    "post_versions",        // the export's keys (migration 22), moved by what pages read
    "post_mentions",        // the export's keys (migration 22), derived from posts
    // The client API's own state (src/api): pages read the posts and files it writes, never
    // these tables.
    "api_password",
    "api_apps",
    "api_codes",
    "api_tokens",
    "api_signin_failures",
    "api_csrf",
    "api_media",
    "api_idempotency",
    "api_markers",
    "api_accounts",
    "api_notifications",
    "api_statuses",
    "api_poll_votes",
];

/// A new table must be placed: read by a cached page (then migration 18's triggers, in a new
/// migration, must cover it) or not. Without this, a page could show a table no trigger
/// watches, and be served stale.
#[test]
fn every_table_is_classified() {
    let conn = crate::db::open_in_memory().unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for table in &tables {
        assert!(
            READ_BY_PAGES.contains(&table.as_str()) || NOT_ON_PAGES.contains(&table.as_str()),
            "table {table} is on neither list in src/web/cache/tests.rs: if a cached page \
             reads it, add triggers bumping page_generation (see migrations/18-page-generation)"
        );
    }
    for table in READ_BY_PAGES {
        for op in ["insert", "update", "delete"] {
            let name = format!("page_generation_{table}_{op}");
            let found: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name = ?1 AND tbl_name = ?2",
                    [&name, *table],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(found, 1, "{name}");
        }
    }
}

fn file_db() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hortus.db");
    drop(crate::db::open(&path).unwrap());
    (dir, path)
}

fn entry(body: &str) -> std::sync::Arc<Entry> {
    std::sync::Arc::new(Entry::new(HeaderMap::new(), Bytes::from(body.to_string())))
}

#[test]
fn a_commit_by_another_connection_empties_it_and_others_do_not() {
    let (_dir, path) = file_db();
    let cache = PageCache::open(&path, 1 << 20, false);
    let g = cache.generation().unwrap();
    let key = (Repr::Html, "/".to_string());
    cache.put(key.clone(), g, entry("home"));
    assert!(cache.get(&key).is_some());

    let writer = crate::db::open(&path).unwrap();
    // The delivery queue's writes: no page shows them, the entry stays.
    writer
        .execute(
            "INSERT INTO knocks (host, count, first_seen, last_seen)
             VALUES ('a.example', 1, '2026-11-29T09:00:00Z', '2026-11-29T09:00:00Z')",
            [],
        )
        .unwrap();
    assert_eq!(cache.generation(), Some(g));
    assert!(cache.get(&key).is_some());

    // A remote author's profile (names shown beside replies) changed: gone.
    writer
        .execute(
            "INSERT INTO remote_actors (id, host, inbox, raw, fetched_at)
             VALUES ('https://b.example/u', 'b.example', 'https://b.example/i', '{}', 'x')",
            [],
        )
        .unwrap();
    let g2 = cache.generation().unwrap();
    assert_ne!(g2, g);
    assert!(cache.get(&key).is_none());
    // Something rendered at the old generation is not kept.
    cache.put(key.clone(), g, entry("stale"));
    assert!(cache.get(&key).is_none());
}

#[test]
fn the_byte_limit_evicts_the_oldest() {
    let (_dir, path) = file_db();
    let cache = PageCache::open(&path, 4000, false);
    let g = cache.generation().unwrap();
    for i in 0..10 {
        cache.put((Repr::Html, format!("/p/{i}")), g, entry(&"x".repeat(900)));
        assert!(cache.held_bytes() <= 4000);
    }
    assert!(cache.get(&(Repr::Html, "/p/9".into())).is_some());
    assert!(cache.get(&(Repr::Html, "/p/0".into())).is_none());
    // Too big for a quarter of the limit: never kept.
    cache.put((Repr::Html, "/big".into()), g, entry(&"y".repeat(1001)));
    assert!(cache.get(&(Repr::Html, "/big".into())).is_none());
}

#[test]
fn negotiation_helpers() {
    let req = |name: &str, value: &str| {
        actix_web::test::TestRequest::default()
            .insert_header((name, value))
            .to_http_request()
    };
    let ae = |value: &str| encoding::preferred(&req("accept-encoding", value), true, true);
    assert_eq!(ae("br, gzip;q=0.5"), Coding::Brotli);
    assert_eq!(ae("gzip, deflate, br, zstd"), Coding::Brotli); // a browser's: tie, br wins
    assert_eq!(ae("br;q=0.5, gzip"), Coding::Gzip);
    assert_eq!(ae("BR;Q=0.9, gzip;q=0.8"), Coding::Brotli);
    assert_eq!(ae("*"), Coding::Brotli);
    assert_eq!(ae("*;q=0.5, identity"), Coding::Identity);
    assert_eq!(ae("gzip;q=0, br;q=0"), Coding::Identity);
    assert_eq!(ae("gzip;q=0, *"), Coding::Brotli);
    assert_eq!(ae("br;q=2, gzip"), Coding::Gzip); // out of range: refused, not trusted
    assert_eq!(ae("br;q=abc, gzip;q=0.1"), Coding::Gzip);
    assert_eq!(ae("identity"), Coding::Identity);
    assert_eq!(ae("identity;q=0, gzip;q=0.2"), Coding::Gzip);
    assert_eq!(ae(""), Coding::Identity);
    // Only what the entry has: a small body has no compressed copy.
    assert_eq!(
        encoding::preferred(&req("accept-encoding", "br, gzip"), true, false),
        Coding::Gzip
    );
    assert_eq!(
        encoding::preferred(&req("accept-encoding", "br"), false, false),
        Coding::Identity
    );
    let tag = HeaderValue::from_static("\"abc\"");
    assert!(if_none_match(
        &req("if-none-match", "\"x\", W/\"abc\""),
        &[&tag]
    ));
    assert!(if_none_match(&req("if-none-match", "*"), &[&tag]));
    assert!(!if_none_match(&req("if-none-match", "\"abcd\""), &[&tag]));
}

/// Every coding decompresses to the very bytes, under an ETag of its own.
#[test]
fn compressed_copies_inflate_to_the_body() {
    use std::io::Read;
    let text = "庭の手入れ — حديقة 🌱 e\u{301}\u{301} <p>Rust</p>\n".repeat(200);
    let e = entry(&text);
    let mut gz = Vec::new();
    flate2::read::GzDecoder::new(&e.gzip.as_ref().unwrap()[..])
        .read_to_end(&mut gz)
        .unwrap();
    assert_eq!(gz, text.as_bytes());
    let mut br = Vec::new();
    brotli::Decompressor::new(&e.br.as_ref().unwrap()[..], 4096)
        .read_to_end(&mut br)
        .unwrap();
    assert_eq!(br, text.as_bytes());
    assert!(e.br.as_ref().unwrap().len() < e.gzip.as_ref().unwrap().len());
    let tags = [&e.etag, &e.etag_gzip, &e.etag_br];
    for (i, a) in tags.iter().enumerate() {
        for b in &tags[i + 1..] {
            assert_ne!(a, b);
        }
    }
    // Too small to be worth it: identity only.
    let small = entry("短い");
    assert!(small.gzip.is_none() && small.br.is_none());
}
