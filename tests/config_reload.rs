//! hortus.toml edited by hand while a real `hortus serve` process runs (issue 13): the profile
//! goes live without a restart (the actor JSON shows it, a follower gets an `Update` of the
//! actor), an edit that leaves the actor as it was sends nothing, a broken file keeps the
//! running profile and says where and how to fix it, and a setting built at start says a
//! restart is needed.

mod common;

use std::time::Duration;

use common::fedify::Fedify;
use common::*;
use serde_json::{Value, json};

/// Writes hortus.toml as editors do: a new file renamed over the old one.
fn save_config(site: &TestSite, text: &str) {
    let tmp = site.dir.join(".hortus.toml.swp");
    std::fs::write(&tmp, text).expect("write temp config");
    std::fs::rename(&tmp, site.dir.join("hortus.toml")).expect("rename config");
}

/// Polls alice's actor JSON until `pred` holds (10 s at most).
async fn actor_until(site: &TestSite, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, actor) = get_json(&site.url("/users/alice")).await;
        if status == 200 && pred(&actor) {
            return actor;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("the actor never showed {what}: {actor:#}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the serve log has `n` lines containing `needle`; the log.
async fn log_until(serve: &ServeProcess, needle: &str, n: usize) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let log = serve.log();
        if log.matches(needle).count() >= n {
            return log;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("the log never said {needle:?} {n} time(s):\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Updates of the actor queued for followers (the activities `api::profile::apply` queues).
fn actor_updates(site: &TestSite, actor: &str) -> i64 {
    site.db()
        .query_row(
            "SELECT count(*) FROM outgoing_activities
             WHERE activity_type = 'Update' AND json_extract(body, '$.object.id') = ?1",
            [actor],
            |r| r.get(0),
        )
        .expect("count updates")
}

#[tokio::test(flavor = "multi_thread")]
async fn hortus_toml_edited_while_serving_goes_live_or_is_refused_with_its_line() {
    let mut site = TestSite::federating("127.0.0.2");
    let fern = Fedify::start("127.0.0.10", "fern").await;
    site.allow(&fern.host);
    let serve = site.spawn_serve(1).await;
    let alice = site.url("/users/alice");
    let follow = fern
        .control(
            "/_control/raw",
            json!({"to": alice, "activity": {
                "id": format!("{}/follows/1", fern.base), "type": "Follow", "object": alice}}),
        )
        .await;
    assert_eq!(follow["status"], 202, "{follow:#}");
    let original = std::fs::read_to_string(site.dir.join("hortus.toml")).expect("config");
    assert!(original.contains("display_name = \"Alice\""), "{original}");

    // A new name and bio, saved by hand: the actor shows them without a restart, and the
    // follower's server gets an Update of the actor.
    let name = "アリス 🌷 أليس e\u{301}";
    let edited = original
        .replace(
            "display_name = \"Alice\"",
            &format!("display_name = \"{name}\""),
        )
        .replace(
            "bio = \"A small garden on the fediverse.\"",
            "bio = \"庭の手入れ — حديقة صغيرة 🌱\"",
        );
    save_config(&site, &edited);
    let actor = actor_until(&site, "the new name", |a| a["name"] == name).await;
    assert!(
        actor["summary"]
            .as_str()
            .is_some_and(|s| s.contains("حديقة صغيرة")),
        "{actor:#}"
    );
    let update = {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            hortus::delivery::wake_workers();
            let log = fern.log().await;
            let found = log["received"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["json"]["type"] == "Update" && r["json"]["object"]["name"] == name);
            if let Some(found) = found {
                break found.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the follower never got the Update: {log:#}\n{}",
                serve.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    assert_eq!(update["signer"], alice, "Fedify verified it: {update:#}");
    assert_eq!(update["json"]["object"]["id"], alice.as_str());
    let html = get(&site.url("/"), BROWSER_ACCEPT)
        .await
        .text()
        .await
        .expect("home page");
    assert!(html.contains("アリス 🌷"), "the page shows the new name");
    assert_eq!(actor_updates(&site, &alice), 1);

    // A comment only: read again, the actor is as it was, nothing is sent.
    save_config(&site, &format!("# 庭 🌿 a note to self\n{edited}"));
    log_until(&serve, "read again: the profile shown is the file's", 2).await;
    assert_eq!(actor_updates(&site, &alice), 1, "{}", serve.log());

    // A mistake on line 1 (an unquoted text), written in place: the error names the file, the
    // line and the fix, and the running profile stays.
    std::fs::write(
        site.dir.join("hortus.toml"),
        format!("title = Garden without quotes\n{edited}"),
    )
    .expect("write broken config");
    let log = log_until(&serve, "keeps the settings it had", 1).await;
    let error = log
        .lines()
        .skip_while(|l| !l.contains("hortus.toml:1:"))
        .take(3)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(error.contains("hortus.toml:1:"), "{log}");
    assert!(error.contains("fix:"), "{log}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (_, actor) = get_json(&alice).await;
    assert_eq!(actor["name"], name, "the running profile stays");
    assert_eq!(actor_updates(&site, &alice), 1);

    // A setting built at start: the log says a restart is needed; the profile change beside it
    // still goes live.
    let moved = edited
        .replace(name, "Alice ✿")
        .replace(&site.base.replace("http://", ""), "127.0.0.2:1");
    assert_ne!(moved, edited);
    save_config(&site, &moved);
    actor_until(&site, "the third name", |a| a["name"] == "Alice ✿").await;
    let log = log_until(&serve, "takes effect when `hortus serve` is restarted", 1).await;
    assert!(log.contains("`listen` changed"), "{log}");
    let (status, _) = get_json(&alice).await;
    assert_eq!(status, 200, "still served where it was");
    assert_eq!(actor_updates(&site, &alice), 2);
}
