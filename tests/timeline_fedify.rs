//! The home timeline with a real, independent ActivityPub server: Fedify 1.5.9 under Node
//! (tests/peer/conversation_peer.mjs), which signs what it sends (draft-cavage) and verifies
//! what Hortus sends with its own code before its listeners see it. The owner follows a Fedify
//! account; its Create, Update, Announce and Delete change `hortus timeline`; the owner's like,
//! boost and their undos reach Fedify signed (only verified activities reach its log).
//!
//! Needs `scripts/install-test-deps.sh` to have run (tests/peer/node_modules).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::fedify::Fedify;
use common::*;
use serde_json::{Value, json};

fn hortus_ok(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hortus"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .env_remove("HORTUS_DIR")
        .output()
        .expect("run hortus");
    assert!(
        out.status.success(),
        "hortus {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn timeline(site: &TestSite) -> String {
    hortus_ok(&site.dir, &["timeline", "--limit", "50"])
}

/// Waits (bounded) until `pred` holds for Fedify's log: what its verified listeners got.
async fn wait_log(fedify: &Fedify, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let log = fedify.log().await;
        if pred(&log) {
            return log;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}: {log:#}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn got<'a>(log: &'a Value, kind: &str) -> Vec<&'a Value> {
    log["inbox"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["type"] == kind)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_followed_fedify_account_fills_the_timeline_and_gets_likes_and_boosts() {
    let mut site = TestSite::federating("127.0.0.2");
    let dana = Fedify::start("127.0.0.8", "dana").await;
    site.allow(&dana.host);
    let state = site.start().await;
    let alice = site.url("/users/alice");

    // The owner follows dana; Fedify verifies the Follow and answers with an Accept.
    hortus::owner::follow(&state, &dana.actor)
        .await
        .expect("follow");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let out = hortus_ok(&site.dir, &["following"]);
        if out.starts_with("accepted") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no Accept: {out}\n{:#}",
            dana.log().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Create: a post in several scripts shows, as plain text, with author, server and URL.
    let words = "雨の庭で 🌧️ تحية من الحديقة cafe\u{301} 한국어";
    dana.control(
        "/_control/note",
        json!({"to": alice, "id": "t1", "content": format!("<p>{words}</p>")}),
    )
    .await;
    let out = timeline(&site);
    assert!(out.contains(words), "{out}");
    assert!(out.contains(&format!("{}/@dana/t1", dana.base)), "{out}");
    assert!(out.contains(&dana.host), "{out}");

    // A poll, with its options and votes.
    dana.control(
        "/_control/note",
        json!({"to": alice, "id": "q1", "content": "<p>どっち？</p>",
               "question": [{"name": "春 🌸", "votes": 3}, {"name": "خريف", "votes": 5}]}),
    )
    .await;
    let out = timeline(&site);
    assert!(
        out.contains("[3] 春 🌸") && out.contains("[5] خريف"),
        "{out}"
    );

    // Update: the edit replaces the text.
    dana.control(
        "/_control/update",
        json!({"to": alice, "id": "t1", "content": "<p>書き直した ✍️</p>"}),
    )
    .await;
    let out = timeline(&site);
    assert!(
        out.contains("書き直した ✍️") && !out.contains(words),
        "{out}"
    );

    // Announce of a post by id only: Hortus fetches it from dana with a signed GET.
    let t2 = dana
        .control(
            "/_control/note",
            json!({"to": dana.actor, "id": "t2", "content": "<p>boost me 🚀</p>"}),
        )
        .await;
    let t2_id = t2["id"].as_str().unwrap().to_string();
    dana.control("/_control/announce", json!({"to": alice, "object": t2_id}))
        .await;
    let out = timeline(&site);
    assert!(
        out.contains("boosted") && out.contains("boost me 🚀"),
        "{out}"
    );

    // Undo(Announce) takes the boost away; a second Announce brings it back.
    let boost = dana
        .control("/_control/announce", json!({"to": alice, "object": t2_id}))
        .await;
    dana.control("/_control/undo", json!({"to": alice, "id": boost["id"]}))
        .await;
    let out = timeline(&site);
    assert!(!out.contains("boosted"), "{out}");
    dana.control("/_control/announce", json!({"to": alice, "object": t2_id}))
        .await;
    assert!(timeline(&site).contains("boosted"));

    // Delete: the post leaves the timeline.
    dana.control("/_control/delete", json!({"to": alice, "id": "t1"}))
        .await;
    let out = timeline(&site);
    assert!(!out.contains("書き直した"), "{out}");

    // The owner likes and boosts dana's post; Fedify verifies each, and each undo.
    hortus_ok(&site.dir, &["like", &t2_id]);
    let log = wait_log(&dana, "a Like", |l| !got(l, "Like").is_empty()).await;
    let like = got(&log, "Like")[0];
    assert_eq!(like["actor"], alice);
    assert_eq!(like["object_id"], t2_id.as_str());
    hortus_ok(&site.dir, &["unlike", &t2_id]);
    let log = wait_log(&dana, "Undo(Like)", |l| {
        got(l, "Undo").iter().any(|u| u["object_type"] == "Like")
    })
    .await;
    let undo = got(&log, "Undo")
        .into_iter()
        .find(|u| u["object_type"] == "Like")
        .unwrap();
    assert_eq!(undo["object_id"], like["id"]);
    assert_eq!(undo["object_object"], t2_id.as_str());

    hortus_ok(&site.dir, &["boost", &t2_id]);
    let log = wait_log(&dana, "an Announce", |l| {
        got(l, "Announce").iter().any(|a| a["actor"] == alice)
    })
    .await;
    let announce = got(&log, "Announce")
        .into_iter()
        .find(|a| a["actor"] == alice)
        .unwrap();
    assert_eq!(announce["object_id"], t2_id.as_str());
    hortus_ok(&site.dir, &["unboost", &t2_id]);
    let log = wait_log(&dana, "Undo(Announce)", |l| {
        got(l, "Undo")
            .iter()
            .any(|u| u["object_type"] == "Announce")
    })
    .await;
    let undo = got(&log, "Undo")
        .into_iter()
        .find(|u| u["object_type"] == "Announce")
        .unwrap();
    assert_eq!(undo["object_id"], announce["id"]);
    assert_eq!(log["errors"], json!([]), "{log:#}");
}
