//! Follows both ways with a real, independent ActivityPub server: Fedify 1.5.9 under Node
//! (tests/peer/fedify_peer.mjs), on its own loopback address. Fedify checks Hortus's signatures
//! and reads Hortus's documents with its own code; Hortus checks Fedify's.
//!
//! Needs `scripts/install-test-deps.sh` to have run (tests/peer/node_modules); offline after that.
//! What Hortus sends (its Accept, its Follow) goes out through the delivery queue (src/delivery),
//! drained by the workers the test site starts as `hortus serve` does.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use tokio::time::Instant;

/// Long enough for a delivery and its answer on loopback (retries included), short enough that
/// a broken build fails instead of hanging.
const DEADLINE: Duration = Duration::from_secs(30);
/// Node start-up, plus one RSA-4096 generation the first time (the keys are kept afterwards).
const START_DEADLINE: Duration = Duration::from_secs(90);

fn peer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peer")
}

/// The Fedify server, killed when dropped. Its stdin stays open while it lives: the peer also
/// exits when stdin closes, so it does not outlive a test process that dies without a kill.
struct Fedify {
    child: Child,
    stderr: PathBuf,
    _stderr_dir: tempfile::TempDir,
    base: String,
    /// `host:port`, what the allowlist takes.
    host: String,
    actor: String,
    key_id: String,
}

impl Fedify {
    async fn start(ip: &str) -> Fedify {
        let dir = peer_dir();
        assert!(
            dir.join("node_modules/@fedify/fedify").is_dir(),
            "tests/peer/node_modules is missing @fedify/fedify: run scripts/install-test-deps.sh first"
        );
        let stderr_dir = tempfile::tempdir().expect("temp dir");
        let stderr = stderr_dir.path().join("fedify.stderr");
        let keys = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fedify-peer-keys.json");
        let mut child = Command::new("node")
            .current_dir(&dir)
            .arg("fedify_peer.mjs")
            .arg(ip)
            .arg("--keys")
            .arg(&keys)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run node ({e}): install Node >= 20, then run scripts/install-test-deps.sh")
            });
        // The first stdout line, read on a thread so that the wait is bounded.
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line).map(|_| line);
            let _ = tx.send(read);
        });
        let first = tokio::task::spawn_blocking(move || rx.recv_timeout(START_DEADLINE))
            .await
            .expect("join");
        let line = match first {
            Ok(Ok(line)) if !line.trim().is_empty() => line,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the Fedify peer did not start ({other:?}); its stderr:\n{}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                )
            }
        };
        let info: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the Fedify peer printed {line:?}: {e}"));
        let field = |k: &str| info[k].as_str().expect(k).to_string();
        Fedify {
            base: field("base"),
            host: field("host"),
            actor: field("actor"),
            key_id: field("key_id"),
            child,
            stderr,
            _stderr_dir: stderr_dir,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// A control request; panics with Fedify's answer and logs unless it is 200.
    async fn control(&self, path: &str, body: Value) -> Value {
        let resp = client()
            .post(format!("{}{path}", self.base))
            .json(&body)
            .timeout(DEADLINE)
            .send()
            .await
            .expect("control request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        assert_eq!(
            status,
            200,
            "Fedify {path} {body}: {text}\n{}",
            self.diagnostics().await
        );
        serde_json::from_str(&text).expect("control JSON")
    }

    /// What Fedify's inbox received and what it sent: see fedify_peer.mjs.
    async fn log(&self) -> Value {
        match self.try_log().await {
            Ok(log) => log,
            Err(e) => panic!("{e}; Fedify's stderr:\n{}", self.stderr()),
        }
    }

    async fn try_log(&self) -> Result<Value, String> {
        let resp = client()
            .get(format!("{}/_control/log", self.base))
            .timeout(DEADLINE)
            .send()
            .await
            .map_err(|e| format!("cannot read Fedify's log: {e}"))?;
        resp.json()
            .await
            .map_err(|e| format!("Fedify's log is not JSON: {e}"))
    }

    async fn diagnostics(&self) -> String {
        let log = match self.try_log().await {
            Ok(log) => format!("{log:#}"),
            Err(e) => e,
        };
        format!("Fedify's log: {log}\nFedify's stderr:\n{}", self.stderr())
    }
}

impl Drop for Fedify {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The activities of one type that Fedify's inbox listeners got (only verified ones get there).
fn received<'a>(log: &'a Value, kind: &str) -> Vec<&'a Value> {
    log["inbox"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["type"] == kind)
        .collect()
}

/// The requests Fedify sent to `url`.
fn sent_to<'a>(log: &'a Value, method: &str, url: &str) -> Vec<&'a Value> {
    log["outgoing"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["method"] == method && r["url"] == url)
        .collect()
}

fn header<'a>(request: &'a Value, name: &str) -> Option<&'a str> {
    request["headers"]
        .as_array()?
        .iter()
        .find(|h| h[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .and_then(|h| h[1].as_str())
}

fn follower_row(site: &TestSite, actor: &str) -> Option<(String, String)> {
    site.db()
        .query_row(
            "SELECT state, follow_id FROM followers WHERE actor_id = ?1",
            [actor],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .ok()
}

fn following_row(site: &TestSite, actor: &str) -> Option<(String, String)> {
    site.db()
        .query_row(
            "SELECT state, follow_id FROM following WHERE actor_id = ?1",
            [actor],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .ok()
}

/// Hortus's queue, for failure messages: where its deliveries stand.
fn deliveries(site: &TestSite) -> String {
    let db = site.db();
    let mut stmt = db
        .prepare(
            "SELECT o.activity_type, d.inbox, d.state, d.attempts, d.last_status, d.last_error
             FROM deliveries d JOIN outgoing_activities o ON o.id = d.activity_id ORDER BY d.id",
        )
        .expect("query");
    let rows = stmt
        .query_map([], |r| {
            Ok(format!(
                "{} → {}: {} after {} attempt(s), last status {:?}, last error {:?}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, Option<String>>(5)?,
            ))
        })
        .expect("rows");
    rows.map(|r| r.expect("row")).collect::<Vec<_>>().join("\n")
}

/// Waits (bounded) for Fedify's inbox to get an activity from Hortus that its outbound queue
/// should have delivered; the failure message shows both sides.
async fn wait_for_delivery(
    site: &TestSite,
    fedify: &Fedify,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let log = fedify.log().await;
        if pred(&log) {
            return log;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out after {DEADLINE:?} waiting for {what}.\n\
                 Hortus's deliveries (none attempted: are the delivery workers running?):\n{}\n{}",
                deliveries(site),
                fedify.diagnostics().await
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn start(site: &mut TestSite, fedify: &Fedify) -> std::sync::Arc<hortus::web::AppState> {
    site.allow(&fedify.host);
    site.start().await
}

#[tokio::test(flavor = "multi_thread")]
async fn fedify_follows_hortus_and_verifies_the_accept() {
    let mut site = TestSite::federating("127.0.0.2");
    let fedify = Fedify::start("127.0.0.6").await;
    start(&mut site, &fedify).await;
    let alice = site.url("/users/alice");

    // Fedify looks alice up by URL (WebFinger would force https) with a signed GET, reads her
    // actor document, and POSTs a Follow that Hortus verifies at once.
    let answer = fedify
        .control("/_control/follow", json!({"target": alice}))
        .await;
    let target = &answer["target"];
    assert_eq!(target["id"], alice, "{answer:#}");
    assert_eq!(target["type"], "Person");
    assert_eq!(target["inbox"], site.url("/users/alice/inbox"));
    assert_eq!(target["sharedInbox"], site.url("/inbox"));
    assert_eq!(target["followers"], site.url("/users/alice/followers"));
    assert_eq!(target["publicKey"], format!("{alice}#main-key"));
    let follow_id = answer["follow_id"].as_str().expect("follow id").to_string();

    let log = fedify.log().await;
    let posts = sent_to(&log, "POST", &site.url("/users/alice/inbox"));
    assert_eq!(posts.len(), 1, "{log:#}");
    assert_eq!(
        posts[0]["status"], 202,
        "Hortus accepted the Follow: {log:#}"
    );
    let signature = header(posts[0], "signature").unwrap_or_default();
    assert!(
        signature.contains(&format!("keyId=\"{}\"", fedify.key_id)),
        "{signature}"
    );
    assert_eq!(
        follower_row(&site, &fedify.actor),
        Some(("accepted".to_string(), follow_id.clone())),
        "the follower is stored with its Follow's id"
    );

    // Hortus's Accept, through the delivery queue: Fedify verifies its signature and the Accept
    // listener matches the embedded Follow to the one it sent.
    let log = wait_for_delivery(&site, &fedify, "Hortus's Accept in Fedify's inbox", |l| {
        !received(l, "Accept").is_empty()
    })
    .await;
    let accepts = received(&log, "Accept");
    assert_eq!(accepts.len(), 1, "{log:#}");
    let accept = accepts[0];
    assert_eq!(accept["actor"], alice);
    assert_eq!(accept["object"], follow_id.as_str());
    assert_eq!(accept["object_type"], "Follow", "the Follow is embedded");
    assert_eq!(accept["object_actor"], fedify.actor);
    assert_eq!(accept["object_object"], alice);
    assert_eq!(accept["matched"], true, "{log:#}");
    assert_eq!(log["following"][&alice]["state"], "accepted", "{log:#}");
    let delivered: Vec<_> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["body"].as_str().is_some_and(|b| b.contains("\"Accept\"")))
        .collect();
    assert!(
        delivered.iter().all(|r| r["status"] == 202),
        "Fedify answered the Accept with 202: {delivered:#?}"
    );
    assert_eq!(log["errors"], json!([]), "{log:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hortus_follows_fedify_and_records_the_accept() {
    let mut site = TestSite::federating("127.0.0.2");
    let fedify = Fedify::start("127.0.0.6").await;
    let state = start(&mut site, &fedify).await;
    let alice = site.url("/users/alice");

    // By URL: Hortus fetches Fedify's actor (signed GET from its instance actor) and queues the
    // Follow for Fedify's inbox.
    if let Err(e) = hortus::owner::follow(&state, &fedify.actor).await {
        panic!("follow: {e}\n{}", fedify.diagnostics().await);
    }
    let (pending, follow_id) = following_row(&site, &fedify.actor).expect("following row");
    assert_eq!(pending, "pending");
    let actor_fetch = fedify.log().await;
    let stored_inbox: String = site
        .db()
        .query_row(
            "SELECT inbox FROM remote_actors WHERE id = ?1",
            [&fedify.actor],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("Fedify's actor is cached ({e}): {actor_fetch:#}"));
    assert_eq!(stored_inbox, format!("{}/inbox", fedify.actor));

    // Fedify verifies the Follow (its listener only sees verified activities) and answers with
    // an Accept that Hortus verifies and matches.
    let log = wait_for_delivery(&site, &fedify, "Hortus's Follow in Fedify's inbox", |l| {
        !received(l, "Follow").is_empty()
    })
    .await;
    let follows = received(&log, "Follow");
    assert_eq!(follows.len(), 1, "{log:#}");
    assert_eq!(follows[0]["id"], follow_id.as_str());
    assert_eq!(follows[0]["actor"], alice);
    assert_eq!(follows[0]["object"], fedify.actor);
    assert_eq!(
        follows[0]["recipient"], "carol",
        "delivered to carol's own inbox"
    );

    let deadline = Instant::now() + DEADLINE;
    loop {
        let row = following_row(&site, &fedify.actor);
        if row.as_ref().is_some_and(|(s, _)| s == "accepted") {
            assert_eq!(row.unwrap().1, follow_id);
            break;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out after {DEADLINE:?} waiting for Hortus to record Fedify's Accept: {row:?}\n{}",
                fedify.diagnostics().await
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = fedify.log().await;
    let accepts: Vec<_> = sent_to(&log, "POST", &site.url("/users/alice/inbox"))
        .into_iter()
        .filter(|r| r["body"].as_str().is_some_and(|b| b.contains("\"Accept\"")))
        .collect();
    assert!(
        !accepts.is_empty() && accepts.iter().all(|r| r["status"] == 202),
        "Hortus answered Fedify's Accept with 202: {log:#}"
    );
    assert_eq!(log["followers"], json!([alice]), "{log:#}");
    assert_eq!(log["errors"], json!([]), "{log:#}");

    // What "Fedify's listener got it" is worth: an unsigned copy of the Follow is refused.
    let body = log["requests"][0]["body"]
        .as_str()
        .expect("the Follow as received");
    let unsigned = client()
        .post(format!("{}/users/carol/inbox", fedify.base))
        .header("Content-Type", AP)
        .body(body.to_string())
        .timeout(DEADLINE)
        .send()
        .await
        .expect("unsigned POST");
    assert_eq!(unsigned.status(), 401, "Fedify checks signatures");

    // Unfollowing: an Undo that embeds the whole Follow (Threads answers a bare id with 500),
    // which Fedify verifies, resolves to that Follow and acts on: alice leaves its followers.
    if let Err(e) = hortus::owner::unfollow(&state, &fedify.actor).await {
        panic!("unfollow: {e}\n{}", fedify.diagnostics().await);
    }
    let log = wait_for_delivery(&site, &fedify, "Hortus's Undo in Fedify's inbox", |l| {
        !received(l, "Undo").is_empty()
    })
    .await;
    let undo = received(&log, "Undo")[0];
    assert_eq!(undo["actor"], alice, "{log:#}");
    assert_eq!(undo["object"], follow_id.as_str(), "{log:#}");
    assert_eq!(undo["object_type"], "Follow", "{log:#}");
    assert_eq!(
        log["followers"],
        json!([]),
        "Fedify dropped the follow: {log:#}"
    );
    assert_eq!(log["errors"], json!([]), "{log:#}");
    assert!(following_row(&site, &fedify.actor).is_none_or(|(s, _)| s != "accepted"));
}

#[tokio::test(flavor = "multi_thread")]
async fn fedify_undo_follow_removes_the_follower() {
    let mut site = TestSite::federating("127.0.0.2");
    let fedify = Fedify::start("127.0.0.6").await;
    start(&mut site, &fedify).await;
    let alice = site.url("/users/alice");

    fedify
        .control("/_control/follow", json!({"target": alice}))
        .await;
    assert!(follower_row(&site, &fedify.actor).is_some(), "followed");

    // Fedify embeds the whole Follow in its Undo; sendActivity fails unless Hortus answers 2xx.
    fedify
        .control("/_control/undo", json!({"target": alice}))
        .await;
    let log = fedify.log().await;
    let undo = sent_to(&log, "POST", &site.url("/users/alice/inbox"))
        .into_iter()
        .find(|r| r["body"].as_str().is_some_and(|b| b.contains("\"Undo\"")))
        .unwrap_or_else(|| panic!("no Undo sent: {log:#}"));
    assert_eq!(undo["status"], 202, "{log:#}");
    let body: Value = serde_json::from_str(undo["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["object"]["type"], "Follow", "{body:#}");
    assert_eq!(
        follower_row(&site, &fedify.actor),
        None,
        "the follower is gone"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fedify_signed_gets_pass_hortus_signed_fetch() {
    let mut site = TestSite::federating_with("127.0.0.2", |cfg| {
        *cfg = cfg.replace("signed_fetch = false", "signed_fetch = true");
    });
    site.write_post("hello.md", "+++\ntitle = \"Hello\"\n+++\nHello, Fedify.");
    site.publish();
    let fedify = Fedify::start("127.0.0.6").await;
    start(&mut site, &fedify).await;
    let note = site.url("/posts/hello.json");

    // Fedify's authenticated document loader signs its GETs with carol's key.
    let signed = fedify
        .control("/_control/lookup", json!({"url": note, "signed": true}))
        .await;
    assert_eq!(signed["document"]["type"], "Note", "{signed:#}");
    let outbox = fedify
        .control(
            "/_control/lookup",
            json!({"url": site.url("/users/alice/outbox"), "signed": true}),
        )
        .await;
    assert_eq!(
        outbox["document"]["type"], "OrderedCollection",
        "{outbox:#}"
    );

    let unsigned = fedify
        .control("/_control/lookup", json!({"url": note, "signed": false}))
        .await;
    assert!(
        unsigned["error"]
            .as_str()
            .is_some_and(|e| e.contains("401")),
        "an unsigned GET is refused: {unsigned:#}"
    );
}
