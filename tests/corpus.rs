//! The extended corpus (issue 10.2): documents other servers publish, each folder under
//! `tests/fixtures/published/<implementation>/` with a `SOURCE.md` saying where every file comes from
//! and an `expected.json` saying what Hortus must read from it. Every document is read with the
//! parser Hortus uses for it: actors with `fetch::parse_actor`, posts with the conversation note
//! parser, activities with the inbox's `Activity::parse`, WebFinger with the self-link rule of
//! `fetch::webfinger`. Captured traffic (`tests/fixtures/peers/`) has its own test, tests/peers.rs.

use std::path::{Path, PathBuf};

use hortus::activitypub::fetch;
use hortus::conversation::note::RemoteNote;
use serde_json::Value;
use url::Url;

fn corpus() -> Vec<(PathBuf, Value)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/published");
    let mut folders: Vec<(PathBuf, Value)> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(|entry| {
            let dir = entry.ok()?.path();
            let text = std::fs::read_to_string(dir.join("expected.json")).ok()?;
            let expected: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}/expected.json: {e}", dir.display()));
            Some((dir, expected))
        })
        .collect();
    folders.sort_by(|a, b| a.0.cmp(&b.0));
    folders
}

fn read(dir: &Path, file: &str) -> Value {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn opt(v: &Value) -> Option<&str> {
    v.as_str()
}

fn check_actor(at: &str, doc: &Value, want: &Value) {
    let id = want["id"].as_str().expect("expected id");
    let fetched_from = Url::parse(id).expect("id is a URL");
    let actor = fetch::parse_actor(doc, &fetched_from).unwrap_or_else(|e| panic!("{at}: {e}"));
    assert_eq!(actor.id, id, "{at}");
    assert_eq!(actor.inbox, want["inbox"].as_str().unwrap(), "{at}");
    assert_eq!(
        actor.shared_inbox.as_deref(),
        opt(&want["shared_inbox"]),
        "{at}"
    );
    assert_eq!(actor.handle.as_deref(), opt(&want["handle"]), "{at}");
    assert_eq!(actor.public_key_id.as_deref(), opt(&want["key_id"]), "{at}");
    let rsa = want["rsa_key"].as_bool().expect("rsa_key");
    assert_eq!(actor.public_key_pem.is_some(), rsa, "{at}");
    if let Some(pem) = &actor.public_key_pem {
        let key = hortus::httpsig::load_public_key(pem).unwrap_or_else(|e| panic!("{at}: {e}"));
        assert!(key.rsa().is_ok(), "{at}: an RSA key");
    }
    // Origin binding: the same document served from another server is refused.
    let elsewhere = Url::parse("https://elsewhere.example/actor").unwrap();
    assert!(
        fetch::parse_actor(doc, &elsewhere).is_err(),
        "{at}: an actor is accepted only from its own origin"
    );
}

fn check_note(at: &str, doc: &Value, want: &Value) {
    let note = RemoteNote::parse(doc).unwrap_or_else(|| panic!("{at}: not parsed as a post"));
    assert_eq!(note.id, want["id"].as_str().unwrap(), "{at}");
    assert_eq!(note.object_type, want["type"].as_str().unwrap(), "{at}");
    assert_eq!(
        note.attributed_to.as_deref(),
        opt(&want["attributed_to"]),
        "{at}"
    );
    assert_eq!(
        note.in_reply_to.as_deref(),
        opt(&want["in_reply_to"]),
        "{at}"
    );
}

fn check(dir: &Path, file: &str, want: &Value) {
    let at = format!("{}/{file}", dir.display());
    let doc = read(dir, file);
    match want["kind"].as_str() {
        Some("actor") => check_actor(&at, &doc, want),
        Some("note") => check_note(&at, &doc, want),
        Some("activity") => {
            let bytes = serde_json::to_vec(&doc).unwrap();
            let activity =
                hortus::inbox::Activity::parse(&bytes).unwrap_or_else(|e| panic!("{at}: {e}"));
            assert_eq!(activity.kind, want["type"].as_str().unwrap(), "{at}");
            assert_eq!(activity.actor, want["actor"].as_str().unwrap(), "{at}");
            check_note(&at, &activity.object, &want["object"]);
        }
        Some("webfinger") => {
            assert_eq!(doc["subject"], want["subject"], "{at}");
            assert_eq!(fetch::webfinger_self(&doc), opt(&want["self"]), "{at}");
        }
        other => panic!("{at}: unknown kind {other:?} in expected.json"),
    }
}

#[test]
fn every_published_document_reads_as_expected() {
    let folders = corpus();
    let implementations: Vec<String> = folders
        .iter()
        .filter_map(|(d, _)| d.file_name()?.to_str().map(str::to_string))
        .filter(|name| !name.starts_with("fep-"))
        .collect();
    assert!(
        implementations.len() >= 8,
        "at least 8 implementations besides captured traffic: {implementations:?}"
    );
    let mut checked = 0;
    for (dir, expected) in &folders {
        assert!(
            dir.join("SOURCE.md").is_file(),
            "{}: every folder names its sources",
            dir.display()
        );
        let files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".json") && n != "expected.json")
            .collect();
        let stated = expected.as_object().expect("expected.json is an object");
        for file in &files {
            assert!(
                stated.contains_key(file),
                "{}/{file}: no expectation stated",
                dir.display()
            );
        }
        for (file, want) in stated {
            check(dir, file, want);
            checked += 1;
        }
    }
    assert!(checked >= 15, "{checked} documents checked");
}

/// The FEP-1b12 shapes Hortus now sends and reads: a comment and a post in a community carry the
/// group in `audience` (Lemmy, Mitra), and Lemmy's community is a `Group` with a shared inbox.
#[test]
fn group_shapes_name_their_community() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/published");
    let comment = read(&root.join("lemmy"), "comment.json");
    assert_eq!(
        comment["audience"],
        "https://enterprise.lemmy.ml/c/tenforward"
    );
    let mitra = read(&root.join("mitra"), "create-note.json");
    assert_eq!(
        mitra["object"]["audience"], mitra["object"]["to"][1],
        "Mitra addresses the community it names as audience"
    );
    let group = read(&root.join("lemmy"), "group.json");
    let url = Url::parse(group["id"].as_str().unwrap()).unwrap();
    let actor = fetch::parse_actor(&group, &url).unwrap();
    assert_eq!(
        actor.delivery_inbox(),
        "https://enterprise.lemmy.ml/inbox",
        "deliveries to a community go to its server's shared inbox"
    );
}
