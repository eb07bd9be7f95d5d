//! The serving cache (`web::cache`, issue 15): pages and documents are served from rendered
//! bytes with strong ETags and gzip copies, and every event that changes what a page shows
//! — a publish, an edit, a delete, a reply shown or hidden, a like, a server or account
//! blocked — is seen on the next request, whichever process made it (the CLI runs beside the
//! server). Real site, real HTTP on loopback, a pretend peer that signs with a real key.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::Command;

use common::peer::Peer;
use common::*;
use serde_json::{Value, json};

const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

fn hortus_ok(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hortus"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .env_remove("HORTUS_DIR")
        .output()
        .expect("run hortus");
    assert!(
        out.status.success(),
        "hortus {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn note(peer: &Peer, n: &str, in_reply_to: &str, content: &str) -> Value {
    json!({
        "id": format!("{}/notes/{n}", peer.base),
        "type": "Note",
        "attributedTo": peer.actor,
        "inReplyTo": in_reply_to,
        "content": content,
        "url": format!("{}/@bob/{n}", peer.base),
        "to": [PUBLIC],
        "cc": [format!("{}/followers", peer.actor)],
        "published": "2026-11-20T10:00:00Z",
    })
}

async fn send(peer: &Peer, site: &TestSite, activity: &Value) {
    let resp = peer.post(&site.url("/inbox"), activity).await;
    assert_eq!(resp.status().as_u16(), 202, "{}", activity["type"]);
}

/// GET with `accept`; the status, the ETag and the body.
async fn fetch(url: &str, accept: &str) -> (u16, String, String) {
    let resp = get(url, accept).await;
    let status = resp.status().as_u16();
    let etag = resp
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, etag, resp.text().await.expect("body"))
}

/// Fetched twice: the second answer is the cache's (same ETag), and both bodies agree.
async fn cached(url: &str, accept: &str) -> String {
    let (s1, e1, b1) = fetch(url, accept).await;
    let (s2, e2, b2) = fetch(url, accept).await;
    assert_eq!((s1, s2), (200, 200), "{url}");
    assert!(!e1.is_empty() && e1 == e2, "{url}: {e1} then {e2}");
    assert_eq!(b1, b2);
    b2
}

#[tokio::test(flavor = "multi_thread")]
async fn every_event_that_changes_a_page_is_seen_at_once() {
    let mut site = TestSite::federating("127.0.0.2");
    site.write_post(
        "hello.md",
        "+++\ntitle = \"Hello\"\ntags = [\"garden\"]\n+++\nHello, garden. 庭の花 — حديقة 🌱 e\u{301}",
    );
    site.publish();
    let peer = Peer::start("127.0.0.3", false);
    site.allow(&peer.host);
    let _state = site.start().await;
    let post = site.url("/posts/hello");
    let post_id = site.url("/posts/hello.json");

    // Publish: the home page and the tag page, kept, show a new post at once.
    let home = cached(&site.url("/"), BROWSER_ACCEPT).await;
    assert!(home.contains("庭の花") && !home.contains("二つ目"));
    let tag = cached(&site.url("/tags/garden"), BROWSER_ACCEPT).await;
    assert!(!tag.contains("二つ目"));
    let feed = cached(&site.url("/feed.xml"), "*/*").await;
    assert!(!feed.contains("二つ目"));
    site.write_post(
        "second.md",
        "+++\ntags = [\"garden\"]\n+++\n二つ目の投稿 🌼",
    );
    site.publish();
    assert!(
        cached(&site.url("/"), BROWSER_ACCEPT)
            .await
            .contains("二つ目")
    );
    assert!(
        cached(&site.url("/tags/garden"), BROWSER_ACCEPT)
            .await
            .contains("二つ目")
    );
    assert!(
        cached(&site.url("/feed.xml"), "*/*")
            .await
            .contains("二つ目")
    );

    // Edit: the page and its JSON.
    assert!(cached(&post, BROWSER_ACCEPT).await.contains("庭の花"));
    let json = cached(&post, AP).await;
    assert!(json.contains("\"Note\"") && json.contains("庭の花"));
    site.write_post(
        "hello.md",
        "+++\ntitle = \"Hello\"\ntags = [\"garden\"]\n+++\nEdited: مرحبا بالحديقة",
    );
    site.publish();
    let page = cached(&post, BROWSER_ACCEPT).await;
    assert!(page.contains("مرحبا") && !page.contains("庭の花"));
    assert!(cached(&post, AP).await.contains("مرحبا"));

    // A reply shown, and a like counted.
    send(
        &peer,
        &site,
        &peer.activity("Create", note(&peer, "1", &post_id, "<p>Schön! 🌻</p>")),
    )
    .await;
    assert!(cached(&post, BROWSER_ACCEPT).await.contains("Schön!"));
    let before_like = cached(&post, BROWSER_ACCEPT).await;
    send(&peer, &site, &peer.activity("Like", json!(post_id))).await;
    let after_like = cached(&post, BROWSER_ACCEPT).await;
    assert_ne!(before_like, after_like, "the like count moved");

    // The reply hidden by the owner, from the command line (another process).
    hortus_ok(
        &site.dir,
        &["replies", "hide", &format!("{}/@bob/1", peer.base)],
    );
    assert!(!cached(&post, BROWSER_ACCEPT).await.contains("Schön!"));
    hortus_ok(
        &site.dir,
        &["replies", "show", &format!("{}/@bob/1", peer.base)],
    );
    assert!(cached(&post, BROWSER_ACCEPT).await.contains("Schön!"));

    // The peer's server blocked: its reply leaves the page; unblocked, it is back.
    hortus_ok(&site.dir, &["block", "add", &peer.host]);
    assert!(!cached(&post, BROWSER_ACCEPT).await.contains("Schön!"));
    hortus_ok(&site.dir, &["block", "remove", &peer.host]);
    assert!(cached(&post, BROWSER_ACCEPT).await.contains("Schön!"));

    // An account blocked (migration 11's row, as `account_relations` writes it): the owner's
    // boost of its note leaves the home page.
    let db = site.db();
    db.execute(
        "INSERT INTO timeline_actions (kind, object_id, author_id, created_at)
         VALUES ('boost', ?1, ?2, '2026-11-29T09:00:00Z')",
        [format!("{}/notes/1", peer.base), peer.actor.clone()],
    )
    .unwrap();
    assert!(
        cached(&site.url("/"), BROWSER_ACCEPT)
            .await
            .contains("Schön!")
    );
    db.execute(
        "INSERT INTO account_relations (actor_id, blocked, updated_at)
         VALUES (?1, 1, '2026-11-29T09:01:00Z')",
        [peer.actor.clone()],
    )
    .unwrap();
    assert!(
        !cached(&site.url("/"), BROWSER_ACCEPT)
            .await
            .contains("Schön!")
    );

    // Delete: the page answers 410, and is not kept.
    site.remove_post("hello.md");
    site.publish();
    assert_eq!(fetch(&post, BROWSER_ACCEPT).await.0, 410);
    assert_eq!(fetch(&post, AP).await.0, 410);
    assert!(
        !cached(&site.url("/"), BROWSER_ACCEPT)
            .await
            .contains("مرحبا")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn conditional_requests_gzip_and_one_entry_per_representation() {
    let mut site = TestSite::new("127.0.0.2");
    let long = "Ein langer Absatz über Gärten, 長い段落、فقرة طويلة 🌿. ".repeat(40);
    site.write_post("long.md", &format!("+++\ntitle = \"Long\"\n+++\n{long}"));
    site.publish();
    let _state = site.start().await;
    let url = site.url("/posts/long");
    let client = client();

    // HTML and JSON alternate on the same URL, each from its own entry.
    for _ in 0..2 {
        let html = cached(&url, BROWSER_ACCEPT).await;
        assert!(html.starts_with("<!DOCTYPE html>") || html.starts_with("<!doctype html>"));
        let json: Value = serde_json::from_str(&cached(&url, MASTODON_ACCEPT).await).unwrap();
        assert_eq!(json["type"], "Note");
        let actor: Value = serde_json::from_str(&cached(&site.url("/"), AP).await).unwrap();
        assert_eq!(actor["type"], "Person");
        assert!(
            cached(&site.url("/"), BROWSER_ACCEPT)
                .await
                .contains("<html")
        );
    }

    let resp = client
        .get(&url)
        .header("Accept", BROWSER_ACCEPT)
        .send()
        .await
        .unwrap();
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    let control = resp.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        control.contains("public") && control.contains("no-cache"),
        "{control}"
    );
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "a strong ETag: {etag}"
    );
    let plain = resp.bytes().await.unwrap();

    // 304 for the ETag held, with the ETag and no body; 200 for another.
    let resp = client
        .get(&url)
        .header("Accept", BROWSER_ACCEPT)
        .header("If-None-Match", format!("\"other\", {etag}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 304);
    assert_eq!(resp.headers()["etag"].to_str().unwrap(), etag);
    assert!(resp.bytes().await.unwrap().is_empty());
    let resp = client
        .get(&url)
        .header("Accept", BROWSER_ACCEPT)
        .header("If-None-Match", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // gzip on request, its own ETag, the same bytes once inflated.
    let resp = client
        .get(&url)
        .header("Accept", BROWSER_ACCEPT)
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let gz_etag = resp.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(gz_etag, etag);
    let gz = resp.bytes().await.unwrap();
    assert!(gz.len() < plain.len() / 2);
    let mut inflated = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut inflated)
        .unwrap();
    assert_eq!(inflated, plain);
    // `gzip;q=0` is a refusal.
    let resp = client
        .get(&url)
        .header("Accept", BROWSER_ACCEPT)
        .header("Accept-Encoding", "gzip;q=0")
        .send()
        .await
        .unwrap();
    assert!(
        resp.headers()
            .get("content-encoding")
            .is_none_or(|v| v != "gzip")
    );
    assert_eq!(resp.bytes().await.unwrap(), plain);

    // brotli when the client prefers it (or ties, as browsers send), its own strong ETag, the
    // same bytes once decompressed, smaller than gzip; gzip when the client ranks it higher.
    let mut br_etag = String::new();
    for accept in ["gzip, deflate, br, zstd", "br;q=1.0, gzip;q=0.8"] {
        let resp = client
            .get(&url)
            .header("Accept", BROWSER_ACCEPT)
            .header("Accept-Encoding", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["content-encoding"], "br", "{accept}");
        assert!(
            resp.headers()["vary"]
                .to_str()
                .unwrap()
                .contains("Accept-Encoding")
        );
        br_etag = resp.headers()["etag"].to_str().unwrap().to_string();
        assert!(br_etag.starts_with('"') && br_etag != etag && br_etag != gz_etag);
        let br = resp.bytes().await.unwrap();
        assert!(br.len() < gz.len(), "{} vs {}", br.len(), gz.len());
        let mut decoded = Vec::new();
        brotli::Decompressor::new(&br[..], 4096)
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, plain);
    }
    let resp = client
        .get(&url)
        .header("Accept", BROWSER_ACCEPT)
        .header("Accept-Encoding", "br;q=0.4, gzip;q=0.9")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    assert_eq!(resp.headers()["etag"].to_str().unwrap(), gz_etag);
    // The brotli ETag revalidates.
    let resp = client
        .get(&url)
        .header("Accept", BROWSER_ACCEPT)
        .header("Accept-Encoding", "br")
        .header("If-None-Match", &br_etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 304);
    assert_eq!(resp.headers()["etag"].to_str().unwrap(), br_etag);

    // A hit serves kept bytes: a change no trigger records is not seen (proof the page was not
    // rendered again) until the generation moves.
    let db = site.db();
    db.execute_batch(
        "DROP TRIGGER page_generation_posts_update;
         UPDATE posts SET content_html = '<p>unseen 見えない</p>' WHERE slug = 'long';",
    )
    .unwrap();
    assert!(!cached(&url, BROWSER_ACCEPT).await.contains("見えない"));
    db.execute("UPDATE page_generation SET n = n + 1", [])
        .unwrap();
    assert!(cached(&url, BROWSER_ACCEPT).await.contains("見えない"));
}

/// With signed fetches required, a document is never handed to an unsigned client from the
/// cache, and shared caches are told it is private.
#[tokio::test(flavor = "multi_thread")]
async fn gated_documents_are_never_served_from_the_cache_without_a_signature() {
    let mut site = TestSite::federating_with("127.0.0.2", |cfg| {
        *cfg = cfg.replace("signed_fetch = false", "signed_fetch = true");
    });
    site.write_post("gated.md", "Nur für Unterzeichner ✍️");
    site.publish();
    let peer = Peer::start("127.0.0.3", false);
    let refused = Peer::start("127.0.0.4", false);
    site.allow(&peer.host);
    let _state = site.start().await;
    let url = site.url("/posts/gated.json");
    let signed_get = |peer: &Peer, url: &str| {
        let key = hortus::httpsig::load_private_key(&peer.private_pem).unwrap();
        let headers = hortus::httpsig::sign_get(
            &url::Url::parse(url).unwrap(),
            &peer.key_id,
            &key,
            std::time::SystemTime::now(),
        )
        .unwrap();
        let mut req = client().get(url).header("Accept", AP);
        for (n, v) in headers {
            req = req.header(n, v);
        }
        req.send()
    };
    for _ in 0..2 {
        let resp = signed_get(&peer, &url).await.unwrap();
        assert_eq!(resp.status(), 200);
        let control = resp.headers()["cache-control"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(control.contains("private"), "{control}");
        assert!(resp.text().await.unwrap().contains("Unterzeichner"));
        assert_eq!(fetch(&url, AP).await.0, 401, "unsigned, after a signed hit");
        let refused_status = signed_get(&refused, &url).await.unwrap().status();
        assert_eq!(refused_status, 403, "a refused server, after a signed hit");
    }
    // The HTML page stays public.
    assert!(
        cached(&site.url("/posts/gated"), BROWSER_ACCEPT)
            .await
            .contains("Unterzeichner")
    );
}
