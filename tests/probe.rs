//! The inbox's answer to `hortus check`'s probe (src/inbox/probe.rs), over real HTTP with real
//! signatures: signed with the site's own instance key it is answered 200 with its nonce and
//! leaves nothing behind; the same body signed by anyone else, by the owner's actor key, or
//! tampered with after signing, never is.

mod common;

use std::time::SystemTime;

use common::{AP, TestSite, peer::Peer};
use hortus::urls::Urls;

/// Sends `body` to `path`, signed with `key` as `key_id`; `tamper` may change the body after
/// signing. Returns the status and the answer's body.
async fn send_signed(
    site: &TestSite,
    path: &str,
    body: &[u8],
    key_id: &str,
    key: &openssl::pkey::PKey<openssl::pkey::Private>,
    tamper: impl FnOnce(&mut Vec<u8>),
) -> (u16, String) {
    let url = url::Url::parse(&site.url(path)).expect("url");
    let headers =
        hortus::httpsig::sign_post(&url, body, AP, key_id, key, SystemTime::now()).expect("sign");
    let mut sent = body.to_vec();
    tamper(&mut sent);
    let mut req = common::client()
        .post(url.as_str())
        .header("Content-Type", AP)
        .body(sent);
    for (n, v) in headers {
        req = req.header(n, v);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

fn table_count(site: &TestSite, table: &str) -> i64 {
    site.db()
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_this_sites_instance_key_gets_the_probe_answered() {
    let mut site = TestSite::federating("127.0.44.2");
    let peer = Peer::start("127.0.44.3", false);
    site.allow(&peer.host);
    let state = site.start().await;
    let urls = Urls::new(&state.config.base_url, "alice");
    let nonce = "0193a5f0-検査-nonce".replace("検査", "check");
    let body = hortus::inbox::probe::body(&urls, &nonce);

    // Ours: verified, answered with the nonce, nothing stored.
    let (status, answer) = send_signed(
        &site,
        "/actor/inbox",
        &body,
        &urls.instance_actor_key(),
        &state.instance_key.private,
        |_| {},
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).expect("JSON");
    assert_eq!(answer["probe"], "verified");
    assert_eq!(answer["nonce"], nonce.as_str());
    for table in ["inbox_seen", "inbox_refusals", "remote_actors"] {
        assert_eq!(table_count(&site, table), 0, "{table} after the probe");
    }
    // Through the shared inbox and the owner's too: any inbox verifies it.
    for path in ["/inbox", "/users/alice/inbox"] {
        let (status, answer) = send_signed(
            &site,
            path,
            &body,
            &urls.instance_actor_key(),
            &state.instance_key.private,
            |_| {},
        )
        .await;
        assert_eq!(status, 200, "{path}: {answer}");
    }

    // The owner's actor key signing the same body: not the instance actor, not a probe; the
    // body is no activity either.
    let (status, answer) = send_signed(
        &site,
        "/actor/inbox",
        &body,
        &urls.actor_key(),
        &state.actor_key.private,
        |_| {},
    )
    .await;
    assert_ne!(status, 200, "{answer}");

    // An allowed peer signing a probe in our name, or in its own: never a probe's answer.
    let peer_key = hortus::httpsig::load_private_key(&peer.private_pem).expect("peer key");
    let theirs = serde_json::json!({
        "type": hortus::inbox::probe::PROBE_TYPE,
        "actor": peer.actor,
        "nonce": "abc",
    })
    .to_string();
    for body in [body.clone(), theirs.into_bytes()] {
        let (status, answer) = send_signed(
            &site,
            "/actor/inbox",
            &body,
            &peer.key_id,
            &peer_key,
            |_| {},
        )
        .await;
        assert!(
            status == 400 || status == 401,
            "{status}: {answer}: {}",
            String::from_utf8_lossy(&body)
        );
    }

    // Ours, with the nonce changed after signing: the digest no longer matches.
    let (status, answer) = send_signed(
        &site,
        "/actor/inbox",
        &body,
        &urls.instance_actor_key(),
        &state.instance_key.private,
        |b| {
            let text = String::from_utf8(b.clone()).expect("utf-8");
            *b = text.replace(&nonce, "0193a5f0-forged-nonce").into_bytes();
        },
    )
    .await;
    assert_eq!(status, 401, "{answer}");
    assert_eq!(table_count(&site, "inbox_seen"), 0);
}
