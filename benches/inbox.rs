//! Inbox benchmark: signed POSTs to `/inbox` of a live Hortus (127.0.0.2) whose database holds
//! a year of traffic (10,000 known actors, 20,000 replies in threads, 20,000 likes), from 50
//! senders whose keys are cached. The requests are signed before the clock starts, so what is
//! timed is the server: screening, digest, RSA verify, dedupe and the effect in SQLite. Three
//! kinds in turn: a reply to our post, a reply to a stored reply named by its page `url` (the
//! thread lookup by url), and a like. Reports accepted POSTs per second beside the RSA-2048
//! verifications per second one thread of this machine makes in the same run: every POST
//! costs one.
//!
//! `cargo bench --bench inbox` (bounded: 120 s). `cargo bench --bench inbox -- POSTS CONCURRENCY`.
//!
//! `cargo bench --bench inbox -- timeline` measures the home timeline instead (issue 12): the 50
//! senders are accounts the owner follows, the database also holds 20,000 earlier timeline
//! posts, and every POST is a Create of a new public post (a Question every tenth), which the
//! inbox stores in `remote_notes` and adds to `timeline_entries`.

use std::net::TcpListener;
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt as _;
use hortus::app::{self, Site};
use serde_json::json;

const SENDERS: usize = 50;
const ACTORS: usize = 10_000;
const REPLIES: usize = 20_000;
const LIKES: usize = 20_000;
const LIMIT: Duration = Duration::from_secs(120);
const T: &str = "2026-01-01T00:00:00Z";

/// A request ready to send: its headers (signature included) and body.
type SignedPost = (Vec<(String, String)>, Vec<u8>);

fn main() {
    let timeline = std::env::args().any(|a| a == "timeline");
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let posts = args.first().copied().unwrap_or(3000);
    let concurrency = args.get(1).copied().unwrap_or(16).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (report, rate) = rt.block_on(run(posts, concurrency, timeline));
    let verify = verify_rate();
    println!("{report}");
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let load: Vec<&str> = load.split_whitespace().take(3).collect();
        println!("load average after the run: {}", load.join(" "));
    }
    println!(
        "RSA-2048 verifications/s, hortus::httpsig::verify on one thread: {verify:.0}; \
         inbox POSTs/s ÷ verifications/s = {:.3}",
        rate / verify
    );
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn peer_actor(i: usize) -> String {
    format!("http://127.0.1.{}:9/users/u{i}", i % 200 + 1)
}

async fn run(posts: usize, concurrency: usize, timeline: bool) -> (String, f64) {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("site");
    let listener = TcpListener::bind("127.0.0.2:0").expect("bind site");
    let addr = listener.local_addr().expect("addr");
    hortus::scaffold::init(&hortus::scaffold::InitOptions {
        dir: dir.clone(),
        domain: addr.to_string(),
        user: "alice".into(),
        name: Some("Alice".into()),
        base_url: Some(format!("http://{addr}")),
        listen: Some(addr.to_string()),
    })
    .expect("init");
    let cfg = dir.join("hortus.toml");
    let text = std::fs::read_to_string(&cfg).expect("config");
    std::fs::write(
        &cfg,
        text.replace("mode = \"allowlist\"", "mode = \"blocklist\""),
    )
    .expect("config");
    let site = Site::open(&dir).expect("site");
    site.publish_and_federate().expect("publish");
    let base = format!("http://{addr}");
    let our_post = format!("{base}/posts/hello.json");

    let (private_pem, public_pem) = hortus::httpsig::generate_keypair().expect("key");
    let key = hortus::httpsig::load_private_key(&private_pem).expect("key");
    {
        let mut conn = hortus::db::open(&dir.join("hortus.db")).expect("db");
        let post_id: i64 = conn
            .query_row("SELECT id FROM posts WHERE slug = 'hello'", [], |r| {
                r.get(0)
            })
            .expect("our post");
        let tx = conn.transaction().expect("tx");
        for i in 0..ACTORS {
            let id = peer_actor(i);
            let pem = (i < SENDERS).then_some(public_pem.as_str());
            tx.execute(
                "INSERT INTO remote_actors (id, host, inbox, handle, url, public_key_id,
                     public_key_pem, raw, fetched_at)
                 VALUES (?1, ?2, ?1 || '/inbox', ?3, ?1, ?1 || '#main-key', ?4, '{}', ?5)",
                rusqlite::params![
                    id,
                    format!("127.0.1.{}:9", i % 200 + 1),
                    format!("u{i}@127.0.1.{}:9", i % 200 + 1),
                    pem,
                    T
                ],
            )
            .expect("actor");
        }
        for i in 0..REPLIES {
            let actor = peer_actor(i % ACTORS);
            tx.execute(
                "INSERT INTO remote_notes (id, actor_id, host, object_type, in_reply_to,
                     thread_post_id, visibility, url, content_html, published, raw, received_at)
                 VALUES (?1 || '/notes/' || ?2, ?1, 'h', 'Note', ?3, ?4, 'public',
                     ?1 || '/@n/' || ?2, '<p>earlier reply</p>', ?5, '{}', ?5)",
                rusqlite::params![actor, i as i64, our_post, post_id, T],
            )
            .expect("note");
        }
        for i in 0..LIKES {
            tx.execute(
                "INSERT INTO reactions (kind, actor_id, post_id, activity_id, raw, created_at)
                 VALUES ('like', ?1, ?2, ?1 || '#like', '{}', ?3)",
                rusqlite::params![format!("{}/{i}", peer_actor(i % ACTORS)), post_id, T],
            )
            .expect("like");
        }
        if timeline {
            for i in 0..SENDERS {
                tx.execute(
                    "INSERT INTO following (actor_id, follow_id, state, created_at)
                     VALUES (?1, ?1 || '#follow', 'accepted', ?2)",
                    rusqlite::params![peer_actor(i), T],
                )
                .expect("following");
            }
            for i in 0..REPLIES {
                let actor = peer_actor(i % SENDERS);
                tx.execute(
                    "INSERT INTO remote_notes (id, actor_id, host, object_type, visibility, url,
                         content_html, published, raw, received_at)
                     VALUES (?1 || '/posts/' || ?2, ?1, 'h', 'Note', 'public', ?1 || '/@p/' || ?2,
                         '<p>an earlier post</p>', ?3, '{}', ?3)",
                    rusqlite::params![actor, i as i64, T],
                )
                .expect("timeline note");
                tx.execute(
                    "INSERT INTO timeline_entries (kind, note_id, object_id, created_at)
                     VALUES ('post', ?1, ?1, ?2)",
                    rusqlite::params![format!("{actor}/posts/{i}"), T],
                )
                .expect("timeline entry");
            }
        }
        tx.commit().expect("commit");
    }

    let state = app::state(&site).await.expect("state");
    let server = app::server(state.clone(), listener).expect("server");
    let server_handle = server.handle();
    tokio::spawn(server);

    // Every request signed before the clock starts.
    let inbox = url::Url::parse(&format!("{base}/inbox")).expect("url");
    let t_sign = Instant::now();
    let requests: Vec<SignedPost> = (0..posts)
        .map(|n| {
            let actor = peer_actor(n % SENDERS);
            let activity = match n % 3 {
                _ if timeline => timeline_post(&actor, n),
                0 => reply(&actor, n, &our_post),
                1 => {
                    // A reply to a stored reply, named by its page url (as some servers do).
                    let parent = (n * 7919) % REPLIES;
                    let parent_url = format!("{}/@n/{parent}", peer_actor(parent % ACTORS));
                    reply(&actor, n, &parent_url)
                }
                _ => json!({
                    "@context": "https://www.w3.org/ns/activitystreams",
                    "id": format!("{actor}/likes/{n}"), "type": "Like",
                    "actor": actor, "object": our_post,
                }),
            };
            let body = serde_json::to_vec(&activity).expect("json");
            let mut headers = hortus::httpsig::sign_post(
                &inbox,
                &body,
                "application/activity+json",
                &format!("{actor}#main-key"),
                &key,
                SystemTime::now(),
            )
            .expect("sign");
            headers.push(("Content-Type".into(), "application/activity+json".into()));
            (headers, body)
        })
        .collect();
    let signing = t_sign.elapsed();

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("client");
    let t0 = Instant::now();
    let statuses: Vec<u16> = futures_util::stream::iter(requests)
        .map(|(headers, body)| {
            let client = client.clone();
            let inbox = inbox.clone();
            async move {
                if t0.elapsed() > LIMIT {
                    return 0;
                }
                let mut req = client.post(inbox).body(body);
                for (n, v) in headers {
                    req = req.header(n, v);
                }
                req.send().await.map_or(0, |r| r.status().as_u16())
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = t0.elapsed();
    let accepted = statuses.iter().filter(|s| **s == 202).count();
    let (stored, entries): (i64, i64) = {
        let conn = hortus::db::open(&dir.join("hortus.db")).expect("db");
        conn.query_row(
            "SELECT (SELECT COUNT(*) FROM remote_notes WHERE received_at > ?1),
                    (SELECT COUNT(*) FROM timeline_entries WHERE created_at > ?1)",
            [T],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("count")
    };
    let rate = accepted as f64 / elapsed.as_secs_f64();
    let mut other: Vec<u16> = statuses.iter().copied().filter(|s| *s != 202).collect();
    other.sort_unstable();
    other.dedup();
    let what = if timeline {
        "timeline Creates of new posts and polls by followed accounts; the database also holds \
         20000 timeline posts"
    } else {
        "replies to our post, replies to a reply named by url, likes"
    };
    let report = format!(
        "Inbox: {posts} signed POSTs ({what}) from {SENDERS} senders with cached keys, \
         {concurrency} at a time, to a database of {ACTORS} actors, {REPLIES} replies and \
         {LIKES} likes; {} cores; signed beforehand in {:.1} s\n  {accepted}/{posts} accepted \
         (202) in {:.2} s: {rate:.0} POSTs/s; {stored} posts stored, {entries} timeline \
         entries added; other statuses: {other:?}",
        cores(),
        signing.as_secs_f64(),
        elapsed.as_secs_f64(),
    );
    server_handle.stop(true).await;
    drop(state);
    drop(tmp);
    (report, rate)
}

fn reply(actor: &str, n: usize, in_reply_to: &str) -> serde_json::Value {
    json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{actor}/creates/{n}"), "type": "Create", "actor": actor,
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "object": {
            "id": format!("{actor}/replies/{n}"), "type": "Note", "attributedTo": actor,
            "inReplyTo": in_reply_to, "to": ["https://www.w3.org/ns/activitystreams#Public"],
            "content": format!("<p>Reply {n}: 東京 مرحبا 🌱</p>"),
        },
    })
}

/// A followed account's new public post; every tenth a poll (Question) with its votes.
fn timeline_post(actor: &str, n: usize) -> serde_json::Value {
    let mut object = json!({
        "id": format!("{actor}/posts/new-{n}"), "type": "Note", "attributedTo": actor,
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "cc": [format!("{actor}/followers")],
        "url": format!("{actor}/@p/new-{n}"),
        "content": format!("<p>Post {n}: 東京 مرحبا 🌱 <a href=\"https://example.org/\">link</a></p>"),
        "published": hortus::times::now(),
        "replies": {"type": "Collection", "totalItems": n % 7},
    });
    if n.is_multiple_of(10) {
        object["type"] = json!("Question");
        object["oneOf"] = json!([
            {"type": "Note", "name": "はい", "replies": {"type": "Collection", "totalItems": n % 13}},
            {"type": "Note", "name": "لا", "replies": {"type": "Collection", "totalItems": n % 5}},
        ]);
    }
    json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{actor}/creates/{n}"), "type": "Create", "actor": actor,
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "object": object,
    })
}

/// What one thread verifies in a second: a whole signed POST, as the inbox does it.
fn verify_rate() -> f64 {
    let (private, public) = hortus::httpsig::generate_keypair().expect("key");
    let key = hortus::httpsig::load_private_key(&private).expect("load key");
    let url = url::Url::parse("https://example.net/inbox").expect("url");
    let body = br#"{"type":"Create"}"#;
    let mut headers = hortus::httpsig::sign_post(
        &url,
        body,
        "application/activity+json",
        "https://peer.example/users/a#main-key",
        &key,
        SystemTime::now(),
    )
    .expect("sign");
    headers.push(("host".into(), "example.net".into()));
    headers.push(("content-type".into(), "application/activity+json".into()));
    let req = hortus::httpsig::RequestParts {
        method: "POST",
        path_and_query: "/inbox",
        headers: &headers,
        body: Some(body),
    };
    let pending = hortus::httpsig::signature_key_id(&req).expect("parse");
    let t0 = Instant::now();
    let mut n = 0u32;
    while t0.elapsed() < Duration::from_secs(1) {
        hortus::httpsig::verify(&req, &pending, &public, SystemTime::now()).expect("verify");
        n += 1;
    }
    f64::from(n) / t0.elapsed().as_secs_f64()
}
