//! Search v2: the owner, the owner's posts and tags, and accounts looked up with `resolve=true`
//! on allowed servers only (then followed and unfollowed from the app); a refused server is
//! never asked.

use serde_json::Value;

use super::common::{self, TestSite, peer::Peer};
use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_resolves_an_account_the_app_then_follows_and_never_asks_a_refused_server() {
    let mut site = TestSite::federating("127.0.13.100");
    let allowed = Peer::start("127.0.13.101", false);
    let refused = Peer::start("127.0.13.102", false);
    site.allow(&allowed.host);
    site.write_post(
        "t.md",
        "+++\ntags = [\"Tulips\"]\n+++\nTulips 🌷 in spring, チューリップ\n",
    );
    site.publish();
    let base = site.base.clone();
    site.start().await;
    set_password(&site);
    let http = common::client();
    let app = register(&http, &base, "read write").await;
    let token = sign_in(&http, &base, &app, "read").await;
    let token_w = sign_in(&http, &base, &app, "read write").await;
    let search = |q: String, extra: &'static str| {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        async move {
            let resp = http
                .get(format!("{base}/api/v2/search?{extra}"))
                .query(&[("q", q.as_str())])
                .header("authorization", format!("Bearer {token}"))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.unwrap()
        }
    };
    let r = search("チューリップ".into(), "").await;
    assert_eq!(r["statuses"].as_array().unwrap().len(), 1);
    let r = search("#tul".into(), "type=hashtags").await;
    assert_eq!(r["hashtags"][0]["name"], "tulips");
    assert_eq!(r["statuses"], serde_json::json!([]));
    let r = search("@alice".into(), "").await;
    assert_eq!(r["accounts"][0]["id"], "1");

    // Not known yet, no resolve: nothing, and no request.
    let bob = format!("bob@{}", allowed.host);
    let r = search(bob.clone(), "").await;
    assert_eq!(r["accounts"], serde_json::json!([]));
    assert!(allowed.log.lock().unwrap().is_empty());
    // resolve=true: looked up over WebFinger on the allowed server.
    let r = search(bob.clone(), "resolve=true").await;
    assert_eq!(r["accounts"][0]["uri"], allowed.actor.as_str(), "{r:#}");
    // Followed from the app: requested until the peer accepts; the Follow reaches it, signed.
    let bob_id = r["accounts"][0]["id"].as_str().unwrap().to_string();
    let followed = http
        .post(format!("{base}/api/v1/accounts/{bob_id}/follow"))
        .header("authorization", format!("Bearer {token_w}"))
        .send()
        .await
        .unwrap();
    assert_eq!(followed.status(), 200);
    let rel: Value = followed.json().await.unwrap();
    assert_eq!(rel["requested"], true, "{rel:#}");
    let mut got_follow = false;
    for _ in 0..100 {
        got_follow = allowed
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.method == "POST" && r.json()["type"] == "Follow");
        if got_follow {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(got_follow, "the Follow did not reach the peer");
    let unfollowed = http
        .post(format!("{base}/api/v1/accounts/{bob_id}/unfollow"))
        .header("authorization", format!("Bearer {token_w}"))
        .send()
        .await
        .unwrap();
    assert_eq!(unfollowed.status(), 200);
    assert_eq!(
        unfollowed.json::<Value>().await.unwrap()["requested"],
        false
    );
    // The refused server: nothing, and it never heard of us.
    let r = search(format!("bob@{}", refused.host), "resolve=true").await;
    assert_eq!(r["accounts"], serde_json::json!([]));
    let r = search(refused.actor.clone(), "resolve=true").await;
    assert_eq!(r["accounts"], serde_json::json!([]));
    assert!(
        refused.log.lock().unwrap().is_empty(),
        "the refused server was asked"
    );

    // Searching needs read:search.
    let write_only = sign_in(&http, &base, &app, "write").await;
    let denied = http
        .get(format!("{base}/api/v2/search?q=x"))
        .header("authorization", format!("Bearer {write_only}"))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_posts_from_other_servers_by_text_and_url_and_resolves_only_allowed_ones() {
    use serde_json::json;
    const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";
    let mut site = TestSite::federating("127.0.13.103");
    let bob = Peer::start("127.0.13.104", false);
    let refused = Peer::start("127.0.13.105", false);
    site.allow(&bob.host);
    let state = site.start().await;
    set_password(&site);
    super::home::follow_accepted(&state, &site, &bob).await;
    let note = |n: &str, text: &str| {
        json!({
            "id": format!("{}/notes/{n}", bob.base), "type": "Note", "attributedTo": bob.actor,
            "to": [PUBLIC], "published": "2026-11-22T10:00:00Z", "url": format!("{}/@bob/{n}", bob.base),
            "content": format!("<p>{text}</p>"),
        })
    };
    let kept = note("1", "満開の<em>紫陽花</em> — ازدهرت الكوبية Hydrangea");
    let other = note("2", "Nothing about flowers ✂️");
    let unseen = note("3", "Fetched on demand — عند الطلب");
    for n in [&kept, &other] {
        super::home::send(&bob, &site, &bob.activity("Create", n.clone())).await;
    }
    bob.documents
        .lock()
        .unwrap()
        .insert("/notes/3".into(), unseen.clone());
    let http = common::client();
    let app = register(&http, &site.base, "read").await;
    let token = sign_in(&http, &site.base, &app, "read").await;
    let search = |q: String, extra: &'static str| {
        let (http, base, token) = (http.clone(), site.base.clone(), token.clone());
        async move {
            let resp = http
                .get(format!("{base}/api/v2/search?type=statuses&{extra}"))
                .query(&[("q", q.as_str())])
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let v: Value = resp.json().await.unwrap();
            v["statuses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["uri"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    let kept_id = kept["id"].as_str().unwrap().to_string();
    // By text: across markup-free text, any script, any case.
    assert_eq!(
        search("紫陽花".into(), "").await,
        std::slice::from_ref(&kept_id)
    );
    assert_eq!(
        search("hydrangea".into(), "").await,
        std::slice::from_ref(&kept_id)
    );
    assert_eq!(
        search("الكوبية".into(), "").await,
        std::slice::from_ref(&kept_id)
    );
    assert!(
        search("em>".into(), "").await.is_empty(),
        "markup is not text"
    );
    assert!(search("100%".into(), "").await.is_empty());
    // By its id or its page.
    assert_eq!(
        search(kept_id.clone(), "").await,
        std::slice::from_ref(&kept_id)
    );
    assert_eq!(
        search(format!("{}/@bob/1", bob.base), "").await,
        std::slice::from_ref(&kept_id)
    );
    // Not held: nothing without resolve, and bob is not asked; with resolve, fetched.
    let unseen_id = unseen["id"].as_str().unwrap().to_string();
    let gets = |peer: &Peer| {
        peer.log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == "GET" && r.path.contains("/notes/"))
            .count()
    };
    assert!(search(unseen_id.clone(), "").await.is_empty());
    assert_eq!(gets(&bob), 0);
    assert_eq!(
        search(unseen_id.clone(), "resolve=true").await,
        std::slice::from_ref(&unseen_id)
    );
    assert_eq!(gets(&bob), 1);
    // A refused server is never asked.
    let elsewhere = format!("{}/notes/9", refused.base);
    assert!(search(elsewhere, "resolve=true").await.is_empty());
    assert!(
        refused.log.lock().unwrap().is_empty(),
        "the refused server was asked"
    );
}
