//! Blocking and muting one account (not a whole server), the owner's `hortus reply`, and quote
//! posts: with signing pretend peers on loopback (tests/common/peer.rs), and with an
//! independent ActivityPub server, Fedify 1.5.9 (tests/peer/conversation_peer.mjs), which
//! verifies every signature Hortus sends with its own code and reads the Note through its own
//! vocabulary (JSON-LD expanded: a context term Hortus forgot is a property Fedify never sees).

mod common;

use common::fedify::Fedify;
use common::peer::Peer;
use common::*;
use serde_json::{Value, json};

const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

fn count(site: &TestSite, sql: &str, param: &str) -> i64 {
    site.db().query_row(sql, [param], |r| r.get(0)).unwrap()
}

/// A public reply by `peer`'s actor to `parent`.
fn reply(peer: &Peer, n: &str, parent: &str, content: &str) -> Value {
    json!({
        "id": format!("{}/notes/{n}", peer.actor),
        "type": "Note",
        "attributedTo": peer.actor,
        "inReplyTo": parent,
        "content": content,
        "url": format!("{}/@x/{n}", peer.actor),
        "to": [PUBLIC],
        "published": "2026-11-20T10:00:00Z",
    })
}

async fn send(peer: &Peer, site: &TestSite, activity: &Value) -> u16 {
    peer.post(&site.url("/inbox"), activity)
        .await
        .status()
        .as_u16()
}

async fn page(site: &TestSite, slug: &str) -> String {
    let resp = get(&site.url(&format!("/posts/{slug}")), BROWSER_ACCEPT).await;
    assert_eq!(resp.status(), 200);
    resp.text().await.expect("page")
}

/// A second account on `peer`'s own server, with its own key: a block is per actor, so this
/// one must stay shown while its neighbour is blocked.
fn neighbour(peer: &Peer, name: &str) -> Peer {
    let mut other = peer.clone();
    other.actor = format!("{}/users/{name}", peer.base);
    other.key_id = format!("{}#main-key", other.actor);
    let (private_pem, public_pem) = hortus::httpsig::generate_keypair().expect("keys");
    other.private_pem = private_pem;
    other.public_pem = public_pem.clone();
    peer.documents.lock().unwrap().insert(
        format!("/users/{name}"),
        json!({
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": other.actor, "type": "Person", "preferredUsername": name, "name": name,
            "inbox": format!("{}/inbox", other.actor),
            "publicKey": {"id": other.key_id, "owner": other.actor, "publicKeyPem": public_pem},
        }),
    );
    other
}

fn inbox_actors(site: &TestSite) -> Vec<Value> {
    let list: Value =
        serde_json::from_str(&hortus_ok(&site.dir, &["inbox", "--json"])).expect("inbox JSON");
    list.as_array()
        .unwrap()
        .iter()
        .map(|n| n["actor"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blocked_account_vanishes_everywhere_and_comes_back_on_unblock() {
    let mut site = TestSite::federating("127.0.0.2");
    site.write_post("hello.md", "+++\ntitle = \"Hello\"\n+++\nHello, garden.");
    site.publish();
    let bob = Peer::start("127.0.0.3", false);
    let carol = neighbour(&bob, "carol");
    site.allow(&bob.host);
    site.start().await;
    let alice = site.url("/users/alice");
    let post = site.url("/posts/hello.json");

    // Bob replies, likes and follows; Carol, on the same server, replies and likes.
    let bob_words = "حديقة جميلة 🌷 bob";
    let carol_words = "素敵な庭ですね 🌿 carol";
    let bob_reply = reply(&bob, "1", &post, &format!("<p>{bob_words}</p>"));
    assert_eq!(
        send(&bob, &site, &bob.activity("Create", bob_reply)).await,
        202
    );
    let carol_reply = reply(&carol, "1", &post, &format!("<p>{carol_words}</p>"));
    assert_eq!(
        send(&carol, &site, &carol.activity("Create", carol_reply)).await,
        202
    );
    assert_eq!(
        send(&bob, &site, &bob.activity("Like", json!(post))).await,
        202
    );
    assert_eq!(
        send(&carol, &site, &carol.activity("Like", json!(post))).await,
        202
    );
    assert_eq!(
        send(&bob, &site, &bob.activity("Follow", json!(alice))).await,
        202
    );
    bob.wait_for_activity("Accept").await;
    // The owner follows Bob, and Bob accepts.
    let handle = format!("bob@{}", bob.host);
    hortus_ok(&site.dir, &["follow", &handle]);
    let follow = bob.wait_for_activity("Follow").await;
    let accept = bob.activity("Accept", json!(follow["id"]));
    assert_eq!(send(&bob, &site, &accept).await, 202);
    let following = "SELECT COUNT(*) FROM following WHERE actor_id = ?1 AND state = 'accepted'";
    assert_eq!(count(&site, following, &bob.actor), 1);
    let html = page(&site, "hello").await;
    assert!(html.contains(bob_words) && html.contains(carol_words));
    assert_eq!(counts(&html), "2 replies 2 likes 0 boosts 0 quotes");
    assert!(inbox_actors(&site).contains(&json!(bob.actor)));

    // The block, by handle: Bob vanishes, Carol stays.
    let out = hortus_ok(&site.dir, &["block", "add", &handle]);
    assert!(
        out.starts_with(&format!("blocked {handle} ({})", bob.actor)),
        "{out}"
    );
    assert!(out.contains("not told (send_blocks = false)"), "{out}");
    let html = page(&site, "hello").await;
    assert!(!html.contains(bob_words), "{html}");
    assert!(html.contains(carol_words));
    assert_eq!(counts(&html), "1 reply 1 like 0 boosts 0 quotes");
    let export = site.tmp.path().join("export");
    hortus_ok(&site.dir, &["export", export.to_str().unwrap()]);
    let exported = std::fs::read_to_string(export.join("posts/hello.html")).unwrap();
    assert!(!exported.contains(bob_words) && exported.contains(carol_words));
    assert!(!inbox_actors(&site).contains(&json!(bob.actor)));
    assert!(inbox_actors(&site).contains(&json!(carol.actor)));

    // Follows both ways are gone, and Bob's server is told of each, signed: a Reject of its
    // Follow and an Undo of ours. No Block: the block itself stays private.
    let followers = "SELECT COUNT(*) FROM followers WHERE actor_id = ?1";
    assert_eq!(count(&site, followers, &bob.actor), 0);
    assert_eq!(
        count(
            &site,
            "SELECT COUNT(*) FROM following WHERE actor_id = ?1",
            &bob.actor
        ),
        0
    );
    let reject = bob.wait_for_activity("Reject").await;
    assert_eq!(reject["object"]["actor"], bob.actor);
    let undo = bob.wait_for_activity("Undo").await;
    assert_eq!(undo["object"]["type"], "Follow");
    assert_eq!(undo["object"]["id"], follow["id"]);
    let posts = bob.posts();
    assert!(
        posts
            .iter()
            .all(|r| r.headers.iter().any(|(n, _)| n == "signature"))
    );
    assert!(
        !posts.iter().any(|r| r.json()["type"] == "Block"),
        "no Block sent"
    );

    // Bob's later activities are refused at the inbox, after his signature verified, and the
    // refusal is recorded (not shown as a federation problem); Carol's are not.
    let like = bob.activity("Like", json!(post));
    assert_eq!(send(&bob, &site, &like).await, 403);
    let reply2 = reply(&bob, "2", &post, "<p>again</p>");
    assert_eq!(
        send(&bob, &site, &bob.activity("Create", reply2)).await,
        403
    );
    assert_eq!(
        send(&carol, &site, &carol.activity("Announce", json!(post))).await,
        202
    );
    let refused = "SELECT COALESCE(SUM(count), 0) FROM inbox_refusals WHERE check_name = ?1";
    assert_eq!(count(&site, refused, "account block"), 2);
    assert_eq!(
        count(
            &site,
            "SELECT COUNT(*) FROM remote_notes WHERE id = ?1",
            &format!("{}/notes/2", bob.actor)
        ),
        0
    );
    assert!(!inbox_actors(&site).contains(&json!(bob.actor)));
    let shown = hortus_ok(&site.dir, &["block", "show"]);
    assert!(
        shown.contains(&format!("blocked\t{handle}\t{}", bob.actor)),
        "{shown}"
    );
    assert!(hortus_ok(&site.dir, &["block", "add", &bob.actor]).starts_with("nothing to do"));
    let out = hortus(&site.dir, &["follow", &handle]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("you blocked"),
        "{out:?}"
    );

    // Unblock: nothing was deleted, so the reply and the like come back, on the page and in
    // the next export.
    let out = hortus_ok(&site.dir, &["block", "remove", &bob.actor]);
    assert!(out.starts_with("unblocked"), "{out}");
    let html = page(&site, "hello").await;
    assert!(html.contains(bob_words), "{html}");
    assert_eq!(counts(&html), "2 replies 2 likes 1 boost 0 quotes");
    hortus_ok(&site.dir, &["export", export.to_str().unwrap()]);
    let exported = std::fs::read_to_string(export.join("posts/hello.html")).unwrap();
    assert!(exported.contains(bob_words));
    assert_eq!(
        send(&bob, &site, &bob.activity("Like", json!(post))).await,
        202
    );

    // A mute keeps Carol out of the owner's notifications only: her reply stays on the page.
    let out = hortus_ok(&site.dir, &["mute", &carol.actor]);
    assert!(out.starts_with("muted"), "{out}");
    assert!(!inbox_actors(&site).contains(&json!(carol.actor)));
    assert!(page(&site, "hello").await.contains(carol_words));
    let shown = hortus_ok(&site.dir, &["block", "show"]);
    assert!(
        shown.contains(&format!("muted\tcarol@{}\t{}", bob.host, carol.actor)),
        "{shown}"
    );
    hortus_ok(&site.dir, &["unmute", &carol.actor]);
    assert!(inbox_actors(&site).contains(&json!(carol.actor)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_handle_on_a_server_not_allowed_is_never_looked_up() {
    let mut site = TestSite::federating("127.0.0.2");
    let stranger = Peer::start("127.0.0.4", false);
    site.start().await;
    let out = hortus(
        &site.dir,
        &["block", "add", &format!("bob@{}", stranger.host)],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not allowed") && err.contains("actor URL"),
        "{err}"
    );
    assert!(stranger.received().is_empty(), "never contacted");
    // By its actor URL the block needs no lookup: it stands, and nothing is fetched.
    let out = hortus_ok(&site.dir, &["block", "add", &stranger.actor]);
    assert!(out.starts_with("blocked"), "{out}");
    assert!(stranger.received().is_empty(), "never contacted");
    // A profile URL on an allowed server that serves the actor is kept as the actor's id.
    let friend = Peer::start("127.0.0.5", false);
    site.allow(&friend.host);
    let profile = format!("{}/@bob", friend.base);
    friend
        .documents
        .lock()
        .unwrap()
        .insert("/@bob".into(), friend.actor_doc());
    hortus_ok(&site.dir, &["block", "add", &profile]);
    let blocked = "SELECT COUNT(*) FROM account_relations WHERE actor_id = ?1 AND blocked = 1";
    assert_eq!(count(&site, blocked, &friend.actor), 1);
    assert_eq!(count(&site, blocked, &profile), 0);
    // Never oneself.
    let out = hortus(&site.dir, &["block", "add", &site.url("/users/alice")]);
    assert!(
        stderr_of(&out).contains("your own account"),
        "{}",
        stderr_of(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_send_blocks_fedify_receives_the_block_and_its_undo() {
    let mut site = TestSite::federating_with("127.0.0.2", |cfg| {
        *cfg = cfg.replace("send_blocks = false", "send_blocks = true");
    });
    site.write_post("hello.md", "Hello, garden.");
    site.publish();
    let erin = Fedify::start("127.0.0.8", "erin").await;
    site.allow(&erin.host);
    site.start().await;
    let alice = site.url("/users/alice");
    let post = site.url("/posts/hello.json");
    erin.control(
        "/_control/note",
        json!({"to": alice, "id": "b1", "inReplyTo": post, "content": "<p>Ἀθῆναι erin</p>"}),
    )
    .await;
    assert!(page(&site, "hello").await.contains("Ἀθῆναι erin"));

    let out = hortus_ok(&site.dir, &["block", "add", &erin.actor]);
    assert!(out.contains("Block queued"), "{out}");
    // Fedify's inbox listener runs only for a request whose signature it verified.
    let block = wait_for_fedify(&erin, "Block", |a| a["object_id"] == erin.actor).await;
    assert_eq!(block["actor"], alice);
    assert!(!page(&site, "hello").await.contains("Ἀθῆναι erin"));
    // Erin's next reply is refused: Fedify reports the 403.
    let refused = erin
        .try_control(
            "/_control/note",
            json!({"to": alice, "id": "b2", "inReplyTo": post, "content": "<p>blocked</p>"}),
        )
        .await;
    assert!(refused.is_err(), "{refused:?}");

    let out = hortus_ok(&site.dir, &["block", "remove", &erin.actor]);
    assert!(out.contains("Undo(Block) queued"), "{out}");
    let undo = wait_for_fedify(&erin, "Undo", |a| a["object_type"] == "Block").await;
    assert_eq!(undo["object_id"], block["id"]);
    assert!(page(&site, "hello").await.contains("Ἀθῆναι erin"));
    // Fedify's only error is that refusal, as Hortus worded it.
    let log = erin.log().await;
    let errors = log["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{log:#}");
    assert!(
        errors[0].as_str().unwrap().contains("403 Forbidden"),
        "{log:#}"
    );
    assert!(
        errors[0].as_str().unwrap().contains("is blocked here"),
        "{log:#}"
    );
}

/// Waits (bounded) until Fedify's inbox log holds an activity of `kind` that `pred` accepts.
async fn wait_for_fedify(peer: &Fedify, kind: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let log = peer.log().await;
        if let Some(found) = log["inbox"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["type"] == kind && pred(a)))
        {
            return found.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Fedify never verified a {kind}: {log:#}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn post_files(site: &TestSite) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(site.dir.join("content/posts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn hortus_reply_writes_the_file_and_fedify_gets_it_signed() {
    let mut site = TestSite::federating("127.0.0.2");
    site.write_post("hello.md", "Hello, garden.");
    site.publish();
    let gina = Fedify::start("127.0.0.9", "gina").await;
    let stranger = Peer::start("127.0.0.4", false);
    site.allow(&gina.host);
    site.start().await;
    let alice = site.url("/users/alice");
    // A post of Gina's that Hortus has never stored: `reply` fetches it to find its author.
    let note = gina
        .control(
            "/_control/note",
            json!({"to": alice, "id": "g1", "content": "<p>庭の写真</p>"}),
        )
        .await;
    let note_id = note["id"].as_str().unwrap().to_string();

    // -m: one line of JSON, a Markdown file that stays the source, the author mentioned.
    let out = hortus(
        &site.dir,
        &["reply", &note_id, "-m", "ありがとう 🙏 شكرا", "--json"],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let replied: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(replied["in_reply_to"], note_id);
    assert_eq!(replied["author"], gina.actor);
    let path = replied["path"].as_str().unwrap();
    let file = std::fs::read_to_string(path).unwrap();
    assert!(
        file.contains(&format!("in_reply_to = \"{note_id}\"")),
        "{file}"
    );
    assert!(
        file.contains(&format!("@gina@{} ありがとう 🙏 شكرا", gina.host)),
        "{file}"
    );
    let create = wait_for_fedify(&gina, "Create", |a| a["in_reply_to"] == note_id).await;
    assert!(
        create["content"]
            .as_str()
            .unwrap()
            .contains("ありがとう 🙏 شكرا"),
        "{create:#}"
    );
    assert!(
        create["mentions"]
            .as_array()
            .unwrap()
            .contains(&json!(gina.actor)),
        "{create:#}"
    );
    let page = get(replied["url"].as_str().unwrap(), BROWSER_ACCEPT).await;
    assert_eq!(page.status(), 200);

    // Without -m, $EDITOR writes the text (here a script that appends a line).
    let editor = site.tmp.path().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nprintf 'Écrit dans l’éditeur ✍️\\n' >> \"$1\"\n",
    )
    .unwrap();
    let exec = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(&editor, exec).unwrap();
    let out = hortus_env(
        &site.dir,
        &["reply", &note_id],
        &[("EDITOR", editor.to_str().unwrap())],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(
        line.contains(&format!("replied to {note_id} by @gina@{}", gina.host)),
        "{line}"
    );
    assert_eq!(line.lines().count(), 1, "{line}");
    wait_for_fedify(&gina, "Create", |a| {
        a["content"]
            .as_str()
            .is_some_and(|c| c.contains("Écrit dans l’éditeur ✍️"))
    })
    .await;

    // Refusals say why and leave no file: an editor that writes nothing, a server that is not
    // allowed (never contacted), a post that does not exist, something that is not a URL.
    let before = post_files(&site);
    let out = hortus_env(&site.dir, &["reply", &note_id], &[("EDITOR", "true")]);
    assert!(
        !out.status.success() && stderr_of(&out).contains("left empty"),
        "{}",
        stderr_of(&out)
    );
    let elsewhere = format!("{}/notes/1", stranger.actor);
    let out = hortus(&site.dir, &["reply", &elsewhere, "-m", "hi"]);
    assert!(
        stderr_of(&out).contains("is not allowed"),
        "{}",
        stderr_of(&out)
    );
    assert!(
        stranger.received().is_empty(),
        "a refused server is never contacted"
    );
    let missing = format!("{}/notes/missing", gina.base);
    let out = hortus(&site.dir, &["reply", &missing, "-m", "hi"]);
    assert!(stderr_of(&out).contains("404"), "{}", stderr_of(&out));
    let out = hortus(&site.dir, &["reply", "bob@example.org", "-m", "hi"]);
    assert!(
        stderr_of(&out).contains("not an http(s) URL"),
        "{}",
        stderr_of(&out)
    );
    let out = hortus(&site.dir, &["reply", &site.url("/posts/nope"), "-m", "hi"]);
    assert!(stderr_of(&out).contains("not found"), "{}", stderr_of(&out));
    assert_eq!(post_files(&site), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quote_post_reaches_fedify_as_a_quote_of_its_author() {
    let mut site = TestSite::federating("127.0.0.2");
    let hana = Fedify::start("127.0.0.10", "hana").await;
    site.allow(&hana.host);
    site.start().await;
    let alice = site.url("/users/alice");
    let note = hana
        .control(
            "/_control/note",
            json!({"to": alice, "id": "h1", "content": "<p>Ein Gedicht</p>"}),
        )
        .await;
    let quoted = note["id"].as_str().unwrap().to_string();
    site.write_post(
        "quote.md",
        &format!("+++\nquote = \"{quoted}\"\n+++\nLisez ceci — اقرأ هذا 📖"),
    );
    hortus_ok(&site.dir, &["publish"]);

    // Fedify reads the quote through its own vocabulary (quoteUrl, _misskey_quote or quoteUri
    // after JSON-LD expansion), and the author is tagged and delivered to.
    let create = wait_for_fedify(&hana, "Create", |a| a["quote_url"] == quoted).await;
    assert!(
        create["mentions"]
            .as_array()
            .unwrap()
            .contains(&json!(hana.actor)),
        "{create:#}"
    );
    let content = create["content"].as_str().unwrap();
    assert!(content.contains("Lisez ceci — اقرأ هذا 📖"), "{content}");
    assert!(
        content.contains(&format!("RE: <a href=\"{quoted}\">")),
        "{content}"
    );

    // The Note as served: every form, and the page links the quoted post.
    let (status, doc) = get_json(&site.url("/posts/quote.json")).await;
    assert_eq!(status, 200);
    for key in ["quote", "quoteUrl", "_misskey_quote", "quoteUri"] {
        assert_eq!(doc[key], quoted, "{key}: {doc:#}");
    }
    assert_eq!(
        doc["@context"][1]["quote"]["@id"],
        "https://w3id.org/fep/044f#quote"
    );
    assert!(
        doc["cc"].as_array().unwrap().contains(&json!(hana.actor)),
        "{doc:#}"
    );
    let html = get(&site.url("/posts/quote"), BROWSER_ACCEPT)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&format!(
            "Quoting <a class=\"u-quotation-of\" href=\"{quoted}\">"
        )),
        "{html}"
    );

    // A bad value is refused with the file, the line and the fix; nothing is published.
    site.write_post(
        "bad.md",
        "+++\ntitle = \"x\"\nquote = \"hana's post\"\n+++\nx",
    );
    let out = hortus(&site.dir, &["publish"]);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(err.contains("content/posts/bad.md:3: "), "{err}");
    assert!(
        err.contains("not an absolute http(s) URL") && err.contains("quote = \"https://"),
        "{err}"
    );
}
