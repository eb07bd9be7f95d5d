//! Voting in a poll from another server (issue 13): the vote reaches the poll's author as
//! Mastodon sends one (a signed `Create` of a `Note` named after the option, `inReplyTo` the
//! Question, to the author alone), the poll then shows the owner's choice, and a second vote,
//! a choice that is not an option, two choices in a single-choice poll and an ended poll are
//! refused with 422 and send nothing.

use serde_json::{Value, json};

use super::common::peer::Peer;
use super::common::{self, TestSite};
use super::home::{follow_accepted, send};
use super::*;

const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_votes_in_a_remote_poll_and_the_vote_reaches_its_author() {
    let mut site = TestSite::federating("127.0.13.60");
    let bob = Peer::start("127.0.13.61", false);
    site.allow(&bob.host);
    set_password(&site);
    let state = site.start().await;
    follow_accepted(&state, &site, &bob).await;
    let option = |name: &str, n: i64| json!({"type": "Note", "name": name, "replies": {"type": "Collection", "totalItems": n}});
    let question = |n: &str, end: &str, options: Vec<Value>| {
        json!({
            "id": format!("{}/notes/{n}", bob.base), "type": "Question",
            "attributedTo": bob.actor, "to": [PUBLIC], "published": "2026-11-21T10:00:00Z",
            "content": "<p>どの花? أي زهرة؟</p>", "endTime": end, "oneOf": options,
        })
    };
    let open = question(
        "open",
        "2099-01-01T00:00:00Z",
        vec![
            option("桜 🌸", 3),
            option("ورد 🌹", 1),
            option("e\u{301}dulis", 0),
        ],
    );
    let ended = question(
        "ended",
        "2020-01-01T00:00:00Z",
        vec![option("a", 1), option("b", 2)],
    );
    send(&bob, &site, &bob.activity("Create", open.clone())).await;
    send(&bob, &site, &bob.activity("Create", ended.clone())).await;

    let http = common::client();
    let app = register(&http, &site.base, "read write").await;
    let token = sign_in(&http, &site.base, &app, "read write").await;
    let home: Value = http
        .get(format!("{}/api/v1/timelines/home", site.base))
        .bearer_auth(&token)
        .send()
        .await
        .expect("home")
        .json()
        .await
        .expect("json");
    let poll_of = |uri: &Value| {
        home.as_array()
            .unwrap()
            .iter()
            .find(|s| s["uri"] == *uri)
            .map(|s| s["poll"].clone())
            .expect("status")
    };
    let poll = poll_of(&open["id"]);
    assert_eq!(poll["voted"], false);
    assert_eq!(poll["options"][1]["title"], "ورد 🌹");
    let id = poll["id"].as_str().unwrap().to_string();
    let ended_id = poll_of(&ended["id"])["id"].as_str().unwrap().to_string();
    assert_eq!(poll_of(&ended["id"])["expired"], true);

    let votes = |id: &str, body: Value| {
        let (http, token, url) = (
            http.clone(),
            token.clone(),
            format!("{}/api/v1/polls/{id}/votes", site.base),
        );
        async move {
            http.post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .expect("vote")
        }
    };
    // Refused, and nothing sent: two choices in a one-choice poll, no such option, an ended
    // poll, an unknown poll.
    for (poll, body, status, says) in [
        (&id, json!({"choices": [0, 1]}), 422, "takes one choice"),
        (
            &id,
            json!({"choices": ["7"]}),
            422,
            "not one of the poll's options",
        ),
        (&id, json!({"choices": []}), 422, "at least one"),
        (&ended_id, json!({"choices": [0]}), 422, "already ended"),
        (
            &"1999999999999".to_string(),
            json!({"choices": [0]}),
            404,
            "not found",
        ),
    ] {
        let resp = votes(poll, body.clone()).await;
        assert_eq!(resp.status().as_u16(), status, "{poll} {body}");
        let error: Value = resp.json().await.expect("json");
        assert!(error["error"].as_str().unwrap().contains(says), "{error}");
    }
    // The vote, as Tusky sends it (a form with `choices[]`).
    let resp = http
        .post(format!("{}/api/v1/polls/{id}/votes", site.base))
        .bearer_auth(&token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("choices[]=1")
        .send()
        .await
        .expect("vote");
    assert_eq!(resp.status(), 200);
    let after: Value = resp.json().await.expect("json");
    assert_eq!(after["voted"], true);
    assert_eq!(after["own_votes"], json!([1]));
    let again = votes(&id, json!({"choices": [0]})).await;
    assert_eq!(again.status(), 422, "a vote is final");
    let error: Value = again.json().await.expect("json");
    assert!(error["error"].as_str().unwrap().contains("already voted"));
    let shown: Value = http
        .get(format!("{}/api/v1/polls/{id}", site.base))
        .bearer_auth(&token)
        .send()
        .await
        .expect("poll")
        .json()
        .await
        .expect("json");
    assert_eq!(shown["own_votes"], json!([1]));

    // bob got exactly one vote, signed: a Create of a Note named after the option.
    let create = bob.wait_for_activity("Create").await;
    assert_eq!(create["actor"], site.url("/users/alice"));
    assert_eq!(create["to"], json!([bob.actor]));
    assert_eq!(create["object"]["type"], "Note");
    assert_eq!(create["object"]["name"], "ورد 🌹");
    assert_eq!(create["object"]["inReplyTo"], open["id"]);
    assert_eq!(create["object"]["to"], json!([bob.actor]));
    assert!(create["object"].get("content").is_none());
    let signed_creates = bob
        .posts()
        .iter()
        .filter(|r| r.json()["type"] == "Create")
        .inspect(|r| assert!(r.headers.iter().any(|(n, _)| n == "signature")))
        .count();
    assert_eq!(signed_creates, 1);
}
