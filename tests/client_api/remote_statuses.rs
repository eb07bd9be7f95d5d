//! Remote statuses as apps read them (issue 13): `language` from `contentMap`, `mentions`,
//! `tags` and `emojis` from the Note's `tag` array (hostile entries dropped), and the Mastodon
//! 4.5 `quote` (`{state, quoted_status}`) for quotes from other servers and the owner's own,
//! following FEP-044f consent: pending until the quoted author's stamp, then accepted with
//! the quoted status.

use serde_json::{Value, json};

use super::common::peer::Peer;
use super::common::{self, TestSite};
use super::home::{follow_accepted, send};
use super::*;

const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

async fn get(http: &reqwest::Client, url: &str, token: &str) -> Value {
    let resp = http
        .get(url)
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 200, "{url}");
    resp.json().await.expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_statuses_carry_language_mentions_tags_emojis_and_quotes_with_their_consent() {
    let mut site = TestSite::federating("127.0.13.30");
    let bob = Peer::start("127.0.13.31", false);
    site.allow(&bob.host);
    set_password(&site);
    let state = site.start().await;
    follow_accepted(&state, &site, &bob).await;
    let http = common::client();
    let app = register(&http, &site.base, "read write").await;
    let token = sign_in(&http, &site.base, &app, "read write").await;
    let mine: Value = http
        .post(format!("{}/api/v1/statuses", site.base))
        .bearer_auth(&token)
        .json(&json!({"status": "わたしの庭 🌿 — حديقتي"}))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let alice = site.url("/users/alice");
    let carol = format!("{}/users/carol", bob.base);

    // A: in Japanese, mentioning the owner and carol, a hashtag, a custom emoji, and hostile
    // tags that must not come through.
    let a_id = format!("{}/notes/a", bob.base);
    let a = json!({
        "id": a_id, "type": "Note", "attributedTo": bob.actor, "to": [PUBLIC],
        "published": "2026-11-21T10:00:00Z",
        "content": "<p>@alice @carol 庭園の朝 #庭園 :blob_cat:</p>",
        "contentMap": {"ja": "<p>@alice @carol 庭園の朝 #庭園 :blob_cat:</p>"},
        "interactionPolicy": {"canQuote": {"automaticApproval": [PUBLIC]}},
        "tag": [
            {"type": "Mention", "href": alice, "name": "@alice"},
            {"type": "Mention", "href": carol, "name": "@carol"},
            {"type": "Mention", "href": "javascript:alert(1)", "name": "@x"},
            // A name claiming another server's admin for a link to bob's server.
            {"type": "Mention", "href": format!("{}/users/dave", bob.base),
             "name": "@admin@trusted.example"},
            {"type": "Hashtag", "href": format!("{}/tags/庭園", bob.base), "name": "#庭園"},
            {"type": "Hashtag", "name": "#bad tag\u{1b}[2J"},
            {"type": "Emoji", "name": ":blob_cat:",
             "icon": {"type": "Image", "url": format!("{}/emoji/blob_cat.png", bob.base)}},
            {"type": "Emoji", "name": ":evil:", "icon": {"url": "javascript:alert(1)"}},
            {"type": "Emoji", "name": ":a b:", "icon": {"url": format!("{}/e.png", bob.base)}},
        ],
    });
    bob.documents
        .lock()
        .unwrap()
        .insert("/notes/a".into(), a.clone());
    send(&bob, &site, &bob.activity("Create", a.clone())).await;
    // B quotes A (its own author's post: no consent needed); C quotes the owner's post and
    // has no stamp: pending.
    let b = json!({
        "id": format!("{}/notes/b", bob.base), "type": "Note", "attributedTo": bob.actor,
        "to": [PUBLIC], "published": "2026-11-21T11:00:00Z",
        "content": "<p>RE: 自分の投稿 — مقتبس</p>", "quote": a_id,
        "contentMap": {"ar": "<p>RE: 自分の投稿 — مقتبس</p>"},
    });
    let c = json!({
        "id": format!("{}/notes/c", bob.base), "type": "Note", "attributedTo": bob.actor,
        "to": [PUBLIC], "published": "2026-11-21T12:00:00Z",
        "content": "<p>Citação ✨</p>", "_misskey_quote": mine["uri"],
    });
    // D and E quote carol's post (another author): D claims a stamp that carol's server does
    // not serve (forged consent), E's stamp is served and grants exactly this quote.
    let carols = format!("{}/notes/carol-1", bob.base);
    bob.documents.lock().unwrap().insert(
        "/notes/carol-1".into(),
        json!({"id": carols, "type": "Note", "attributedTo": carol, "to": [PUBLIC],
               "content": "<p>Ünïcödé 🌱</p>"}),
    );
    let quoting_carol = |n: &str, stamp: &str| {
        json!({
            "id": format!("{}/notes/{n}", bob.base), "type": "Note", "attributedTo": bob.actor,
            "to": [PUBLIC], "published": "2026-11-21T12:30:00Z",
            "content": "<p>引用 — اقتباس</p>", "quote": carols, "quoteAuthorization": stamp,
        })
    };
    let e_stamp = format!("{}/quote-authorizations/carol-e", bob.base);
    bob.documents.lock().unwrap().insert(
        "/quote-authorizations/carol-e".into(),
        json!({"id": e_stamp, "type": "QuoteAuthorization", "attributedTo": carol,
               "interactingObject": format!("{}/notes/e", bob.base),
               "interactionTarget": carols}),
    );
    let d_stamp = format!("{}/quote-authorizations/never-granted", bob.base);
    send(&bob, &site, &bob.activity("Create", b)).await;
    send(&bob, &site, &bob.activity("Create", c)).await;
    send(
        &bob,
        &site,
        &bob.activity("Create", quoting_carol("d", &d_stamp)),
    )
    .await;
    send(
        &bob,
        &site,
        &bob.activity("Create", quoting_carol("e", &e_stamp)),
    )
    .await;

    let home = get(
        &http,
        &format!("{}/api/v1/timelines/home", site.base),
        &token,
    )
    .await;
    let by_uri = |uri: &str| -> Value {
        home.as_array()
            .unwrap()
            .iter()
            .find(|s| s["uri"] == uri)
            .cloned()
            .unwrap_or_else(|| panic!("{uri} not in {home:#}"))
    };
    let sa = by_uri(&a_id);
    assert_eq!(sa["language"], "ja");
    let mentions = sa["mentions"].as_array().unwrap();
    assert_eq!(mentions.len(), 3, "{sa:#}");
    assert_eq!(
        mentions[2]["acct"],
        format!("admin@{}", bob.host),
        "the tag's name never names another server: {sa:#}"
    );
    assert_eq!(mentions[0]["id"], "1");
    assert_eq!(mentions[0]["url"], alice.as_str());
    assert_eq!(mentions[1]["url"], carol.as_str());
    assert_eq!(mentions[1]["acct"], format!("carol@{}", bob.host));
    assert_eq!(mentions[1]["username"], "carol");
    assert!(mentions[1]["id"].as_str().unwrap().parse::<i64>().is_ok());
    // The link as a URL: percent-encoded.
    let tag_url = format!("{}/tags/%E5%BA%AD%E5%9C%92", bob.base);
    assert_eq!(sa["tags"], json!([{"name": "庭園", "url": tag_url}]));
    assert_eq!(sa["emojis"].as_array().unwrap().len(), 1, "{sa:#}");
    assert_eq!(sa["emojis"][0]["shortcode"], "blob_cat");
    assert_eq!(
        sa["emojis"][0]["url"],
        format!("{}/emoji/blob_cat.png", bob.base)
    );
    assert!(sa["quote"].is_null());

    let sb = by_uri(&format!("{}/notes/b", bob.base));
    assert_eq!(sb["language"], "ar");
    assert_eq!(sb["quote"]["state"], "accepted", "{sb:#}");
    assert_eq!(sb["quote"]["quoted_status"]["id"], sa["id"]);
    assert_eq!(sb["quote"]["quoted_status"]["language"], "ja");
    let sc = by_uri(&format!("{}/notes/c", bob.base));
    assert_eq!(sc["language"], Value::Null);
    assert_eq!(sc["quote"]["state"], "pending", "{sc:#}");
    assert!(sc["quote"]["quoted_status"].is_null());
    let sd = by_uri(&format!("{}/notes/d", bob.base));
    assert_eq!(
        sd["quote"]["state"], "pending",
        "a claimed stamp is no consent: {sd:#}"
    );
    let se = by_uri(&format!("{}/notes/e", bob.base));
    assert_eq!(se["quote"]["state"], "accepted", "{se:#}");
    assert!(
        se["quote"]["quoted_status"].is_null(),
        "Hortus does not hold carol's post"
    );

    // The owner quotes A from the app: pending until bob's server consents.
    let quoting: Value = http
        .post(format!("{}/api/v1/statuses", site.base))
        .bearer_auth(&token)
        .json(&json!({"status": "引用します 📎 — أقتبس", "quoted_status_id": sa["id"]}))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    assert_eq!(quoting["quote"]["state"], "pending", "{quoting:#}");
    assert!(quoting["quote"]["quoted_status"].is_null());
    let request = bob.wait_for_activity("QuoteRequest").await;
    assert_eq!(request["instrument"], quoting["uri"]);
    // bob's server serves the stamp: Hortus fetches it and checks it grants this very quote.
    let stamp = format!("{}/quote-authorizations/1", bob.base);
    bob.documents.lock().unwrap().insert(
        "/quote-authorizations/1".into(),
        json!({"@context": "https://www.w3.org/ns/activitystreams", "id": stamp,
               "type": "QuoteAuthorization", "attributedTo": bob.actor,
               "interactingObject": quoting["uri"], "interactionTarget": a_id}),
    );
    let accept = json!({
        "@context": ["https://www.w3.org/ns/activitystreams",
                     {"QuoteRequest": "https://w3id.org/fep/044f#QuoteRequest"}],
        "id": format!("{}/activities/accept-q", bob.base), "type": "Accept",
        "actor": bob.actor, "to": [alice],
        "object": request, "result": stamp,
    });
    send(&bob, &site, &accept).await;
    // A status as the app reads it again, by the id it was given.
    let status = |id: &Value| {
        let url = format!(
            "{}/api/v1/statuses/{}",
            site.base,
            id.as_str().unwrap_or_default()
        );
        let (http, token) = (&http, &token);
        async move { get(http, &url, token).await }
    };
    let shown = status(&quoting["id"]).await;
    assert_eq!(shown["quote"]["state"], "accepted", "{shown:#}");
    let quoted = &shown["quote"]["quoted_status"];
    assert_eq!(quoted["uri"], a_id.as_str());
    // One level deep: the quoted status's own quote would be a ShallowQuote.
    assert!(quoted["quote"].is_null());
    assert_eq!(quoted["mentions"].as_array().unwrap().len(), 3);

    // bob deletes A: the quote of it says so, and shows nothing of it.
    let delete = json!({"id": a_id, "type": "Tombstone"});
    send(&bob, &site, &bob.activity("Delete", delete)).await;
    let sb = status(&sb["id"]).await;
    assert_eq!(sb["quote"]["state"], "deleted", "{sb:#}");
    assert!(sb["quote"]["quoted_status"].is_null());
    let shown = status(&quoting["id"]).await;
    assert_eq!(shown["quote"]["state"], "deleted", "{shown:#}");
}
