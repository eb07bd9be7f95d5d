//! `update_credentials` (issue 13): the owner's profile changed from an app is written into
//! hortus.toml with the owner's comments kept, shows at once in the actor, the pages and the
//! API of the running `hortus serve` (no restart), and reaches followers as an `Update` of the
//! Person; bad input is refused with 422 and nothing is written.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use super::common::{self, TestSite};
use super::mock_inbox::{MockInbox, add_follower};
use super::*;

fn media_api_files(site: &TestSite) -> Vec<String> {
    std::fs::read_dir(site.dir.join("media/api"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masto_changes_the_profile_into_hortus_toml_the_actor_and_pages_and_followers_get_an_update()
 {
    assert!(
        peer_dir().join("node_modules/masto").is_dir(),
        "tests/peer/node_modules is missing masto: run scripts/install-test-deps.sh first"
    );
    let mut site = TestSite::federating("127.0.13.20");
    let peer = MockInbox::start("127.0.13.21").await;
    site.allow(&peer.host());
    add_follower(
        &site.db(),
        &peer.actor("bob"),
        &peer.actor_inbox("bob"),
        None,
    );
    set_password(&site);
    let image = site.tmp.path().join("avatar.png");
    std::fs::write(&image, include_bytes!("../../static/avatar.png")).expect("image");
    let serve = site.spawn_serve(1).await;
    let http = common::client();
    let app = register(&http, &site.base, "read write").await;
    let token = sign_in(&http, &site.base, &app, "read write").await;

    // The home page and the actor are cached before the change: both must be rendered again.
    let home = http.get(site.url("/")).send().await.expect("home");
    assert!(home.text().await.expect("html").contains("Alice"));
    let (status, before) = common::get_json(&site.url("/users/alice")).await;
    assert_eq!(status, 200);
    assert_eq!(before["name"], "Alice");
    let toml_before = std::fs::read_to_string(site.dir.join("hortus.toml")).expect("toml");

    let out = Command::new("node")
        .arg("masto_profile.mjs")
        .current_dir(peer_dir())
        .env("HORTUS_BASE", &site.base)
        .env("HORTUS_TOKEN", &token)
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
    let name = "花子 ٱلحديقة 🌱";
    let note = "Grows *thyme* and writes code. مرحبا — e\u{301}té";
    assert_eq!(r["updated"]["displayName"], name);
    assert_eq!(r["updated"]["sourceNote"], note);
    assert!(
        r["updated"]["note"]
            .as_str()
            .unwrap()
            .contains("<em>thyme</em>"),
        "{r}"
    );
    let fields = json!([
        ["Site", "https://hanako.example"],
        ["言葉", "日本語, العربية"],
        ["Emoji 🌼", "🌻🌷"],
        ["Combining", "n\u{303} a\u{308}"]
    ]);
    assert_eq!(r["updated"]["sourceFields"], fields);
    assert_eq!(r["verified"], name);
    assert_eq!(r["public"], name);
    let avatar_url = r["updated"]["avatar"].as_str().unwrap().to_string();
    assert!(avatar_url.contains("/media/api/"), "{avatar_url}");
    // The refused change: 422, and it changed nothing.
    assert_eq!(r["tooLong"], 422, "{r}");
    assert!(r["tooLongMessage"].as_str().unwrap().contains("30"), "{r}");

    // hortus.toml holds the new profile, every comment and the rest of the file as they were.
    let toml = std::fs::read_to_string(site.dir.join("hortus.toml")).expect("toml");
    let config = hortus::config::Config::parse(&toml, std::path::Path::new("hortus.toml"))
        .expect("hortus.toml still loads");
    assert_eq!(config.user.display_name, name);
    assert_eq!(config.user.bio, note);
    assert_eq!(config.user.fields.len(), 4);
    assert_eq!(config.user.fields[3].value, "n\u{303} a\u{308}");
    let avatar = config.user.avatar.clone().expect("avatar");
    assert!(site.dir.join(&avatar).is_file(), "{avatar}");
    for line in toml_before
        .lines()
        .filter(|l| l.trim_start().starts_with('#'))
    {
        assert!(toml.contains(line), "comment lost: {line}\n{toml}");
    }
    for line in toml_before
        .lines()
        .filter(|l| !l.starts_with("display_name") && !l.starts_with("bio") && !l.trim().is_empty())
    {
        assert!(toml.contains(line), "line lost: {line}\n{toml}");
    }
    // The uploaded avatar is served and is a PNG.
    let png = http.get(&avatar_url).send().await.expect("avatar");
    assert_eq!(png.status(), 200);
    assert!(png.bytes().await.expect("bytes").starts_with(b"\x89PNG"));

    // The running server shows it at once: the actor, the home page (its cache dropped), the
    // instance's contact account.
    let (_, actor) = common::get_json(&site.url("/users/alice")).await;
    assert_eq!(actor["name"], name);
    assert!(
        actor["summary"]
            .as_str()
            .unwrap()
            .contains("<em>thyme</em>")
    );
    assert_eq!(actor["icon"]["url"], avatar_url.as_str());
    assert_eq!(actor["attachment"].as_array().unwrap().len(), 4);
    assert_eq!(actor["attachment"][1]["name"], "言葉");
    let html = http
        .get(site.url("/"))
        .send()
        .await
        .expect("home")
        .text()
        .await
        .expect("html");
    assert!(
        html.contains(name),
        "the home page still shows the old name"
    );
    assert!(html.contains("日本語, العربية"));
    let (_, instance) = common::get_json(&site.url("/api/v2/instance")).await;
    assert_eq!(instance["contact"]["account"]["display_name"], name);

    // The follower got an Update of the Person, signed, with the new profile.
    let got = peer
        .wait_for(Duration::from_secs(30), |acts| {
            acts.iter().any(|a| {
                a.verified.is_ok()
                    && a.activity["type"] == "Update"
                    && a.activity["object"]["type"] == "Person"
            })
        })
        .await;
    let received: Vec<Value> = peer.received().into_iter().map(|r| r.activity).collect();
    assert!(got, "no Update(Person): {received:#?}\n{}", serve.log());
    let update = received
        .iter()
        .find(|a| a["type"] == "Update")
        .expect("update");
    assert_eq!(update["actor"], actor["id"]);
    assert_eq!(update["object"]["id"], actor["id"]);
    assert_eq!(update["object"]["name"], name);
    assert_eq!(update["object"]["icon"]["url"], avatar_url.as_str());
    assert!(update["object"].get("@context").is_none());
    assert!(update["@context"].is_array());
    // One Update only: the refused change sent nothing.
    assert_eq!(
        received.iter().filter(|a| a["type"] == "Update").count(),
        1,
        "{received:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_credentials_by_hand_json_and_forms_refuses_bad_input_writing_nothing() {
    let (site, base) = started("127.0.13.22").await;
    set_password(&site);
    let http = common::client();
    let app = register(&http, &base, "read write").await;
    let token = sign_in(&http, &base, &app, "read write").await;
    let read_app = register(&http, &base, "read").await;
    let read_token = sign_in(&http, &base, &read_app, "read").await;
    let url = format!("{base}/api/v1/accounts/update_credentials");
    let toml_path = site.dir.join("hortus.toml");

    // JSON, Rails' object-by-index shape for the fields.
    let resp = http
        .patch(&url)
        .bearer_auth(&token)
        .json(&json!({
            "display_name": "Ωmega 庭",
            "note": "",
            "fields_attributes": {"1": {"name": "二", "value": "two"}, "0": {"name": "一", "value": "one"}},
        }))
        .send()
        .await
        .expect("patch");
    assert_eq!(resp.status(), 200);
    let me: Value = resp.json().await.expect("json");
    assert_eq!(me["display_name"], "Ωmega 庭");
    assert_eq!(me["source"]["note"], "");
    assert_eq!(me["fields"][0]["name"], "一");
    assert_eq!(me["fields"][1]["value"], "two");
    let (_, actor) = common::get_json(&format!("{base}/users/alice")).await;
    assert_eq!(actor["name"], "Ωmega 庭");

    // A form that clears the fields (an empty pair is dropped, as Mastodon does).
    let resp = http
        .patch(&url)
        .bearer_auth(&token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("fields_attributes[0][name]=&fields_attributes[0][value]=")
        .send()
        .await
        .expect("patch");
    assert_eq!(resp.status(), 200);
    let me: Value = resp.json().await.expect("json");
    assert_eq!(me["fields"], json!([]));
    assert_eq!(me["display_name"], "Ωmega 庭", "untouched keys stay");

    let before = std::fs::read(&toml_path).expect("toml");
    let files_before = media_api_files(&site);
    let refused = |status: u16, what: &str, resp: reqwest::Response| {
        assert_eq!(resp.status().as_u16(), status, "{what}");
    };
    // Too long a name, counted in characters.
    let resp = http
        .patch(&url)
        .bearer_auth(&token)
        .json(&json!({"display_name": "名".repeat(31)}))
        .send()
        .await
        .expect("patch");
    refused(422, "long name", resp);
    // Five fields.
    let five: Vec<Value> = (0..5)
        .map(|i| json!({"name": format!("f{i}"), "value": "v"}))
        .collect();
    let resp = http
        .patch(&url)
        .bearer_auth(&token)
        .json(&json!({"fields_attributes": five}))
        .send()
        .await
        .expect("patch");
    refused(422, "five fields", resp);
    // Escape sequences in a name.
    let resp = http
        .patch(&url)
        .bearer_auth(&token)
        .json(&json!({"display_name": "bob\u{1b}[2J"}))
        .send()
        .await
        .expect("patch");
    refused(422, "control characters", resp);
    // An avatar that is not an image, with a valid name beside it: nothing of it is kept.
    let form = reqwest::multipart::Form::new()
        .text("display_name", "Should not stay")
        .part(
            "avatar",
            reqwest::multipart::Part::bytes(b"<svg onload=alert(1)>".to_vec())
                .file_name("a.png")
                .mime_str("image/png")
                .expect("mime"),
        );
    let resp = http
        .patch(&url)
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .expect("patch");
    refused(422, "not an image", resp);
    // An image over the limit.
    let mut big = include_bytes!("../../static/avatar.png").to_vec();
    big.resize(3 * 1024 * 1024, 0);
    let form = reqwest::multipart::Form::new().part(
        "header",
        reqwest::multipart::Part::bytes(big).file_name("h.png"),
    );
    let resp = http
        .patch(&url)
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .expect("patch");
    refused(422, "too big", resp);
    // A flood of form parts, to the profile and to the media upload: 413 before any is kept.
    let flood = || {
        (0..65).fold(reqwest::multipart::Form::new(), |f, i| {
            f.text(format!("x{i}"), "شجرة 🌳")
        })
    };
    let resp = http
        .patch(&url)
        .bearer_auth(&token)
        .multipart(flood().text("display_name", "flooded"))
        .send()
        .await
        .expect("patch");
    refused(413, "65 parts", resp);
    let resp = http
        .post(format!("{base}/api/v2/media"))
        .bearer_auth(&token)
        .multipart(
            flood().part(
                "file",
                reqwest::multipart::Part::bytes(include_bytes!("../../static/avatar.png").to_vec())
                    .file_name("a.png"),
            ),
        )
        .send()
        .await
        .expect("media");
    refused(413, "65 parts to media", resp);
    // A read-only token.
    let resp = http
        .patch(&url)
        .bearer_auth(&read_token)
        .json(&json!({"display_name": "read only"}))
        .send()
        .await
        .expect("patch");
    refused(403, "read token", resp);
    assert_eq!(
        std::fs::read(&toml_path).expect("toml"),
        before,
        "a refused change wrote hortus.toml"
    );
    assert_eq!(
        media_api_files(&site),
        files_before,
        "a refused image was kept"
    );
    let (_, actor) = common::get_json(&format!("{base}/users/alice")).await;
    assert_eq!(actor["name"], "Ωmega 庭");
}

/// `locked` and `hide_collections` from an app (Ivory's and Elk's "require follow requests" and
/// "hide followers" switches): written into hortus.toml's `[federation]`, shown at once in the
/// actor and the account, sent to followers as an `Update`; turning `locked` off approves the
/// requests that were waiting, each with its `Accept`, as Mastodon does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locking_from_an_app_writes_federation_and_unlocking_approves_waiting_requests() {
    let mut site = TestSite::federating("127.0.13.24");
    let peer = MockInbox::start("127.0.13.25").await;
    site.allow(&peer.host());
    let db = site.db();
    add_follower(&db, &peer.actor("bob"), &peer.actor_inbox("bob"), None);
    let carol = peer.actor("كارول");
    db.execute(
        "INSERT INTO remote_actors (id, host, inbox, shared_inbox, raw, fetched_at)
         VALUES (?1, ?2, ?3, NULL, '{}', '2026-01-01T00:00:00Z')",
        rusqlite::params![carol, peer.host(), peer.actor_inbox("كارول")],
    )
    .expect("actor");
    db.execute(
        "INSERT INTO followers (actor_id, follow_id, state, created_at)
         VALUES (?1, ?1 || '#follow-庭', 'pending', '2026-01-01T00:00:00Z')",
        [&carol],
    )
    .expect("pending follower");
    drop(db);
    set_password(&site);
    let serve = site.spawn_serve(1).await;
    let http = common::client();
    let app = register(&http, &site.base, "read write").await;
    let token = sign_in(&http, &site.base, &app, "read write").await;
    let url = site.url("/api/v1/accounts/update_credentials");
    let toml_path = site.dir.join("hortus.toml");

    let resp = http
        .patch(&url)
        .bearer_auth(&token)
        .json(&json!({"locked": true, "hide_collections": true, "display_name": "庭 🌿"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(resp.status(), 200);
    let me: Value = resp.json().await.expect("json");
    assert_eq!(me["locked"], true, "{me:#}");
    assert_eq!(me["hide_collections"], true, "{me:#}");
    let config = hortus::config::Config::parse(
        &std::fs::read_to_string(&toml_path).expect("toml"),
        &toml_path,
    )
    .expect("hortus.toml still loads");
    assert!(config.federation.manually_approves_followers);
    assert!(config.federation.hide_social_graph);
    let (_, actor) = common::get_json(&site.url("/users/alice")).await;
    assert_eq!(actor["manuallyApprovesFollowers"], true);
    let got = peer
        .wait_for(Duration::from_secs(30), |acts| {
            acts.iter().any(|a| {
                a.verified.is_ok()
                    && a.activity["type"] == "Update"
                    && a.activity["object"]["manuallyApprovesFollowers"] == true
            })
        })
        .await;
    assert!(got, "no Update with the lock: {}", serve.log());
    // Still waiting while locked.
    let state = |site: &TestSite| -> String {
        site.db()
            .query_row(
                "SELECT state FROM followers WHERE actor_id = ?1",
                [&carol],
                |r| r.get(0),
            )
            .expect("carol")
    };
    assert_eq!(state(&site), "pending");

    // Unlocked with a form, as masto sends it: the request waiting is approved.
    let resp = http
        .patch(&url)
        .bearer_auth(&token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("locked=false")
        .send()
        .await
        .expect("patch");
    assert_eq!(resp.status(), 200);
    let me: Value = resp.json().await.expect("json");
    assert_eq!(me["locked"], false, "{me:#}");
    assert_eq!(me["hide_collections"], true, "untouched keys stay: {me:#}");
    assert_eq!(me["display_name"], "庭 🌿");
    assert_eq!(state(&site), "accepted");
    let follow_id = format!("{carol}#follow-庭");
    let got = peer
        .wait_for(Duration::from_secs(30), |acts| {
            acts.iter().any(|a| {
                a.verified.is_ok()
                    && a.activity["type"] == "Accept"
                    && a.activity["object"]["id"] == follow_id.as_str()
            })
        })
        .await;
    let received: Vec<Value> = peer.received().into_iter().map(|r| r.activity).collect();
    assert!(
        got,
        "no Accept for the waiting request: {received:#?}\n{}",
        serve.log()
    );
    let (_, actor) = common::get_json(&site.url("/users/alice")).await;
    assert_eq!(actor["manuallyApprovesFollowers"], false);
}

/// An avatar replaced from an app is removed from `media/api/` (uploads would otherwise pile
/// up forever); the new one and the header stay; an image the owner placed elsewhere is never
/// removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_uploaded_avatar_is_removed_and_the_owners_own_image_stays() {
    let mut site = TestSite::new("127.0.13.26");
    set_password(&site);
    // A real `hortus serve`: the owner's hand edit below is read by its watcher.
    let serve = site.spawn_serve(1).await;
    let base = site.base.clone();
    let http = common::client();
    let app = register(&http, &base, "read write").await;
    let token = sign_in(&http, &base, &app, "read write").await;
    let url = format!("{base}/api/v1/accounts/update_credentials");
    let png = include_bytes!("../../static/avatar.png").to_vec();
    let upload = |field: &'static str| {
        let form = reqwest::multipart::Form::new()
            .text("display_name", "写真 📷")
            .part(
                field,
                reqwest::multipart::Part::bytes(png.clone())
                    .file_name("ä.png")
                    .mime_str("image/png")
                    .expect("mime"),
            );
        http.patch(&url).bearer_auth(&token).multipart(form).send()
    };
    let path_of = |site: &TestSite, key: &str| -> Option<String> {
        let toml = std::fs::read_to_string(site.dir.join("hortus.toml")).expect("toml");
        let c = hortus::config::Config::parse(&toml, std::path::Path::new("hortus.toml"))
            .expect("config");
        if key == "avatar" {
            c.user.avatar
        } else {
            c.user.header
        }
    };

    assert_eq!(upload("avatar").await.expect("patch").status(), 200);
    let first = path_of(&site, "avatar").expect("avatar");
    assert_eq!(upload("header").await.expect("patch").status(), 200);
    let header = path_of(&site, "header").expect("header");
    assert_eq!(upload("avatar").await.expect("patch").status(), 200);
    let second = path_of(&site, "avatar").expect("avatar");
    assert_ne!(first, second);
    assert!(!site.dir.join(&first).exists(), "{first} was kept");
    assert!(site.dir.join(&second).is_file());
    assert!(
        site.dir.join(&header).is_file(),
        "the header went with the avatar"
    );
    assert_eq!(
        media_api_files(&site).len(),
        2,
        "{:?}",
        media_api_files(&site)
    );

    // The owner's own avatar, placed by hand: replaced from an app, it stays on disk.
    let own = "media/mine.png";
    std::fs::create_dir_all(site.dir.join("media")).expect("media");
    std::fs::write(site.dir.join(own), &png).expect("own image");
    let resp = http
        .patch(&url)
        .bearer_auth(&token)
        .json(&json!({"display_name": "手"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(resp.status(), 200);
    let toml_path = site.dir.join("hortus.toml");
    let toml = std::fs::read_to_string(&toml_path).expect("toml");
    // Saved as editors do: a new file renamed over the old one.
    let tmp = site.dir.join(".hortus.toml.swp");
    std::fs::write(&tmp, toml.replace(&second, own)).expect("hand edit");
    std::fs::rename(&tmp, &toml_path).expect("rename");
    // The running server reads the hand edit (the reload the owner's save triggers).
    let mut seen = false;
    for _ in 0..100 {
        let (_, actor) = common::get_json(&format!("{base}/users/alice")).await;
        if actor["icon"]["url"]
            .as_str()
            .is_some_and(|u| u.ends_with(own))
        {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen, "the hand edit was not read: {}", serve.log());
    assert_eq!(upload("avatar").await.expect("patch").status(), 200);
    assert!(
        site.dir.join(own).is_file(),
        "the owner's own image was removed"
    );
}
