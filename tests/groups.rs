//! Posting to a group (issue 10.6, FEP-1b12): a post that mentions a Lemmy/Mbin/PieFed
//! community reaches it as a post there, and what the community sends back shows under it.
//! The community is a loopback peer serving a `Group` actor and WebFinger.

mod common;

use common::peer::Peer;
use common::*;
use serde_json::{Value, json};

/// A peer whose actor is a `Group`, as Lemmy serves a community.
fn group_peer(ip: &str) -> Peer {
    let peer = Peer::start(ip, false);
    let mut group = peer.actor_doc();
    group["type"] = json!("Group");
    group["name"] = json!("Jardin 花园 حديقة");
    group["followers"] = json!(format!("{}/followers", peer.actor));
    peer.documents
        .lock()
        .unwrap()
        .insert("/users/bob".into(), group);
    peer
}

async fn publish(site: &TestSite, state: &hortus::web::AppState) {
    let s = hortus::app::Site::open(&site.dir).expect("open site");
    hortus::app::publish(&s, state).await.expect("publish");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_mentioning_a_group_reaches_it_as_a_titled_page_for_that_group() {
    let mut site = TestSite::federating("127.0.0.2");
    let group = group_peer("127.0.0.3");
    let person = Peer::start("127.0.0.5", false);
    site.allow(&group.host);
    site.allow(&person.host);
    let state = site.start().await;

    site.write_post(
        "roses.md",
        &format!(
            "+++\ntitle = \"Rosen im Garten 🌹 庭のバラ\"\n+++\nHello @bob@{} — pruned today, asking @bob@{} too.",
            group.host, person.host
        ),
    );
    publish(&site, &state).await;

    let create = group.wait_for_activity("Create").await;
    let page = &create["object"];
    assert_eq!(page["type"], "Page", "Lemmy makes posts of Page: {page:#}");
    assert_eq!(page["name"], "Rosen im Garten 🌹 庭のバラ");
    assert_eq!(page["audience"], group.actor);
    assert_eq!(create["audience"], group.actor);
    let to = page["to"].as_array().expect("to");
    assert_eq!(to[0], json!(group.actor), "the group first in to: {to:?}");
    assert!(to.contains(&json!(hortus::activitypub::PUBLIC)), "{to:?}");
    assert!(
        !page["cc"].as_array().unwrap().contains(&json!(group.actor)),
        "the group is in to, not cc: {page:#}"
    );
    assert_eq!(create["to"], page["to"]);
    // The Mention stays, so Mastodon-style servers still see the group mentioned.
    assert!(
        page["tag"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["type"] == "Mention" && t["href"] == json!(group.actor)),
        "{page:#}"
    );

    // A person mentioned in the same post gets the same activity, addressed in cc.
    let to_person = person.wait_for_activity("Create").await;
    assert!(
        to_person["object"]["cc"]
            .as_array()
            .unwrap()
            .contains(&json!(person.actor))
    );

    // The object at its id is the same Page.
    let (status, served) = get_json(page["id"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(served["type"], "Page");
    assert_eq!(served["audience"], group.actor);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_mentioning_only_people_stays_a_note_without_audience() {
    let mut site = TestSite::federating("127.0.0.2");
    let person = Peer::start("127.0.0.5", false);
    site.allow(&person.host);
    let state = site.start().await;
    site.write_post("hi.md", &format!("Hallo @bob@{} 👋", person.host));
    publish(&site, &state).await;
    let create: Value = person.wait_for_activity("Create").await;
    assert_eq!(create["object"]["type"], "Note");
    assert!(create["object"].get("audience").is_none());
    assert!(create["object"].get("name").is_none());
    assert_eq!(create["object"]["to"], json!([hortus::activitypub::PUBLIC]));
}
