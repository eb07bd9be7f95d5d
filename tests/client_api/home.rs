//! The home timeline and the owner's actions through masto (tests/peer/masto_home.mjs): a
//! followed loopback peer that signs sends a post; the app reads it with the counts its server
//! gave, favourites, reblogs and bookmarks it (the Like and Announce reach the peer signed, the
//! Announce the owner's follower too), answers it (the Markdown file names it in `in_reply_to`),
//! undoes everything, mutes and blocks the peer.

use std::io::BufRead as _;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::common::peer::Peer;
use super::common::{self, TestSite};
use super::*;

const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

fn masto(site: &TestSite, token: &str, step: &str, status: &str, account: &str) -> Value {
    let out = Command::new("node")
        .arg("masto_home.mjs")
        .current_dir(peer_dir())
        .env("HORTUS_BASE", &site.base)
        .env("HORTUS_TOKEN", token)
        .env("HORTUS_STEP", step)
        .env("HORTUS_STATUS", status)
        .env("HORTUS_ACCOUNT", account)
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "masto step {step} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("script JSON")
}

pub async fn send(peer: &Peer, site: &TestSite, activity: &Value) {
    let resp = peer.post(&site.url("/inbox"), activity).await;
    let status = resp.status().as_u16();
    assert_eq!(status, 202, "{}", resp.text().await.unwrap_or_default());
}

/// The owner follows `peer`'s actor, and `peer` accepts: its posts now reach the timeline.
pub async fn follow_accepted(state: &hortus::web::AppState, site: &TestSite, peer: &Peer) {
    hortus::owner::follow(state, &peer.actor)
        .await
        .expect("follow");
    let follow = peer.wait_for_activity("Follow").await;
    send(peer, site, &peer.activity("Accept", follow)).await;
}

/// Whether `peer` received a signed POST of an activity of `kind` whose object (or the object's
/// object, for an Undo) is `object`.
fn got(peer: &Peer, kind: &str, inner: Option<&str>, object: &str) -> bool {
    peer.posts().iter().any(|r| {
        let a = r.json();
        let signed = r.headers.iter().any(|(n, _)| n == "signature");
        let o = match inner {
            None => &a["object"],
            Some(t) if a["object"]["type"] == t => &a["object"]["object"],
            Some(_) => &Value::Null,
        };
        signed && a["type"] == kind && (o == object || o["id"] == object)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masto_reads_home_favourites_reblogs_bookmarks_answers_mutes_and_blocks() {
    assert!(
        peer_dir().join("node_modules/masto").is_dir(),
        "tests/peer/node_modules is missing masto: run scripts/install-test-deps.sh first"
    );
    let mut site = TestSite::federating("127.0.13.110");
    let bob = Peer::start("127.0.13.111", false); // followed: writes the post
    let carol = Peer::start("127.0.13.112", false); // follows the owner: gets the reblog
    site.allow(&bob.host);
    site.allow(&carol.host);
    set_password(&site);
    let state = site.start().await;
    send(
        &carol,
        &site,
        &carol.activity("Follow", json!(site.url("/users/alice"))),
    )
    .await;
    follow_accepted(&state, &site, &bob).await;

    let text = "東京の庭 🌸 مرحبا بالحديقة e\u{301}te\u{301} 🌱";
    let note_id = format!("{}/notes/1", bob.base);
    let note = json!({
        "id": note_id, "type": "Note", "attributedTo": bob.actor,
        "content": format!("<p>{text}</p><script>alert(1)</script>"),
        "url": format!("{}/@bob/1", bob.base), "to": [PUBLIC],
        "cc": [format!("{}/followers", bob.actor)], "published": "2026-11-20T10:00:00Z",
        "replies": {"type": "Collection", "totalItems": 3},
        "likes": {"type": "Collection", "totalItems": 5},
        "shares": {"type": "Collection", "totalItems": 2},
    });
    bob.documents
        .lock()
        .unwrap()
        .insert("/notes/1".into(), note.clone());

    let http = common::client();
    let app = register(&http, &site.base, "read write follow").await;
    let token = sign_in(&http, &site.base, &app, "read write follow").await;

    // An app listening on the `user` stream hears the post arrive.
    let instance: Value = http
        .get(format!("{}/api/v2/instance", site.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let streaming = instance["configuration"]["urls"]["streaming"]
        .as_str()
        .unwrap()
        .to_string();
    let mut node = Command::new("node")
        .arg("masto_stream.mjs")
        .current_dir(peer_dir())
        .env("HORTUS_STREAMING", &streaming)
        .env("HORTUS_TOKEN", &token)
        .env("HORTUS_EXPECT", "update")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node");
    let mut lines = std::io::BufReader::new(node.stdout.take().unwrap()).lines();
    let ready = tokio::task::block_in_place(|| lines.next());
    assert_eq!(ready.and_then(Result::ok).as_deref(), Some("ready"));
    send(&bob, &site, &bob.activity("Create", note)).await;
    let heard = tokio::task::block_in_place(move || {
        let lines: Vec<String> = lines.map_while(Result::ok).collect();
        let _ = node.wait();
        lines
    });
    let update: Value =
        serde_json::from_str(heard.first().expect("an update on the stream")).expect("event JSON");
    assert_eq!(update["event"], "update");
    assert_eq!(update["stream"], json!(["user"]));
    let payload: Value = match &update["payload"] {
        Value::String(s) => serde_json::from_str(s).unwrap(),
        v => v.clone(),
    };
    assert_eq!(payload["uri"], note_id.as_str());
    assert!(payload["content"].as_str().unwrap().contains(text));

    // The home timeline: the post, sanitised, with the counts bob's server gave.
    let r = masto(&site, &token, "read", "", "");
    let first = &r["home"][0];
    assert_eq!(r["home"].as_array().unwrap().len(), 1, "{r:#}");
    let content = first["content"].as_str().unwrap();
    assert!(content.contains(text), "{content}");
    assert!(!content.contains("<script"), "{content}");
    assert_eq!(first["repliesCount"], 3);
    assert_eq!(first["favouritesCount"], 5);
    assert_eq!(first["reblogsCount"], 2);
    assert_eq!(first["favourited"], false);
    let status = first["id"].as_str().unwrap().to_string();
    let account = first["accountId"].as_str().unwrap().to_string();
    assert!(
        status.parse::<i64>().unwrap() > 1_000_000_000_000,
        "{status}"
    );

    // Favourite, reblog, bookmark: the Like and Announce go out signed.
    let r = masto(&site, &token, "act", &status, "");
    assert_eq!(r["favourited"]["favourited"], true, "{r:#}");
    assert_eq!(r["reblogged"]["reblogged"], true);
    assert_eq!(r["bookmarked"]["bookmarked"], true);
    assert_eq!(r["fetched"]["id"], status.as_str());
    assert_eq!(
        [
            &r["fetched"]["favourited"],
            &r["fetched"]["reblogged"],
            &r["fetched"]["bookmarked"]
        ],
        [true, true, true]
    );
    assert_eq!(r["bookmarks"], json!([status]));
    assert_eq!(r["favourites"], json!([status]));
    assert_eq!(r["reply"]["inReplyToId"], status.as_str());
    assert_eq!(r["descendants"], json!([r["reply"]["id"]]));
    assert_eq!(r["ancestors"], json!([status]));
    assert_eq!(r["home"][0]["favourited"], true);
    bob.wait_for("Like and Announce", |_| {
        got(&bob, "Like", None, &note_id) && got(&bob, "Announce", None, &note_id)
    })
    .await;
    carol
        .wait_for("the reblog", |_| got(&carol, "Announce", None, &note_id))
        .await;
    // The answer and the quote are Markdown files that name the post.
    let files: Vec<(hortus::posts::front_matter::FrontMatter, String)> = post_files(&site)
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let (fm, body) = hortus::posts::front_matter::split(&text).expect("front matter");
            (fm, body.trim().to_string())
        })
        .collect();
    assert_eq!(files.len(), 2);
    let answer = files
        .iter()
        .find(|(_, body)| body == "返信: 美しい庭 🌷 — رد جميل")
        .expect("the answer's file");
    assert_eq!(answer.0.in_reply_to.as_deref(), Some(note_id.as_str()));
    let quote = files
        .iter()
        .find(|(_, body)| body == "引用 ✨ — اقتباس")
        .expect("the quote's file");
    assert_eq!(quote.0.quote.as_deref(), Some(note_id.as_str()));

    // Bob answers the owner's answer: a `mention` notification with bob's post as its status.
    let answer_uri = r["reply"]["uri"].as_str().unwrap();
    let back = json!({
        "id": format!("{}/notes/2", bob.base), "type": "Note", "attributedTo": bob.actor,
        "content": "<p>ありがとう 🙏 شكرا</p>", "inReplyTo": answer_uri,
        "to": [PUBLIC, site.url("/users/alice")], "published": "2026-11-21T10:00:00Z",
        "tag": [{"type": "Mention", "href": site.url("/users/alice")}],
    });
    send(&bob, &site, &bob.activity("Create", back)).await;
    let notes: Value = http
        .get(format!(
            "{}/api/v1/notifications?types[]=mention",
            site.base
        ))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(notes[0]["type"], "mention", "{notes:#}");
    assert_eq!(notes[0]["status"]["uri"], format!("{}/notes/2", bob.base));
    assert_eq!(notes[0]["status"]["in_reply_to_id"], r["reply"]["id"]);
    assert!(
        notes[0]["status"]["content"]
            .as_str()
            .unwrap()
            .contains("ありがとう 🙏 شكرا")
    );

    // The undos: Undo(Like) and Undo(Announce) reach bob; the lists are empty again.
    let r = masto(&site, &token, "undo", &status, "");
    assert_eq!(r["unfavourited"]["favourited"], false, "{r:#}");
    assert_eq!(r["unreblogged"]["reblogged"], false);
    assert_eq!(r["unbookmarked"]["bookmarked"], false);
    assert_eq!(r["bookmarks"], json!([]));
    assert_eq!(r["favourites"], json!([]));
    bob.wait_for("the undos", |_| {
        got(&bob, "Undo", Some("Like"), &note_id) && got(&bob, "Undo", Some("Announce"), &note_id)
    })
    .await;

    // A mute hides the peer's posts and an unmute brings them back.
    let r = masto(&site, &token, "mute", &status, &account);
    assert_eq!(r["muted"], true, "{r:#}");
    assert_eq!(r["homeMuted"], json!([]));
    assert_eq!(r["unmuted"], false);
    // Bob's answer is in the timeline too (bob is followed): both are back.
    let ids: Vec<&str> = r["home"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&status.as_str()), "{ids:?}");
    assert_eq!(ids.len(), 2, "{ids:?}");

    // A block hides them and ends the follow (bob is told with an Undo of the Follow).
    let r = masto(&site, &token, "block", &status, &account);
    assert_eq!(r["blocked"], true, "{r:#}");
    assert_eq!(r["relationship"]["blocking"], true);
    assert_eq!(r["relationship"]["following"], false);
    assert_eq!(r["home"], json!([]));
    assert_eq!(r["unblocked"], false);
    bob.wait_for("the Undo of the Follow", |_| {
        got(&bob, "Undo", Some("Follow"), &bob.actor)
    })
    .await;
}

/// The `next` or `prev` URL of a `Link` header.
fn link(resp: &reqwest::Response, rel: &str) -> Option<String> {
    let header = resp.headers().get("link")?.to_str().ok()?;
    header.split(", ").find_map(|part| {
        let (url, r) = part.split_once("; ")?;
        (r == format!("rel=\"{rel}\""))
            .then(|| url.trim_matches(|c| c == '<' || c == '>').to_string())
    })
}

async fn page(http: &reqwest::Client, url: &str, token: &str) -> (Vec<Value>, reqwest::Response) {
    let resp = http
        .get(url)
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{url}");
    let body = resp.bytes().await.unwrap();
    // The headers are read again from a second request: reqwest consumes the response.
    let again = http
        .get(url)
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    (serde_json::from_slice(&body).unwrap(), again)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_home_timeline_pages_by_link_shows_boosts_as_reblogs_and_lists_who_liked_a_post() {
    let mut site = TestSite::federating("127.0.13.113");
    let bob = Peer::start("127.0.13.114", false); // followed
    let carol = Peer::start("127.0.13.115", false); // allowed, not followed: bob boosts her
    site.allow(&bob.host);
    site.allow(&carol.host);
    set_password(&site);
    let state = site.start().await;
    follow_accepted(&state, &site, &bob).await;
    let note = |peer: &Peer, n: &str, text: &str| {
        json!({
            "id": format!("{}/notes/{n}", peer.base), "type": "Note",
            "attributedTo": peer.actor, "content": format!("<p>{text}</p>"), "to": [PUBLIC],
            "published": "2026-11-20T10:00:00Z",
        })
    };
    let a = note(&bob, "a", "一つ目 — الأول");
    let c = note(&carol, "c", "carol の庭 ✨ — حديقة");
    let b = note(&bob, "b", "三つ目 🌼 — الثالث");
    carol
        .documents
        .lock()
        .unwrap()
        .insert("/notes/c".into(), c.clone());
    send(&bob, &site, &bob.activity("Create", a.clone())).await;
    send(&bob, &site, &bob.activity("Announce", c["id"].clone())).await;
    send(&bob, &site, &bob.activity("Create", b.clone())).await;

    let http = common::client();
    let app = register(&http, &site.base, "read write").await;
    let token = sign_in(&http, &site.base, &app, "read write").await;

    // One per page, newest first, by the Link header: b, the boost of c (by bob), a, nothing.
    let mut url = format!("{}/api/v1/timelines/home?limit=1", site.base);
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    loop {
        let (items, resp) = page(&http, &url, &token).await;
        if items.is_empty() {
            break;
        }
        assert_eq!(items.len(), 1);
        seen.push(items[0].clone());
        pages.push(link(&resp, "prev").expect("prev"));
        url = link(&resp, "next").expect("next");
        assert!(seen.len() <= 3, "{seen:#?}");
    }
    assert_eq!(seen.len(), 3, "{seen:#?}");
    assert_eq!(seen[0]["uri"], b["id"]);
    assert_eq!(seen[1]["reblog"]["uri"], c["id"]);
    assert!(
        seen[1]["reblog"]["content"]
            .as_str()
            .unwrap()
            .contains("carol の庭 ✨")
    );
    assert_eq!(seen[1]["account"]["uri"], bob.actor.as_str());
    assert_eq!(seen[1]["reblog"]["account"]["uri"], carol.actor.as_str());
    assert_eq!(seen[2]["uri"], a["id"]);
    // `prev` of the last page (min_id = a) is the page just above it: the boost.
    let (above, _) = page(&http, &pages[2], &token).await;
    assert_eq!(above.len(), 1);
    assert_eq!(above[0]["id"], seen[1]["id"]);
    // since_id = a: everything newer, newest first.
    let (newer, _) = page(
        &http,
        &format!(
            "{}/api/v1/timelines/home?since_id={}",
            site.base,
            seen[2]["id"].as_str().unwrap()
        ),
        &token,
    )
    .await;
    let ids: Vec<&Value> = newer.iter().map(|s| &s["id"]).collect();
    assert_eq!(ids, [&seen[0]["id"], &seen[1]["id"]]);
    // The boost and the boosted post by id.
    let boost: Value = http
        .get(format!(
            "{}/api/v1/statuses/{}",
            site.base,
            seen[1]["id"].as_str().unwrap()
        ))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(boost["reblog"]["uri"], c["id"], "{boost:#}");
    let one: Value = http
        .get(format!(
            "{}/api/v1/statuses/{}",
            site.base,
            seen[1]["reblog"]["id"].as_str().unwrap()
        ))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["uri"], c["id"]);

    // The owner bookmarks carol's post; carol edits it: an `update` notification, once.
    let marked = http
        .post(format!(
            "{}/api/v1/statuses/{}/bookmark",
            site.base,
            one["id"].as_str().unwrap()
        ))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(marked.status(), 200);
    // A read-only token may look, not act; an unknown id is 404, an own post 422.
    let reader = sign_in(&http, &site.base, &app, "read").await;
    let act = |id: String, token: String| {
        let (http, base) = (http.clone(), site.base.clone());
        async move {
            http.post(format!("{base}/api/v1/statuses/{id}/favourite"))
                .header("authorization", format!("Bearer {token}"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let c_id = one["id"].as_str().unwrap().to_string();
    assert_eq!(act(c_id.clone(), reader).await, 403);
    assert_eq!(act("1999999999999".into(), token.clone()).await, 404);
    assert_eq!(act("-5".into(), token.clone()).await, 404);
    let mut edited = c.clone();
    edited["content"] = json!("<p>carol の庭 ✨ — 編集 تعديل</p>");
    edited["updated"] = json!("2099-01-01T00:00:00Z");
    send(&carol, &site, &carol.activity("Update", edited)).await;
    let notes = |kind: &'static str| {
        let (http, token, base) = (http.clone(), token.clone(), site.base.clone());
        async move {
            http.get(format!("{base}/api/v1/notifications?types[]={kind}"))
                .header("authorization", format!("Bearer {token}"))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let updates = notes("update").await;
    assert_eq!(updates.as_array().unwrap().len(), 1, "{updates:#}");
    assert_eq!(updates[0]["status"]["uri"], c["id"]);
    assert!(
        updates[0]["status"]["content"]
            .as_str()
            .unwrap()
            .contains("編集 تعديل")
    );
    assert_eq!(updates[0]["account"]["uri"], carol.actor.as_str());
    assert_eq!(notes("update").await, updates);

    // The owner posts from the app; bob likes it: favourited_by names bob, reblogged_by no one.
    let mine: Value = http
        .post(format!("{}/api/v1/statuses", site.base))
        .header("authorization", format!("Bearer {token}"))
        .json(&json!({"status": "庭の朝 🌅 — صباح الحديقة"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let like = json!({
        "id": format!("{}/likes/1", bob.base), "type": "Like", "actor": bob.actor,
        "object": mine["uri"],
    });
    send(&bob, &site, &like).await;
    let by = |what: &str| {
        let url = format!(
            "{}/api/v1/statuses/{}/{what}",
            site.base,
            mine["id"].as_str().unwrap()
        );
        let (http, token) = (http.clone(), token.clone());
        async move {
            http.get(url)
                .header("authorization", format!("Bearer {token}"))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let liked = by("favourited_by").await;
    assert_eq!(liked[0]["uri"], bob.actor.as_str(), "{liked:#}");
    assert_eq!(by("reblogged_by").await, json!([]));

    // The owner may like, boost and bookmark their own post, as on Mastodon: the like and the
    // bookmark stay here, the boost goes to the followers (carol follows now).
    send(
        &carol,
        &site,
        &carol.activity("Follow", json!(site.url("/users/alice"))),
    )
    .await;
    let own = |what: &'static str| {
        let url = format!(
            "{}/api/v1/statuses/{}/{what}",
            site.base,
            mine["id"].as_str().unwrap()
        );
        let (http, token) = (http.clone(), token.clone());
        async move {
            let resp = http
                .post(url)
                .header("authorization", format!("Bearer {token}"))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{what}");
            resp.json::<Value>().await.unwrap()
        }
    };
    let s = own("favourite").await;
    assert_eq!(s["favourited"], true, "{s:#}");
    assert_eq!(s["favourites_count"], 2, "bob and the owner");
    let s = own("bookmark").await;
    assert_eq!(s["bookmarked"], true);
    let s = own("reblog").await;
    assert_eq!(s["reblogged"], true);
    assert_eq!(s["reblogs_count"], 1);
    let uri = mine["uri"].as_str().unwrap();
    let announced = carol.wait_for_activity("Announce").await;
    assert_eq!(announced["object"], uri);
    assert!(got(&carol, "Announce", None, uri), "signed");
    let outbox = common::get_json(&site.url("/users/alice/outbox/page/1"))
        .await
        .1;
    assert!(
        outbox["orderedItems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["type"] == "Announce" && i["object"] == uri),
        "{outbox:#}"
    );
    let s = own("unfavourite").await;
    assert_eq!(s["favourited"], false);
    assert_eq!(s["favourites_count"], 1);
    let s = own("unreblog").await;
    assert_eq!(s["reblogged"], false);
    let undone = carol.wait_for_activity("Undo").await;
    assert_eq!(undone["object"]["type"], "Announce");
    assert_eq!(undone["object"]["object"], uri);
    // Bob's like never sent anything back to bob: the owner's own like stays here.
    assert!(!got(&bob, "Like", None, uri));
}
