//! Cross-verification of `hortus::httpsig` with implementations that share no code with it, run
//! as subprocesses from tests/peer:
//! - draft-cavage: `@peertube/http-signature` (Joyent's reference, forked) and Fedify 1.5
//!   (`signRequest`/`verifyRequest`), in Node (`peer.mjs`);
//! - RFC 9421: the Python `http-message-signatures` package (`hms.py`).
//!
//! Hortus signs, the peer verifies; the peer signs, Hortus verifies; and each direction has a
//! tampered twin that must fail, so a peer that accepts anything cannot pass the test.
//! Needs `scripts/install-test-deps.sh` to have run (CI runs it first); offline after that.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::LazyLock;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hortus::httpsig::{
    RequestParts, SignatureForm, Verified, VerifyError, VerifyOptions, generate_keypair,
    load_private_key, sign_get, sign_post, sign_post_rfc9421, signature_key_id, verify_with,
};
use openssl::pkey::{PKey, Private};
use serde_json::{Value, json};

const KEY_ID: &str = "http://127.0.0.2:8080/users/alice#main-key";
const ACTIVITY: &[u8] = br#"{"@context":"https://www.w3.org/ns/activitystreams","type":"Follow","actor":"http://127.0.0.2:8080/users/alice","object":"https://peer.example/users/bob"}"#;

struct Keys {
    private_pem: String,
    public_pem: String,
    private: PKey<Private>,
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| {
    let (private_pem, public_pem) = generate_keypair().expect("generate a key");
    let private = load_private_key(&private_pem).expect("load the key");
    Keys {
        private_pem,
        public_pem,
        private,
    }
});

fn peer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peer")
}

fn run(program: &Path, args: &[&str], input: &Value) -> Value {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(peer_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(input.to_string().as_bytes())
        .expect("write to the peer");
    drop(stdin);
    let out = child.wait_with_output().expect("wait for the peer");
    assert!(
        out.status.success(),
        "{} failed: {}\n{}",
        program.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "peer printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Run Node commands (see peer.mjs), one result per command.
fn node(commands: Vec<Value>) -> Vec<Value> {
    let modules = peer_dir().join("node_modules");
    assert!(
        modules.join("@fedify/fedify").is_dir()
            && modules.join("@peertube/http-signature").is_dir(),
        "tests/peer/node_modules is missing: run scripts/install-test-deps.sh first"
    );
    let Value::Array(results) = run(Path::new("node"), &["peer.mjs"], &Value::Array(commands))
    else {
        panic!("peer.mjs did not answer with an array")
    };
    results
}

/// Run one Python command (see hms.py).
fn python(command: Value) -> Value {
    let python = peer_dir().join(".venv/bin/python");
    assert!(
        python.is_file(),
        "tests/peer/.venv is missing: run scripts/install-test-deps.sh first"
    );
    run(&python, &["hms.py"], &command)
}

fn pairs(headers: &[(String, String)]) -> Value {
    Value::Array(headers.iter().map(|(n, v)| json!([n, v])).collect())
}

fn from_pairs(value: &Value) -> Vec<(String, String)> {
    value
        .as_array()
        .expect("headers array")
        .iter()
        .map(|pair| {
            let name = pair[0].as_str().expect("name").to_ascii_lowercase();
            (name, pair[1].as_str().expect("value").to_string())
        })
        .collect()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} header"))
}

fn set(headers: &mut Vec<(String, String)>, name: &str, value: &str) {
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    headers.push((name.to_string(), value.to_string()));
}

/// Hortus verifying what a peer sent, as the inbox does it, over plain http on loopback.
fn hortus_verify(
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
) -> Result<Verified, VerifyError> {
    let req = RequestParts {
        method,
        path_and_query: target,
        headers,
        body,
    };
    let pending = signature_key_id(&req)?;
    assert_eq!(pending.key_id(), KEY_ID);
    let opts = VerifyOptions {
        scheme: "http",
        ..VerifyOptions::default()
    };
    verify_with(&req, &pending, &KEYS.public_pem, SystemTime::now(), &opts)
}

/// What Hortus sends for a POST: its own headers plus the two the HTTP client supplies.
fn hortus_post(url: &str, body: &[u8]) -> Vec<(String, String)> {
    let url = url::Url::parse(url).unwrap();
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap()),
        None => url.host_str().unwrap().to_string(),
    };
    let mut headers = vec![
        ("Host".to_string(), host),
        (
            "Content-Type".to_string(),
            "application/activity+json".to_string(),
        ),
    ];
    headers.extend(
        sign_post(
            &url,
            body,
            "application/activity+json",
            KEY_ID,
            &KEYS.private,
            SystemTime::now(),
        )
        .unwrap(),
    );
    headers
}

fn b64(body: &[u8]) -> String {
    STANDARD.encode(body)
}

#[test]
fn hortus_post_is_verified_by_peertube_and_fedify() {
    let url = "http://127.0.0.3:9000/users/bob/inbox";
    let headers = hortus_post(url, ACTIVITY);
    let mut wrong_type = headers.clone();
    set(&mut wrong_type, "Content-Type", "application/json");

    let peertube = |headers: &[(String, String)]| {
        json!({"op": "peertube.verify", "method": "POST", "target": "/users/bob/inbox",
               "headers": pairs(headers), "public_key_pem": KEYS.public_pem})
    };
    let fedify = |headers: &[(String, String)], body: &[u8]| {
        json!({"op": "fedify.verify", "method": "POST", "url": url, "headers": pairs(headers),
               "body_b64": b64(body), "public_key_pem": KEYS.public_pem, "key_id": KEY_ID})
    };
    let results = node(vec![
        peertube(&headers),
        fedify(&headers, ACTIVITY),
        json!({"op": "sha256", "body_b64": b64(ACTIVITY)}),
        peertube(&wrong_type),
        fedify(&headers, b"{}"),
    ]);
    assert_eq!(results[0]["ok"], true, "peertube: {}", results[0]);
    assert_eq!(results[1]["ok"], true, "fedify: {}", results[1]);
    // @peertube/http-signature does not look at the body: compare the Digest here.
    let node_digest = results[2]["digest"].as_str().unwrap();
    assert_eq!(header(&headers, "Digest"), format!("SHA-256={node_digest}"));
    assert_eq!(
        results[3]["ok"], false,
        "peertube accepted a changed Content-Type"
    );
    assert_eq!(results[4]["ok"], false, "fedify accepted a changed body");
}

#[test]
fn hortus_get_is_verified_by_peertube_and_fedify() {
    let sign = |url: &str| {
        let url = url::Url::parse(url).unwrap();
        let mut headers = vec![("Host".to_string(), url.host_str().unwrap().to_string())];
        headers.extend(sign_get(&url, KEY_ID, &KEYS.private, SystemTime::now()).unwrap());
        headers
    };
    let with_query = sign("https://peer.example/users/bob/outbox?page=true");
    let plain = sign("https://peer.example/users/bob");
    let peertube = |target: &str, headers: &[(String, String)]| {
        json!({"op": "peertube.verify", "method": "GET", "target": target,
               "headers": pairs(headers), "public_key_pem": KEYS.public_pem})
    };
    let results = node(vec![
        peertube("/users/bob/outbox?page=true", &with_query),
        // Fedify 1.5 rebuilds (request-target) from the bare pathname, so only a query-less
        // GET can pass it; Hortus signs the query string as Mastodon does.
        json!({"op": "fedify.verify", "method": "GET", "url": "https://peer.example/users/bob",
               "headers": pairs(&plain), "public_key_pem": KEYS.public_pem, "key_id": KEY_ID}),
        peertube("/users/bob/outbox?page=false", &with_query),
    ]);
    assert_eq!(results[0]["ok"], true, "peertube: {}", results[0]);
    assert_eq!(results[1]["ok"], true, "fedify: {}", results[1]);
    assert_eq!(
        results[2]["ok"], false,
        "peertube accepted a changed query string"
    );
}

#[test]
fn fedify_signed_requests_are_verified_by_hortus() {
    let post = json!({"op": "fedify.sign", "method": "POST", "url": "http://127.0.0.2:8080/inbox",
        "headers": [["Content-Type", "application/activity+json"]], "body_b64": b64(ACTIVITY),
        "private_key_pem": KEYS.private_pem, "key_id": KEY_ID});
    let get = json!({"op": "fedify.sign", "method": "GET",
        "url": "http://127.0.0.2:8080/users/alice/outbox?page=2", "headers": [],
        "private_key_pem": KEYS.private_pem, "key_id": KEY_ID});
    let results = node(vec![post, get]);

    let headers = from_pairs(&results[0]["headers"]);
    let verified = hortus_verify("POST", "/inbox", &headers, Some(ACTIVITY)).unwrap();
    assert_eq!(verified.form, SignatureForm::Cavage);
    assert!(
        verified.covered.iter().any(|h| h == "digest"),
        "{:?}",
        verified.covered
    );
    assert_eq!(
        hortus_verify("POST", "/inbox", &headers, Some(b"{}")),
        Err(VerifyError::DigestMismatch)
    );
    assert_eq!(
        hortus_verify("POST", "/users/alice/inbox", &headers, Some(ACTIVITY)),
        Err(VerifyError::BadSignature)
    );

    // Fedify signs the path without its query: Hortus's second try accepts it.
    let headers = from_pairs(&results[1]["headers"]);
    let verified = hortus_verify("GET", "/users/alice/outbox?page=2", &headers, None).unwrap();
    assert!(verified.query_dropped);
}

#[test]
fn peertube_signed_requests_are_verified_by_hortus() {
    // The digest comes from Node, not from Hortus.
    let digest = node(vec![json!({"op": "sha256", "body_b64": b64(ACTIVITY)})])[0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let base = json!([
        ["Host", "127.0.0.2:8080"],
        ["Digest", format!("SHA-256={digest}")],
        ["Content-Type", "application/activity+json"]
    ]);
    let sign = |sign_headers: Value, hs2019: bool| {
        json!({"op": "peertube.sign", "method": "POST", "target": "/inbox", "headers": base,
               "private_key_pem": KEYS.private_pem, "key_id": KEY_ID,
               "sign_headers": sign_headers, "hs2019": hs2019, "expires_in": 300})
    };
    let results = node(vec![
        // Mastodon's set, labelled rsa-sha256.
        sign(
            json!(["(request-target)", "host", "date", "digest", "content-type"]),
            false,
        ),
        // GoToSocial-like: hs2019 with (created)/(expires) instead of Date.
        sign(
            json!([
                "(request-target)",
                "(created)",
                "(expires)",
                "host",
                "digest"
            ]),
            true,
        ),
        // Body not signed: must be refused.
        sign(json!(["(request-target)", "host", "date"]), false),
    ]);
    let mastodon_like = from_pairs(&results[0]["headers"]);
    assert!(header(&mastodon_like, "Signature").contains("algorithm=\"rsa-sha256\""));
    assert!(hortus_verify("POST", "/inbox", &mastodon_like, Some(ACTIVITY)).is_ok());

    let gts_like = from_pairs(&results[1]["headers"]);
    assert!(header(&gts_like, "Signature").contains("algorithm=\"hs2019\""));
    let verified = hortus_verify("POST", "/inbox", &gts_like, Some(ACTIVITY)).unwrap();
    assert_eq!(verified.covered[1], "(created)");
    let mut changed_host = gts_like.clone();
    set(&mut changed_host, "Host", "127.0.0.9:8080");
    assert_eq!(
        hortus_verify("POST", "/inbox", &changed_host, Some(ACTIVITY)),
        Err(VerifyError::BadSignature)
    );

    let unsigned_body = from_pairs(&results[2]["headers"]);
    assert_eq!(
        hortus_verify("POST", "/inbox", &unsigned_body, Some(ACTIVITY)),
        Err(VerifyError::InsufficientCoverage(
            "digest, as the request has a body"
        ))
    );
}

#[test]
fn hortus_rfc9421_post_is_verified_by_python() {
    let url = url::Url::parse("http://127.0.0.3:9000/users/bob/inbox?x=1").unwrap();
    let mut headers = vec![
        ("Host".to_string(), "127.0.0.3:9000".to_string()),
        (
            "Content-Type".to_string(),
            "application/activity+json".to_string(),
        ),
    ];
    headers.extend(
        sign_post_rfc9421(
            &url,
            ACTIVITY,
            "application/activity+json",
            KEY_ID,
            &KEYS.private,
            SystemTime::now(),
        )
        .unwrap(),
    );
    let check = |headers: &[(String, String)], body: &[u8]| {
        python(
            json!({"op": "verify", "method": "POST", "url": url.as_str(),
            "headers": pairs(headers), "body_b64": b64(body), "public_key_pem": KEYS.public_pem}),
        )
    };
    let ok = check(&headers, ACTIVITY);
    assert_eq!(ok["ok"], true, "python: {ok}");
    assert_eq!(
        ok["covered"][0],
        json!([
            "\"@method\"",
            "\"@target-uri\"",
            "\"content-type\"",
            "\"content-digest\"",
            "\"@signature-params\""
        ])
    );
    let tampered = check(&headers, b"{}");
    assert_eq!(tampered["ok"], false, "python accepted a changed body");
    let mut other_type = headers.clone();
    set(&mut other_type, "Content-Type", "text/plain");
    assert_eq!(
        check(&other_type, ACTIVITY)["ok"],
        false,
        "python accepted a changed header"
    );
}

#[test]
fn python_rfc9421_signature_is_verified_by_hortus() {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let signed = python(json!({"op": "sign", "method": "POST",
        "url": "http://127.0.0.2:8080/users/alice/inbox",
        "headers": [["Host", "127.0.0.2:8080"], ["Content-Type", "application/activity+json"]],
        "body_b64": b64(ACTIVITY), "private_key_pem": KEYS.private_pem, "key_id": KEY_ID,
        "created": now, "covered": ["@method", "@target-uri", "@authority", "content-type"]}));
    let headers = from_pairs(&signed["headers"]);
    // The Python side computed Content-Digest itself; Hortus's own is not involved.
    assert!(header(&headers, "Content-Digest").starts_with("sha-"));
    let verified = hortus_verify("POST", "/users/alice/inbox", &headers, Some(ACTIVITY)).unwrap();
    assert_eq!(verified.form, SignatureForm::Rfc9421);
    assert!(
        verified.covered.iter().any(|c| c == "content-digest"),
        "{:?}",
        verified.covered
    );
    assert_eq!(
        hortus_verify("POST", "/users/alice/inbox", &headers, Some(b"{}")),
        Err(VerifyError::DigestMismatch)
    );
    // @target-uri binds the scheme: read as https, the same request fails.
    let req = RequestParts {
        method: "POST",
        path_and_query: "/users/alice/inbox",
        headers: &headers,
        body: Some(ACTIVITY),
    };
    let pending = signature_key_id(&req).unwrap();
    assert_eq!(
        hortus::httpsig::verify(&req, &pending, &KEYS.public_pem, SystemTime::now()),
        Err(VerifyError::BadSignature)
    );
    // Not a Digest header in sight: it is Content-Digest that was checked.
    assert!(!headers.iter().any(|(n, _)| n == "digest"));
}
