//! Real servers' traffic (issue 10): what GoToSocial 0.19.2 and snac 2.94 really sent and served,
//! captured byte for byte (tests/fixtures/peers/, see its README), replayed against Hortus at
//! `https://alice.test` with the inbox's clock set to each request's own `Date`. The documents
//! are served by loopback peers over TLS under the servers' real names (tests/common/tls_peer.rs).
//! Every folder under tests/fixtures/peers/ is covered: a new implementation's captures need only
//! their expected outcomes in its `expected.json`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::tls_peer::{Alice, Ca, TlsPeer};
use hortus::activitypub::fetch;
use hortus::activitypub::public_keys::{self, PublishedKey};
use hortus::httpsig::{self, RequestParts, VerifyOptions};
use serde_json::{Value, json};
use url::Url;

const ACTOR_TYPES: [&str; 5] = ["Person", "Service", "Application", "Group", "Organization"];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/peers")
}

/// One implementation's folder: its files by name (`expected.json` apart).
struct Implementation {
    name: String,
    files: BTreeMap<String, Value>,
    expected: BTreeMap<String, u16>,
}

fn implementations() -> Vec<Implementation> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("tests/fixtures/peers")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 2, "captures are missing: {dirs:?}");
    dirs.into_iter()
        .map(|dir| {
            let name = dir.file_name().unwrap().to_string_lossy().to_string();
            let mut files = BTreeMap::new();
            let mut expected = BTreeMap::new();
            for entry in std::fs::read_dir(&dir).expect("read dir") {
                let path = entry.expect("entry").path();
                let file = path.file_name().unwrap().to_string_lossy().to_string();
                if !file.ends_with(".json") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("read");
                let value: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{name}/{file}: not JSON: {e}"));
                if file == "expected.json" {
                    expected = serde_json::from_value(value)
                        .unwrap_or_else(|e| panic!("{name}/expected.json: {e}"));
                } else {
                    files.insert(file, value);
                }
            }
            Implementation {
                name,
                files,
                expected,
            }
        })
        .collect()
}

/// A captured request: method, path, headers as received, the exact body bytes.
struct Captured {
    file: String,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Captured {
    fn parts(&self) -> RequestParts<'_> {
        RequestParts {
            method: &self.method,
            path_and_query: &self.path,
            headers: &self.headers,
            body: Some(&self.body),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn date(&self) -> SystemTime {
        let date = self.header("date").expect("a Date header");
        httpdate::parse_http_date(date)
            .unwrap_or_else(|e| panic!("{}: Date {date}: {e}", self.file))
    }

    fn key_id(&self) -> Option<String> {
        self.header("signature")?;
        let pending = httpsig::signature_key_id(&self.parts())
            .unwrap_or_else(|e| panic!("{}: signature does not parse: {e}", self.file));
        Some(pending.key_id().to_string())
    }
}

impl Implementation {
    fn requests(&self) -> Vec<Captured> {
        let mut out: Vec<Captured> = self
            .files
            .iter()
            .filter(|(f, _)| f.starts_with("request-"))
            .map(|(file, v)| {
                let s = |k: &str| {
                    v[k].as_str()
                        .unwrap_or_else(|| panic!("{}/{file}: no {k}", self.name))
                        .to_string()
                };
                let headers = v["headers"]
                    .as_object()
                    .unwrap_or_else(|| panic!("{}/{file}: no headers", self.name))
                    .iter()
                    .filter_map(|(n, v)| Some((n.to_ascii_lowercase(), v.as_str()?.to_string())))
                    .collect();
                Captured {
                    file: file.clone(),
                    method: s("method"),
                    path: s("path"),
                    headers,
                    body: v["body_bytes"]
                        .as_str()
                        .unwrap_or_default()
                        .as_bytes()
                        .to_vec(),
                }
            })
            .collect();
        // In the order they were sent: by Date, then by name.
        out.sort_by_key(|r| (r.header("date").map(|_| r.date()), r.file.clone()));
        out
    }

    /// Every served document: a file's `document` (`{status, document}` captures) or the file
    /// itself (a document copied from an implementation's docs).
    fn documents(&self) -> Vec<(&str, &Value)> {
        self.files
            .iter()
            .filter(|(f, _)| !f.starts_with("request-"))
            .map(|(f, v)| (f.as_str(), v.get("document").unwrap_or(v)))
            .collect()
    }

    /// The key `key_id`, wherever this implementation publishes it.
    fn key(&self, key_id: &str) -> Option<PublishedKey> {
        self.documents()
            .into_iter()
            .find_map(|(_, d)| public_keys::find_key(d, key_id))
    }

    fn actor(&self) -> Option<&Value> {
        self.documents().into_iter().map(|(_, d)| d).find(|d| {
            d.get("inbox").is_some() && d["type"].as_str().is_some_and(|t| ACTOR_TYPES.contains(&t))
        })
    }
}

fn is_actor(doc: &Value) -> bool {
    doc["type"]
        .as_str()
        .is_some_and(|t| ACTOR_TYPES.contains(&t))
        && doc.get("inbox").is_some()
}

#[test]
fn every_captured_document_parses_and_every_signature_verifies_at_its_own_date() {
    let mut verified = 0;
    for imp in implementations() {
        // Documents: actors parse (inbox from the full actor), keys are found, notes parse.
        for (file, doc) in imp.documents() {
            let ctx = format!("{}/{file}", imp.name);
            assert!(doc.is_object(), "{ctx}: not a JSON object");
            if is_actor(doc) {
                let id = doc["id"].as_str().unwrap_or_else(|| panic!("{ctx}: no id"));
                let actor = fetch::parse_actor(doc, &Url::parse(id).unwrap())
                    .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                if !public_keys::published_keys(doc).is_empty() {
                    assert!(actor.public_key_pem.is_some(), "{ctx}: no usable key");
                }
            } else if doc["type"] == "Note" {
                let note = hortus::conversation::note::RemoteNote::parse(doc)
                    .unwrap_or_else(|| panic!("{ctx}: the Note does not parse"));
                assert_eq!(Some(note.id.as_str()), doc["id"].as_str(), "{ctx}");
            } else if doc.get("links").is_some() {
                let self_link = doc["links"].as_array().unwrap().iter().any(|l| {
                    l["rel"] == "self"
                        && l["href"]
                            .as_str()
                            .is_some_and(|h| h.starts_with("https://"))
                });
                assert!(self_link, "{ctx}: WebFinger without a self link");
            }
        }
        // Requests: every signed one verifies with the captured key at its own Date, and not an
        // hour later (the clock is what judges it).
        for req in imp.requests() {
            let ctx = format!("{}/{}", imp.name, req.file);
            if req.method == "POST" {
                let parsed: Value = serde_json::from_slice(&req.body)
                    .unwrap_or_else(|e| panic!("{ctx}: body_bytes not JSON: {e}"));
                assert_eq!(
                    parsed, imp.files[&req.file]["body"],
                    "{ctx}: body_bytes vs body"
                );
            }
            let Some(key_id) = req.key_id() else {
                assert_eq!(req.method, "GET", "{ctx}: an unsigned POST");
                continue;
            };
            let key = imp
                .key(&key_id)
                .unwrap_or_else(|| panic!("{ctx}: no captured document publishes {key_id}"));
            let pending = httpsig::signature_key_id(&req.parts()).unwrap();
            let opts = VerifyOptions::default();
            httpsig::verify_with(&req.parts(), &pending, &key.pem, req.date(), &opts)
                .unwrap_or_else(|e| panic!("{ctx}: does not verify at its Date: {e}"));
            let later = req.date() + httpsig::DEFAULT_CLOCK_WINDOW + Duration::from_secs(60);
            assert!(
                httpsig::verify_with(&req.parts(), &pending, &key.pem, later, &opts).is_err(),
                "{ctx}: still valid past the clock window"
            );
            verified += 1;
        }
    }
    assert!(verified >= 8, "only {verified} signed requests verified");
}

/// One implementation's captured POSTs, each at its own Date, through the real inbox of a
/// Hortus at alice.test; its documents served under the real host name by a TLS peer.
async fn replay(imp: &Implementation, ca: &Ca, ip_peer: &str, ip_site: &str) {
    if !imp.requests().iter().any(|r| r.method == "POST") {
        // Documents copied from an implementation's docs: parsed by the test above.
        return;
    }
    let actor = imp
        .actor()
        .unwrap_or_else(|| panic!("{}: no actor document", imp.name));
    let actor_url = Url::parse(actor["id"].as_str().unwrap()).unwrap();
    let host = actor_url.host_str().unwrap().to_string();
    let peer = TlsPeer::start(ip_peer, &host, ca);
    // Each document at its own URL: the actor (signed GETs only, as GoToSocial answers), the
    // key URL the requests name (its own capture when there is one), notes, WebFinger.
    let requests = imp.requests();
    for (file, doc) in imp.documents() {
        match file {
            "key-url.json" => {
                for key_id in requests.iter().filter_map(Captured::key_id) {
                    let url = Url::parse(&key_id).unwrap();
                    peer.serve(url.path(), doc.clone(), false);
                }
            }
            "webfinger.json" => peer.serve("/.well-known/webfinger", doc.clone(), false),
            _ => {
                if let Some(id) = doc["id"].as_str().and_then(|i| Url::parse(i).ok())
                    && id.host_str() == Some(host.as_str())
                    && !peer.docs.lock().unwrap().contains_key(id.path())
                {
                    peer.serve(id.path(), doc.clone(), is_actor(doc));
                }
            }
        }
    }
    for file in imp.expected.keys() {
        assert!(
            requests
                .iter()
                .any(|r| &r.file == file && r.method == "POST"),
            "{}/expected.json names {file}, which is no captured POST",
            imp.name
        );
    }
    let alice = Alice::start(ip_site, &[&peer], ca).await;
    let mut followed = false;
    for req in requests.iter().filter(|r| r.method == "POST") {
        let ctx = format!("{}/{}", imp.name, req.file);
        let want = *imp.expected.get(&req.file).unwrap_or_else(|| {
            panic!(
                "{ctx}: no expected status in expected.json (see tests/fixtures/peers/README.md)"
            )
        });
        alice.set_clock(req.date());
        let (status, body) = alice.send("POST", &req.path, &req.headers, &req.body).await;
        assert_eq!(status, want, "{ctx}: {body}");
        let kind = imp.files[&req.file]["body"]["type"]
            .as_str()
            .unwrap_or_default();
        followed |= status == 202 && kind == "Follow";
    }
    if followed {
        let inbox = Url::parse(actor["inbox"].as_str().unwrap()).unwrap();
        let accept = peer.wait_for_post(inbox.path()).await;
        assert_eq!(accept.json()["type"], "Accept", "{}", imp.name);
        assert_eq!(accept.json()["actor"], "https://alice.test/users/alice");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_captured_post_runs_through_the_inbox_with_its_expected_outcome() {
    let ca = Ca::new();
    for (n, imp) in implementations().iter().enumerate() {
        // A distinct pair of loopback addresses per implementation.
        let peer_ip = format!("127.0.10.{}", 2 * n + 1);
        let site_ip = format!("127.0.10.{}", 2 * n + 2);
        replay(imp, &ca, &peer_ip, &site_ip).await;
    }
}

/// The must-show of issue 10: GoToSocial's real Follow, its real stub key answer and actor.
#[tokio::test(flavor = "multi_thread")]
async fn gotosocials_captured_follow_gets_202_and_an_accept_at_its_inbox() {
    let imp = implementations()
        .into_iter()
        .find(|i| i.name == "gotosocial-0.19.2")
        .expect("the GoToSocial captures");
    let doc = |f: &str| imp.files[f]["document"].clone();
    let ca = Ca::new();
    let gts = TlsPeer::start("127.0.11.1", "gts.test", &ca);
    gts.serve("/users/gwen/main-key", doc("key-url.json"), false);
    gts.serve("/users/gwen", doc("actor.json"), true);
    let alice = Alice::start("127.0.11.2", &[&gts], &ca).await;

    let follow = imp
        .requests()
        .into_iter()
        .find(|r| r.file == "request-post-follow.json")
        .unwrap();
    // Judged now, the capture is stale: the clock decides.
    let (status, _) = alice
        .send("POST", &follow.path, &follow.headers, &follow.body)
        .await;
    assert_eq!(
        status, 401,
        "a signature from hours ago is refused at the current time"
    );
    alice.set_clock(follow.date());
    let (status, body) = alice
        .send("POST", &follow.path, &follow.headers, &follow.body)
        .await;
    assert_eq!(status, 202, "{body}");

    // The stub was followed to the full actor, fetched with a signed GET; only that is stored.
    let got = gts.received();
    assert!(
        got.iter()
            .any(|r| r.method == "GET" && r.path == "/users/gwen/main-key")
    );
    let actor_get = got
        .iter()
        .find(|r| r.method == "GET" && r.path == "/users/gwen")
        .expect("the full actor fetched");
    assert!(actor_get.headers.iter().any(|(n, _)| n == "signature"));
    let (inbox, key_id): (String, String) = alice
        .db()
        .query_row(
            "SELECT inbox, public_key_id FROM remote_actors WHERE id = 'https://gts.test/users/gwen'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(inbox, "https://gts.test/users/gwen/inbox");
    assert_eq!(key_id, "https://gts.test/users/gwen/main-key");
    let state: String = alice
        .db()
        .query_row(
            "SELECT state FROM followers WHERE actor_id = 'https://gts.test/users/gwen'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(state, "accepted");

    // The Accept reaches gwen's inbox (from the full actor), over TLS, signed by Alice.
    let accept = gts.wait_for_post("/users/gwen/inbox").await;
    let body = accept.json();
    assert_eq!(body["type"], "Accept");
    assert_eq!(
        body["object"]["id"],
        "https://gts.test/users/gwen/follow/01GR3EM82632AP8R7C16QCBY9T"
    );
    assert!(accept.headers.iter().any(|(n, v)| n == "signature"
        && v.contains("keyId=\"https://alice.test/users/alice#main-key\"")));
}

/// A peer on loopback TLS whose actor publishes its key in the shape `key_shape` makes, sending a
/// Follow signed now with the project's signer.
async fn follow_with_key_shape(
    host: &str,
    ips: (&str, &str),
    key_shape: impl FnOnce(&str, &str, &str) -> Value,
) {
    let ca = Ca::new();
    let peer = TlsPeer::start(ips.0, host, &ca);
    let (private_pem, public_pem) = httpsig::generate_keypair().unwrap();
    // Percent-encoded, as servers write non-ASCII paths in ids.
    let actor_url = Url::parse(&format!("https://{host}/users/ミナ")).unwrap();
    let actor = actor_url.to_string();
    let key_id = format!("{actor}#rsa-key");
    let mut doc = json!({
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1",
                     "https://w3id.org/security/multikey/v1"],
        "id": actor, "type": "Person", "preferredUsername": "mina", "name": "ミナ 🌸",
        "inbox": format!("{actor}/inbox"),
        "followers": format!("{actor}/followers"),
    });
    let extra = key_shape(&actor, &key_id, &public_pem);
    for (k, v) in extra.as_object().unwrap() {
        doc[k] = v.clone();
    }
    peer.serve(actor_url.path(), doc, true);
    let alice = Alice::start(ips.1, &[&peer], &ca).await;

    let follow = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("https://{host}/follows/1"), "type": "Follow",
        "actor": actor, "object": "https://alice.test/users/alice",
    });
    let body = follow.to_string();
    let key = httpsig::load_private_key(&private_pem).unwrap();
    let inbox = Url::parse("https://alice.test/inbox").unwrap();
    let mut headers = httpsig::sign_post(
        &inbox,
        body.as_bytes(),
        "application/activity+json",
        &key_id,
        &key,
        SystemTime::now(),
    )
    .unwrap();
    headers.push(("Content-Type".into(), "application/activity+json".into()));
    headers.push(("Host".into(), "alice.test".into()));
    let (status, answer) = alice
        .send("POST", "/inbox", &headers, body.as_bytes())
        .await;
    assert_eq!(status, 202, "{host}: {answer}");
    let accept = peer
        .wait_for_post(&format!("{}/inbox", actor_url.path()))
        .await;
    assert_eq!(accept.json()["type"], "Accept");
    let stored: String = alice
        .db()
        .query_row(
            "SELECT public_key_id FROM remote_actors WHERE id = ?1",
            [&actor],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, key_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follow_signed_with_a_key_in_an_array_gets_202_and_an_accept() {
    follow_with_key_shape(
        "array.test",
        ("127.0.12.1", "127.0.12.2"),
        |actor, key_id, pem| {
            let (_, other) = httpsig::generate_keypair().unwrap();
            json!({"publicKey": [
                {"id": format!("{actor}#other-key"), "owner": actor, "publicKeyPem": other},
                {"id": key_id, "owner": actor, "publicKeyPem": pem},
            ]})
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follow_signed_with_an_fep_521a_rsa_multikey_gets_202_and_an_accept() {
    follow_with_key_shape(
        "multikey.test",
        ("127.0.13.1", "127.0.13.2"),
        |actor, key_id, pem| {
            json!({"assertionMethod": [
                // An Ed25519 Multikey (FEP-521a's own example value) beside it, as Fedify publishes.
                {"id": format!("{actor}#ed25519-key"), "type": "Multikey", "controller": actor,
                 "publicKeyMultibase": "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"},
                {"id": key_id, "type": "Multikey", "controller": actor,
                 "publicKeyMultibase": public_keys::rsa_pem_to_multibase(pem).unwrap()},
            ]})
        },
    )
    .await;
}

/// The other direction of issue 10: `hortus follow gwen@gts.test` used to stay pending for ever,
/// GoToSocial's Accept refused like its Follow. GoToSocial's captured shapes (WebFinger, actor
/// answering signed GETs only, stub Person at the key URL), with a key made here so the test can
/// sign the Accept as GoToSocial would.
#[tokio::test(flavor = "multi_thread")]
async fn a_follow_of_a_gotosocial_account_is_accepted_through_its_stub_key() {
    let imp = implementations()
        .into_iter()
        .find(|i| i.name == "gotosocial-0.19.2")
        .expect("the GoToSocial captures");
    let doc = |f: &str| imp.files[f]["document"].clone();
    let (private_pem, public_pem) = httpsig::generate_keypair().unwrap();
    let mut stub = doc("key-url.json");
    stub["publicKey"]["publicKeyPem"] = json!(public_pem);
    let mut actor = doc("actor.json");
    actor["publicKey"]["publicKeyPem"] = json!(public_pem);
    let ca = Ca::new();
    let gts = TlsPeer::start("127.0.14.1", "gts.test", &ca);
    gts.serve("/users/gwen/main-key", stub, false);
    gts.serve("/users/gwen", actor, true);
    gts.serve("/.well-known/webfinger", doc("webfinger.json"), false);
    let alice = Alice::start("127.0.14.2", &[&gts], &ca).await;

    hortus::owner::follow(&alice.state, "gwen@gts.test")
        .await
        .unwrap_or_else(|e| panic!("follow: {e}"));
    let follow = gts.wait_for_post("/users/gwen/inbox").await.json();
    assert_eq!(follow["type"], "Follow");

    let accept = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": "https://gts.test/users/gwen/accepts/01JDQ7A2W8ZK1B6V3N4M5P6Q7R",
        "type": "Accept",
        "actor": "https://gts.test/users/gwen",
        "object": follow,
    })
    .to_string();
    let key = httpsig::load_private_key(&private_pem).unwrap();
    let inbox = Url::parse("https://alice.test/users/alice/inbox").unwrap();
    let mut headers = httpsig::sign_post(
        &inbox,
        accept.as_bytes(),
        "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"",
        "https://gts.test/users/gwen/main-key",
        &key,
        SystemTime::now(),
    )
    .unwrap();
    headers.push((
        "Content-Type".into(),
        "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"".into(),
    ));
    headers.push(("Host".into(), "alice.test".into()));
    let (status, body) = alice
        .send("POST", inbox.path(), &headers, accept.as_bytes())
        .await;
    assert_eq!(status, 202, "{body}");
    let state: String = alice
        .db()
        .query_row(
            "SELECT state FROM following WHERE actor_id = 'https://gts.test/users/gwen'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(state, "accepted");
}
