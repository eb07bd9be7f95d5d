//! The client API (issue 13) from the outside: a real Mastodon client library (masto, from npm)
//! signs in through the authorization page with PKCE and posts, edits and deletes with an image
//! and alt text against the real `hortus serve` binary, while a loopback follower receives what
//! federates; then the security of sign-in and tokens, request by request.
//!
//! Needs `scripts/install-test-deps.sh` (tests/peer/node_modules with masto; tests/peer/.venv
//! with toot; chromium).
//!
//! Files: `masto` (the library's own flows: sign-in, posting, streaming; and the page in
//! Chromium), `toot` (a real client app, the command-line one), `security` (sign-in, tokens,
//! https), `endpoints` (admin lists, errors, CORS, notifications, timelines), `home` (the home
//! timeline and actions), `profile` (update_credentials), `remote_statuses` (their fields and
//! quotes), `polls`, `streaming` (latency and slow apps), `search`. Here: the sign-in flow by
//! hand, shared by all of them.

#[path = "../common/mod.rs"]
mod common;
#[path = "../support/mock_inbox.rs"]
mod mock_inbox;

mod endpoints;
mod home;
mod masto;
mod polls;
mod profile;
mod remote_statuses;
mod search;
mod security;
mod streaming;
mod toot;

use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::TestSite;
use serde_json::{Value, json};

pub const PASSWORD: &str = "庭の鍵 🔑 مفتاح-garden";
pub const OOB: &str = "urn:ietf:wg:oauth:2.0:oob";

pub fn peer_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peer")
}

/// `hortus password` as the owner runs it, the password on stdin.
pub fn set_password_with_cli(site: &TestSite, password: &str) -> String {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_hortus"))
        .arg("--dir")
        .arg(&site.dir)
        .arg("password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run hortus password");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write password");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn cli(site: &TestSite, args: &[&str]) -> String {
    common::hortus_ok(&site.dir, args)
}

pub fn post_files(site: &TestSite) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(site.dir.join("content/posts"))
        .expect("posts dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect()
}

// --- The sign-in flow by hand, for the security tests ------------------------------------------

pub struct App {
    pub id: String,
    pub secret: String,
}

pub async fn register(http: &reqwest::Client, base: &str, scopes: &str) -> App {
    let resp = http
        .post(format!("{base}/api/v1/apps"))
        .json(&json!({"client_name": "Ωmega 写真 app", "redirect_uris": OOB, "scopes": scopes}))
        .send()
        .await
        .expect("register");
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.expect("json");
    App {
        id: v["client_id"].as_str().unwrap().into(),
        secret: v["client_secret"].as_str().unwrap().into(),
    }
}

pub fn pkce() -> (String, String) {
    let mut bytes = [0u8; 40];
    openssl::rand::rand_bytes(&mut bytes).unwrap();
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = URL_SAFE_NO_PAD.encode(openssl::sha::sha256(verifier.as_bytes()));
    (verifier, challenge)
}

/// The hidden inputs of the sign-in form (their values are base64url and scope names: nothing
/// the template escapes).
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    html.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .filter_map(|rest| {
            let (name, rest) = rest.split_once('"')?;
            let value = rest.strip_prefix(" value=\"")?.split_once('"')?.0;
            Some((name.to_string(), value.to_string()))
        })
        .collect()
}

pub struct Page {
    pub status: u16,
    pub html: String,
    pub cookie: Option<String>,
    pub retry_after: Option<String>,
}

pub async fn authorize_page(
    http: &reqwest::Client,
    base: &str,
    app: &App,
    scope: &str,
    challenge: &str,
) -> Page {
    let resp = http
        .get(format!("{base}/oauth/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", &app.id),
            ("redirect_uri", OOB),
            ("scope", scope),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .expect("page");
    page_of(resp).await
}

pub async fn page_of(resp: reqwest::Response) -> Page {
    let status = resp.status().as_u16();
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_string);
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Page {
        status,
        html: resp.text().await.expect("html"),
        cookie,
        retry_after,
    }
}

pub async fn submit(
    http: &reqwest::Client,
    base: &str,
    fields: &[(String, String)],
    cookie: Option<&str>,
) -> Page {
    let mut req = http
        .post(format!("{base}/oauth/authorize"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(fields)
                .finish(),
        );
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    page_of(req.send().await.expect("submit")).await
}

pub fn with(fields: &[(String, String)], extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out = fields.to_vec();
    out.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    out
}

pub fn code_of(html: &str) -> String {
    html.split("id=\"code\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .expect("code on the page")
        .to_string()
}

pub async fn exchange(
    http: &reqwest::Client,
    base: &str,
    app: &App,
    code: &str,
    verifier: &str,
) -> reqwest::Response {
    http.post(format!("{base}/oauth/token"))
        .json(&json!({
            "grant_type": "authorization_code", "client_id": app.id, "client_secret": app.secret,
            "redirect_uri": OOB, "code": code, "code_verifier": verifier
        }))
        .send()
        .await
        .expect("token")
}

/// The whole flow: a token with `scope`.
pub async fn sign_in(http: &reqwest::Client, base: &str, app: &App, scope: &str) -> String {
    let (verifier, challenge) = pkce();
    let page = authorize_page(http, base, app, scope, &challenge).await;
    assert_eq!(page.status, 200, "{}", page.html);
    let fields = with(
        &hidden_fields(&page.html),
        &[("password", PASSWORD), ("decision", "allow")],
    );
    let done = submit(http, base, &fields, page.cookie.as_deref()).await;
    assert_eq!(done.status, 200, "{}", done.html);
    let resp = exchange(http, base, app, &code_of(&done.html), &verifier).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.expect("json");
    v["access_token"].as_str().unwrap().to_string()
}

pub async fn started(ip: &str) -> (TestSite, String) {
    let mut site = TestSite::new(ip);
    site.start().await;
    let base = site.base.clone();
    (site, base)
}

pub fn set_password(site: &TestSite) {
    hortus::api::password::set(&site.db(), PASSWORD, &hortus::times::now()).expect("password");
}
