//! Identity is origin-bound (issue 9, points 1 and 2): a key id belongs to one actor on its own
//! server, the verified signer's server is the one the policy judges, and a remote `url` is
//! never taken for an account. Pretend peers on their own loopback addresses, real RSA keys.

mod common;

use common::peer::Peer;
use common::*;
use serde_json::{Value, json};

const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

fn count(site: &TestSite, sql: &str) -> i64 {
    site.db().query_row(sql, [], |r| r.get(0)).unwrap()
}

fn deliveries_to(site: &TestSite, host: &str) -> i64 {
    site.db()
        .query_row(
            "SELECT COUNT(*) FROM deliveries WHERE host = ?1",
            [host],
            |r| r.get(0),
        )
        .unwrap()
}

async fn send(peer: &Peer, site: &TestSite, activity: &Value) -> (u16, String) {
    let resp = peer.post(&site.url("/inbox"), activity).await;
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// A reply by `peer` under the site's post `hello`.
fn reply(peer: &Peer, site: &TestSite, n: &str, url: &str, text: &str) -> Value {
    json!({
        "id": format!("{}/notes/{n}", peer.base),
        "type": "Note",
        "attributedTo": peer.actor,
        "inReplyTo": site.url("/posts/hello.json"),
        "content": format!("<p>{text}</p>"),
        "url": url,
        "to": [PUBLIC],
        "cc": [format!("{}/followers", peer.actor)],
        "published": "2026-11-20T10:00:00Z",
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blocked_server_cannot_sign_under_the_key_id_of_an_allowed_one() {
    let mut site = TestSite::federating("127.0.0.2");
    site.write_post("hello.md", "+++\ntitle = \"Hello\"\n+++\nこんにちは、庭。");
    site.publish();
    let e = Peer::start("127.0.0.5", false);
    let v = Peer::start("127.0.0.6", false);
    site.allow(&e.host);
    site.allow(&v.host);
    let state = site.start().await;

    // E, allowed, is known here; then it says its key is V's key id (with E's own key).
    let follow = e.activity("Follow", json!(site.url("/users/alice")));
    assert_eq!(send(&e, &site, &follow).await.0, 202);
    let mut claimed = e.actor_doc();
    claimed["publicKey"]["id"] = json!(v.key_id);
    // Its actor document says so too, should Hortus fetch it again.
    e.documents
        .lock()
        .unwrap()
        .insert("/users/bob".into(), claimed.clone());
    // Refused (or at least not applied): checked below, after the attack it would enable.
    send(&e, &site, &e.activity("Update", claimed)).await;

    // A refetch of E's actor, which now names V's key id, is refused the same way.
    let refetched = hortus::activitypub::fetch::actor(
        &hortus::activitypub::fetch::Remote::of(&state),
        &e.actor,
        true,
    )
    .await;
    assert!(refetched.is_err(), "{refetched:?}");

    // E is blocked; it signs with its own key, naming V's key id.
    hortus::federation::block_add(&site.db(), &e.host).unwrap();
    let mut forger = e.clone();
    forger.key_id = v.key_id.clone();
    let note = reply(&e, &site, "1", &format!("{}/@bob/1", e.base), "偽物 🎭");
    let (status, body) = send(&forger, &site, &e.activity("Create", note)).await;
    assert_ne!(status, 202, "{body}");
    assert_eq!(count(&site, "SELECT COUNT(*) FROM remote_notes"), 0);

    // V's own requests still verify, more than once.
    for n in ["2", "3"] {
        let note = reply(&v, &site, n, &format!("{}/@bob/{n}", v.base), "本物 ✅");
        let (status, body) = send(&v, &site, &v.activity("Create", note)).await;
        assert_eq!(status, 202, "V's post {n}: {body}");
    }
    assert_eq!(count(&site, "SELECT COUNT(*) FROM remote_notes"), 2);
    let owner: String = site
        .db()
        .query_row(
            "SELECT id FROM remote_actors WHERE public_key_id = ?1",
            [&v.key_id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(owner, v.actor);
    let stored: Option<String> = site
        .db()
        .query_row(
            "SELECT public_key_id FROM remote_actors WHERE id = ?1",
            [&e.actor],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        stored.as_deref(),
        Some(e.key_id.as_str()),
        "E kept its own key id"
    );
}

/// E is allowed and known here (it replied); its actor's `url` and its note's `url` point at
/// a server that is not allowed.
async fn site_with_a_lying_peer() -> (TestSite, Peer, String) {
    let mut site = TestSite::federating("127.0.0.2");
    site.write_post("hello.md", "+++\ntitle = \"Hello\"\n+++\nمرحبا بالحديقة");
    site.publish();
    let e = Peer::start("127.0.0.7", false);
    site.allow(&e.host);
    let refused = "refused.test";
    let mut doc = e.actor_doc();
    doc["url"] = json!(format!("https://{refused}/@carol"));
    e.documents.lock().unwrap().insert("/users/bob".into(), doc);
    site.start().await;
    let note = reply(
        &e,
        &site,
        "1",
        &format!("https://{refused}/@carol/1"),
        "Ça pousse 🌱",
    );
    let (status, body) = send(&e, &site, &e.activity("Create", note)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(count(&site, "SELECT COUNT(*) FROM followers"), 0);
    (site, e, refused.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mention_of_a_refused_account_never_reaches_a_peer_whose_url_claims_it() {
    let (site, e, refused) = site_with_a_lying_peer().await;
    site.write_post(
        "secret.md",
        &format!("+++\nvisibility = \"followers\"\n+++\nFor followers only, @carol@{refused} 秘密"),
    );
    site.publish();
    assert_eq!(
        deliveries_to(&site, &e.host),
        0,
        "a followers-only post went to a server that only claims the mentioned account's url"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reply_target_is_found_by_its_id_never_by_a_url_a_peer_claims() {
    let (site, e, refused) = site_with_a_lying_peer().await;
    site.write_post(
        "answer.md",
        &format!(
            "+++\nvisibility = \"followers\"\nin_reply_to = \"https://{refused}/@carol/1\"\n+++\nRéponse 🌿"
        ),
    );
    site.publish();
    assert_eq!(
        deliveries_to(&site, &e.host),
        0,
        "a reply to a refused server's post went to a server whose note claims its url"
    );
    let mentions: String = site
        .db()
        .query_row(
            "SELECT mentions FROM posts WHERE in_reply_to IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!mentions.contains(&e.actor), "{mentions}");
}

/// Should a row tie a key id to an actor on another server anyway (written before migration 08
/// cleaned such rows, or by a future bug), the policy still judges the server that signed.
#[tokio::test(flavor = "multi_thread")]
async fn the_policy_judges_the_signers_server_after_verifying() {
    let mut site = TestSite::federating("127.0.0.2");
    site.write_post("hello.md", "+++\ntitle = \"Hello\"\n+++\nHallo, Gärtchen.");
    site.publish();
    let e = Peer::start("127.0.0.8", false);
    let v = Peer::start("127.0.0.9", false);
    site.allow(&v.host);
    site.db()
        .execute(
            "INSERT INTO remote_actors (id, host, inbox, public_key_id, public_key_pem, raw, fetched_at)
             VALUES (?1, ?2, ?3, ?4, ?5, '{}', '2026-11-29T00:00:00Z')",
            rusqlite::params![
                e.actor,
                e.host,
                format!("{}/inbox", e.actor),
                v.key_id,
                e.public_pem
            ],
        )
        .unwrap();
    site.start().await;
    let mut forger = e.clone();
    forger.key_id = v.key_id.clone();
    let note = reply(
        &e,
        &site,
        "1",
        &format!("{}/@bob/1", e.base),
        "Trojanisches Pferd 🐴",
    );
    let (status, body) = send(&forger, &site, &e.activity("Create", note)).await;
    assert_ne!(status, 202, "{body}");
    assert_eq!(count(&site, "SELECT COUNT(*) FROM remote_notes"), 0);
}
