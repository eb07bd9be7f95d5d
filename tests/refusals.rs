//! Refusals the owner can see (issue 10.4): an allowed server's request that the inbox refuses
//! shows in `hortus inbox` as a problem, and in `hortus following` when it was the Accept of a
//! pending follow. Real loopback peers, real keys, the real binary.

mod common;

use std::process::Command;

use common::peer::Peer;
use common::*;
use serde_json::{Value, json};

fn hortus(site: &TestSite, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hortus"))
        .arg("--dir")
        .arg(&site.dir)
        .args(args)
        .output()
        .expect("run hortus");
    assert!(
        out.status.success(),
        "hortus {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn problems(site: &TestSite) -> Vec<Value> {
    let out = hortus(site, &["inbox", "--json"]);
    let all: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    all.as_array()
        .expect("a list")
        .iter()
        .filter(|n| n["kind"] == "problem")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_accept_from_an_allowed_server_shows_in_inbox_and_following() {
    let mut site = TestSite::federating("127.0.0.2");
    let peer = Peer::start("127.0.0.3", true);
    *peer.name.lock().unwrap() = "Gwen 庭 حديقة 🌿".into();
    site.allow(&peer.host);
    let state = site.start().await;

    hortus::owner::follow(&state, &peer.actor)
        .await
        .expect("follow");
    let follow = peer.wait_for_activity("Follow").await;
    assert_eq!(follow["object"], peer.actor);

    // The peer answers with an Accept signed by a key its actor does not publish: what a key
    // shape Hortus cannot read, or a broken signer, looks like from here.
    let mut forger = peer.clone();
    let (other_private, _) = hortus::httpsig::generate_keypair().expect("keys");
    forger.private_pem = other_private;
    let accept = peer.activity("Accept", follow.clone());
    let resp = forger.post(&site.url("/users/alice/inbox"), &accept).await;
    assert_eq!(
        resp.status(),
        401,
        "{}",
        resp.text().await.unwrap_or_default()
    );

    let listed = problems(&site);
    assert_eq!(listed.len(), 1, "{listed:#?}");
    let p = &listed[0];
    assert_eq!(p["server"], peer.host);
    assert_eq!(p["check"], "signature");
    assert_eq!(p["count"], 1);
    assert_eq!(p["actor"], peer.actor, "the Accept's actor is recorded");
    assert_eq!(p["object"], peer.key_id, "the keyId is recorded");
    let text = p["text"].as_str().unwrap_or_default();
    assert!(text.contains("Accept"), "{text}");
    assert!(text.contains("signature does not verify"), "{text}");

    // The same refusal again within the hour: one entry, counted twice.
    let again = peer.activity("Accept", follow.clone());
    assert_eq!(forger.post(&site.url("/inbox"), &again).await.status(), 401);
    let listed = problems(&site);
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0]["count"], 2);

    // The plain listing says it too, with the server and the reason.
    let plain = hortus(&site, &["inbox"]);
    assert!(plain.contains("problem"), "{plain}");
    assert!(plain.contains(&peer.host), "{plain}");
    assert!(plain.contains("signature does not verify"), "{plain}");

    // The follow is still pending, and `hortus following` says why.
    let following = hortus(&site, &["following"]);
    let line = following
        .lines()
        .position(|l| l.starts_with("pending") && l.contains(&peer.actor))
        .unwrap_or_else(|| panic!("pending follow listed: {following}"));
    let why = following.lines().nth(line + 1).unwrap_or_default();
    assert!(why.contains("its Accept was refused"), "{following}");
    assert!(why.contains("2×"), "{following}");
    assert!(why.contains("signature does not verify"), "{following}");

    // A correctly signed Accept then goes through; the problem stays listed as history.
    let good = peer.activity("Accept", follow);
    assert_eq!(peer.post(&site.url("/inbox"), &good).await.status(), 202);
    let following = hortus(&site, &["following"]);
    assert!(
        following.starts_with("accepted") && !following.contains("still pending"),
        "{following}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_from_refused_servers_are_knocks_not_problems() {
    let mut site = TestSite::federating("127.0.0.2");
    let refused = Peer::start("127.0.0.4", false);
    let allowed = Peer::start("127.0.0.3", false);
    site.allow(&allowed.host);
    site.start().await;

    let follow = refused.activity("Follow", json!(site.url("/users/alice")));
    assert_eq!(
        refused.post(&site.url("/inbox"), &follow).await.status(),
        403
    );

    // An allowed server whose activity names another actor than the signer: actor mismatch.
    let mut forged = allowed.activity("Follow", json!(site.url("/users/alice")));
    forged["actor"] = json!(format!("{}/users/mallory", allowed.base));
    assert_eq!(
        allowed.post(&site.url("/inbox"), &forged).await.status(),
        401
    );
    // And bad JSON, correctly signed.
    let resp = allowed
        .post_raw(
            &site.url("/inbox"),
            "{\"type\": \"Follow\", 🌱".as_bytes(),
            std::time::SystemTime::now(),
            |_| {},
        )
        .await;
    assert_eq!(resp.status(), 400);

    let listed = problems(&site);
    let checks: Vec<&str> = listed.iter().filter_map(|p| p["check"].as_str()).collect();
    assert_eq!(listed.len(), 2, "{listed:#?}");
    assert!(checks.contains(&"actor mismatch"), "{checks:?}");
    assert!(checks.contains(&"JSON"), "{checks:?}");
    assert!(
        listed.iter().all(|p| p["server"] == allowed.host),
        "{listed:#?}"
    );
    let knocks: Vec<Value> =
        serde_json::from_str::<Vec<Value>>(&hortus(&site, &["inbox", "--json"]))
            .unwrap()
            .into_iter()
            .filter(|n| n["kind"] == "knock")
            .collect();
    assert_eq!(knocks.len(), 1);
    assert_eq!(knocks[0]["actor"], refused.host);
}

/// Issue 10.5: every refused request logs one line naming the check that failed and the keyId
/// (read from the real `hortus serve`'s log).
#[tokio::test(flavor = "multi_thread")]
async fn each_refusal_logs_the_failed_check_and_the_key_id() {
    let mut site = TestSite::federating("127.0.0.2");
    let allowed = Peer::start("127.0.0.3", false);
    let refused = Peer::start("127.0.0.4", false);
    site.allow(&allowed.host);
    let serve = site.spawn_serve(1).await;
    let inbox = site.url("/inbox");

    let follow = allowed.activity("Follow", json!(site.url("/users/alice")));
    // A signature made by another key than the actor publishes.
    let mut forger = allowed.clone();
    forger.private_pem = hortus::httpsig::generate_keypair().expect("keys").0;
    assert_eq!(forger.post(&inbox, &follow).await.status(), 401);
    // A stale date.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3 * 3600);
    let body = follow.to_string();
    let resp = allowed.post_raw(&inbox, body.as_bytes(), old, |_| {}).await;
    assert_eq!(resp.status(), 401);
    // A body that does not match its digest.
    let resp = allowed
        .post_raw(&inbox, body.as_bytes(), std::time::SystemTime::now(), |h| {
            for (n, v) in h.iter_mut() {
                if n.eq_ignore_ascii_case("digest") {
                    *v = "SHA-256=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
                }
            }
        })
        .await;
    assert_eq!(resp.status(), 401);
    // A server the policy refuses.
    let knock = refused.activity("Follow", json!(site.url("/users/alice")));
    assert_eq!(refused.post(&inbox, &knock).await.status(), 403);

    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // The log may be coloured: drop ANSI escapes (ESC [ ... m) before matching.
    let mut log = String::new();
    let raw = serve.log();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            log.push(c);
        }
    }
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("inbox refused a request"))
        .collect();
    assert_eq!(refusals.len(), 4, "one line per refused request:\n{log}");
    for (check, key) in [
        ("signature", &allowed.key_id),
        ("clock", &allowed.key_id),
        ("digest", &allowed.key_id),
        ("policy", &refused.key_id),
    ] {
        assert!(
            refusals
                .iter()
                .any(|l| l.contains(&format!("check=\"{check}\"")) && l.contains(key.as_str())),
            "a {check} refusal naming {key}:\n{log}"
        );
    }
}

/// With signed fetch on, an allowed server whose signed GET does not verify is a problem too:
/// it cannot read the owner's posts.
#[tokio::test(flavor = "multi_thread")]
async fn a_signed_get_that_fails_from_an_allowed_server_is_a_problem() {
    let mut site = TestSite::federating_with("127.0.0.2", |cfg| {
        *cfg = cfg.replace("signed_fetch = false", "signed_fetch = true");
    });
    site.write_post("hallo.md", "+++\ntitle = \"Hallo\"\n+++\nHallo 世界");
    site.publish();
    let allowed = Peer::start("127.0.0.3", false);
    site.allow(&allowed.host);
    site.start().await;

    let url = site.url("/posts/hallo.json");
    let (wrong, _) = hortus::httpsig::generate_keypair().expect("keys");
    let key = hortus::httpsig::load_private_key(&wrong).unwrap();
    let headers = hortus::httpsig::sign_get(
        &url::Url::parse(&url).unwrap(),
        &allowed.key_id,
        &key,
        std::time::SystemTime::now(),
    )
    .unwrap();
    let mut req = client().get(&url).header("Accept", AP);
    for (n, v) in headers {
        req = req.header(n, v);
    }
    assert_eq!(req.send().await.unwrap().status(), 401);

    let listed = problems(&site);
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0]["server"], allowed.host);
    assert_eq!(listed[0]["check"], "signature");
    assert_eq!(listed[0]["object"], allowed.key_id);
}
