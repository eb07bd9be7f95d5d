//! The home timeline (issue 12) with pretend peers that sign, each on its own loopback address:
//! what followed accounts post, edit, delete and boost fills `hortus timeline`; the owner's likes,
//! boosts and bookmarks (and their undos) go out through the delivery queue; a refused server is
//! never contacted, counted at a listener standing for it. The same flows against Fedify are in
//! tests/timeline_fedify.rs.

mod common;

use common::peer::Peer;
use common::*;
use serde_json::{Value, json};

const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";
const REFUSED: &str = "a boost of a post on a server you have not allowed";

fn timeline(site: &TestSite) -> String {
    hortus_ok(&site.dir, &["timeline", "--limit", "50"])
}

fn count(site: &TestSite, sql: &str) -> i64 {
    site.db().query_row(sql, [], |r| r.get(0)).unwrap()
}

/// A post by `peer`'s actor.
fn note(peer: &Peer, n: &str, content: &str, to: &[&str]) -> Value {
    json!({
        "id": format!("{}/notes/{n}", peer.base),
        "type": "Note",
        "attributedTo": peer.actor,
        "content": content,
        "url": format!("{}/@bob/{n}", peer.base),
        "to": to,
        "cc": [format!("{}/followers", peer.actor)],
        "published": "2026-11-20T10:00:00Z",
    })
}

async fn send(peer: &Peer, site: &TestSite, activity: &Value) {
    let resp = peer.post(&site.url("/inbox"), activity).await;
    let status = resp.status().as_u16();
    assert_eq!(
        status,
        202,
        "{} answered {status}: {}",
        activity["type"],
        resp.text().await.unwrap_or_default()
    );
}

/// The owner follows `peer`, which accepts: as `hortus follow` and a real Accept do it.
async fn follow(state: &hortus::web::AppState, site: &TestSite, peer: &Peer) {
    hortus::owner::follow(state, &peer.actor)
        .await
        .expect("follow");
    let follow = peer.wait_for_activity("Follow").await;
    let accept = peer.activity("Accept", follow.clone());
    send(peer, site, &accept).await;
    let state: String = site
        .db()
        .query_row(
            "SELECT state FROM following WHERE actor_id = ?1",
            [&peer.actor],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(state, "accepted");
}

#[tokio::test(flavor = "multi_thread")]
async fn followed_posts_edits_boosts_and_deletions_fill_the_timeline() {
    let mut site = TestSite::federating("127.0.0.2");
    let bob = Peer::start("127.0.0.3", false); // followed
    let carol = Peer::start("127.0.0.5", false); // allowed, not followed
    let eve = Peer::start("127.0.0.4", false); // refused: stands for a server never to contact
    site.allow(&bob.host);
    site.allow(&carol.host);
    let state = site.start().await;
    follow(&state, &site, &bob).await;
    assert!(timeline(&site).contains("Your timeline is empty"));

    // An account the owner does not follow: nothing is kept.
    send(
        &carol,
        &site,
        &carol.activity(
            "Create",
            note(&carol, "x", "<p>not followed</p>", &[PUBLIC]),
        ),
    )
    .await;
    assert_eq!(count(&site, "SELECT COUNT(*) FROM remote_notes"), 0);

    // A followed account's post, in several scripts, stored once even when sent twice.
    let text = "東京の庭 🌸 مرحبا بالحديقة e\u{301}te\u{301} <b>bold</b>";
    let n1 = note(
        &bob,
        "1",
        &format!("<p>{text}</p><script>alert(1)</script>"),
        &[PUBLIC],
    );
    send(&bob, &site, &bob.activity("Create", n1.clone())).await;
    send(&bob, &site, &bob.activity("Create", n1.clone())).await;
    let out = timeline(&site);
    assert!(
        out.contains("東京の庭 🌸 مرحبا بالحديقة e\u{301}te\u{301} bold"),
        "{out}"
    );
    assert!(
        !out.contains("<b>") && !out.contains("alert"),
        "plain text: {out}"
    );
    assert!(out.contains(&format!("@bob@{}", bob.host)), "{out}");
    assert!(
        out.contains(&format!("{}/@bob/1", bob.base)),
        "the post URL: {out}"
    );
    assert_eq!(count(&site, "SELECT COUNT(*) FROM timeline_entries"), 1);
    // Not a notification: `hortus inbox` keeps to what concerns the owner.
    let inbox = hortus_ok(&site.dir, &["inbox"]);
    assert!(!inbox.contains("東京の庭"), "{inbox}");

    // A direct message from a followed account stays in `hortus inbox`, out of the timeline.
    let alice = site.url("/users/alice");
    let mut dm = note(&bob, "dm", "<p>内緒の話 🤫</p>", &[&alice]);
    dm["cc"] = json!([]);
    dm["tag"] = json!([{"type": "Mention", "href": alice, "name": "@alice"}]);
    send(&bob, &site, &bob.activity("Create", dm)).await;
    assert!(hortus_ok(&site.dir, &["inbox"]).contains("内緒の話"));
    assert!(!timeline(&site).contains("内緒の話"));

    // A poll with its options and counts, and a video by link.
    let mut q = note(&bob, "q", "<p>Tea or coffee?</p>", &[PUBLIC]);
    q["type"] = json!("Question");
    q["anyOf"] = json!([
        {"type": "Note", "name": "緑茶", "replies": {"type": "Collection", "totalItems": 7}},
        {"type": "Note", "name": "قهوة", "replies": {"type": "Collection", "totalItems": 2}},
    ]);
    q["likes"] = json!({"totalItems": 4});
    send(&bob, &site, &bob.activity("Create", q.clone())).await;
    let mut v = note(&bob, "v", "<p>A walk</p>", &[PUBLIC]);
    v["type"] = json!("Video");
    v["url"] = json!([{"type": "Link", "mediaType": "text/html", "href": format!("{}/w/v", bob.base)},
                      {"type": "Link", "mediaType": "video/mp4", "href": format!("{}/v.mp4", bob.base)}]);
    send(&bob, &site, &bob.activity("Create", v)).await;
    let out = timeline(&site);
    assert!(out.contains("poll (several choices):"), "{out}");
    assert!(
        out.contains("[7] 緑茶") && out.contains("[2] قهوة"),
        "{out}"
    );
    assert!(out.contains("4 likes"), "{out}");
    assert!(
        out.contains(&format!("media: {}/v.mp4 (video/mp4)", bob.base)),
        "{out}"
    );

    // Votes change by Update (Mastodon sends the Question again).
    q["anyOf"][0]["replies"]["totalItems"] = json!(8);
    q["updated"] = json!("2026-11-20T11:00:00Z");
    send(&bob, &site, &bob.activity("Update", q)).await;
    assert!(timeline(&site).contains("[8] 緑茶"));

    // An edit wins; an older edit arriving late does not.
    let mut edit = n1.clone();
    edit["content"] = json!("<p>編集した 🌷</p>");
    edit["updated"] = json!("2026-11-21T10:00:00Z");
    send(&bob, &site, &bob.activity("Update", edit)).await;
    let mut stale = n1.clone();
    stale["content"] = json!("<p>stale</p>");
    stale["updated"] = json!("2026-11-20T12:00:00Z");
    send(&bob, &site, &bob.activity("Update", stale)).await;
    let out = timeline(&site);
    assert!(
        out.contains("編集した 🌷") && !out.contains("stale"),
        "{out}"
    );
    assert!(out.contains("edited 2026-11-21T10:00:00Z"), "{out}");

    // A boost of carol's post, with an embedded copy that bob's server cannot vouch for: the
    // post is fetched from carol (its origin), and the fake copy never shows.
    let c1 = note(&carol, "c1", "<p>carol's real words ✨</p>", &[PUBLIC]);
    carol
        .documents
        .lock()
        .unwrap()
        .insert("/notes/c1".into(), c1.clone());
    let mut fake = c1.clone();
    fake["content"] = json!("<p>FAKE</p>");
    let boost = bob.activity("Announce", fake);
    send(&bob, &site, &boost).await;
    let out = timeline(&site);
    assert!(out.contains(&format!("@bob@{} boosted", bob.host)), "{out}");
    assert!(
        out.contains("carol's real words ✨") && !out.contains("FAKE"),
        "{out}"
    );
    let fetched = carol
        .received()
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/notes/c1")
        .count();
    assert_eq!(fetched, 1, "fetched once from its origin");
    assert!(
        carol
            .received()
            .iter()
            .filter(|r| r.path == "/notes/c1")
            .all(|r| r.headers.iter().any(|(n, _)| n == "signature")),
        "a signed GET"
    );

    // A boost of bob's own post, embedded: the signature covers it, nothing is fetched.
    let n2 = note(&bob, "2", "<p>second</p>", &[PUBLIC]);
    let gets_before = bob.received().iter().filter(|r| r.method == "GET").count();
    send(&bob, &site, &bob.activity("Announce", n2)).await;
    assert!(timeline(&site).contains("second"));
    assert_eq!(
        bob.received().iter().filter(|r| r.method == "GET").count(),
        gets_before
    );

    // A boost of a post on a refused server: kept as a link, and eve never hears from us —
    // neither embedded nor as a bare id.
    let e1 = note(&eve, "e1", "<p>from a refused server</p>", &[PUBLIC]);
    send(&bob, &site, &bob.activity("Announce", e1)).await;
    send(
        &bob,
        &site,
        &bob.activity("Announce", json!(format!("{}/notes/e2", eve.base))),
    )
    .await;
    let out = timeline(&site);
    assert!(
        out.contains(&format!("{REFUSED}: {}/notes/e1", eve.base)),
        "{out}"
    );
    assert!(
        out.contains(&format!("{REFUSED}: {}/notes/e2", eve.base)),
        "{out}"
    );
    assert!(!out.contains("from a refused server"), "{out}");
    assert_eq!(
        eve.received().len(),
        0,
        "no request reached the refused server"
    );

    // Undo(Announce) takes the boost away.
    send(&bob, &site, &bob.activity("Undo", boost.clone())).await;
    let out = timeline(&site);
    assert!(!out.contains("carol's real words"), "{out}");

    // Delete takes the post away; a replayed Create does not bring it back.
    send(
        &bob,
        &site,
        &bob.activity("Delete", json!({"id": n1["id"], "type": "Tombstone"})),
    )
    .await;
    send(&bob, &site, &bob.activity("Create", n1.clone())).await;
    let out = timeline(&site);
    assert!(!out.contains("編集した"), "{out}");

    // JSON and paging for scripts: newest first, --before goes further back.
    let all: Value = serde_json::from_str(&hortus_ok(&site.dir, &["timeline", "--json"])).unwrap();
    let ids: Vec<i64> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    assert_eq!(ids.len(), 5, "{all:#}");
    assert_eq!(all[0]["refused"], true);
    let page2: Value = serde_json::from_str(&hortus_ok(
        &site.dir,
        &[
            "timeline",
            "--json",
            "--limit",
            "2",
            "--before",
            &ids[1].to_string(),
        ],
    ))
    .unwrap();
    let ids2: Vec<i64> = page2
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids2, ids[2..4].to_vec());

    // A muted account leaves the timeline, with its boosts.
    site.db()
        .execute(
            "INSERT INTO account_relations (actor_id, muted, updated_at) VALUES (?1, 1, 'now')",
            [&bob.actor],
        )
        .unwrap();
    assert!(timeline(&site).contains("Your timeline is empty"));
    site.db()
        .execute("DELETE FROM account_relations", [])
        .unwrap();
    assert!(timeline(&site).contains("second"));

    // Unfollowing empties the timeline of that account at once, as Mastodon's home feed does.
    hortus_ok(&site.dir, &["unfollow", &bob.actor]);
    assert!(timeline(&site).contains("Your timeline is empty"));
}

#[tokio::test(flavor = "multi_thread")]
async fn likes_boosts_bookmarks_and_undos_go_out_and_refusals_say_why() {
    let mut site = TestSite::federating("127.0.0.2");
    let bob = Peer::start("127.0.0.3", false); // author of the posts
    let carol = Peer::start("127.0.0.5", false); // follows the owner
    let eve = Peer::start("127.0.0.4", false); // refused
    site.allow(&bob.host);
    site.allow(&carol.host);
    let _state = site.start().await;
    send(
        &carol,
        &site,
        &carol.activity("Follow", json!(site.url("/users/alice"))),
    )
    .await;

    // An unknown post on an allowed server is fetched first; its web URL counts on its server.
    let public = note(&bob, "9", "<p>like me 💐</p>", &[PUBLIC]);
    bob.documents
        .lock()
        .unwrap()
        .insert("/notes/9".into(), public.clone());
    bob.documents
        .lock()
        .unwrap()
        .insert("/@bob/9".into(), public.clone());
    let id = public["id"].as_str().unwrap().to_string();
    let web = format!("{}/@bob/9", bob.base);
    let out = hortus_ok(&site.dir, &["like", &web]);
    assert!(
        out.starts_with(&format!("liked {id}; Like queued for 1 inbox")),
        "{out}"
    );
    let like = bob.wait_for_activity("Like").await;
    assert_eq!(like["object"], id.as_str());
    assert_eq!(like["actor"], site.url("/users/alice"));
    assert_eq!(like["to"], json!([bob.actor]));
    let signed = bob
        .posts()
        .iter()
        .all(|r| r.headers.iter().any(|(n, _)| n == "signature"));
    assert!(signed, "every delivery is signed");
    assert!(hortus_ok(&site.dir, &["like", &id]).starts_with("nothing to do"));

    let out = hortus_ok(&site.dir, &["unlike", &id, "--json"]);
    let done: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(done["activity"], "Undo");
    let undo = bob.wait_for_activity("Undo").await;
    assert_eq!(undo["object"]["type"], "Like");
    assert_eq!(undo["object"]["id"], like["id"]);

    // A boost goes to the author and to the owner's followers, addressed as Mastodon does.
    let out = hortus_ok(&site.dir, &["boost", &id]);
    assert!(out.contains("Announce queued for 2 inbox(es)"), "{out}");
    let announce = bob.wait_for_activity("Announce").await;
    assert_eq!(announce["to"], json!([PUBLIC]));
    assert_eq!(
        announce["cc"],
        json!([bob.actor, site.url("/users/alice/followers")])
    );
    let at_carol = carol.wait_for_activity("Announce").await;
    assert_eq!(at_carol["id"], announce["id"]);
    // The owner's boost is in the outbox, as Mastodon lists reblogs.
    let (_, outbox) = get_json(&site.url("/users/alice/outbox?page=1")).await;
    let (_, page) = get_json(&site.url("/users/alice/outbox/page/1")).await;
    let items = [outbox, page];
    assert!(
        items.iter().any(|d| d["orderedItems"]
            .as_array()
            .is_some_and(|i| i.iter().any(|a| a["id"] == announce["id"]))),
        "{items:#?}"
    );
    let home = get(&site.url("/"), BROWSER_ACCEPT)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        home.contains("Boosted") && home.contains(&web) && home.contains("like me 💐"),
        "{home}"
    );
    hortus_ok(&site.dir, &["unboost", &id]);
    let undo = carol.wait_for_activity("Undo").await;
    assert_eq!(undo["object"]["type"], "Announce");
    assert_eq!(undo["object"]["id"], announce["id"]);

    // Bookmarks stay here.
    let posts_before = bob.posts().len();
    assert!(hortus_ok(&site.dir, &["bookmark", &id]).contains("kept here only"));
    assert!(hortus_ok(&site.dir, &["unbookmark", &id]).starts_with("unbookmarked"));
    assert!(hortus_ok(&site.dir, &["unbookmark", &id]).starts_with("nothing to do"));
    assert_eq!(bob.posts().len(), posts_before);

    // Refusals say why: followers-only, a refused server (never contacted), not found, a page
    // URL answered by another server's post.
    let private = note(
        &bob,
        "10",
        "<p>followers only</p>",
        &[&format!("{}/followers", bob.actor)],
    );
    bob.documents
        .lock()
        .unwrap()
        .insert("/notes/10".into(), private.clone());
    let err = hortus_err(&site.dir, &["boost", private["id"].as_str().unwrap()]);
    assert!(err.contains("not public"), "{err}");
    let err = hortus_err(&site.dir, &["like", &format!("{}/notes/e1", eve.base)]);
    assert!(
        err.contains("not allowed") && err.contains(&eve.host),
        "{err}"
    );
    assert_eq!(
        eve.received().len(),
        0,
        "the refused server was never contacted"
    );
    let err = hortus_err(&site.dir, &["like", &format!("{}/notes/nothing", bob.base)]);
    assert!(err.contains("not found") && err.contains("404"), "{err}");
    let elsewhere = note(&carol, "c9", "<p>carol's</p>", &[PUBLIC]);
    bob.documents
        .lock()
        .unwrap()
        .insert("/@bob/fake".into(), elsewhere);
    let err = hortus_err(&site.dir, &["like", &format!("{}/@bob/fake", bob.base)]);
    assert!(err.contains("on another server"), "{err}");

    // A post stored before its server was blocked: nothing new is sent there.
    hortus_ok(
        &site.dir,
        &["block", "add", bob.host.split(':').next().unwrap()],
    );
    let err = hortus_err(&site.dir, &["like", &id]);
    assert!(err.contains("not allowed"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_follows_keep_days_and_keeps_what_the_owner_liked() {
    let mut site = TestSite::federating_with("127.0.0.2", |cfg| {
        cfg.push_str("\n[timeline]\nkeep_days = 3\n");
    });
    let bob = Peer::start("127.0.0.3", false);
    site.allow(&bob.host);
    let state = site.start().await;
    follow(&state, &site, &bob).await;
    let mut ids = Vec::new();
    for n in 0..30 {
        let mut post = note(
            &bob,
            &format!("r{n}"),
            &format!("<p>庭 {n} 🌼</p>"),
            &[PUBLIC],
        );
        post["published"] = json!(hortus::times::now());
        ids.push(post["id"].as_str().unwrap().to_string());
        send(&bob, &site, &bob.activity("Create", post)).await;
    }
    hortus_ok(&site.dir, &["like", &ids[0]]);
    assert_eq!(count(&site, "SELECT COUNT(*) FROM timeline_entries"), 30);
    // Four days pass for every entry (keep_days = 3).
    site.db()
        .execute(
            "UPDATE timeline_entries SET created_at = '2020-01-01T00:00:00Z'",
            [],
        )
        .unwrap();
    site.db()
        .execute(
            "UPDATE remote_notes SET received_at = '2020-01-01T00:00:00Z'",
            [],
        )
        .unwrap();
    let pruned = hortus::timeline::prune(&state).await.expect("prune");
    assert_eq!((pruned.entries, pruned.posts), (29, 29));
    assert_eq!(count(&site, "SELECT COUNT(*) FROM remote_notes"), 1);
    let out = timeline(&site);
    assert!(out.contains("庭 0 🌼") && !out.contains("庭 1 🌼"), "{out}");
    // A post older than keep_days never enters.
    let mut old = note(&bob, "old", "<p>古い</p>", &[PUBLIC]);
    old["published"] = json!("2020-01-01T00:00:00Z");
    send(&bob, &site, &bob.activity("Create", old)).await;
    assert!(!timeline(&site).contains("古い"));
}
