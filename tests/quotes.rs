//! Quote posts with consent (FEP-044f, issue 14) against an independent ActivityPub server:
//! Fedify 1.5.9 under Node (tests/peer/conversation_peer.mjs). Fedify 1.5.9 knows
//! `interactionPolicy` only as a term of GoToSocial's bundled context, and has no class for
//! `QuoteRequest` or `QuoteAuthorization`: the peer sends the QuoteRequest as raw JSON signed by
//! Fedify's own `signRequest`, verifies Hortus's answers with its own inbox (202 = the signature
//! checked out), and dereferences the stamp with a GET it signs itself. Needs
//! `scripts/install-test-deps.sh` (tests/peer/node_modules).

mod common;

use std::time::Duration;

use common::fedify::Fedify;
use common::*;
use serde_json::{Value, json};

const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

/// The inbox as `hortus inbox --json` lists it.
fn inbox(site: &TestSite) -> Vec<Value> {
    let out = hortus_ok(dir_of(site), &["inbox", "--json"]);
    serde_json::from_str(&out).expect("inbox JSON")
}

fn kind_of(inbox: &[Value], object: &str) -> Vec<String> {
    inbox
        .iter()
        .filter(|n| n["object"] == object)
        .map(|n| n["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Waits until Fedify's inbox got a POST matching `pred`; returns it (with Fedify's status).
async fn received(peer: &Fedify, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        hortus::delivery::wake_workers();
        let log = peer.log().await;
        if let Some(found) = log["received"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| pred(&r["json"]))
        {
            return found.clone();
        }
        if tokio::time::Instant::now() > deadline {
            panic!("Fedify never received {what}: {log:#}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The counts line under a post ("0 replies 0 likes 0 boosts 1 quote").
async fn quote_count(site: &TestSite, slug: &str) -> String {
    let html = get(&site.url(&format!("/posts/{slug}")), BROWSER_ACCEPT)
        .await
        .text()
        .await
        .expect("page");
    let text = counts(&html);
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[1].starts_with("quote"))
        .map_or("0 quotes".into(), |w| format!("{} {}", w[0], w[1]))
}

/// Dana's QuoteRequest of `target` by her note `quoting`, as Mastodon 4.5 sends it.
async fn quote_request(
    dana: &Fedify,
    alice: &str,
    n: &str,
    target: &str,
    quoting: &str,
) -> (String, u64) {
    let id = format!("{}/activities/quote-request-{n}", dana.base);
    let r = dana
        .control(
            "/_control/raw",
            json!({"to": alice, "activity": {
                "@context": ["https://www.w3.org/ns/activitystreams",
                             {"QuoteRequest": "https://w3id.org/fep/044f#QuoteRequest"}],
                "id": id,
                "type": "QuoteRequest",
                "to": [alice],
                "object": target,
                "instrument": quoting,
            }}),
        )
        .await;
    (id, r["status"].as_u64().unwrap_or_default())
}

fn answers(id: &str) -> impl Fn(&Value) -> bool + '_ {
    move |a: &Value| a["object"]["id"] == id && a["object"]["type"] == "QuoteRequest"
}

#[tokio::test(flavor = "multi_thread")]
async fn fedify_quote_request_gets_a_stamp_then_revocation_deletes_it() {
    let mut site = TestSite::federating("127.0.0.2");
    site.write_post(
        "hello.md",
        "+++\ntitle = \"庭 — حديقة\"\n+++\nこんにちは、庭 🌱 مرحبا e\u{301}",
    );
    site.publish();
    let dana = Fedify::start("127.0.0.7", "dana").await;
    site.allow(&dana.host);
    site.start().await;
    let alice = site.url("/users/alice");
    let post = site.url("/posts/hello.json");

    // Fedify reads the Note with a GET it signs: the policy says anyone may quote it.
    let got = dana
        .control("/_control/get", json!({"to": alice, "url": post}))
        .await;
    assert_eq!(got["status"], 200, "{got:#}");
    let can_quote = &got["json"]["interactionPolicy"]["canQuote"];
    assert_eq!(can_quote["automaticApproval"][0], PUBLIC, "{got:#}");

    // Dana's quote arrives before any consent: it is no quote yet, only a mention.
    let q1 = dana
        .control(
            "/_control/note",
            json!({"to": alice, "id": "q1", "quote": post, "content": "<p>引用: 素敵 ✨ رائع</p>",
                   "mention": alice, "mentionName": "@alice"}),
        )
        .await;
    let q1_id = q1["id"].as_str().unwrap().to_string();
    assert_eq!(quote_count(&site, "hello").await, "0 quotes");
    assert_eq!(kind_of(&inbox(&site), &q1_id), ["mention"]);

    // The QuoteRequest is answered at once with an Accept whose result is the stamp.
    let (qr, status) = quote_request(&dana, &alice, "1", &post, &q1_id).await;
    assert_eq!(status, 202);
    let accept = received(&dana, "the Accept", answers(&qr)).await;
    assert_eq!(
        accept["signer"], alice,
        "Fedify verified the Accept's signature: {accept:#}"
    );
    let accept = &accept["json"];
    assert_eq!(accept["type"], "Accept");
    assert_eq!(accept["actor"], alice);
    assert_eq!(accept["object"]["instrument"], q1_id.as_str());
    let stamp_url = accept["result"].as_str().expect("result").to_string();

    // The stamp is dereferenceable: Fedify fetches it with its own signed GET.
    let stamp = dana
        .control("/_control/get", json!({"to": alice, "url": stamp_url}))
        .await;
    assert_eq!(stamp["status"], 200, "{stamp:#}");
    let s = &stamp["json"];
    assert_eq!(s["id"], stamp_url.as_str());
    assert_eq!(s["type"], "QuoteAuthorization");
    assert_eq!(s["attributedTo"], alice);
    assert_eq!(s["interactingObject"], q1_id.as_str());
    assert_eq!(s["interactionTarget"], post.as_str());
    assert_eq!(quote_count(&site, "hello").await, "1 quote");
    assert_eq!(kind_of(&inbox(&site), &q1_id), ["quote"]);

    // A stamp is ours to check, never the quoting post's claim: another post of Dana's that
    // carries q1's stamp as its `quoteAuthorization` is still only a mention.
    let replay = format!("{}/notes/replay", dana.base);
    let sent = dana
        .control(
            "/_control/raw",
            json!({"to": alice, "activity": {
                "id": format!("{}/activities/create-replay", dana.base),
                "type": "Create", "to": [PUBLIC],
                "object": {
                    "id": replay, "type": "Note", "attributedTo": dana.actor,
                    "content": "<p>また引用 🔁 مرة أخرى</p>", "to": [PUBLIC],
                    "published": "2026-11-29T09:05:00Z", "quote": post,
                    "quoteAuthorization": stamp_url,
                    "tag": [{"type": "Mention", "href": alice, "name": "@alice"}],
                },
            }}),
        )
        .await;
    assert_eq!(sent["status"], 202, "{sent:#}");
    assert_eq!(kind_of(&inbox(&site), &replay), ["mention"]);
    assert_eq!(quote_count(&site, "hello").await, "1 quote");

    // The static export serves the stamp at the same path.
    let export = site.tmp.path().join("export");
    hortus_ok(dir_of(&site), &["export", export.to_str().unwrap()]);
    let token = stamp_url.rsplit('/').next().unwrap();
    let file = export.join(format!("quote-authorizations/{token}.json"));
    let exported: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("stamp in the export"))
            .expect("JSON");
    assert_eq!(&exported, s);

    // A repeated request gets the same stamp again (how peers repair a lost Accept).
    quote_request(&dana, &alice, "1", &post, &q1_id).await;

    // Revoking: Delete of the stamp reaches Dana, the stamp answers 410, the quote is gone.
    let out = hortus_ok(dir_of(&site), &["quotes", "revoke", &q1_id]);
    assert!(out.contains("revoked"), "{out}");
    let delete = received(&dana, "the Delete of the stamp", |a| {
        a["type"] == "Delete" && a["object"]["id"] == stamp_url.as_str()
    })
    .await;
    assert_eq!(delete["signer"], alice, "{delete:#}");
    let gone = dana
        .control("/_control/get", json!({"to": alice, "url": stamp_url}))
        .await;
    assert_eq!(gone["status"], 410, "{gone:#}");
    assert_eq!(quote_count(&site, "hello").await, "0 quotes");
    assert_eq!(kind_of(&inbox(&site), &q1_id), ["mention"]);
    let again = hortus(dir_of(&site), &["quotes", "revoke", &q1_id]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("fix:"));
}

#[tokio::test(flavor = "multi_thread")]
async fn fedify_quote_requests_wait_for_the_owner_and_policies_refuse() {
    let mut site = TestSite::federating_with("127.0.0.2", |cfg| {
        *cfg = cfg.replace("[site]\n", "[site]\nquotes_need_approval = true\n");
    });
    site.write_post("open.md", "+++\ntitle = \"Open\"\n+++\n引用どうぞ 🌸");
    site.write_post("closed.md", "+++\nquotes = \"nobody\"\n+++\nلا تقتبس هذا 🙅");
    site.write_post(
        "friends.md",
        "+++\nquotes = \"followers\"\n+++\nНе для всех 🤫",
    );
    site.write_post(
        "inner.md",
        "+++\nvisibility = \"followers\"\nquotes = \"anyone\"\n+++\n내부 메모 🔒",
    );
    site.publish();
    let dana = Fedify::start("127.0.0.7", "dana").await;
    site.allow(&dana.host);
    site.start().await;
    let alice = site.url("/users/alice");
    let q = |n: &str| format!("{}/notes/{n}", dana.base);

    // The Note says approval is by hand: the audience sits in manualApproval.
    let got = dana
        .control(
            "/_control/get",
            json!({"to": alice, "url": site.url("/posts/open.json")}),
        )
        .await;
    assert_eq!(
        got["json"]["interactionPolicy"]["canQuote"],
        json!({"automaticApproval": [alice], "manualApproval": [PUBLIC]}),
        "{got:#}"
    );

    // Policy refusals: nobody, followers (Dana does not follow), followers-only post.
    for (n, slug) in [("c", "closed"), ("f", "friends"), ("i", "inner")] {
        let (qr, status) = quote_request(
            &dana,
            &alice,
            n,
            &site.url(&format!("/posts/{slug}.json")),
            &q(n),
        )
        .await;
        assert_eq!(status, 202, "{slug}");
        let reject = received(&dana, &format!("the Reject for {slug}"), answers(&qr)).await;
        assert_eq!(reject["json"]["type"], "Reject", "{slug}: {reject:#}");
        assert_eq!(reject["signer"], alice);
        assert!(reject["json"].get("result").is_none());
    }

    // Allowed, but waits for the owner: no answer yet, listed in `hortus inbox`.
    let (qr, _) = quote_request(&dana, &alice, "o1", &site.url("/posts/open.json"), &q("o1")).await;
    let (qr2, _) =
        quote_request(&dana, &alice, "o2", &site.url("/posts/open.json"), &q("o2")).await;
    let list = inbox(&site);
    assert_eq!(kind_of(&list, &q("o1")), ["quote_request"], "{list:#?}");
    let waiting = list
        .iter()
        .find(|n| n["object"] == q("o1").as_str())
        .unwrap();
    assert!(
        waiting["text"]
            .as_str()
            .unwrap()
            .contains("hortus quotes approve")
    );
    let log = dana.log().await;
    assert!(
        !log["received"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| answers(&qr)(&r["json"])),
        "no answer before the owner decides: {log:#}"
    );

    hortus_ok(dir_of(&site), &["quotes", "approve", &q("o1")]);
    let accept = received(&dana, "the Accept after approval", answers(&qr)).await;
    assert_eq!(accept["json"]["type"], "Accept");
    let stamp = accept["json"]["result"].as_str().unwrap().to_string();
    let got = dana
        .control("/_control/get", json!({"to": alice, "url": stamp}))
        .await;
    assert_eq!(got["status"], 200, "{got:#}");
    assert_eq!(got["json"]["interactingObject"], q("o1").as_str());

    hortus_ok(dir_of(&site), &["quotes", "reject", &q("o2")]);
    let reject = received(&dana, "the Reject after refusal", answers(&qr2)).await;
    assert_eq!(reject["json"]["type"], "Reject");
    assert!(kind_of(&inbox(&site), &q("o2")).is_empty());

    let bad = hortus(
        dir_of(&site),
        &["quotes", "approve", "https://nowhere.example/1"],
    );
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("nowhere.example") && err.contains("fix:"),
        "{err}"
    );
}

/// Waits until Fedify received an Update of `object` whose Note satisfies `pred`.
async fn update_of(
    peer: &Fedify,
    object: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    received(peer, what, |a| {
        a["type"] == "Update" && a["object"]["id"] == object && pred(&a["object"])
    })
    .await["json"]["object"]
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_owners_quote_asks_waits_and_follows_the_answer() {
    let mut site = TestSite::federating("127.0.0.2");
    let dana = Fedify::start("127.0.0.7", "dana").await;
    site.allow(&dana.host);
    site.start().await;
    let alice = site.url("/users/alice");
    // Dana's posts, mentioning Alice so Hortus keeps them (and knows their author).
    let mut originals = Vec::new();
    for n in ["o1", "o2"] {
        let r = dana
            .control(
                "/_control/note",
                json!({"to": alice, "id": n, "content": format!("<p>{n}: 花 🌷 ورد</p>"),
                       "mention": alice, "mentionName": "@alice"}),
            )
            .await;
        originals.push(r["id"].as_str().unwrap().to_string());
    }
    site.write_post(
        "granted.md",
        &format!("+++\nquote = \"{}\"\n+++\nいいね 👍 جميل", originals[0]),
    );
    site.write_post(
        "refused.md",
        &format!("+++\nquote = \"{}\"\n+++\nЦитата 📎", originals[1]),
    );
    site.publish();
    hortus::delivery::wake_workers();
    let granted = site.url("/posts/granted.json");
    let refused = site.url("/posts/refused.json");

    // Each quote asks its author: a QuoteRequest with our post as its instrument.
    let mut requests = Vec::new();
    for (mine, theirs) in [(&granted, &originals[0]), (&refused, &originals[1])] {
        let r = received(&dana, "the owner's QuoteRequest", |a| {
            a["type"] == "QuoteRequest" && a["instrument"] == mine.as_str()
        })
        .await;
        assert_eq!(r["json"]["object"], theirs.as_str(), "{r:#}");
        assert_eq!(r["json"]["actor"], alice);
        assert_eq!(r["signer"], alice, "Fedify verified it: {r:#}");
        requests.push(r["json"]["id"].as_str().unwrap().to_string());
    }
    let html = get(&site.url("/posts/granted"), BROWSER_ACCEPT)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("quote pending"), "{html}");
    let (_, note) = get_json(&granted).await;
    assert_eq!(note["quote"], originals[0].as_str());
    assert!(note.get("quoteAuthorization").is_none(), "{note:#}");

    // Dana consents to the first: the Note then carries the stamp, sent as an Update. The
    // stamp is fetched from Dana's server (a GET Fedify verifies) and checked, never taken on
    // the Accept's word: a stamp for another post, or by someone else, is refused.
    let accept_with = |n: &str, stamp: &str| {
        json!({"to": alice, "activity": {
            "@context": ["https://www.w3.org/ns/activitystreams",
                         {"QuoteRequest": "https://w3id.org/fep/044f#QuoteRequest"}],
            "id": format!("{}/activities/accept-{n}", dana.base),
            "type": "Accept", "to": [alice],
            "object": {"id": requests[0], "type": "QuoteRequest", "actor": alice,
                       "object": originals[0], "instrument": granted},
            "result": stamp,
        }})
    };
    let stamp_doc = |id: &str, by: &str, quoting: &str| {
        json!({"@context": "https://www.w3.org/ns/activitystreams", "id": id,
               "type": "QuoteAuthorization", "attributedTo": by,
               "interactingObject": quoting, "interactionTarget": originals[0]})
    };
    for (n, by, quoting) in [
        (
            "forged-1",
            "http://127.0.0.99/users/mallory",
            granted.as_str(),
        ),
        ("forged-2", dana.actor.as_str(), refused.as_str()),
    ] {
        let path = format!("/quote-authorizations/{n}");
        let url = format!("{}{path}", dana.base);
        dana.control(
            "/_control/serve",
            json!({"path": path, "json": stamp_doc(&url, by, quoting)}),
        )
        .await;
        let sent = dana.control("/_control/raw", accept_with(n, &url)).await;
        assert_eq!(sent["status"], 400, "{n}: {sent:#}");
    }
    let missing = format!("{}/quote-authorizations/never-served", dana.base);
    let sent = dana
        .control("/_control/raw", accept_with("missing", &missing))
        .await;
    assert_eq!(sent["status"], 400, "{sent:#}");
    let (_, note) = get_json(&granted).await;
    assert!(note.get("quoteAuthorization").is_none(), "{note:#}");
    let stamp = format!("{}/quote-authorizations/ok-1", dana.base);
    dana.control(
        "/_control/serve",
        json!({"path": "/quote-authorizations/ok-1",
               "json": stamp_doc(&stamp, &dana.actor, &granted)}),
    )
    .await;
    let accept = dana
        .control("/_control/raw", accept_with("q1", &stamp))
        .await;
    assert_eq!(accept["status"], 202, "{accept:#}");
    let fetched = dana.log().await["fetched"].clone();
    let ok = fetched
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/quote-authorizations/ok-1")
        .unwrap_or_else(|| panic!("Hortus fetched the stamp: {fetched:#}"));
    assert_eq!(
        ok["signer"],
        site.url("/actor"),
        "a GET Fedify verified: {ok:#}"
    );
    let updated = update_of(&dana, &granted, "the Update with the stamp", |o| {
        o["quoteAuthorization"] == stamp.as_str()
    })
    .await;
    assert_eq!(updated["quote"], originals[0].as_str());
    let html = get(&site.url("/posts/granted"), BROWSER_ACCEPT)
        .await
        .text()
        .await
        .unwrap();
    assert!(!html.contains("quote pending"), "{html}");

    // Dana refuses the second: a plain RE: link, no quote property any peer shows as a quote.
    let reject = dana
        .control(
            "/_control/raw",
            json!({"to": alice, "activity": {
                "id": format!("{}/activities/reject-q2", dana.base),
                "type": "Reject", "to": [alice], "object": requests[1],
            }}),
        )
        .await;
    assert_eq!(reject["status"], 202, "{reject:#}");
    let plain = update_of(&dana, &refused, "the Update without the quote", |o| {
        o.get("quote").is_none()
    })
    .await;
    assert!(
        plain["content"].as_str().unwrap().contains("RE: <a href"),
        "{plain:#}"
    );
    assert!(plain.get("quoteUrl").is_none() && plain.get("_misskey_quote").is_none());

    // Dana revokes the first: Delete of the stamp; the quote becomes a plain link too.
    let delete = dana
        .control(
            "/_control/raw",
            json!({"to": alice, "activity": {
                "id": format!("{}/activities/revoke-q1", dana.base),
                "type": "Delete", "to": [alice],
                "object": {"id": stamp, "type": "QuoteAuthorization"},
            }}),
        )
        .await;
    assert_eq!(delete["status"], 202, "{delete:#}");
    update_of(&dana, &granted, "the Update after revocation", |o| {
        o.get("quote").is_none()
    })
    .await;
    let html = get(&site.url("/posts/granted"), BROWSER_ACCEPT)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("class=\"quote-inline\">RE: <a"), "{html}");
    let (_, note) = get_json(&granted).await;
    assert!(note.get("quoteAuthorization").is_none() && note.get("quote").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_authors_policy_refuses_quotes_likes_and_boosts_here() {
    let mut site = TestSite::federating("127.0.0.2");
    let dana = Fedify::start("127.0.0.7", "dana").await;
    site.allow(&dana.host);
    site.start().await;
    let alice = site.url("/users/alice");
    // Mastodon 4.5's shape for "nobody may quote" (only the author): sent as raw JSON, since
    // Fedify 1.5.9's Note has no interactionPolicy.
    let closed = format!("{}/notes/closed", dana.base);
    let sent = dana
        .control(
            "/_control/raw",
            json!({"to": alice, "activity": {
                "@context": ["https://www.w3.org/ns/activitystreams", {
                    "gts": "https://gotosocial.org/ns#",
                    "interactionPolicy": {"@id": "gts:interactionPolicy", "@type": "@id"},
                    "canQuote": {"@id": "gts:canQuote", "@type": "@id"},
                    "automaticApproval": {"@id": "gts:automaticApproval", "@type": "@id"}}],
                "id": format!("{}/activities/create-closed", dana.base),
                "type": "Create", "to": [PUBLIC],
                "object": {
                    "id": closed, "type": "Note", "attributedTo": dana.actor,
                    "content": "<p>引用しないで 🙏 لا تقتبس</p>", "to": [PUBLIC],
                    "published": "2026-11-29T09:00:00Z",
                    "tag": [{"type": "Mention", "href": alice, "name": "@alice"}],
                    "interactionPolicy": {"canQuote": {"automaticApproval": dana.actor}},
                },
            }}),
        )
        .await;
    assert_eq!(sent["status"], 202, "{sent:#}");
    site.write_post(
        "nope.md",
        &format!("+++\ntitle = \"Ça\"\nquote = \"{closed}\"\n+++\n見て 👀"),
    );
    let out = hortus(dir_of(&site), &["publish"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("content/posts/nope.md:3:"), "{err}");
    assert!(
        err.contains(&closed) && err.contains("fix: remove the `quote"),
        "{err}"
    );
    let queued: i64 = site
        .db()
        .query_row(
            "SELECT (SELECT COUNT(*) FROM post_federation) + (SELECT COUNT(*) FROM own_quote_requests)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(queued, 0, "nothing was queued");
    // The same policy for likes and boosts (GoToSocial's canLike, canAnnounce): refused here.
    let shy = format!("{}/notes/shy", dana.base);
    let only_dana = json!({"automaticApproval": [dana.actor], "manualApproval": []});
    let sent = dana
        .control(
            "/_control/raw",
            json!({"to": alice, "activity": {
                "id": format!("{}/activities/create-shy", dana.base),
                "type": "Create", "to": [PUBLIC],
                "object": {
                    "id": shy, "type": "Note", "attributedTo": dana.actor,
                    "content": "<p>静かに 🤫 بهدوء</p>", "to": [PUBLIC],
                    "published": "2026-11-29T09:01:00Z",
                    "tag": [{"type": "Mention", "href": alice, "name": "@alice"}],
                    "interactionPolicy": {"canLike": only_dana, "canAnnounce": only_dana,
                                          "canReply": only_dana,
                                          "canQuote": {"automaticApproval": [PUBLIC]}},
                },
            }}),
        )
        .await;
    assert_eq!(sent["status"], 202, "{sent:#}");
    for (cmd, rule) in [("like", "canLike"), ("boost", "canAnnounce")] {
        let out = hortus(dir_of(&site), &[cmd, &shy]);
        assert!(!out.status.success(), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("not allowed by its author") && err.contains(rule),
            "{err}"
        );
    }
    let out = hortus(dir_of(&site), &["reply", &shy, "-m", "こんにちは 👋"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not allowed by its author") && err.contains("canReply"),
        "{err}"
    );
    let actions: i64 = site
        .db()
        .query_row("SELECT COUNT(*) FROM timeline_actions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(actions, 0, "nothing liked or boosted");
    assert!(
        std::fs::read_dir(dir_of(&site).join("content/posts"))
            .unwrap()
            .count()
            == 1,
        "no reply file written (only nope.md)"
    );

    // Without the quote line it publishes.
    site.write_post(
        "nope.md",
        &format!("+++\ntitle = \"Ça\"\n+++\n見て 👀 {closed}"),
    );
    hortus_ok(dir_of(&site), &["publish"]);
}

/// Dana's note mentioning Alice (so Hortus keeps it), with `policy` as its interactionPolicy
/// and GoToSocial's context; sent raw, since Fedify 1.5.9's Note has no interactionPolicy.
async fn policied_note(dana: &Fedify, alice: &str, n: &str, policy: Value) -> String {
    let id = format!("{}/notes/{n}", dana.base);
    let sent = dana
        .control(
            "/_control/raw",
            json!({"to": alice, "activity": {
                "@context": ["https://www.w3.org/ns/activitystreams", "https://gotosocial.org/ns"],
                "id": format!("{}/activities/create-{n}", dana.base),
                "type": "Create", "to": [PUBLIC],
                "object": {
                    "id": id, "type": "Note", "attributedTo": dana.actor,
                    "content": format!("<p>{n}: 返信は承認制 ✋ الردود بموافقة</p>"), "to": [PUBLIC],
                    "published": "2026-11-29T09:00:00Z",
                    "tag": [{"type": "Mention", "href": alice, "name": "@alice"}],
                    "interactionPolicy": policy,
                },
            }}),
        )
        .await;
    assert_eq!(sent["status"], 202, "{sent:#}");
    id
}

/// The line under the reply's "In reply to" link on its page.
async fn reply_line(site: &TestSite, slug: &str) -> String {
    let html = get(&site.url(&format!("/posts/{slug}")), BROWSER_ACCEPT)
        .await
        .text()
        .await
        .expect("page");
    let start = html.find("class=\"reply-to\"").expect("a reply-to line");
    let end = html[start..].find("</p>").map_or(html.len(), |e| start + e);
    html[start..end].to_string()
}

/// GoToSocial 0.19's interaction policies: a post whose `canReply` asks for approval
/// (`approvalRequired`, GoToSocial 0.19.2's vocabulary) gets the owner's hand-written reply,
/// which shows "pending approval"; the author's Accept (`object` the reply, `result` the
/// approval) is recorded and the reply goes out again as an Update carrying `approvedBy`,
/// which Fedify verifies; a Reject marks the other reply refused. An approval on another
/// server, or an Accept from someone else, changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_reply_that_needs_approval_waits_then_carries_approved_by() {
    let mut site = TestSite::federating("127.0.0.2");
    let dana = Fedify::start("127.0.0.7", "dana").await;
    let erin = Fedify::start("127.0.0.8", "erin").await;
    // A follower elsewhere: GoToSocial's protocol keeps a pending reply from followers.
    let finn = Fedify::start("127.0.0.9", "finn").await;
    site.allow(&dana.host);
    site.allow(&erin.host);
    site.allow(&finn.host);
    site.start().await;
    let alice = site.url("/users/alice");
    let follow = finn
        .control(
            "/_control/raw",
            json!({"to": alice, "activity": {
                "id": format!("{}/follows/1", finn.base), "type": "Follow", "object": alice}}),
        )
        .await;
    assert_eq!(follow["status"], 202, "{follow:#}");
    let asks = json!({"canReply": {"always": [dana.actor], "approvalRequired": [PUBLIC]},
                      "canLike": {"always": [PUBLIC], "approvalRequired": []}});
    let first = policied_note(&dana, &alice, "ask-1", asks.clone()).await;
    let second = policied_note(&dana, &alice, "ask-2", asks).await;
    site.write_post(
        "answer.md",
        &format!("+++\ntitle = \"返事\"\nin_reply_to = \"{first}\"\n+++\nはい、どうぞ 🌼 نعم"),
    );
    site.write_post(
        "other.md",
        &format!("+++\nin_reply_to = \"{second}\"\n+++\nمرحبا e\u{301} 👩🏽‍🌾"),
    );
    hortus_ok(dir_of(&site), &["publish"]);
    let reply = site.url("/posts/answer.json");
    let other = site.url("/posts/other.json");
    let create = received(&dana, "the reply", |a| {
        a["type"] == "Create" && a["object"]["id"] == reply.as_str()
    })
    .await;
    assert_eq!(create["signer"], alice, "{create:#}");
    assert!(create["json"]["object"].get("approvedBy").is_none());
    // Queued to Dana's own inbox and nowhere else: not to the follower, not to a shared inbox.
    let queued_to = |activity: &str| -> Vec<String> {
        let db = site.db();
        let mut stmt = db
            .prepare("SELECT inbox FROM deliveries WHERE activity_id = ?1 ORDER BY inbox")
            .unwrap();
        stmt.query_map([activity], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let dana_inbox = format!("{}/users/dana/inbox", dana.base);
    assert_eq!(
        queued_to(&format!("{reply}#create")),
        vec![dana_inbox.clone()]
    );
    assert_eq!(
        queued_to(&format!("{other}#create")),
        vec![dana_inbox.clone()]
    );
    assert!(
        reply_line(&site, "answer")
            .await
            .contains("(reply pending approval)")
    );
    let states = |site: &TestSite| -> Vec<String> {
        inbox(site)
            .iter()
            .filter(|n| n["kind"] == "reply_approval")
            .map(|n| n["text"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let pending = states(&site);
    assert_eq!(pending.len(), 2, "{pending:?}");
    assert!(
        pending.iter().all(|t| t.contains("pending approval")),
        "{pending:?}"
    );

    // Hostile answers: an approval on another server, and Erin speaking for Dana's post.
    let bad = dana
        .control(
            "/_control/raw",
            json!({"to": alice, "activity": {
                "id": format!("{}/activities/accept-bad", dana.base), "type": "Accept",
                "object": reply, "result": "http://127.0.0.99/approvals/1"}}),
        )
        .await;
    assert_eq!(bad["status"], 400, "{bad:#}");
    let other_server = erin
        .control(
            "/_control/raw",
            json!({"to": alice, "activity": {
                "id": format!("{}/activities/accept-erin", erin.base), "type": "Accept",
                "object": reply, "result": format!("{}/approvals/1", erin.base)}}),
        )
        .await;
    assert_eq!(other_server["status"], 202, "{other_server:#}");
    assert!(
        reply_line(&site, "answer")
            .await
            .contains("(reply pending approval)")
    );

    // GoToSocial 0.19's Accept: `object` the reply, `result` the ReplyApproval.
    let approval = format!(
        "{}/users/dana/reply_approvals/01JMMGABRDNA9G9BDNYJR7TC8D",
        dana.base
    );
    let accept = dana
        .control(
            "/_control/raw",
            json!({"to": alice, "activity": {
                "@context": "https://www.w3.org/ns/activitystreams",
                "id": format!("{}/activities/accept-1", dana.base), "type": "Accept",
                "to": alice, "cc": [PUBLIC],
                "object": reply, "result": approval}}),
        )
        .await;
    assert_eq!(accept["status"], 202, "{accept:#}");
    let update = received(&dana, "the Update with approvedBy", |a| {
        a["type"] == "Update" && a["object"]["id"] == reply.as_str()
    })
    .await;
    assert_eq!(
        update["signer"], alice,
        "Fedify verified the Update: {update:#}"
    );
    assert_eq!(update["json"]["object"]["approvedBy"], approval.as_str());
    assert_eq!(update["json"]["object"]["inReplyTo"], first.as_str());
    // Approved: now the follower hears of it, carrying the approval, and only now.
    let to_finn = received(&finn, "the approved reply", |a| {
        a["type"] == "Update" && a["object"]["id"] == reply.as_str()
    })
    .await;
    assert_eq!(to_finn["signer"], alice, "{to_finn:#}");
    assert_eq!(to_finn["json"]["object"]["approvedBy"], approval.as_str());
    let finn_saw = |log: &Value, id: &str| -> usize {
        log["received"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["json"]["object"]["id"] == id || r["json"]["object"] == id)
            .count()
    };
    assert_eq!(finn_saw(&finn.log().await, &reply), 1, "only the Update");
    let (status, note) = get_json(&reply).await;
    assert_eq!(
        (status, note["approvedBy"].as_str()),
        (200, Some(approval.as_str()))
    );
    assert!(
        reply_line(&site, "answer")
            .await
            .contains("(reply approved)")
    );
    // Another Accept with a new `result`: taken (202), but the approval stands as it was and
    // nothing more is sent (each Update would go to every follower).
    let queued = |site: &TestSite| -> i64 {
        site.db()
            .query_row("SELECT COUNT(*) FROM deliveries", [], |r| r.get(0))
            .unwrap()
    };
    let before = queued(&site);
    let again = dana
        .control(
            "/_control/raw",
            json!({"to": alice, "activity": {
                "@context": "https://www.w3.org/ns/activitystreams",
                "id": format!("{}/activities/accept-1-again", dana.base), "type": "Accept",
                "object": reply, "result": format!("{approval}-again")}}),
        )
        .await;
    assert_eq!(again["status"], 202, "{again:#}");
    assert_eq!(queued(&site), before, "a second approval sends nothing");
    assert_eq!(get_json(&reply).await.1["approvedBy"], approval.as_str());

    // A Reject of the other reply (GoToSocial: `object` the reply id).
    let reject = dana
        .control(
            "/_control/raw",
            json!({"to": alice, "activity": {
                "id": format!("{}/activities/reject-2", dana.base), "type": "Reject",
                "object": other}}),
        )
        .await;
    assert_eq!(reject["status"], 202, "{reject:#}");
    assert!(
        reply_line(&site, "other")
            .await
            .contains("(reply refused by its author)")
    );
    let (_, note) = get_json(&other).await;
    assert!(note.get("approvedBy").is_none(), "{note:#}");
    // Refused: an edit of it still goes to Dana alone, never to the follower.
    site.write_post(
        "other.md",
        &format!("+++\nin_reply_to = \"{second}\"\n+++\nمرحبا e\u{301} 👩🏽‍🌾 (編集)"),
    );
    hortus_ok(dir_of(&site), &["publish"]);
    received(&dana, "the refused reply's edit", |a| {
        a["type"] == "Update" && a["object"]["id"] == other.as_str()
    })
    .await;
    let edit_inboxes: Vec<String> = {
        let db = site.db();
        let mut stmt = db
            .prepare(
                "SELECT d.inbox FROM deliveries d JOIN outgoing_activities o ON o.id = d.activity_id
                 WHERE o.activity_type = 'Update' AND o.id LIKE ?1 ORDER BY d.inbox",
            )
            .unwrap();
        stmt.query_map([format!("{other}#update-%")], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(edit_inboxes, vec![dana_inbox.clone()]);
    assert_eq!(
        finn_saw(&finn.log().await, &other),
        0,
        "{:#}",
        finn.log().await
    );
    let mut now = states(&site);
    now.sort();
    assert!(now[0].contains("approved by its author"), "{now:?}");
    assert!(now[1].contains("refused by its author"), "{now:?}");
}

/// A reply written by hand (`in_reply_to` in front matter) to a post whose `canReply` leaves
/// the owner out is refused by `hortus publish`, naming the file and line, and nothing is
/// sent; GoToSocial 0.19.2's `always` vocabulary lets the owner in where it names the public.
#[tokio::test(flavor = "multi_thread")]
async fn publish_refuses_a_hand_written_reply_the_authors_policy_forbids() {
    let mut site = TestSite::federating("127.0.0.2");
    let dana = Fedify::start("127.0.0.7", "dana").await;
    site.allow(&dana.host);
    site.start().await;
    let alice = site.url("/users/alice");
    let closed = policied_note(
        &dana,
        &alice,
        "closed",
        json!({"canReply": {"always": [dana.actor], "approvalRequired": []}}),
    )
    .await;
    site.write_post(
        "hand.md",
        &format!("+++\ntitle = \"手書き\"\n\nin_reply_to = \"{closed}\"\n+++\nこんにちは 👋 أهلا"),
    );
    let err = hortus_err(dir_of(&site), &["publish"]);
    assert!(err.contains("content/posts/hand.md:4:"), "{err}");
    assert!(
        err.contains(&closed)
            && err.contains("interactionPolicy.canReply")
            && err.contains("fix: remove the `in_reply_to"),
        "{err}"
    );
    let queued: i64 = site
        .db()
        .query_row("SELECT COUNT(*) FROM post_federation", [], |r| r.get(0))
        .unwrap();
    assert_eq!(queued, 0, "nothing was queued");

    // An open GoToSocial 0.19.2 policy (`always`: the public) takes replies and likes.
    let open = policied_note(
        &dana,
        &alice,
        "open",
        json!({"canReply": {"always": [PUBLIC], "approvalRequired": []},
               "canLike": {"always": [PUBLIC], "approvalRequired": []}}),
    )
    .await;
    site.write_post(
        "hand.md",
        &format!("+++\ntitle = \"手書き\"\n\nin_reply_to = \"{open}\"\n+++\nこんにちは 👋 أهلا"),
    );
    hortus_ok(dir_of(&site), &["publish"]);
    let create = received(&dana, "the reply", |a| {
        a["type"] == "Create" && a["object"]["inReplyTo"] == open.as_str()
    })
    .await;
    assert_eq!(create["signer"], alice, "{create:#}");
    assert!(!reply_line(&site, "hand").await.contains("pending"));
    hortus_ok(dir_of(&site), &["like", &open]);
}

/// A followed account's post that quotes a third server's post shows in `hortus timeline` as a
/// quote only when its `quoteAuthorization` stamp, fetched from the quoted author's server,
/// grants exactly that quote; a stamp elsewhere, or one for another post, leaves a `RE:` link.
#[tokio::test(flavor = "multi_thread")]
async fn a_quote_of_someone_elses_post_needs_a_stamp_from_its_author() {
    let mut site = TestSite::federating("127.0.0.2");
    let dana = Fedify::start("127.0.0.7", "dana").await;
    let erin = Fedify::start("127.0.0.8", "erin").await;
    site.allow(&dana.host);
    site.allow(&erin.host);
    let state = site.start().await;
    let alice = site.url("/users/alice");
    hortus::owner::follow(&state, &dana.actor)
        .await
        .expect("follow");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !hortus_ok(dir_of(&site), &["following"]).starts_with("accepted") {
        assert!(tokio::time::Instant::now() < deadline, "no Accept");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Erin's post (served by Fedify at its id), and the stamps Erin's server and Dana's serve.
    let e1 = erin
        .control(
            "/_control/note",
            json!({"to": alice, "id": "e1", "content": "<p>エリンの庭 🌻 حديقة إيرين</p>"}),
        )
        .await["id"]
        .as_str()
        .expect("erin's note")
        .to_string();
    let quoting = |n: &str| format!("{}/notes/{n}", dana.base);
    let stamp = |peer: &Fedify, n: &str, by: &str, for_note: &str| {
        let path = format!("/quote-authorizations/{n}");
        let doc = json!({"@context": "https://www.w3.org/ns/activitystreams",
                         "id": format!("{}{path}", peer.base), "type": "QuoteAuthorization",
                         "attributedTo": by, "interactingObject": for_note,
                         "interactionTarget": e1});
        (path, doc)
    };
    let cases = [
        (
            "d1",
            erin.base.clone(),
            stamp(&erin, "s1", &erin.actor, &quoting("d1")),
        ),
        (
            "d2",
            dana.base.clone(),
            stamp(&dana, "s2", &erin.actor, &quoting("d2")),
        ),
        (
            "d3",
            erin.base.clone(),
            stamp(&erin, "s3", &erin.actor, &quoting("d1")),
        ),
    ];
    for (n, server, (path, doc)) in &cases {
        let peer = if *server == erin.base { &erin } else { &dana };
        peer.control("/_control/serve", json!({"path": path, "json": doc}))
            .await;
        let sent = dana
            .control(
                "/_control/raw",
                json!({"to": alice, "activity": {
                    "id": format!("{}/activities/create-{n}", dana.base),
                    "type": "Create", "to": [PUBLIC],
                    "object": {
                        "id": quoting(n), "type": "Note", "attributedTo": dana.actor,
                        "content": format!("<p>{n}: 見て 👀 انظر</p>"), "to": [PUBLIC],
                        "published": "2026-11-29T10:00:00Z", "quote": e1,
                        "quoteAuthorization": format!("{server}{path}"),
                    },
                }}),
            )
            .await;
        assert_eq!(sent["status"], 202, "{n}: {sent:#}");
    }
    let out = hortus_ok(dir_of(&site), &["timeline", "--limit", "50"]);
    let block = |n: &str| -> String {
        let start = out
            .find(&format!("{n}: 見て"))
            .unwrap_or_else(|| panic!("{n}: {out}"));
        out[start..].lines().take(3).collect::<Vec<_>>().join("\n")
    };
    assert!(
        block("d1").contains(&format!("quoting {e1} (authorised by its author)")),
        "{out}"
    );
    for n in ["d2", "d3"] {
        assert!(
            block(n).contains(&format!("RE: {e1} (a quote its author has not authorised)")),
            "{n}: {out}"
        );
    }
    // Erin's server was asked for its post and its stamp with GETs Fedify verified.
    let fetched = erin.log().await["fetched"].clone();
    assert!(
        fetched
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == "/quote-authorizations/s1" && f["signer"] == site.url("/actor")),
        "{fetched:#}"
    );
}
