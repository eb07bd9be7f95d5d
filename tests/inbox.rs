//! The verified inbox and follows (issue 3), with pretend peers on their own loopback addresses.

mod common;

use std::time::{Duration, SystemTime};

use common::peer::Peer;
use common::*;
use serde_json::json;

fn count(site: &TestSite, sql: &str) -> i64 {
    site.db().query_row(sql, [], |r| r.get(0)).unwrap()
}

fn accepted_followers(site: &TestSite) -> i64 {
    count(
        site,
        "SELECT COUNT(*) FROM followers WHERE state = 'accepted'",
    )
}

/// Verifies a request Hortus sent with Hortus's published actor key, as the receiver would.
async fn assert_signed_by_hortus(site: &TestSite, r: &common::peer::Received) {
    let (_, actor) = get_json(&site.url("/users/alice")).await;
    let pem = actor["publicKey"]["publicKeyPem"].as_str().unwrap();
    let parts = hortus::httpsig::RequestParts {
        method: &r.method,
        path_and_query: &r.path,
        headers: &r.headers,
        body: Some(&r.body),
    };
    let pending = hortus::httpsig::signature_key_id(&parts).expect("signed");
    assert_eq!(
        pending.key_id(),
        format!("{}#main-key", site.url("/users/alice"))
    );
    let opts = hortus::httpsig::VerifyOptions {
        scheme: "http",
        ..Default::default()
    };
    hortus::httpsig::verify_with(&parts, &pending, pem, SystemTime::now(), &opts)
        .expect("valid signature");
    let digest = r
        .headers
        .iter()
        .find(|(n, _)| n == "digest")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    assert!(
        digest.starts_with("SHA-256="),
        "upper-case digest prefix: {digest}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn allowed_peer_follows_and_gets_a_signed_accept() {
    let mut site = TestSite::federating("127.0.0.2");
    let peer = Peer::start("127.0.0.3", false);
    site.allow(&peer.host);
    site.start().await;

    let follow = peer.activity("Follow", json!(site.url("/users/alice")));
    let resp = peer.post(&site.url("/users/alice/inbox"), &follow).await;
    assert_eq!(resp.status(), 202, "{}", resp.text().await.unwrap());
    assert_eq!(accepted_followers(&site), 1);

    let got = peer
        .wait_for("the Accept", |r| r.iter().any(|r| r.method == "POST"))
        .await;
    let accept = got.iter().find(|r| r.method == "POST").unwrap();
    assert_eq!(
        accept.path, "/users/bob/inbox",
        "Accept goes to the follower's own inbox"
    );
    let body = accept.json();
    assert_eq!(body["type"], "Accept");
    assert_eq!(body["actor"], site.url("/users/alice"));
    assert_eq!(body["object"]["id"], follow["id"], "the Follow is embedded");
    assert_eq!(body["object"]["type"], "Follow");
    assert_eq!(body["object"]["actor"], peer.actor);
    assert_eq!(body["object"]["object"], site.url("/users/alice"));
    assert_signed_by_hortus(&site, accept).await;

    // Hortus fetched the key with a signed GET from its instance actor.
    let get = got
        .iter()
        .find(|r| r.method == "GET" && r.path == "/users/bob")
        .expect("key fetched");
    let sig = get
        .headers
        .iter()
        .find(|(n, _)| n == "signature")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    assert!(
        sig.contains(&format!("keyId=\"{}#main-key\"", site.url("/actor"))),
        "{sig}"
    );

    // The same Follow again (a peer repairing a lost Accept) gets the Accept again, and so
    // does a new Follow; the follower is stored once.
    assert_eq!(peer.post(&site.url("/inbox"), &follow).await.status(), 202);
    let again = peer.activity("Follow", json!(site.url("/users/alice")));
    assert_eq!(peer.post(&site.url("/inbox"), &again).await.status(), 202);
    let got = peer
        .wait_for("two more Accepts", |r| {
            r.iter().filter(|r| r.method == "POST").count() >= 3
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let posts: Vec<_> = peer.posts();
    assert_eq!(posts.len(), 3, "one Accept per Follow received: {got:#?}");
    assert_eq!(posts[1].json()["object"]["id"], follow["id"]);
    assert_eq!(posts[2].json()["object"]["id"], again["id"]);
    assert_ne!(
        posts[0].json()["id"],
        posts[1].json()["id"],
        "each Accept is a new activity"
    );
    assert_eq!(count(&site, "SELECT COUNT(*) FROM followers"), 1);

    let (_, followers) = get_json(&site.url("/users/alice/followers/page/1")).await;
    assert_eq!(followers["orderedItems"], json!([peer.actor]));

    // Undo with the Follow embedded removes the follower.
    let undo = peer.activity("Undo", follow.clone());
    assert_eq!(peer.post(&site.url("/inbox"), &undo).await.status(), 202);
    assert_eq!(count(&site, "SELECT COUNT(*) FROM followers"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_peer_gets_403_costs_no_request_and_is_recorded_as_a_knock() {
    let mut site = TestSite::federating("127.0.0.2");
    let peer = Peer::start("127.0.0.4", false);
    site.start().await;
    let follow = peer.activity("Follow", json!(site.url("/users/alice")));
    let resp = peer.post(&site.url("/users/alice/inbox"), &follow).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(count(&site, "SELECT COUNT(*) FROM followers"), 0);
    assert_eq!(count(&site, "SELECT COUNT(*) FROM remote_actors"), 0);
    assert!(
        peer.received().is_empty(),
        "no request to a refused server: {:?}",
        peer.received()
    );
    let knocks = hortus::federation::knocks(&site.db(), 10).unwrap();
    assert_eq!(knocks.len(), 1);
    assert_eq!(knocks[0].host, peer.host);
    assert_eq!(knocks[0].count, 1);
    assert!(
        knocks[0].sample_actors.contains(&peer.actor),
        "{:?}",
        knocks[0]
    );

    // Refused on its headers, before its body is read: even 4 MiB gets 403, not 413.
    let mut big = peer.activity(
        "Create",
        json!({"type": "Note", "content": "x".repeat(4 * 1024 * 1024)}),
    );
    big["id"] = json!(format!("{}/big", peer.base));
    // One knock per server per second is written (issue 9.4): wait that second out.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(peer.post(&site.url("/inbox"), &big).await.status(), 403);
    let knocks = hortus::federation::knocks(&site.db(), 10).unwrap();
    assert_eq!(knocks[0].count, 2);

    // Allowing the server opens the gate without a restart.
    site.allow(&peer.host);
    let again = peer.activity("Follow", json!(site.url("/users/alice")));
    assert_eq!(peer.post(&site.url("/inbox"), &again).await.status(), 202);
}

/// Issue 9.4: a knock is written after only a syntax check, so a flood from one address naming
/// a new server and actor each time must not write a row each time; and the attacker-chosen
/// actor string is stored and shown without its terminal escapes and bidi controls.
#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_refused_posts_writes_few_knocks_and_stores_them_clean() {
    let mut site = TestSite::federating("127.0.0.2");
    let peer = Peer::start("127.0.0.4", false);
    site.start().await;
    let inbox = site.url("/inbox");
    let mut statuses = Vec::new();
    let started = std::time::Instant::now();
    for i in 0..150 {
        // Header values are ASCII: the host in its IDNA form (東京).
        let host = format!("h{i}.xn--1lqs71d.example");
        let key_id = format!("https://{host}/users/u{i}#main-key");
        let mut follow = peer.activity("Follow", json!(site.url("/users/alice")));
        follow["actor"] = json!(format!(
            "https://{host}/users/\x1b]0;pwned\x07مستخدم{i}\u{202e}gpj.exe\u{2067}\u{9b}2J"
        ));
        let body = follow.to_string();
        let resp = peer
            .post_raw(&inbox, body.as_bytes(), SystemTime::now(), |h| {
                for (n, v) in h.iter_mut() {
                    if n.eq_ignore_ascii_case("signature") {
                        *v = v.replace(&peer.key_id, &key_id);
                    }
                }
            })
            .await;
        statuses.push(resp.status().as_u16());
    }
    assert!(statuses.iter().all(|s| *s == 403), "{statuses:?}");
    // One address's budget: a burst of 10, then one more per 6 seconds the flood lasted.
    let budget = 10 + started.elapsed().as_secs() as i64 / 6;
    let rows = count(&site, "SELECT COUNT(*) FROM knocks");
    assert!((1..=budget).contains(&rows), "{rows} rows > {budget}");
    assert!(rows < 30, "{rows} rows for 150 requests");
    assert!(peer.received().is_empty(), "no request to any of them");

    let actors: Vec<String> = site
        .db()
        .prepare("SELECT actor FROM knocks")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for a in &actors {
        assert!(
            !a.chars().any(hortus::text::is_unsafe_char),
            "stored raw: {a:?}"
        );
        assert!(
            a.contains("]0;pwnedمستخدم") && a.ends_with("gpj.exe2J"),
            "{a:?}"
        );
    }
    let shown = hortus::owner::knocks(&site.db(), 100).unwrap();
    assert!(
        !shown.contains('\x1b') && !shown.contains('\u{202e}') && shown.contains("مستخدم0"),
        "{shown:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_signatures_get_401_and_change_nothing() {
    let mut site = TestSite::federating("127.0.0.2");
    let peer = Peer::start("127.0.0.3", false);
    site.allow(&peer.host);
    site.start().await;
    let inbox = site.url("/inbox");
    let follow = peer.activity("Follow", json!(site.url("/users/alice")));
    let body = follow.to_string();

    // Unsigned.
    let unsigned = reqwest::Client::new()
        .post(&inbox)
        .header("Content-Type", AP)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);

    // Tampered body: the Digest no longer matches.
    let tampered = body.replace("Follow", "Block");
    let resp = peer
        .post_raw(&inbox, tampered.as_bytes(), SystemTime::now(), |h| {
            let d = hortus::httpsig::digest_header(body.as_bytes());
            h.retain(|(n, _)| n != "Digest");
            h.push(("Digest".into(), d));
        })
        .await;
    assert_eq!(resp.status(), 401);

    // Replayed two hours later.
    let stale = SystemTime::now() - Duration::from_secs(2 * 3600);
    assert_eq!(
        peer.post_raw(&inbox, body.as_bytes(), stale, |_| {})
            .await
            .status(),
        401
    );

    // Signed with a key that is not the actor's.
    let impostor = Peer {
        private_pem: hortus::httpsig::generate_keypair().unwrap().0,
        ..peer.clone()
    };
    assert_eq!(impostor.post(&inbox, &follow).await.status(), 401);

    // Hostile requests must not make Hortus fetch on an attacker's behalf: the three above
    // that fail without a key (unsigned, tampered, stale) fetched nothing; the impostor cost
    // one fetch and one refetch (the key might have rotated); more of the same cost nothing.
    let key_fetches = || {
        peer.received()
            .iter()
            .filter(|r| r.method == "GET" && r.path.starts_with("/users/bob"))
            .count()
    };
    assert_eq!(key_fetches(), 2, "{:?}", peer.received());
    for _ in 0..5 {
        assert_eq!(impostor.post(&inbox, &follow).await.status(), 401);
        let replay = peer.post_raw(&inbox, body.as_bytes(), stale, |_| {}).await;
        assert_eq!(replay.status(), 401);
    }
    assert_eq!(key_fetches(), 2, "refetches are rate-limited per key");

    // Signed by bob, claiming to be someone else on the same server.
    let mut forged = follow.clone();
    forged["actor"] = json!(format!("{}/users/carol", peer.base));
    assert_eq!(peer.post(&inbox, &forged).await.status(), 401);

    assert_eq!(count(&site, "SELECT COUNT(*) FROM followers"), 0);
    assert_eq!(count(&site, "SELECT COUNT(*) FROM inbox_seen"), 0);

    // The genuine request still works afterwards.
    assert_eq!(peer.post(&inbox, &follow).await.status(), 202);
}

/// A peer that rotates its key is believed after one refetch, and the new key is kept.
#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_key_is_refetched_once_and_kept() {
    let mut site = TestSite::federating("127.0.0.2");
    let peer = Peer::start("127.0.0.13", false);
    site.allow(&peer.host);
    site.start().await;
    let inbox = site.url("/inbox");
    let follow = peer.activity("Follow", json!(site.url("/users/alice")));
    assert_eq!(peer.post(&inbox, &follow).await.status(), 202);

    let (private_pem, public_pem) = hortus::httpsig::generate_keypair().unwrap();
    let rotated = Peer {
        private_pem,
        public_pem: public_pem.clone(),
        ..peer.clone()
    };
    rotated
        .documents
        .lock()
        .unwrap()
        .insert("/users/bob".into(), rotated.actor_doc());
    let before = peer.received().iter().filter(|r| r.method == "GET").count();
    let undo = rotated.activity("Undo", follow.clone());
    assert_eq!(rotated.post(&inbox, &undo).await.status(), 202);
    let after = peer.received().iter().filter(|r| r.method == "GET").count();
    assert_eq!(after - before, 1, "one refetch");
    let stored: String = site
        .db()
        .query_row(
            "SELECT public_key_pem FROM remote_actors WHERE id = ?1",
            [&peer.actor],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored.trim(), public_pem.trim());
    assert_eq!(count(&site, "SELECT COUNT(*) FROM followers"), 0);
    // The old key no longer verifies.
    let again = peer.activity("Follow", json!(site.url("/users/alice")));
    assert_eq!(peer.post(&inbox, &again).await.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn size_type_and_syntax_limits() {
    let mut site = TestSite::federating("127.0.0.2");
    let peer = Peer::start("127.0.0.3", false);
    site.allow(&peer.host);
    site.start().await;
    let inbox = site.url("/inbox");

    let mut big = peer.activity(
        "Create",
        json!({"type": "Note", "content": "x".repeat(2 * 1024 * 1024)}),
    );
    big["id"] = json!(format!("{}/big", peer.base));
    let resp = peer.post(&inbox, &big).await;
    assert_eq!(resp.status(), 413);

    let follow = peer.activity("Follow", json!(site.url("/users/alice")));
    let resp = peer
        .post_raw(
            &inbox,
            follow.to_string().as_bytes(),
            SystemTime::now(),
            |h| {
                h.retain(|(n, _)| n != "Content-Type");
                h.push(("Content-Type".into(), "text/plain".into()));
            },
        )
        .await;
    assert_eq!(resp.status(), 415);

    let resp = peer
        .post_raw(&inbox, b"{not json", SystemTime::now(), |_| {})
        .await;
    assert_eq!(resp.status(), 400, "a valid signature over a broken body");
    assert_eq!(count(&site, "SELECT COUNT(*) FROM followers"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn gotosocial_style_key_documents_and_actor_updates_and_deletes() {
    let mut site = TestSite::federating("127.0.0.2");
    let peer = Peer::start("127.0.0.5", true);
    site.allow(&peer.host);
    site.start().await;
    let follow = peer.activity("Follow", json!(site.url("/users/alice")));
    assert_eq!(peer.post(&site.url("/inbox"), &follow).await.status(), 202);
    assert_eq!(accepted_followers(&site), 1);

    *peer.name.lock().unwrap() = "Robert".into();
    let update = peer.activity("Update", peer.actor_doc());
    assert_eq!(peer.post(&site.url("/inbox"), &update).await.status(), 202);
    let name: String = site
        .db()
        .query_row(
            "SELECT name FROM remote_actors WHERE id = ?1",
            [&peer.actor],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(name, "Robert");

    // A replayed activity is processed once: replaying the older Update after a newer one must
    // not bring the old name back.
    *peer.name.lock().unwrap() = "Bobby".into();
    let newer = peer.activity("Update", peer.actor_doc());
    assert_eq!(peer.post(&site.url("/inbox"), &newer).await.status(), 202);
    assert_eq!(
        peer.post(&site.url("/inbox"), &update).await.status(),
        202,
        "a duplicate is acknowledged"
    );
    let name: String = site
        .db()
        .query_row(
            "SELECT name FROM remote_actors WHERE id = ?1",
            [&peer.actor],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(name, "Bobby", "the replayed Update was not applied again");

    let delete = peer.activity("Delete", json!(peer.actor));
    assert_eq!(peer.post(&site.url("/inbox"), &delete).await.status(), 202);
    assert_eq!(count(&site, "SELECT COUNT(*) FROM followers"), 0);
    assert_eq!(count(&site, "SELECT COUNT(*) FROM remote_actors"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn manual_approval_holds_follows() {
    let mut site = TestSite::federating_with("127.0.0.2", |cfg| {
        *cfg = cfg.replace(
            "manually_approves_followers = false",
            "manually_approves_followers = true",
        );
    });
    let peer = Peer::start("127.0.0.3", false);
    site.allow(&peer.host);
    site.start().await;
    let follow = peer.activity("Follow", json!(site.url("/users/alice")));
    assert_eq!(peer.post(&site.url("/inbox"), &follow).await.status(), 202);
    assert_eq!(
        count(
            &site,
            "SELECT COUNT(*) FROM followers WHERE state = 'pending'"
        ),
        1
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        peer.posts().is_empty(),
        "no Accept before the owner approves"
    );
    let (_, actor) = get_json(&site.url("/users/alice")).await;
    assert_eq!(actor["manuallyApprovesFollowers"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn private_addresses_are_refused_outside_test_mode() {
    // allow_http for loopback, but not allow_private_addresses.
    let mut site = TestSite::with_config("127.0.0.2", |cfg| {
        *cfg = cfg.replace(
            "manually_approves_followers = false\n",
            "manually_approves_followers = false\nallow_http = true\n",
        );
    });
    let peer = Peer::start("127.0.0.3", false);
    site.allow(&peer.host);
    site.start().await;
    let follow = peer.activity("Follow", json!(site.url("/users/alice")));
    let resp = peer.post(&site.url("/inbox"), &follow).await;
    assert_eq!(
        resp.status(),
        401,
        "the key cannot be fetched from a private address"
    );
    assert!(resp.text().await.unwrap().contains("private"));
    assert!(peer.received().is_empty(), "no connection was made");
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_fetch_gates_json_but_not_pages_or_actors() {
    let mut site = TestSite::federating_with("127.0.0.2", |cfg| {
        *cfg = cfg.replace("signed_fetch = false", "signed_fetch = true");
    });
    site.write_post("hello.md", "+++\ntitle = \"Hello\"\n+++\nHello");
    site.publish();
    let allowed = Peer::start("127.0.0.3", false);
    let refused = Peer::start("127.0.0.4", false);
    site.allow(&allowed.host);
    site.start().await;

    let note = site.url("/posts/hello.json");
    assert_eq!(
        get(&note, AP).await.status(),
        401,
        "unsigned JSON is refused"
    );
    assert_eq!(
        get(&site.url("/users/alice/outbox"), AP).await.status(),
        401
    );
    assert_eq!(
        get(&site.url("/posts/hello"), BROWSER_ACCEPT)
            .await
            .status(),
        200,
        "pages stay public"
    );
    assert_eq!(
        get(&site.url("/users/alice"), AP).await.status(),
        200,
        "the actor and its key stay public"
    );
    assert_eq!(get(&site.url("/actor"), AP).await.status(), 200);

    let signed_get = |peer: &Peer, url: &str| {
        let key = hortus::httpsig::load_private_key(&peer.private_pem).unwrap();
        let headers = hortus::httpsig::sign_get(
            &url::Url::parse(url).unwrap(),
            &peer.key_id,
            &key,
            SystemTime::now(),
        )
        .unwrap();
        let mut req = client().get(url).header("Accept", AP);
        for (n, v) in headers {
            req = req.header(n, v);
        }
        req.send()
    };
    assert_eq!(signed_get(&allowed, &note).await.unwrap().status(), 200);
    assert_eq!(
        signed_get(&allowed, &site.url("/users/alice/outbox/page/1"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(signed_get(&refused, &note).await.unwrap().status(), 403);
    assert!(
        refused.received().is_empty(),
        "no key fetch from a refused server"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_resolves_mentions_on_allowed_servers_only() {
    let site = TestSite::federating("127.0.0.2");
    let friend = Peer::start("127.0.0.3", false);
    let stranger = Peer::start("127.0.0.4", false);
    site.allow(&friend.host);
    site.write_post(
        "hi.md",
        &format!("Hello @bob@{} and @bob@{}", friend.host, stranger.host),
    );
    let dir = site.dir.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_hortus"))
            .arg("--dir")
            .arg(&dir)
            .arg("publish")
            .env("HORTUS_LOG", "warn")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(&format!("→ {}", friend.actor)), "{text}");
    assert!(
        text.contains("1 mentioned account(s) on servers you have not allowed"),
        "{text}"
    );
    assert!(
        stranger.received().is_empty(),
        "a refused server is never asked"
    );

    let body: String = site
        .db()
        .query_row(
            "SELECT body FROM outgoing_activities WHERE activity_type = 'Create'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let create: serde_json::Value = serde_json::from_str(&body).unwrap();
    let note = &create["object"];
    assert!(
        note["cc"]
            .as_array()
            .unwrap()
            .contains(&json!(friend.actor)),
        "{note}"
    );
    assert!(
        !note["cc"].to_string().contains(&stranger.host),
        "unknown accounts are not addressed"
    );
    let mention = note["tag"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == "Mention")
        .unwrap();
    assert_eq!(mention["href"], json!(friend.actor));
}

/// A post saved while `hortus serve` runs looks its mentions up like `hortus publish` does, so
/// a never-seen account on an allowed server receives the Create addressed to it.
#[tokio::test(flavor = "multi_thread")]
async fn a_post_saved_while_serving_reaches_the_accounts_it_mentions() {
    let mut site = TestSite::federating("127.0.0.42");
    let friend = Peer::start("127.0.0.43", false);
    site.allow(&friend.host);
    let _serve = site.spawn_serve(1).await;

    site.write_post("hi.md", &format!("Hello @bob@{}, welcome.", friend.host));
    let create = friend.wait_for_activity("Create").await;
    let note = &create["object"];
    assert!(note["content"].as_str().unwrap().contains("welcome"));
    assert!(
        note["cc"]
            .as_array()
            .unwrap()
            .contains(&json!(friend.actor)),
        "addressed to the mentioned actor: {note}"
    );
    // The lookup came first: WebFinger, then the actor.
    let got = friend.received();
    let gets: Vec<&str> = got
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.path.as_str())
        .collect();
    assert!(
        gets.iter().any(|p| p.starts_with("/.well-known/webfinger")),
        "{gets:?}"
    );
}

/// RFC 9421 signatures through the live inbox: accepted when right, 401 when the body was
/// changed after signing or the target URI is another.
#[tokio::test(flavor = "multi_thread")]
async fn rfc9421_signed_posts_are_accepted_by_the_live_inbox() {
    let mut site = TestSite::federating("127.0.0.2");
    let peer = Peer::start("127.0.0.46", false);
    site.allow(&peer.host);
    site.start().await;
    let key = hortus::httpsig::load_private_key(&peer.private_pem).unwrap();
    let send = async |url: &str, signed_for: &str, body: &[u8], sent: &[u8]| {
        let headers = hortus::httpsig::sign_post_rfc9421(
            &url::Url::parse(signed_for).unwrap(),
            body,
            AP,
            &peer.key_id,
            &key,
            SystemTime::now(),
        )
        .unwrap();
        let mut req = reqwest::Client::new()
            .post(url)
            .header("Content-Type", AP)
            .body(sent.to_vec());
        for (n, v) in headers {
            req = req.header(n, v);
        }
        req.send().await.unwrap().status().as_u16()
    };
    let inbox = site.url("/inbox");
    let follow = peer
        .activity("Follow", json!(site.url("/users/alice")))
        .to_string();
    let tampered = follow.replace("Follow", "Block");
    assert_eq!(
        send(&inbox, &inbox, follow.as_bytes(), tampered.as_bytes()).await,
        401
    );
    let elsewhere = site.url("/users/alice/inbox");
    assert_eq!(
        send(&inbox, &elsewhere, follow.as_bytes(), follow.as_bytes()).await,
        401
    );
    assert_eq!(count(&site, "SELECT COUNT(*) FROM followers"), 0);
    assert_eq!(
        send(&inbox, &inbox, follow.as_bytes(), follow.as_bytes()).await,
        202
    );
    assert_eq!(accepted_followers(&site), 1);
}

/// Blocking a server on a running site closes the inbox to it at once (no restart), and its
/// followers stop receiving posts.
#[tokio::test(flavor = "multi_thread")]
async fn blocking_a_server_while_running_refuses_it_at_once() {
    let mut site = TestSite::federating("127.0.0.2");
    let peer = Peer::start("127.0.0.47", false);
    site.allow(&peer.host);
    site.start().await;
    let follow = peer.activity("Follow", json!(site.url("/users/alice")));
    assert_eq!(peer.post(&site.url("/inbox"), &follow).await.status(), 202);
    assert_eq!(accepted_followers(&site), 1);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hortus"))
        .arg("--dir")
        .arg(&site.dir)
        .args(["block", "add", &peer.host])
        .env("HORTUS_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let like = peer.activity("Like", json!(site.url("/posts/x.json")));
    assert_eq!(peer.post(&site.url("/inbox"), &like).await.status(), 403);
    assert_eq!(accepted_followers(&site), 0, "its followers are suspended");
    site.write_post("after.md", "Not for blocked servers");
    assert_eq!(
        hortus::app::Site::open(&site.dir)
            .unwrap()
            .publish_and_federate()
            .unwrap()
            .1
            .deliveries,
        0
    );
}

/// Issue 9.5: a signature that leaves out the server it was meant for (`host`, `@authority`)
/// could have been made for another server and replayed here; the live inbox refuses it with
/// 401 and stores nothing, while the same hand-made signature with the host covered is
/// accepted (so the refusal is about coverage, not about the hand signing).
#[tokio::test(flavor = "multi_thread")]
async fn signatures_that_do_not_cover_the_host_are_refused() {
    use base64::Engine as _;
    let mut site = TestSite::federating("127.0.0.2");
    let peer = Peer::start("127.0.0.48", false);
    site.allow(&peer.host);
    site.start().await;
    let inbox = site.url("/inbox");
    let authority = url::Url::parse(&inbox)
        .map(|u| format!("{}:{}", u.host_str().unwrap(), u.port().unwrap()))
        .unwrap();
    let key = hortus::httpsig::load_private_key(&peer.private_pem).unwrap();
    let rsa_sha256 = |text: &str| {
        let mut signer =
            openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
        signer.update(text.as_bytes()).unwrap();
        base64::engine::general_purpose::STANDARD.encode(signer.sign_to_vec().unwrap())
    };
    let send = async |body: &str, headers: Vec<(String, String)>| {
        let mut req = reqwest::Client::new()
            .post(&inbox)
            .header("Content-Type", AP)
            .body(body.to_string());
        for (n, v) in headers {
            req = req.header(n, v);
        }
        req.send().await.unwrap().status().as_u16()
    };
    let note = |text: &str| {
        peer.activity(
            "Create",
            json!({"id": format!("{}/notes/{}", peer.base, text.len()), "type": "Note",
                   "attributedTo": peer.actor, "to": [site.url("/users/alice")],
                   "content": text}),
        )
        .to_string()
    };

    // draft-cavage over `(request-target) date digest`, as a peer might sign it.
    let cavage = |body: &str, with_host: bool| {
        let date = httpdate::fmt_http_date(SystemTime::now());
        let digest = hortus::httpsig::digest_header(body.as_bytes());
        let (names, text) = if with_host {
            (
                "(request-target) host date digest",
                format!(
                    "(request-target): post /inbox\nhost: {authority}\ndate: {date}\ndigest: {digest}"
                ),
            )
        } else {
            (
                "(request-target) date digest",
                format!("(request-target): post /inbox\ndate: {date}\ndigest: {digest}"),
            )
        };
        let signature = format!(
            "keyId=\"{}\",algorithm=\"rsa-sha256\",headers=\"{names}\",signature=\"{}\"",
            peer.key_id,
            rsa_sha256(&text)
        );
        vec![
            ("Date".to_string(), date),
            ("Digest".to_string(), digest),
            ("Signature".to_string(), signature),
        ]
    };
    let body = note("東京と大阪 — مرحبا بالعالم 🌷");
    assert_eq!(send(&body, cavage(&body, false)).await, 401);

    // RFC 9421 over `@method @path content-digest`: no `@authority`, no `@target-uri`.
    let rfc9421 = |body: &str, with_authority: bool| {
        let created = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let digest = hortus::httpsig::content_digest_header(body.as_bytes());
        let (list, authority_line) = if with_authority {
            (
                "(\"@method\" \"@path\" \"@authority\" \"content-digest\")",
                format!("\"@authority\": {authority}\n"),
            )
        } else {
            ("(\"@method\" \"@path\" \"content-digest\")", String::new())
        };
        let params = format!("{list};created={created};keyid=\"{}\"", peer.key_id);
        let base = format!(
            "\"@method\": POST\n\"@path\": /inbox\n{authority_line}\"content-digest\": {digest}\n\"@signature-params\": {params}"
        );
        vec![
            ("Content-Digest".to_string(), digest),
            ("Signature-Input".to_string(), format!("sig1={params}")),
            (
                "Signature".to_string(),
                format!("sig1=:{}:", rsa_sha256(&base)),
            ),
        ]
    };
    let body = note("Ünïcödé ✓ नमस्ते 👋🏽");
    assert_eq!(send(&body, rfc9421(&body, false)).await, 401);
    assert_eq!(
        site.db()
            .query_row("SELECT COUNT(*) FROM inbox_seen", [], |r| r
                .get::<_, i64>(0))
            .unwrap(),
        0
    );

    // The same signatures with the host covered are accepted.
    let body = note("東京と大阪 — مرحبا بالعالم 🌷 (host)");
    assert_eq!(send(&body, cavage(&body, true)).await, 202);
    let body = note("Ünïcödé ✓ नमस्ते 👋🏽 (@authority)");
    assert_eq!(send(&body, rfc9421(&body, true)).await, 202);
    assert_eq!(
        site.db()
            .query_row("SELECT COUNT(*) FROM inbox_seen", [], |r| r
                .get::<_, i64>(0))
            .unwrap(),
        2
    );
}

/// Issue 9.5: a request signed for another server (its `host` covered) and replayed here with
/// that server's Host header still verifies; the inbox refuses it because the Host is not ours.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_signed_for_another_server_is_refused() {
    let mut site = TestSite::federating("127.0.0.2");
    let peer = Peer::start("127.0.0.49", false);
    site.allow(&peer.host);
    site.start().await;
    let inbox = site.url("/inbox");
    let port = url::Url::parse(&inbox).unwrap().port().unwrap();
    let key = hortus::httpsig::load_private_key(&peer.private_pem).unwrap();
    let send = async |signed_for: &str, host: &str, body: &str| {
        let headers = hortus::httpsig::sign_post(
            &url::Url::parse(signed_for).unwrap(),
            body.as_bytes(),
            AP,
            &peer.key_id,
            &key,
            SystemTime::now(),
        )
        .unwrap();
        let mut req = reqwest::Client::new()
            .post(&inbox)
            .header("Content-Type", AP)
            .header("Host", host)
            .body(body.to_string());
        for (n, v) in headers {
            req = req.header(n, v);
        }
        req.send().await.unwrap().status().as_u16()
    };
    let elsewhere = format!("127.0.0.9:{port}");
    let follow = peer
        .activity("Follow", json!(site.url("/users/alice")))
        .to_string();
    assert_eq!(
        send(&format!("http://{elsewhere}/inbox"), &elsewhere, &follow).await,
        401
    );
    assert_eq!(count(&site, "SELECT COUNT(*) FROM inbox_seen"), 0);
    assert_eq!(count(&site, "SELECT COUNT(*) FROM followers"), 0);
    // Addressed here, the same request is accepted.
    let ours = format!("127.0.0.2:{port}");
    assert_eq!(send(&inbox, &ours, &follow).await, 202);
    assert_eq!(accepted_followers(&site), 1);
}
