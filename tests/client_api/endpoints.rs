//! The endpoints around the statuses: the admin domain lists, errors, CORS and empty answers,
//! notifications and follow requests, the public and tag timelines.

use serde_json::{Value, json};

use super::common::{self, TestSite};
use super::mock_inbox::add_follower;
use super::*;

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
        reqwest::multipart::Part::bytes(include_bytes!("../../static/avatar.png").to_vec())
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
