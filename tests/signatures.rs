//! RFC 9421 signing with a per-server fallback (PROTOCOL.md §3, issue 14): the real `hortus
//! serve` delivers to two loopback servers. One accepts only RFC 9421 and verifies it with the
//! Python `http-message-signatures` package (tests/peer/hms.py); the other accepts only
//! draft-cavage and verifies it with `@peertube/http-signature` (tests/peer/peer.mjs). Neither
//! uses Hortus's verifier. Needs scripts/install-test-deps.sh.

mod common;
#[path = "support/mock_inbox.rs"]
mod mock_inbox;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use common::TestSite;
use serde_json::{Value, json};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Accepts {
    Rfc9421Only,
    CavageOnly,
}

#[derive(Debug, Clone)]
struct Seen {
    rfc9421: bool,
    answered: u16,
    why: String,
}

#[derive(Clone)]
struct SigPeer {
    host: String,
    base: String,
    accepts: Accepts,
    public_pem: Arc<Mutex<String>>,
    /// The instance actor's key: it signs GETs.
    instance_pem: Arc<Mutex<String>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

fn peer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peer")
}

/// One JSON command to an independent implementation, one JSON answer.
fn run(program: &Path, script: &str, input: &Value) -> Value {
    let mut child = Command::new(program)
        .arg(script)
        .current_dir(peer_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{script} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

impl SigPeer {
    fn start(ip: &str, accepts: Accepts) -> SigPeer {
        let python = peer_dir().join(".venv/bin/python");
        assert!(
            python.is_file()
                && peer_dir()
                    .join("node_modules/@peertube/http-signature")
                    .is_dir(),
            "tests/peer/.venv or node_modules missing: run scripts/install-test-deps.sh first"
        );
        let listener = TcpListener::bind((ip, 0)).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let peer = SigPeer {
            host: addr.to_string(),
            base: format!("http://{addr}"),
            accepts,
            public_pem: Arc::new(Mutex::new(String::new())),
            instance_pem: Arc::new(Mutex::new(String::new())),
            seen: Arc::new(Mutex::new(Vec::new())),
        };
        let data = web::Data::new(peer.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(inbox))
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        tokio::spawn(server);
        peer
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<Seen> {
        for _ in 0..600 {
            let seen = self.seen();
            if seen.len() >= n {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} got {:?}, wanted {n} requests", self.host, self.seen());
    }
}

async fn inbox(req: HttpRequest, body: web::Bytes, peer: web::Data<SigPeer>) -> HttpResponse {
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let rfc9421 = headers.iter().any(|(n, _)| n == "signature-input");
    let method = req.method().as_str().to_string();
    let get = method == "GET";
    let pem = if get {
        peer.instance_pem.lock().unwrap().clone()
    } else {
        peer.public_pem.lock().unwrap().clone()
    };
    let path = req.uri().path().to_string();
    let url = format!("{}{path}", peer.base);
    let accepts = peer.accepts;
    let (ok, why) = web::block(move || {
        let pairs: Vec<Value> = headers.iter().map(|(n, v)| json!([n, v])).collect();
        match (accepts, rfc9421) {
            (Accepts::Rfc9421Only, true) => {
                let out = run(
                    &peer_dir().join(".venv/bin/python"),
                    "hms.py",
                    &json!({"op": "verify", "method": method, "url": url, "headers": pairs,
                            "body_b64": base64::engine::general_purpose::STANDARD.encode(&body),
                            "public_key_pem": pem}),
                );
                (out["ok"] == true, out.to_string())
            }
            (Accepts::CavageOnly, false) => {
                let out = run(
                    Path::new("node"),
                    "peer.mjs",
                    &json!([{"op": "peertube.verify", "method": method, "target": path,
                             "headers": pairs, "public_key_pem": pem}]),
                );
                (out[0]["ok"] == true, out.to_string())
            }
            _ => (
                false,
                "a signature form this server does not read".to_string(),
            ),
        }
    })
    .await
    .unwrap_or((false, "blocking pool".into()));
    let answered = match (ok, get) {
        (false, _) => 401,
        (true, true) => 200,
        (true, false) => 202,
    };
    peer.seen.lock().unwrap().push(Seen {
        rfc9421,
        answered,
        why,
    });
    if answered == 200 {
        // A document only a signed GET gets, as on GoToSocial or a Mastodon in secure mode.
        return HttpResponse::Ok()
            .content_type("application/activity+json")
            .body(
                json!({"@context": "https://www.w3.org/ns/activitystreams",
                         "id": format!("{}{}", peer.base, req.uri().path()), "type": "Note",
                         "content": "<p>署名つき取得 · جلب موقّع 🔐</p>"})
                .to_string(),
            );
    }
    HttpResponse::build(actix_web::http::StatusCode::from_u16(answered).unwrap()).finish()
}

fn activity(site: &TestSite, n: u32) -> Value {
    json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": site.url(&format!("/activities/sig-{n}")),
        "type": "Create",
        "actor": site.url("/users/alice"),
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "cc": [site.url("/users/alice/followers")],
        "object": {"id": site.url(&format!("/posts/sig-{n}")), "type": "Note",
                   "attributedTo": site.url("/users/alice"),
                   "content": "<p>署名の形 · توقيع · 🔏 e\u{301}</p>"},
    })
}

/// Rows of `deliveries` for a server: (state, attempts, last_error).
fn deliveries(site: &TestSite, host: &str) -> Vec<(String, i64, Option<String>)> {
    site.db()
        .prepare("SELECT state, attempts, last_error FROM deliveries WHERE host = ?1 ORDER BY id")
        .unwrap()
        .query_map([host], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

async fn wait_done(site: &TestSite, host: &str, n: usize) -> Vec<(String, i64, Option<String>)> {
    for _ in 0..300 {
        let rows = deliveries(site, host);
        if rows.len() >= n && rows.iter().all(|(state, ..)| state != "pending") {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "deliveries to {host} never finished: {:?}",
        deliveries(site, host)
    );
}

fn remembered(site: &TestSite, host: &str) -> Option<String> {
    site.db()
        .query_row(
            "SELECT form FROM signature_forms WHERE host = ?1",
            [host],
            |r| r.get(0),
        )
        .ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_401_gets_rfc9421_at_once_and_the_choice_survives_a_restart() {
    let mut site = TestSite::federating("127.0.0.61");
    let strict = SigPeer::start("127.0.0.62", Accepts::Rfc9421Only);
    let classic = SigPeer::start("127.0.0.63", Accepts::CavageOnly);
    for p in [&strict, &classic] {
        site.allow(&p.host);
        mock_inbox::add_follower(
            &site.db(),
            &format!("{}/users/zoë", p.base),
            &format!("{}/inbox", p.base),
            None,
        );
    }
    let serve = site.spawn_serve(1).await;
    let (_, actor) = common::get_json(&site.url("/users/alice")).await;
    let pem = actor["publicKey"]["publicKeyPem"]
        .as_str()
        .expect("pem")
        .to_string();
    for p in [&strict, &classic] {
        *p.public_pem.lock().unwrap() = pem.clone();
    }
    let inboxes = [
        format!("{}/inbox", strict.base),
        format!("{}/inbox", classic.base),
    ];
    hortus::delivery::enqueue(&site.db(), &activity(&site, 1), &inboxes).expect("enqueue");

    // The strict server: draft-cavage first (nothing known yet), 401, then RFC 9421, 202.
    let seen = strict.wait_for(2).await;
    assert_eq!(
        seen.iter()
            .map(|s| (s.rfc9421, s.answered))
            .collect::<Vec<_>>(),
        vec![(false, 401), (true, 202)],
        "{seen:#?}\n{}",
        serve.log()
    );
    // The cavage-only server never sees RFC 9421.
    let seen = classic.wait_for(1).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].rfc9421, seen[0].answered),
        (false, 202),
        "{}",
        seen[0].why
    );
    // One attempt, delivered: the 401 was no failure.
    assert_eq!(
        wait_done(&site, &strict.host, 1).await,
        vec![("done".to_string(), 1, None)]
    );
    wait_done(&site, &classic.host, 1).await;
    assert_eq!(remembered(&site, &strict.host).as_deref(), Some("rfc9421"));
    assert_eq!(remembered(&site, &classic.host), None);

    // Restarted, Hortus still knows: RFC 9421 straight away, cavage for the other.
    drop(serve);
    let serve = site.spawn_serve(2).await;
    hortus::delivery::enqueue(&site.db(), &activity(&site, 2), &inboxes).expect("enqueue");
    let seen = strict.wait_for(3).await;
    assert_eq!(
        (seen[2].rfc9421, seen[2].answered),
        (true, 202),
        "{seen:#?}\n{}",
        serve.log()
    );
    let seen = classic.wait_for(2).await;
    assert_eq!((seen[1].rfc9421, seen[1].answered), (false, 202));
    wait_done(&site, &strict.host, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(strict.seen().len(), 3, "no second knock after the restart");
    assert_eq!(classic.seen().len(), 2);
}

/// Signed GETs take the same per-server choice as deliveries: draft-cavage first, RFC 9421 at
/// once after a 401 (verified by Python `http-message-signatures`), remembered in
/// `signature_forms`; the next GET goes straight to RFC 9421, and so does the next delivery
/// after a restart. A cavage-only server (`@peertube/http-signature`) never sees RFC 9421.
#[tokio::test(flavor = "multi_thread")]
async fn signed_gets_fall_back_to_rfc9421_and_share_the_remembered_form() {
    let mut site = TestSite::federating("127.0.0.64");
    let strict = SigPeer::start("127.0.0.65", Accepts::Rfc9421Only);
    let classic = SigPeer::start("127.0.0.66", Accepts::CavageOnly);
    for p in [&strict, &classic] {
        site.allow(&p.host);
    }
    // The fetching side in process (no server: `hortus serve` takes the port later).
    let state = hortus::app::state(&hortus::app::Site::open(&site.dir).expect("site"))
        .await
        .expect("state");
    for p in [&strict, &classic] {
        *p.instance_pem.lock().unwrap() = state.instance_key.public_pem.clone();
        *p.public_pem.lock().unwrap() = state.actor_key.public_pem.clone();
    }
    let remote = hortus::activitypub::fetch::Remote::of(&state);
    let fetch = |p: &SigPeer, n: u32| format!("{}/notes/{n}", p.base);

    let (_, doc) = hortus::activitypub::fetch::get_document(&remote, &fetch(&strict, 1))
        .await
        .expect("fetched after the fallback");
    assert_eq!(doc["id"], fetch(&strict, 1));
    let seen = strict.seen();
    assert_eq!(
        seen.iter()
            .map(|s| (s.rfc9421, s.answered))
            .collect::<Vec<_>>(),
        vec![(false, 401), (true, 200)],
        "{seen:#?}"
    );
    assert_eq!(remembered(&site, &strict.host).as_deref(), Some("rfc9421"));
    hortus::activitypub::fetch::get_document(&remote, &fetch(&classic, 1))
        .await
        .expect("cavage");
    let seen = classic.seen();
    assert_eq!(
        (seen.len(), seen[0].rfc9421, seen[0].answered),
        (1, false, 200),
        "{}",
        seen[0].why
    );
    assert_eq!(remembered(&site, &classic.host), None);

    // Known now: RFC 9421 straight away, no second knock.
    hortus::activitypub::fetch::get_document(&remote, &fetch(&strict, 2))
        .await
        .expect("fetched");
    let seen = strict.seen();
    assert_eq!(
        (seen.len(), seen[2].rfc9421, seen[2].answered),
        (3, true, 200)
    );

    // Deliveries read the same table: after a restart, the first POST is RFC 9421.
    drop(remote);
    drop(state);
    mock_inbox::add_follower(
        &site.db(),
        &format!("{}/users/zoë", strict.base),
        &format!("{}/inbox", strict.base),
        None,
    );
    let serve = site.spawn_serve(1).await;
    hortus::delivery::enqueue(
        &site.db(),
        &activity(&site, 3),
        &[format!("{}/inbox", strict.base)],
    )
    .expect("enqueue");
    let seen = strict.wait_for(4).await;
    assert_eq!(
        (seen[3].rfc9421, seen[3].answered),
        (true, 202),
        "{seen:#?}\n{}",
        serve.log()
    );
    wait_done(&site, &strict.host, 1).await;
    assert_eq!(strict.seen().len(), 4, "no knock with cavage first");
}
