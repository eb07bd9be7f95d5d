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

fn accepting(coding: &str) -> HttpRequest {
    let req = actix_web::test::TestRequest::default();
    if coding.is_empty() {
        req.to_http_request()
    } else {
        req.insert_header(("accept-encoding", coding))
            .to_http_request()
    }
}

async fn body_of(resp: HttpResponse) -> (Option<String>, Bytes) {
    let coding = resp
        .headers()
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap().to_string());
    let body = actix_web::body::to_bytes(resp.into_body()).await.unwrap();
    (coding, body)
}

/// Every coding decompresses to the very bytes, under an ETag of its own.
#[actix_web::test]
async fn compressed_copies_inflate_to_the_body() {
    use std::io::Read;
    let (_dir, path) = file_db();
    let cache = PageCache::open(&path, 1 << 20, false);
    let g = cache.generation().unwrap();
    let text = "庭の手入れ — حديقة 🌱 e\u{301}\u{301} <p>Rust</p>\n".repeat(200);
    let key = (Repr::Html, "/posts/庭".to_string());
    let e = entry(&text);
    cache.put(key.clone(), g, e.clone());
    let (coding, gz) = body_of(cache.answer(&accepting("gzip"), &key, &e).await).await;
    assert_eq!(coding.as_deref(), Some("gzip"));
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(plain, text.as_bytes());
    let (coding, br) = body_of(cache.answer(&accepting("br, gzip"), &key, &e).await).await;
    assert_eq!(coding.as_deref(), Some("br"));
    let mut plain = Vec::new();
    brotli::Decompressor::new(&br[..], 4096)
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(plain, text.as_bytes());
    assert!(br.len() < gz.len());
    let tags = [&e.etag, &e.etag_gzip, &e.etag_br];
    for (i, a) in tags.iter().enumerate() {
        for b in &tags[i + 1..] {
            assert_ne!(a, b);
        }
    }
    // Too small to be worth it: identity only, whatever is asked.
    let small = entry("短い");
    let key = (Repr::Html, "/small".to_string());
    cache.put(key.clone(), g, small.clone());
    let (coding, body) = body_of(cache.answer(&accepting("br, gzip"), &key, &small).await).await;
    assert_eq!(coding.as_deref(), Some("identity"));
    assert_eq!(body, "短い".as_bytes());
    assert!(small.gzip.get().is_none() && small.br.get().is_none());
}

/// A copy is made when a client first asks for its coding, once, and counted once in the
/// bytes held; a client that asks for no coding costs no compression; a 304 makes none.
#[actix_web::test]
async fn copies_are_made_when_first_asked_and_counted_once() {
    let (_dir, path) = file_db();
    let cache = PageCache::open(&path, 1 << 20, false);
    let g = cache.generation().unwrap();
    let text = "Ωmega 写真 🌿 مرحبا ".repeat(300);
    let key = (Repr::Html, "/posts/lazy".to_string());
    let e = entry(&text);
    cache.put(key.clone(), g, e.clone());
    let plain = text.len();
    assert_eq!(cache.held_bytes(), plain);

    let (coding, body) = body_of(cache.answer(&accepting(""), &key, &e).await).await;
    assert_eq!((coding, body.len()), (None, plain));
    let if_none_match = actix_web::test::TestRequest::default()
        .insert_header(("accept-encoding", "gzip"))
        .insert_header(("if-none-match", e.etag_gzip.to_str().unwrap()))
        .to_http_request();
    let resp = cache.answer(&if_none_match, &key, &e).await;
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(resp.headers().get(header::ETAG), Some(&e.etag_gzip));
    assert!(e.gzip.get().is_none() && e.br.get().is_none());
    assert_eq!(cache.held_bytes(), plain, "no copy was asked for");

    // Two clients ask for gzip at once: one copy, counted once.
    let (ra, rb) = (accepting("gzip"), accepting("gzip;q=1, br;q=0.5"));
    let (a, b) = tokio::join!(cache.answer(&ra, &key, &e), cache.answer(&rb, &key, &e));
    let ((ca, ba), (cb, bb)) = (body_of(a).await, body_of(b).await);
    assert_eq!((ca.as_deref(), cb.as_deref()), (Some("gzip"), Some("gzip")));
    assert_eq!(ba, bb);
    let gz = e.gzip.get().unwrap().as_ref().unwrap().len();
    assert_eq!(gz, ba.len());
    assert!(e.br.get().is_none());
    assert_eq!(cache.held_bytes(), plain + gz);
    let (_, br) = body_of(cache.answer(&accepting("br"), &key, &e).await).await;
    assert_eq!(cache.held_bytes(), plain + gz + br.len());
    // Asked again: nothing more.
    let _ = cache.answer(&accepting("br"), &key, &e).await;
    assert_eq!(cache.held_bytes(), plain + gz + br.len());

    // An entry no longer kept (evicted, or replaced) still answers, and counts nothing.
    let gone = entry(&text.repeat(2));
    let (coding, _) = body_of(cache.answer(&accepting("gzip"), &key, &gone).await).await;
    assert_eq!(coding.as_deref(), Some("gzip"));
    assert_eq!(cache.held_bytes(), plain + gz + br.len());
}

/// Copies made after an entry was kept count towards the limit: they evict the oldest.
#[actix_web::test]
async fn copies_count_towards_the_byte_limit() {
    let (_dir, path) = file_db();
    let cache = PageCache::open(&path, 8000, false);
    let g = cache.generation().unwrap();
    let text: String = (0..1900u32)
        .map(|i| char::from_u32(0x4e00 + (i * 7919) % 20000).unwrap())
        .collect::<String>()
        .chars()
        .take(600)
        .collect();
    assert!(text.len() > 1000 && text.len() < 2000);
    let keys: Vec<Key> = (0..3).map(|i| (Repr::Html, format!("/p/{i}"))).collect();
    let entries: Vec<_> = keys.iter().map(|_| entry(&text)).collect();
    for (k, e) in keys.iter().zip(&entries) {
        cache.put(k.clone(), g, e.clone());
    }
    assert!(cache.get(&keys[0]).is_some());
    for (k, e) in keys.iter().zip(&entries).rev() {
        let _ = cache.answer(&accepting("gzip"), k, e).await;
        let _ = cache.answer(&accepting("br"), k, e).await;
        assert!(cache.held_bytes() <= 8000, "{}", cache.held_bytes());
    }
    let copies = entries[2].size() - text.len();
    assert!(
        copies > 0,
        "CJK text without repeats still compresses a little"
    );
    if 3 * (text.len() + copies) > 8000 {
        assert!(cache.get(&keys[0]).is_none(), "the oldest was not evicted");
    }
    let held: usize = keys
        .iter()
        .filter_map(|k| cache.get(k))
        .map(|e| e.size())
        .sum();
    assert_eq!(cache.held_bytes(), held);
}
