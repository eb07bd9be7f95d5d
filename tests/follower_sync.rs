//! FEP-8fcf on loopback (issue 14): a real Hortus site and pretend servers (tests/common/peer.rs,
//! each on its own 127.0.0.x, signing with its own RSA key).
//! - Deliveries addressed to the followers carry `Collection-Synchronization`, whose digest is
//!   checked against one computed here by Python's hashlib, not by Hortus.
//! - The partial followers collection answers each server with its own followers only, and
//!   nobody unsigned or refused.
//! - A peer's header that disagrees with `following` repairs it: re-Follow, or Undo(Follow).

mod common;
#[path = "support/mock_inbox.rs"]
mod mock_inbox;

use std::time::{Duration, SystemTime};

use common::TestSite;
use common::peer::{Peer, Received};
use serde_json::{Value, json};

/// The FEP's digest, computed by Python (hashlib) from the ids: SHA-256 of each, XORed, hex.
fn python_digest(ids: &[&str]) -> String {
    let script = "import hashlib, json, sys\n\
        acc = bytes(32)\n\
        for i in json.load(sys.stdin):\n\
        \x20   h = hashlib.sha256(i.encode('utf-8')).digest()\n\
        \x20   acc = bytes(a ^ b for a, b in zip(acc, h))\n\
        print(acc.hex())\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json!(ids).to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `key="value"` pairs of a structured header, as a test reads them.
fn params(header: &str) -> std::collections::HashMap<String, String> {
    header
        .split(", ")
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.trim_matches('"').to_string()))
        })
        .collect()
}

fn header<'a>(r: &'a Received, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn note(site: &TestSite, n: &str, to_followers: bool) -> Value {
    let mut cc = vec![];
    if to_followers {
        cc.push(site.url("/users/alice/followers"));
    }
    json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": site.url(&format!("/activities/{n}")),
        "type": "Create",
        "actor": site.url("/users/alice"),
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "cc": cc,
        "object": {"id": site.url(&format!("/posts/{n}")), "type": "Note",
                   "content": "<p>同期 · مزامنة · 🔄</p>"},
    })
}

/// A signed GET as `peer` sends it (draft-cavage, its own key).
async fn signed_get(peer: &Peer, url: &str) -> reqwest::Response {
    let parsed = url::Url::parse(url).unwrap();
    let key = hortus::httpsig::load_private_key(&peer.private_pem).unwrap();
    let headers =
        hortus::httpsig::sign_get(&parsed, &peer.key_id, &key, SystemTime::now()).unwrap();
    let mut req = common::client().get(url).header("Accept", common::AP);
    for (n, v) in headers {
        req = req.header(n, v);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn deliveries_carry_the_digest_of_that_servers_followers_and_only_it_may_read_them() {
    let mut site = TestSite::federating("127.0.0.71");
    let a = Peer::start("127.0.0.72", false);
    let b = Peer::start("127.0.0.73", true);
    let stranger = Peer::start("127.0.0.74", false);
    site.allow(&a.host);
    site.allow(&b.host);
    let a_ids = [a.actor.clone(), format!("{}/users/李小龍🌸", a.base)];
    {
        let db = site.db();
        for id in &a_ids {
            mock_inbox::add_follower(
                &db,
                id,
                &format!("{}/inbox", a.base),
                Some(&format!("{}/inbox", a.base)),
            );
        }
        mock_inbox::add_follower(&db, &b.actor, &format!("{}/inbox", b.base), None);
        // Pending followers are not followers yet: not in the digest.
        mock_inbox::add_follower(
            &db,
            &format!("{}/users/pending", a.base),
            &format!("{}/inbox", a.base),
            None,
        );
        db.execute(
            "UPDATE followers SET state = 'pending' WHERE actor_id LIKE '%/users/pending'",
            [],
        )
        .unwrap();
    }
    site.start().await;
    let inboxes = [format!("{}/inbox", a.base), format!("{}/inbox", b.base)];
    hortus::delivery::enqueue(&site.db(), &note(&site, "to-followers", true), &inboxes).unwrap();
    hortus::delivery::enqueue(
        &site.db(),
        &note(&site, "public-only", false),
        &inboxes[..1],
    )
    .unwrap();

    let got = a
        .wait_for("two deliveries", |r| {
            r.iter().filter(|r| r.method == "POST").count() >= 2
        })
        .await;
    let to_followers = got
        .iter()
        .find(|r| r.json()["id"] == site.url("/activities/to-followers"))
        .expect("delivered");
    let sync = params(header(to_followers, "collection-synchronization").expect("FEP-8fcf header"));
    assert_eq!(sync["collectionId"], site.url("/users/alice/followers"));
    let url = site.url("/users/alice/followers_synchronization");
    assert_eq!(sync["url"], url);
    let a_refs: Vec<&str> = a_ids.iter().map(String::as_str).collect();
    assert_eq!(sync["digest"], python_digest(&a_refs));
    let public_only = got
        .iter()
        .find(|r| r.json()["id"] == site.url("/activities/public-only"))
        .expect("delivered");
    assert_eq!(header(public_only, "collection-synchronization"), None);
    let got = b
        .wait_for("a delivery", |r| r.iter().any(|r| r.method == "POST"))
        .await;
    let sync = params(header(&got[0], "collection-synchronization").expect("header"));
    assert_eq!(sync["digest"], python_digest(&[&b.actor]));

    // Each server reads its own followers, nobody else's.
    let resp = signed_get(&a, &url).await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("private")
    );
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["id"], url);
    let mut listed: Vec<&str> = doc["orderedItems"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    listed.sort();
    let mut want = a_refs.clone();
    want.sort();
    assert_eq!(listed, want);
    let doc: Value = signed_get(&b, &url).await.json().await.unwrap();
    assert_eq!(doc["orderedItems"], json!([b.actor]));
    let unsigned = common::get(&url, common::AP).await;
    assert_eq!(unsigned.status(), 401);
    assert_eq!(signed_get(&stranger, &url).await.status(), 403);
}

/// `peer` POSTs a Delete of a note of its own to the site's inbox, with `sync` as its
/// `Collection-Synchronization` header when given.
async fn post_with_sync(peer: &Peer, site: &TestSite, sync: Option<String>) -> u16 {
    let activity = peer.activity("Delete", json!(format!("{}/notes/gone", peer.base)));
    peer.post_raw(
        &site.url("/inbox"),
        activity.to_string().as_bytes(),
        SystemTime::now(),
        |h| {
            if let Some(s) = sync {
                h.push(("Collection-Synchronization".into(), s));
            }
        },
    )
    .await
    .status()
    .as_u16()
}

fn sync_header(peer: &Peer, digest: &str) -> String {
    format!(
        "collectionId=\"{}/followers\", url=\"{}/users/bob/followers_synchronization\", digest=\"{digest}\"",
        peer.actor, peer.base
    )
}

fn following_state(site: &TestSite, actor: &str) -> Option<String> {
    site.db()
        .query_row(
            "SELECT state FROM following WHERE actor_id = ?1",
            [actor],
            |r| r.get(0),
        )
        .ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_header_that_disagrees_repairs_following() {
    let mut site = TestSite::federating("127.0.0.75");
    let lost_us = Peer::start("127.0.0.76", false); // we follow it; it forgot
    let thinks_we_follow = Peer::start("127.0.0.77", false); // it lists us; we do not follow
    let agrees = Peer::start("127.0.0.78", false); // digest matches: nothing fetched
    for p in [&lost_us, &thinks_we_follow, &agrees] {
        site.allow(&p.host);
    }
    site.start().await;
    let owner = site.url("/users/alice");
    // A first POST without the header puts each signer in the actor cache.
    for p in [&lost_us, &thinks_we_follow, &agrees] {
        assert_eq!(post_with_sync(p, &site, None).await, 202);
    }
    for p in [&lost_us, &agrees] {
        site.db()
            .execute(
                "INSERT INTO following (actor_id, follow_id, state, created_at)
                 VALUES (?1, ?2, 'accepted', '2026-01-01T00:00:00Z')",
                [&p.actor, &format!("{owner}#follows/ancient")],
            )
            .unwrap();
    }
    let path = "/users/bob/followers_synchronization";
    let partial = |p: &Peer, items: Value| {
        json!({"@context": "https://www.w3.org/ns/activitystreams",
               "id": format!("{}{path}", p.base), "type": "OrderedCollection", "orderedItems": items})
    };
    lost_us
        .documents
        .lock()
        .unwrap()
        .insert(path.into(), partial(&lost_us, json!([])));
    thinks_we_follow
        .documents
        .lock()
        .unwrap()
        .insert(path.into(), partial(&thinks_we_follow, json!([owner])));

    // Nobody of ours follows it, it says (the digest of no ids): a follow it lost is sent again.
    let none = python_digest(&[]);
    assert_eq!(
        post_with_sync(&lost_us, &site, Some(sync_header(&lost_us, &none))).await,
        202
    );
    let follow = lost_us.wait_for_activity("Follow").await;
    assert_eq!(follow["actor"], owner);
    assert_eq!(follow["object"], lost_us.actor);
    assert_eq!(
        following_state(&site, &lost_us.actor).as_deref(),
        Some("pending")
    );
    assert!(
        lost_us
            .received()
            .iter()
            .any(|r| r.method == "GET" && r.path == path)
    );

    // It lists the owner, who does not follow it: Undo(Follow).
    let owner_digest = python_digest(&[&owner]);
    assert_eq!(
        post_with_sync(
            &thinks_we_follow,
            &site,
            Some(sync_header(&thinks_we_follow, &owner_digest))
        )
        .await,
        202
    );
    let undo = thinks_we_follow.wait_for_activity("Undo").await;
    assert_eq!(undo["object"]["type"], "Follow");
    assert_eq!(undo["object"]["actor"], owner);
    assert_eq!(undo["object"]["object"], thinks_we_follow.actor);
    assert_eq!(following_state(&site, &thinks_we_follow.actor), None);

    // Agreement costs nothing: no fetch, nothing sent, the follow stays accepted.
    assert_eq!(
        post_with_sync(&agrees, &site, Some(sync_header(&agrees, &owner_digest))).await,
        202
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        agrees
            .received()
            .iter()
            .all(|r| r.path != path && r.method != "POST")
    );
    assert_eq!(
        following_state(&site, &agrees.actor).as_deref(),
        Some("accepted")
    );
}
