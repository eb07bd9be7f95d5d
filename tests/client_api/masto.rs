//! What masto, the Mastodon client library, does against Hortus: the whole app flow against
//! `hortus serve` with a follower receiving what federates, the streaming client, and the
//! sign-in page as Chromium draws it.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::common::{self, TestSite};
use super::mock_inbox::{self, MockInbox, add_follower};
use super::*;

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
    std::fs::write(&image, include_bytes!("../../static/avatar.png")).expect("image");
    // Trace level everywhere, actix and reqwest included: no filter an owner could set shows a
    // secret.
    let serve = site.spawn_serve_logging(1, "trace").await;

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

    // No secret reached the log, though the log ran at trace and saw the sign-in.
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

/// The streaming API with masto's streaming client: a like stored by the inbox, and a status
/// posted, edited and deleted from an app, arrive on the `user` stream as they happen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masto_hears_a_new_notification_and_a_post_created_edited_and_deleted_on_the_stream() {
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
        .env("HORTUS_EXPECT", "notification,update,status.update,delete")
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
    let posted_id = posted.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut events: Vec<Value> = Vec::new();
    while !events.iter().any(|e| e["event"] == "update") {
        let line = next(20).await.expect("an update on the stream");
        events.push(serde_json::from_str(&line).expect("event JSON"));
    }
    // The app edits its status, then deletes it: `status.update`, then `delete`, live.
    let id = posted_id.clone();
    let edited = http
        .put(format!("{base}/api/v1/statuses/{id}"))
        .header("authorization", format!("Bearer {token}"))
        .json(&json!({"status": "虹が消えた — the rainbow faded"}))
        .send()
        .await
        .unwrap();
    assert_eq!(edited.status(), 200);
    // The stream looks once a second: let it see the edit before the post is gone.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let deleted = http
        .delete(format!("{base}/api/v1/statuses/{id}"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
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
    let changed = events
        .iter()
        .find(|e| e["event"] == "status.update")
        .expect("a status.update");
    assert!(
        changed["payload"]["content"]
            .as_str()
            .unwrap()
            .contains("虹が消えた"),
        "{changed:#}"
    );
    let gone = events
        .iter()
        .find(|e| e["event"] == "delete")
        .expect("a delete");
    assert_eq!(gone["payload"], posted_id.as_str());
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
