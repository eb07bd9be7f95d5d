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

/// FEP-1b12 the other way: the group relays a member's comment and vote on the post, wrapped in
/// its Announce. What shows is what the member's own server serves, never the group's copy.
#[tokio::test(flavor = "multi_thread")]
async fn comments_and_votes_a_group_relays_show_under_the_post_as_their_origin_serves_them() {
    let mut site = TestSite::federating("127.0.0.2");
    let group = group_peer("127.0.0.3");
    let member = Peer::start("127.0.0.5", false);
    site.allow(&group.host);
    site.allow(&member.host);
    let state = site.start().await;
    site.write_post(
        "roses.md",
        &format!("+++\ntitle = \"Roses\"\n+++\nFor @bob@{} 🌹", group.host),
    );
    publish(&site, &state).await;
    let create = group.wait_for_activity("Create").await;
    let post_id = create["object"]["id"].as_str().unwrap().to_string();

    // The member's comment and its Create, as the member's server serves them.
    let comment = json!({
        "id": format!("{}/comment/1", member.base),
        "type": "Note",
        "attributedTo": member.actor,
        "to": [group.actor, hortus::activitypub::PUBLIC],
        "audience": group.actor,
        "inReplyTo": post_id,
        "content": "<p>Schöne Rosen! 美しい薔薇 — وردٌ جميل</p>",
        "published": "2026-11-29T05:00:00Z",
    });
    let inner = json!({
        "id": format!("{}/activities/create/1", member.base),
        "type": "Create",
        "actor": member.actor,
        "to": [group.actor, hortus::activitypub::PUBLIC],
        "object": comment,
        "audience": group.actor,
    });
    let vote = json!({
        "id": format!("{}/activities/like/1", member.base),
        "type": "Like",
        "actor": member.actor,
        "object": post_id,
        "audience": group.actor,
    });
    {
        let mut docs = member.documents.lock().unwrap();
        docs.insert("/comment/1".into(), comment.clone());
        docs.insert("/activities/create/1".into(), inner.clone());
        docs.insert("/activities/like/1".into(), vote.clone());
    }

    // The group's copy of the comment says something else: it must not be what is stored.
    let mut forged = inner.clone();
    forged["object"]["content"] = json!("<p>words the member never wrote</p>");
    let announce = group.activity("Announce", forged);
    let resp = group.post(&site.url("/inbox"), &announce).await;
    assert_eq!(
        resp.status(),
        202,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    let vote_announce = group.activity("Announce", vote);
    assert_eq!(
        group
            .post(&site.url("/inbox"), &vote_announce)
            .await
            .status(),
        202
    );

    // A relayed activity its origin does not serve is left out.
    let unknown = json!({
        "id": format!("{}/activities/create/404", member.base),
        "type": "Create",
        "actor": member.actor,
        "object": {"id": format!("{}/comment/404", member.base), "type": "Note",
                   "attributedTo": member.actor, "inReplyTo": post_id,
                   "content": "<p>never served</p>", "to": [hortus::activitypub::PUBLIC]},
    });
    let announce = group.activity("Announce", unknown);
    assert_eq!(
        group.post(&site.url("/inbox"), &announce).await.status(),
        202
    );

    let db = site.db();
    let (content, thread): (String, Option<i64>) = db
        .query_row(
            "SELECT content_html, thread_post_id FROM remote_notes WHERE id = ?1",
            [format!("{}/comment/1", member.base)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("the relayed comment is stored");
    assert!(content.contains("Schöne Rosen! 美しい薔薇"), "{content}");
    assert!(thread.is_some(), "in the thread of the post");
    let stored: i64 = db
        .query_row("SELECT COUNT(*) FROM remote_notes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 1, "the unserved comment is not stored");
    let likes: Vec<String> = db
        .prepare("SELECT actor_id FROM reactions WHERE kind = 'like'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        likes,
        vec![member.actor.clone()],
        "the vote counts as the member's like"
    );

    // Under the post, the origin's words, never the group's copy.
    let html = get(&site.url("/posts/roses"), "text/html")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Schöne Rosen! 美しい薔薇"), "{html}");
    assert!(!html.contains("never wrote"), "{html}");
    assert!(!html.contains("never served"), "{html}");
}
