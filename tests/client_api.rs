//! The client API (issue 13) from the outside: a real Mastodon client library (masto, from npm)
//! signs in through the authorization page with PKCE and posts, edits and deletes with an image
//! and alt text against the real `hortus serve` binary, while a loopback follower receives what
//! federates; then the security of sign-in and tokens, request by request.
//!
//! Needs `scripts/install-test-deps.sh` (tests/peer/node_modules with masto; chromium).

mod common;
#[path = "support/mock_inbox.rs"]
mod mock_inbox;

use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::TestSite;
use mock_inbox::{MockInbox, add_follower};
use serde_json::{Value, json};

const PASSWORD: &str = "庭の鍵 🔑 مفتاح-garden";
const OOB: &str = "urn:ietf:wg:oauth:2.0:oob";

fn peer_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peer")
}

/// `hortus password` as the owner runs it, the password on stdin.
fn set_password_with_cli(site: &TestSite, password: &str) -> String {
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

fn cli(site: &TestSite, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hortus"))
        .arg("--dir")
        .arg(&site.dir)
        .args(args)
        .output()
        .expect("run hortus");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn post_files(site: &TestSite) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(site.dir.join("content/posts"))
        .expect("posts dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masto_signs_in_with_pkce_then_posts_an_image_with_alt_text_edits_and_deletes() {
    assert!(
        peer_dir().join("node_modules/masto").is_dir(),
        "tests/peer/node_modules is missing masto: run scripts/install-test-deps.sh first"
    );
    let mut site = TestSite::federating("127.0.13.2");
    let peer = MockInbox::start("127.0.13.3").await;
    site.allow(&peer.host());
    add_follower(
        &site.db(),
        &peer.actor("bob"),
        &peer.actor_inbox("bob"),
        None,
    );
    let said = set_password_with_cli(&site, PASSWORD);
    assert!(said.contains("/oauth/authorize"), "{said}");
    let image = site.tmp.path().join("garden.png");
    std::fs::write(&image, include_bytes!("../static/avatar.png")).expect("image");
    // Debug level everywhere: what the owner would turn on to look into a problem.
    let serve = site.spawn_serve_logging(1, "debug").await;

    let out = Command::new("node")
        .arg("masto_client.mjs")
        .current_dir(peer_dir())
        .env("HORTUS_BASE", &site.base)
        .env("HORTUS_PASSWORD", PASSWORD)
        .env("HORTUS_IMAGE", &image)
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "masto script failed: {}\n--- server log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        serve.log()
    );
    let r: Value = serde_json::from_slice(&out.stdout).expect("script JSON");

    // The sign-in page named the app and its scopes and carried a CSRF token.
    assert_eq!(r["pageStatus"], 200);
    assert_eq!(r["pageNamesApp"], true);
    assert_eq!(r["pageNamesScopes"], true);
    assert_eq!(r["formHasCsrf"], true);
    assert_eq!(r["signInStatus"], 200);
    assert_eq!(r["scope"], "read write");
    assert_eq!(r["me"]["id"], "1");
    assert_eq!(r["me"]["acct"], "alice");
    assert_eq!(r["verifiedApp"], "菊 Kiku — تطبيق");
    assert_eq!(r["instance"]["maxChars"], 5000);

    // The status, its image and alt text; the same Idempotency-Key gave the same status.
    let alt = "مرج أخضر — a green garden 庭 🌱";
    assert_eq!(r["media"]["description"], alt);
    assert_eq!(r["status"]["alt"], alt);
    assert_eq!(r["status"]["spoiler"], "weather 天気");
    assert_eq!(r["status"]["language"], "ja");
    assert_eq!(r["idempotentId"], r["status"]["id"]);
    assert_eq!(r["reply"]["inReplyToId"], r["status"]["id"]);
    assert_eq!(r["reply"]["visibility"], "private");
    assert!(
        r["edited"]["content"]
            .as_str()
            .unwrap()
            .contains("the roses drank well")
    );
    assert!(r["edited"]["editedAt"].is_string());
    assert_eq!(
        r["source"]["text"],
        "雨の庭から 🌧️ — edited: the roses drank well"
    );
    assert_eq!(r["source"]["spoilerText"], "weather 天気");
    // One per page, newest first, by the Link header: the reply, then the status.
    assert_eq!(r["paged"], json!([r["reply"]["id"], r["status"]["id"]]));
    assert_eq!(r["afterDelete"], 404);
    assert_eq!(r["removedText"], "追記: the rain stopped ☀️");

    // One Markdown file is left: the edited status, with its image and alt text.
    let files = post_files(&site);
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).expect("post file");
    let (fm, body) = hortus::posts::front_matter::split(&text).expect("front matter");
    assert_eq!(body.trim(), "雨の庭から 🌧️ — edited: the roses drank well");
    assert_eq!(fm.summary.as_deref(), Some("weather 天気"));
    assert_eq!(fm.language.as_deref(), Some("ja"));
    assert_eq!(fm.images.len(), 1);
    assert_eq!(fm.images[0].alt, alt);
    assert!(
        site.dir.join(&fm.images[0].src).is_file(),
        "{}",
        fm.images[0].src
    );

    // What federated to the follower: the Create with the image and its alt text, the Update,
    // the reply's Create and its Delete, all signed.
    let uri = r["status"]["uri"].as_str().unwrap().to_string();
    let kinds = |acts: &[mock_inbox::Received], kind: &str, object: &str| {
        acts.iter().any(|a| {
            a.verified.is_ok()
                && a.activity["type"] == kind
                && (a.activity["object"]["id"] == object || a.activity["object"] == object)
        })
    };
    let arrived = peer
        .wait_for(Duration::from_secs(30), |acts| {
            kinds(acts, "Create", &uri)
                && kinds(acts, "Update", &uri)
                && acts
                    .iter()
                    .filter(|a| a.activity["type"] == "Create")
                    .count()
                    >= 2
                && acts.iter().any(|a| a.activity["type"] == "Delete")
        })
        .await;
    let got: Vec<Value> = peer.received().into_iter().map(|r| r.activity).collect();
    assert!(
        arrived,
        "the follower did not get Create, Update, Create, Delete: {got:#?}\n{}",
        serve.log()
    );
    let create = got
        .iter()
        .find(|a| a["type"] == "Create" && a["object"]["id"] == uri.as_str())
        .expect("create");
    assert_eq!(create["object"]["attachment"][0]["name"], alt);
    assert!(
        create["object"]["summary"]
            .as_str()
            .unwrap()
            .contains("天気")
    );

    // `hortus apps` lists the app, its scopes and its last use.
    let apps = cli(&site, &["apps"]);
    assert!(
        apps.contains("菊 Kiku — تطبيق") && apps.contains("read write"),
        "{apps}"
    );
    assert!(!apps.contains("last used: never"), "{apps}");

    // No secret reached the log, though the log ran at debug and saw the sign-in.
    let log = serve.log();
    assert!(
        log.contains("an app signed in"),
        "the log was not written: {log}"
    );
    for secret in [
        r["token"].as_str().unwrap(),
        r["app"]["clientSecret"].as_str().unwrap(),
        r["code"].as_str().unwrap(),
        PASSWORD,
    ] {
        assert!(secret.len() > 8);
        assert!(!log.contains(secret), "a secret is in the log: {secret}");
    }
    // And the database holds only the token's hash.
    let token = r["token"].as_str().unwrap();
    let stored: String = site
        .db()
        .query_row("SELECT token_hash FROM api_tokens", [], |r| r.get(0))
        .expect("token row");
    assert_eq!(stored, hortus::posts::hex_sha256(token.as_bytes()));
    assert!(token.len() >= 43, "at least 256 bits: {token}");
}

// --- The sign-in flow by hand, for the security tests ------------------------------------------

struct App {
    id: String,
    secret: String,
}

async fn register(http: &reqwest::Client, base: &str, scopes: &str) -> App {
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

fn pkce() -> (String, String) {
    let mut bytes = [0u8; 40];
    openssl::rand::rand_bytes(&mut bytes).unwrap();
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = URL_SAFE_NO_PAD.encode(openssl::sha::sha256(verifier.as_bytes()));
    (verifier, challenge)
}

/// The hidden inputs of the sign-in form (their values are base64url and scope names: nothing
/// the template escapes).
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    html.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .filter_map(|rest| {
            let (name, rest) = rest.split_once('"')?;
            let value = rest.strip_prefix(" value=\"")?.split_once('"')?.0;
            Some((name.to_string(), value.to_string()))
        })
        .collect()
}

struct Page {
    status: u16,
    html: String,
    cookie: Option<String>,
    retry_after: Option<String>,
}

async fn authorize_page(
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

async fn page_of(resp: reqwest::Response) -> Page {
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

async fn submit(
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

fn with(fields: &[(String, String)], extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out = fields.to_vec();
    out.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    out
}

fn code_of(html: &str) -> String {
    html.split("id=\"code\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .expect("code on the page")
        .to_string()
}

async fn exchange(
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
async fn sign_in(http: &reqwest::Client, base: &str, app: &App, scope: &str) -> String {
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

async fn started(ip: &str) -> (TestSite, String) {
    let mut site = TestSite::new(ip);
    site.start().await;
    let base = site.base.clone();
    (site, base)
}

fn set_password(site: &TestSite) {
    hortus::api::password::set(&site.db(), PASSWORD, &hortus::times::now()).expect("password");
}

#[tokio::test]
async fn the_sign_in_page_refuses_forged_forms_wrong_passwords_and_then_throttles_the_address() {
    let (site, base) = started("127.0.13.10").await;
    let http = common::client();
    set_password(&site);
    let app = register(&http, &base, "read write").await;
    let (_, challenge) = pkce();

    // A form posted without the page's CSRF token and cookie: 403, whatever the password.
    let page = authorize_page(&http, &base, &app, "read", &challenge).await;
    assert_eq!(page.status, 200);
    let fields = hidden_fields(&page.html);
    let no_csrf: Vec<_> = fields
        .iter()
        .filter(|(k, _)| k != "csrf")
        .cloned()
        .collect();
    let forged = submit(
        &http,
        &base,
        &with(&no_csrf, &[("password", PASSWORD)]),
        page.cookie.as_deref(),
    )
    .await;
    assert_eq!(forged.status, 403, "{}", forged.html);
    let no_cookie = submit(
        &http,
        &base,
        &with(&fields, &[("password", PASSWORD)]),
        None,
    )
    .await;
    assert_eq!(no_cookie.status, 403);
    // A token the server never issued, in both places.
    let made_up = "A".repeat(43);
    let mut fake = no_csrf.clone();
    fake.push(("csrf".into(), made_up.clone()));
    let fake_done = submit(
        &http,
        &base,
        &with(&fake, &[("password", PASSWORD)]),
        Some(&format!("hortus_csrf={made_up}")),
    )
    .await;
    assert_eq!(fake_done.status, 403);
    // Nothing of that counts as a failed password.
    let failures: i64 = site
        .db()
        .query_row("SELECT count(*) FROM api_signin_failures", [], |r| r.get(0))
        .unwrap();
    assert_eq!(failures, 0);

    // Wrong passwords: 401 and the form again, five times; the sixth try is 429 even with the
    // right password, before it is checked.
    let mut page = authorize_page(&http, &base, &app, "read", &challenge).await;
    for i in 0..5 {
        let fields = with(
            &hidden_fields(&page.html),
            &[("password", "guess 推測 كلمة"), ("decision", "allow")],
        );
        let wrong = submit(&http, &base, &fields, page.cookie.as_deref()).await;
        assert_eq!(wrong.status, 401, "try {i}: {}", wrong.html);
        assert!(wrong.html.contains("Wrong password."));
        assert!(!wrong.html.contains("id=\"code\""));
        page = wrong;
    }
    let fields = with(
        &hidden_fields(&page.html),
        &[("password", PASSWORD), ("decision", "allow")],
    );
    let throttled = submit(&http, &base, &fields, page.cookie.as_deref()).await;
    assert_eq!(throttled.status, 429, "{}", throttled.html);
    let wait: u64 = throttled
        .retry_after
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=900).contains(&wait), "{wait}");
    assert_eq!(
        authorize_page(&http, &base, &app, "read", &challenge)
            .await
            .status,
        429
    );

    // Another address is not throttled.
    let other = reqwest::Client::builder()
        .local_address("127.0.13.11".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    assert_eq!(
        authorize_page(&other, &base, &app, "read", &challenge)
            .await
            .status,
        200
    );

    // The owner sees the failed sign-ins in `hortus inbox` as a problem.
    let inbox = cli(&site, &["inbox"]);
    assert!(
        inbox.contains("problem") && inbox.contains("sign-in"),
        "{inbox}"
    );
    assert!(
        inbox.contains("wrong password") && inbox.contains("127.0.0.1"),
        "{inbox}"
    );
}

#[tokio::test]
async fn tokens_are_scoped_expire_and_end_when_revoked() {
    let (site, base) = started("127.0.13.20").await;
    let http = common::client();
    let bearer = |t: &str| format!("Bearer {t}");

    // Before `hortus password`: 401 saying what to run, on the API and on the page.
    let resp = http
        .get(format!("{base}/api/v1/accounts/verify_credentials"))
        .header("authorization", bearer("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("hortus password"),
        "{v}"
    );
    let app = register(&http, &base, "read write").await;
    let page = authorize_page(&http, &base, &app, "read", &pkce().1).await;
    assert_eq!(page.status, 401);
    assert!(page.html.contains("hortus password"));
    set_password(&site);

    let read = sign_in(&http, &base, &app, "read").await;
    let write = sign_in(&http, &base, &app, "read write").await;
    let granular = sign_in(&http, &base, &app, "read:statuses write:media").await;
    let get = |t: &str, path: &str| {
        http.get(format!("{base}{path}"))
            .header("authorization", bearer(t))
            .send()
    };
    let post = |t: &str| {
        http.post(format!("{base}/api/v1/statuses"))
            .header("authorization", bearer(t))
            .json(&json!({"status": "书 from a read token", "visibility": "unlisted"}))
            .send()
    };
    assert_eq!(
        get(&read, "/api/v1/accounts/verify_credentials")
            .await
            .unwrap()
            .status(),
        200
    );
    // A read token writing: 403 with Mastodon's message; nothing was written.
    let refused = post(&read).await.unwrap();
    assert_eq!(refused.status(), 403);
    let v: Value = refused.json().await.unwrap();
    assert_eq!(v["error"], "This action is outside the authorized scopes");
    assert!(post_files(&site).is_empty());
    // Granular scopes: statuses may be read, the account may not; media only of writes.
    assert_eq!(
        get(&granular, "/api/v1/accounts/verify_credentials")
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        get(&granular, "/api/v1/accounts/1/statuses")
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(post(&granular).await.unwrap().status(), 403);
    // The write token posts; its status is a file.
    let ok = post(&write).await.unwrap();
    assert_eq!(ok.status(), 200, "{:?}", ok.text().await);
    assert_eq!(post_files(&site).len(), 1);

    // No token, a made-up one: 401 with the error JSON.
    let none = http
        .get(format!("{base}/api/v1/accounts/verify_credentials"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(
        get("bm90IGEgdG9rZW4", "/api/v1/accounts/verify_credentials")
            .await
            .unwrap()
            .status(),
        401
    );

    // Revoked by the app (RFC 7009): 401 from then on.
    let revoked = http
        .post(format!("{base}/oauth/revoke"))
        .json(&json!({"client_id": app.id, "client_secret": app.secret, "token": write}))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(
        get(&write, "/api/v1/accounts/verify_credentials")
            .await
            .unwrap()
            .status(),
        401
    );
    // Expired: 401.
    site.db()
        .execute(
            "UPDATE api_tokens SET expires_at = '2026-01-01T00:00:00Z' WHERE token_hash = ?1",
            [hortus::posts::hex_sha256(granular.as_bytes())],
        )
        .unwrap();
    assert_eq!(
        get(&granular, "/api/v1/accounts/1/statuses")
            .await
            .unwrap()
            .status(),
        401
    );
    // `hortus apps revoke ID` ends the rest at once.
    let listed = cli(&site, &["apps"]);
    let id = listed.split('\t').next().unwrap().trim().to_string();
    let said = cli(&site, &["apps", "revoke", &id]);
    assert!(said.contains("sign-in(s) ended"), "{said}");
    assert_eq!(
        get(&read, "/api/v1/accounts/verify_credentials")
            .await
            .unwrap()
            .status(),
        401
    );

    // Codes: a wrong PKCE verifier, a used code, and the password grant are refused.
    let app2 = register(&http, &base, "read").await;
    let (verifier, challenge) = pkce();
    let page = authorize_page(&http, &base, &app2, "read", &challenge).await;
    let fields = with(
        &hidden_fields(&page.html),
        &[("password", PASSWORD), ("decision", "allow")],
    );
    let code = code_of(
        &submit(&http, &base, &fields, page.cookie.as_deref())
            .await
            .html,
    );
    let (other_verifier, _) = pkce();
    let bad = exchange(&http, &base, &app2, &code, &other_verifier).await;
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<Value>().await.unwrap()["error"], "invalid_grant");
    // The code was spent by the failed try: the right verifier is too late now.
    assert_eq!(
        exchange(&http, &base, &app2, &code, &verifier)
            .await
            .status(),
        400
    );
    let password_grant = http
        .post(format!("{base}/oauth/token"))
        .json(
            &json!({"grant_type": "password", "client_id": app2.id, "client_secret": app2.secret,
                      "username": "alice", "password": PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(password_grant.status(), 400);
    assert_eq!(
        password_grant.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
    // An app's own token (client_credentials) may verify the app, not act for the owner.
    let app_token: Value = http
        .post(format!("{base}/oauth/token"))
        .json(&json!({"grant_type": "client_credentials", "client_id": app2.id, "client_secret": app2.secret, "scope": "read"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let t = app_token["access_token"].as_str().unwrap();
    assert_eq!(
        get(t, "/api/v1/apps/verify_credentials")
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        get(t, "/api/v1/accounts/verify_credentials")
            .await
            .unwrap()
            .status(),
        422
    );
}

#[tokio::test]
async fn the_sign_in_page_refuses_plain_http_when_the_site_is_https() {
    let mut site = TestSite::with_config("127.0.13.30", |cfg| {
        let start = cfg.find("base_url = ").unwrap();
        let end = start + cfg[start..].find('\n').unwrap();
        let port = cfg[start..end]
            .rsplit(':')
            .next()
            .unwrap()
            .trim_end_matches('"')
            .to_string();
        cfg.replace_range(
            start..end,
            &format!("base_url = \"https://127.0.13.30:{port}\""),
        );
    });
    let base = site.base.clone();
    site.start().await;
    set_password(&site);
    let http = common::client();
    let app = register(&http, &base, "read").await;
    let page = authorize_page(&http, &base, &app, "read", &pkce().1).await;
    assert_eq!(page.status, 403, "{}", page.html);
    assert!(page.html.contains("https"));
    // Behind the TLS proxy (which says so): the page.
    let proxied = http
        .get(format!("{base}/oauth/authorize"))
        .header("x-forwarded-proto", "https")
        .query(&[
            ("response_type", "code"),
            ("client_id", app.id.as_str()),
            ("redirect_uri", OOB),
            ("scope", "read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 200);
    let cookie = proxied
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("Secure")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert_eq!(proxied.headers().get("x-frame-options").unwrap(), "DENY");
}

#[tokio::test]
async fn admin_domain_lists_are_the_lists_of_hortus_allow_and_block() {
    let (site, base) = started("127.0.13.40").await;
    set_password(&site);
    let http = common::client();
    let app = register(&http, &base, "read write admin:read admin:write").await;
    let admin = sign_in(&http, &base, &app, "admin:read admin:write").await;
    let read = sign_in(&http, &base, &app, "read").await;
    let auth = |t: &str| format!("Bearer {t}");
    let created: Value = http
        .post(format!("{base}/api/v1/admin/domain_allows"))
        .header("authorization", auth(&admin))
        .json(&json!({"domain": "Garden.EXAMPLE"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["domain"], "garden.example");
    let allowed = hortus::federation::allow_list(&site.db()).unwrap();
    assert_eq!(
        allowed
            .iter()
            .map(|e| e.pattern.as_str())
            .collect::<Vec<_>>(),
        ["garden.example"]
    );
    assert!(cli(&site, &["allow", "list"]).contains("garden.example"));
    let blocked = http
        .post(format!("{base}/api/v1/admin/domain_blocks"))
        .header("authorization", auth(&admin))
        .json(&json!({"domain": "*.spam.example"}))
        .send()
        .await
        .unwrap();
    assert_eq!(blocked.status(), 200);
    assert!(cli(&site, &["block", "list"]).contains("*.spam.example"));
    let list: Value = http
        .get(format!("{base}/api/v1/admin/domain_blocks"))
        .header("authorization", auth(&admin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["domain"], "*.spam.example");
    assert_eq!(list[0]["severity"], "suspend");
    // A bad domain is refused; a read token may not even list.
    let bad = http
        .post(format!("{base}/api/v1/admin/domain_allows"))
        .header("authorization", auth(&admin))
        .json(&json!({"domain": "not a domain/../"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let denied = http
        .get(format!("{base}/api/v1/admin/domain_allows"))
        .header("authorization", auth(&read))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    let removed = http
        .delete(format!("{base}/api/v1/admin/domain_allows/garden.example"))
        .header("authorization", auth(&admin))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 200);
    assert!(
        hortus::federation::allow_list(&site.db())
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn apps_get_json_errors_cors_empty_lists_and_the_rfc_8414_metadata() {
    let (site, base) = started("127.0.13.50").await;
    set_password(&site);
    let http = common::client();
    let meta: Value = http
        .get(format!("{base}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(meta["token_endpoint"], format!("{base}/oauth/token"));
    assert!(
        !meta["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("password"))
    );
    // A browser app's preflight.
    let pre = http
        .request(reqwest::Method::OPTIONS, format!("{base}/api/v1/statuses"))
        .header("origin", "https://elk.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(pre.status().is_success(), "{}", pre.status());
    assert_eq!(
        pre.headers().get("access-control-allow-origin").unwrap(),
        "*"
    );
    let app = register(&http, &base, "read write").await;
    let token = sign_in(&http, &base, &app, "read write").await;
    for path in [
        "/api/v1/custom_emojis",
        "/api/v2/filters",
        "/api/v1/lists",
        "/api/v1/announcements",
        "/api/v1/trends/tags",
        "/api/v2/suggestions",
    ] {
        let resp = http
            .get(format!("{base}{path}"))
            .header("authorization", format!("Bearer {token}"))
            .header("origin", "https://elk.example")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(
            resp.headers().get("access-control-allow-origin").unwrap(),
            "*",
            "{path}"
        );
        assert_eq!(resp.json::<Value>().await.unwrap(), json!([]), "{path}");
    }
    let missing = http
        .get(format!("{base}/api/v1/statuses/999999"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.json::<Value>().await.unwrap(),
        json!({"error": "Record not found"})
    );
    assert_eq!(
        http.get(format!("{base}/api/v1/instance/peers"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap(),
        json!([])
    );
    // Markers round-trip; preferences answer.
    let saved: Value = http
        .post(format!("{base}/api/v1/markers"))
        .header("authorization", format!("Bearer {token}"))
        .json(&json!({"home": {"last_read_id": "42"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(saved["home"]["last_read_id"], "42");
    // A non-image upload is refused; nothing lands in media/.
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"<svg onload=alert(1)>".to_vec())
                .file_name("x.png")
                .mime_str("image/png")
                .unwrap(),
        )
        .text("description", "not an image");
    let up = http
        .post(format!("{base}/api/v2/media"))
        .header("authorization", format!("Bearer {token}"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(up.status(), 422);
    assert!(
        !site.dir.join("media/api").exists()
            || std::fs::read_dir(site.dir.join("media/api"))
                .unwrap()
                .next()
                .is_none()
    );
    // A status with an image without alt text is refused.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(include_bytes!("../static/avatar.png").to_vec())
            .file_name("a.png"),
    );
    let m: Value = http
        .post(format!("{base}/api/v2/media"))
        .header("authorization", format!("Bearer {token}"))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let no_alt = http
        .post(format!("{base}/api/v1/statuses"))
        .header("authorization", format!("Bearer {token}"))
        .json(&json!({"status": "ⓐ picture", "media_ids": [m["id"]]}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_alt.status(), 422);
    assert!(post_files(&site).is_empty());
}

/// The sign-in page as a browser draws it: Debian's Chromium, headless, takes a screenshot.
/// The page must load its stylesheet under its own Content-Security-Policy (the Allow button's
/// green is drawn) and hold the password field; the PNG is kept for a look when
/// `HORTUS_SIGNIN_SCREENSHOT=FILE` is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_in_page_renders_in_headless_chromium() {
    let browser = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("chromium is not installed: run scripts/install-test-deps.sh first");
    let (site, base) = started("127.0.13.60").await;
    set_password(&site);
    let http = common::client();
    let app = register(&http, &base, "read write").await;
    let url = format!(
        "{base}/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope=read+write",
        app.id,
        url::form_urlencoded::byte_serialize(OOB.as_bytes()).collect::<String>()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let shot = dir.path().join("signin.png");
    let run = |extra: Vec<String>| {
        let (browser, dir, url) = (browser.to_string(), dir.path().to_path_buf(), url.clone());
        tokio::task::spawn_blocking(move || {
            Command::new("timeout")
                .arg("90")
                .arg(browser)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--hide-scrollbars",
                    "--window-size=800,900",
                ])
                .arg(format!("--user-data-dir={}", dir.join("profile").display()))
                .args(extra)
                .arg(url)
                .output()
                .expect("run chromium")
        })
    };
    let dom = run(vec!["--dump-dom".into()]).await.expect("chromium");
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    assert!(dom.contains("type=\"password\""), "{dom}");
    assert!(dom.contains("Ωmega 写真 app"), "{dom}");
    let out = run(vec![format!("--screenshot={}", shot.display())])
        .await
        .expect("chromium");
    assert!(
        shot.is_file(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Ok(keep) = std::env::var("HORTUS_SIGNIN_SCREENSHOT") {
        std::fs::copy(&shot, keep).expect("keep screenshot");
    }
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().expect("png");
    let mut pixels = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut pixels).expect("frame");
    assert_eq!((info.width, info.height), (800, 900));
    let channels = info.color_type.samples();
    let pixels = &pixels[..info.buffer_size()];
    // The Allow button's background (#2f6f4f) from static/style.css: the stylesheet loaded.
    let green = pixels
        .chunks(channels)
        .filter(|p| p[0].abs_diff(0x2f) < 6 && p[1].abs_diff(0x6f) < 6 && p[2].abs_diff(0x4f) < 6)
        .count();
    assert!(
        green > 500,
        "the Allow button is not drawn in its colour ({green} pixels)"
    );
    // Text was drawn: many distinct colours (anti-aliased glyphs), not a blank or error page.
    let distinct: std::collections::HashSet<&[u8]> = pixels.chunks(channels).collect();
    assert!(distinct.len() > 50, "{} colours", distinct.len());
}

/// Notifications and follow requests from what Hortus already stores: a pending follow from a
/// hostile profile and a like of a post, as an app lists, filters, dismisses and answers them.
#[tokio::test]
async fn notifications_and_follow_requests_come_from_what_hortus_stores() {
    let (site, base) = started("127.0.13.70").await;
    set_password(&site);
    site.write_post(
        "garden.md",
        "+++\ntitle = \"Ogród 庭\"\n+++\nRoses and رمان.\n",
    );
    site.publish();
    let bob = "https://peer.example/users/bob";
    let doc = json!({
        "id": bob, "type": "Person", "preferredUsername": "bob", "name": "Боб 🌻\u{202e}evil",
        "summary": "<p>gardener</p><script>alert(1)</script><img src=x onerror=alert(2)>",
        "icon": {"type": "Image", "url": "javascript:alert(3)"},
        "image": [{"type": "Image", "url": "https://peer.example/header.png"}],
        "manuallyApprovesFollowers": true,
        "attachment": [{"type": "PropertyValue", "name": "site", "value": "<a href=\"https://bob.example\">bob.example</a>"}]
    });
    {
        let db = site.db();
        db.execute(
            "INSERT INTO remote_actors (id, host, inbox, handle, raw, fetched_at)
             VALUES (?1, 'peer.example', 'https://peer.example/users/bob/inbox', 'bob@peer.example', ?2, '2026-11-29T08:00:00Z')",
            rusqlite::params![bob, doc.to_string()],
        )
        .unwrap();
        db.execute(
            "INSERT INTO followers (actor_id, follow_id, state, created_at)
             VALUES (?1, ?1 || '#follow-1', 'pending', '2026-11-29T08:00:00Z')",
            [bob],
        )
        .unwrap();
        db.execute(
            "INSERT INTO reactions (kind, actor_id, post_id, activity_id, raw, created_at)
             SELECT 'like', ?1, id, ?1 || '#like-1', '{}', '2026-11-29T08:05:00Z' FROM posts WHERE slug = 'garden'",
            [bob],
        )
        .unwrap();
    }
    let http = common::client();
    let app = register(&http, &base, "read write follow").await;
    let token = sign_in(&http, &base, &app, "read write follow").await;
    let get = |path: &str| {
        http.get(format!("{base}{path}"))
            .header("authorization", format!("Bearer {token}"))
            .send()
    };
    let post = |path: &str| {
        http.post(format!("{base}{path}"))
            .header("authorization", format!("Bearer {token}"))
            .send()
    };

    let list: Value = get("/api/v1/notifications")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["favourite", "follow_request"], "{list:#}");
    let like = &list[0];
    assert_eq!(like["status"]["url"], format!("{base}/posts/garden"));
    let account = &list[1]["account"];
    assert_eq!(account["acct"], "bob@peer.example");
    assert_eq!(account["locked"], true);
    // What the peer sent is cleaned: no script, no bidi override, no javascript: avatar.
    let note = account["note"].as_str().unwrap();
    assert!(
        note.contains("gardener") && !note.contains("script") && !note.contains("onerror"),
        "{note}"
    );
    assert!(
        !account["display_name"]
            .as_str()
            .unwrap()
            .contains('\u{202e}')
    );
    assert_eq!(account["avatar"], "");
    assert_eq!(account["header"], "https://peer.example/header.png");
    assert!(
        account["fields"][0]["value"]
            .as_str()
            .unwrap()
            .contains("https://bob.example")
    );
    // Filtering by type; paging by id.
    let only: Value = get("/api/v1/notifications?types[]=follow_request")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(only.as_array().unwrap().len(), 1);
    let older: Value = get(&format!(
        "/api/v1/notifications?max_id={}",
        like["id"].as_str().unwrap()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(older[0]["type"], "follow_request");
    // The account by its id needs the owner's token.
    let bob_id = account["id"].as_str().unwrap().to_string();
    assert_eq!(
        get(&format!("/api/v1/accounts/{bob_id}"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        http.get(format!("{base}/api/v1/accounts/{bob_id}"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    // Dismissed: gone from the list.
    assert_eq!(
        post(&format!(
            "/api/v1/notifications/{}/dismiss",
            like["id"].as_str().unwrap()
        ))
        .await
        .unwrap()
        .status(),
        200
    );
    let list: Value = get("/api/v1/notifications")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);

    // The follow request, approved from the app: accepted, and an Accept queued for bob.
    let requests: Value = get("/api/v1/follow_requests")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(requests[0]["id"], bob_id.as_str());
    let rel: Value = get(&format!("/api/v1/accounts/relationships?id[]={bob_id}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rel[0]["requested_by"], true);
    assert_eq!(rel[0]["followed_by"], false);
    let answered = post(&format!("/api/v1/follow_requests/{bob_id}/authorize"))
        .await
        .unwrap();
    assert_eq!(answered.status(), 200);
    let rel: Value = answered.json().await.unwrap();
    assert_eq!(
        (rel["followed_by"].clone(), rel["requested_by"].clone()),
        (json!(true), json!(false))
    );
    let db = site.db();
    let state: String = db
        .query_row(
            "SELECT state FROM followers WHERE actor_id = ?1",
            [bob],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(state, "accepted");
    let accepts: i64 = db
        .query_row(
            "SELECT count(*) FROM outgoing_activities WHERE activity_type = 'Accept'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(accepts, 1);
    // Answered once: a second answer finds no request.
    assert_eq!(
        post(&format!("/api/v1/follow_requests/{bob_id}/reject"))
            .await
            .unwrap()
            .status(),
        404
    );
    let requests: Value = get("/api/v1/follow_requests")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(requests, json!([]));
    // Now a follower: a `follow` notification; `clear` empties the list.
    let list: Value = get("/api/v1/notifications")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["type"], "follow");
    assert_eq!(
        post("/api/v1/notifications/clear").await.unwrap().status(),
        200
    );
    assert_eq!(
        get("/api/v1/notifications")
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap(),
        json!([])
    );
}

/// The streaming API with masto's streaming client: a like stored by the inbox and a status
/// posted from an app arrive on the `user` stream as they happen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masto_hears_a_new_notification_and_a_new_post_on_the_stream() {
    let (site, base) = started("127.0.13.80").await;
    set_password(&site);
    site.write_post(
        "rain.md",
        "+++\ntitle = \"Дождь\"\n+++\nRain on the roses.\n",
    );
    site.publish();
    let carol = "https://peer.example/users/carol";
    site.db()
        .execute(
            "INSERT INTO remote_actors (id, host, inbox, handle, raw, fetched_at)
             VALUES (?1, 'peer.example', ?1 || '/inbox', 'carol@peer.example', ?2, '2026-11-29T08:00:00Z')",
            rusqlite::params![carol, json!({"id": carol, "type": "Person", "preferredUsername": "carol", "name": "Carol ☔"}).to_string()],
        )
        .unwrap();
    let http = common::client();
    let app = register(&http, &base, "read write").await;
    let token = sign_in(&http, &base, &app, "read write").await;
    let instance: Value = http
        .get(format!("{base}/api/v2/instance"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let streaming = instance["configuration"]["urls"]["streaming"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(streaming.starts_with("ws://127.0.13.80:"), "{streaming}");
    // No stream without a good token, before any upgrade.
    let refused = http
        .get(format!(
            "{base}/api/v1/streaming?stream=user&access_token=bm9wZQ"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let write_only = sign_in(&http, &base, &app, "write").await;
    let refused = http
        .get(format!(
            "{base}/api/v1/streaming?stream=user&access_token={write_only}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let mut node = Command::new("node")
        .arg("masto_stream.mjs")
        .current_dir(peer_dir())
        .env("HORTUS_STREAMING", &streaming)
        .env("HORTUS_TOKEN", &token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node");
    // Lines from the script, read on a thread of their own while the server runs here.
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    let stdout = node.stdout.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let lines = &lines;
    let next = |wait: u64| {
        let deadline = std::time::Instant::now() + Duration::from_secs(wait);
        async move {
            while std::time::Instant::now() < deadline {
                match lines.try_recv() {
                    Ok(line) => return Some(line),
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => return None,
                    Err(std::sync::mpsc::TryRecvError::Empty) => {
                        tokio::time::sleep(Duration::from_millis(50)).await
                    }
                }
            }
            None
        }
    };
    assert_eq!(next(20).await.as_deref(), Some("ready"));
    // The inbox stores a like (as it would from carol's server), and an app posts.
    site.db()
        .execute(
            "INSERT INTO reactions (kind, actor_id, post_id, activity_id, raw, created_at)
             SELECT 'like', ?1, id, ?1 || '#like', '{}', '2026-11-29T09:00:00Z' FROM posts WHERE slug = 'rain'",
            [carol],
        )
        .unwrap();
    let posted = http
        .post(format!("{base}/api/v1/statuses"))
        .header("authorization", format!("Bearer {token}"))
        .json(&json!({"status": "虹が出た 🌈 — a rainbow"}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    let mut events = Vec::new();
    while let Some(line) = next(20).await {
        events.push(serde_json::from_str::<Value>(&line).expect("event JSON"));
    }
    let out = node.wait_with_output().expect("node ends");
    assert!(
        out.status.success(),
        "{events:#?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let notification = events
        .iter()
        .find(|e| e["event"] == "notification")
        .expect("a notification");
    assert_eq!(notification["payload"]["type"], "favourite");
    assert_eq!(
        notification["payload"]["account"]["displayName"],
        "Carol ☔"
    );
    let update = events
        .iter()
        .find(|e| e["event"] == "update")
        .expect("an update");
    assert!(
        update["payload"]["content"]
            .as_str()
            .unwrap()
            .contains("虹が出た"),
        "{update:#}"
    );
    assert_eq!(update["stream"], json!(["user"]));
}

/// The timelines made of the owner's own posts, and the owner's followers, as apps page them.
#[tokio::test]
async fn public_and_tag_timelines_show_public_posts_and_the_followers_are_listed() {
    let (site, base) = started("127.0.13.90").await;
    site.write_post(
        "a.md",
        "+++\ntags = [\"Garden\"]\n+++\nفي الحديقة #garden\n",
    );
    site.write_post(
        "b.md",
        "+++\nvisibility = \"unlisted\"\n+++\nunlisted 非公開\n",
    );
    site.write_post(
        "c.md",
        "+++\nvisibility = \"followers\"\n+++\nfor followers only\n",
    );
    site.write_post("d.md", "Ещё один public post\n");
    site.publish();
    let ids: std::collections::HashMap<String, i64> = {
        let db = site.db();
        let mut stmt = db.prepare("SELECT slug, id FROM posts").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let bob = "https://peer.example/users/bob";
    {
        let db = site.db();
        db.execute(
            "INSERT INTO remote_actors (id, host, inbox, handle, raw, fetched_at)
             VALUES (?1, 'peer.example', ?1 || '/inbox', 'bob@peer.example', ?2, '2026-11-29T08:00:00Z')",
            rusqlite::params![bob, json!({"id": bob, "type": "Person", "preferredUsername": "bob"}).to_string()],
        )
        .unwrap();
        db.execute(
            "INSERT INTO followers (actor_id, follow_id, state, created_at) VALUES (?1, ?1 || '#f', 'accepted', '2026-11-29T08:00:00Z')",
            [bob],
        )
        .unwrap();
    }
    let http = common::client();
    let ids_of = |v: &Value| -> Vec<i64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().parse().unwrap())
            .collect()
    };
    let public = http
        .get(format!("{base}/api/v1/timelines/public?local=true&limit=1"))
        .send()
        .await
        .unwrap();
    let link = public
        .headers()
        .get("link")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let first: Value = public.json().await.unwrap();
    assert_eq!(ids_of(&first), [ids["d"]]);
    // The next page, by the Link header: the other public post; unlisted and followers-only never.
    let next = link.split(['<', '>']).nth(1).unwrap();
    let second: Value = http.get(next).send().await.unwrap().json().await.unwrap();
    assert_eq!(ids_of(&second), [ids["a"]]);
    let all: Value = http
        .get(format!("{base}/api/v1/timelines/public"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ids_of(&all), [ids["d"], ids["a"]]);
    let tagged: Value = http
        .get(format!("{base}/api/v1/timelines/tag/GARDEN"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ids_of(&tagged), [ids["a"]]);
    let followers: Value = http
        .get(format!("{base}/api/v1/accounts/1/followers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(followers[0]["acct"], "bob@peer.example");
    let following: Value = http
        .get(format!("{base}/api/v1/accounts/1/following"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(following, json!([]));
}

#[tokio::test]
async fn a_hidden_social_graph_stays_hidden_from_apps() {
    let mut site = TestSite::with_config("127.0.13.91", |cfg| {
        *cfg = cfg.replace("hide_social_graph = false", "hide_social_graph = true");
    });
    let base = site.base.clone();
    let text = std::fs::read_to_string(site.dir.join("hortus.toml")).unwrap();
    assert!(text.contains("hide_social_graph = true"), "{text}");
    site.start().await;
    add_follower(
        &site.db(),
        "https://peer.example/users/bob",
        "https://peer.example/users/bob/inbox",
        None,
    );
    let followers: Value = common::client()
        .get(format!("{base}/api/v1/accounts/1/followers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(followers, json!([]));
}
