//! Incremental export (issue 15): an export into an earlier one's directory stops after reading
//! the manifest when nothing it depends on changed, renders again when anything did (a post, a
//! blocked server, a media file), and always leaves exactly the files a full export into an
//! empty directory writes.

mod common;

use std::path::Path;

use common::export::{assert_same_as_full, export_to, files, post_id};
use common::*;
use hortus::app::Site;

#[test]
fn incremental_exports_equal_full_ones_and_stop_early_when_nothing_changed() {
    let site = TestSite::federating("127.0.0.2");
    site.write_post(
        "one.md",
        "+++\ntitle = \"Eins\"\ntags = [\"garten\"]\n+++\nErster Beitrag über den Garten 🌱",
    );
    site.write_post(
        "two.md",
        "+++\ntags = [\"garten\", \"花\"]\n+++\n二番目の投稿、花について。",
    );
    site.write_post("three.md", "منشور ثالث عن الحديقة e\u{301}");
    site.write_media("leaf.txt", "a leaf".as_bytes());
    let out = site.tmp.path().join("out");

    let first = export_to(&site, &out);
    assert!(first.documents > 0 && !first.written.is_empty());

    // Nothing changed: the manifest is read, nothing rendered, nothing written.
    let again = export_to(&site, &out);
    assert_eq!(again.documents, 0, "rendered although nothing changed");
    assert!(again.written.is_empty() && again.removed.is_empty());
    assert_eq!(again.files, first.files);

    // An edit, an add and a delete.
    site.write_post(
        "one.md",
        "+++\ntitle = \"Eins\"\ntags = [\"garten\"]\n+++\nGeändert: der Garten blüht 🌼",
    );
    site.write_post("four.md", "+++\ntags = [\"花\"]\n+++\n四番目 — новый пост");
    site.remove_post("two.md");
    let changed = export_to(&site, &out);
    assert!(changed.documents > 0);
    assert!(
        changed.written.iter().any(|f| f.starts_with("posts/one")),
        "{:?}",
        changed.written
    );
    assert!(
        changed
            .written
            .iter()
            .any(|f| f.starts_with("_gone/posts/two"))
    );
    let full = assert_same_as_full(&site, &out, "full-1");
    // Only what the changes touch was rendered: not the unchanged post's page and Note, the
    // static files, the actors…
    assert!(
        changed.documents * 2 < full,
        "{} of {full}",
        changed.documents
    );
    assert_eq!(export_to(&site, &out).documents, 0);

    // A post of the owner answering another: the other's page may show it, nothing is kept.
    site.write_post(
        "five.md",
        &format!(
            "+++\nin_reply_to = \"{}\"\n+++\nAntwort auf den ersten — ответ",
            site.url("/posts/one")
        ),
    );
    let reply = export_to(&site, &out);
    let full = assert_same_as_full(&site, &out, "full-reply");
    // Every post's page and Note (4 live posts), the listings it joins, the home page…
    assert!(reply.documents >= 8 && reply.documents < full);
    site.write_post("three.md", "منشور ثالث، معدّل");
    let edit = export_to(&site, &out);
    assert!(
        edit.documents < full,
        "only posts changed, none that answers another"
    );
    assert_same_as_full(&site, &out, "full-edit");

    // A write no post records but a page shows (a blocked server's count in the policy, here
    // any write to a table pages read) renders again.
    site.db()
        .execute(
            "UPDATE federation_policy_version SET version = version + 1 WHERE id = 1",
            [],
        )
        .unwrap();
    assert!(export_to(&site, &out).documents > 0);

    // A media file changed: copied again.
    site.write_media("leaf.txt", "a greener leaf".as_bytes());
    let media = export_to(&site, &out);
    assert!(media.written.contains(&"media/leaf.txt".to_string()));
    assert_same_as_full(&site, &out, "full-2");

    // A file of the export removed by hand: the next export writes it again.
    std::fs::remove_file(out.join("index.html")).unwrap();
    let repaired = export_to(&site, &out);
    assert!(repaired.written.contains(&"index.html".to_string()));
    assert_same_as_full(&site, &out, "full-3");

    // Files a change would keep (a post's page and Note, a tag page: their keys did not move)
    // removed by hand: exactly those are rendered and written again, nothing else.
    let post_page = files(&out)
        .into_keys()
        .find(|f| f.starts_with("posts/three") && f.ends_with(".html"))
        .expect("the page of post three");
    let note = post_page.replace(".html", ".json");
    let tag_page = "tags/花.html".to_string();
    for f in [&post_page, &note, &tag_page] {
        std::fs::remove_file(out.join(f)).unwrap();
    }
    let repaired = export_to(&site, &out);
    assert_eq!(repaired.documents, 3, "{:?}", repaired.written);
    assert_eq!(repaired.written, {
        let mut w = vec![post_page, note, tag_page];
        w.sort();
        w
    });
    assert_same_as_full(&site, &out, "full-4");
    assert_eq!(export_to(&site, &out).documents, 0);
}

/// One post file of the 300-post site: a date an hour apart, so every listing's order is fixed.
fn numbered_post(n: usize, title: &str, tags: &[&str], visibility: &str, body: &str) -> String {
    let tags: Vec<String> = tags.iter().map(|t| format!("\"{t}\"")).collect();
    format!(
        "+++\ntitle = \"{title}\"\ndate = 2026-01-{:02}T{:02}:00:00Z\ntags = [{}]\nvisibility = \"{visibility}\"\n+++\n{body}\n",
        1 + n / 24,
        n % 24,
        tags.join(", ")
    )
}

const TAGS: [&str; 4] = ["garten", "花", "книги", "رحلة"];

fn write_numbered(
    site: &TestSite,
    n: usize,
    title: &str,
    tags: &[&str],
    visibility: &str,
    body: &str,
) {
    site.write_post(
        &format!("p{n:03}.md"),
        &numbered_post(n, title, tags, visibility, body),
    );
}

/// Issue 15: an export renders only the documents a change touches (its report's `documents`),
/// and still writes exactly what a full export into an empty directory writes, for each kind of
/// change a post or the fediverse makes.
#[test]
fn each_change_renders_only_the_documents_that_show_it() {
    use hortus::conversation::{note::RemoteNote, store};
    let site = TestSite::federating("127.0.0.3");
    // The server the reply and the like below come from; a refused one's are never shown.
    site.allow("m.example");
    for n in 0..300 {
        let tags = [TAGS[n % 4], TAGS[(n / 4) % 4]];
        write_numbered(
            &site,
            n,
            &format!("Nr. {n} — № {n}"),
            &tags,
            "public",
            &format!("Beitrag {n}: 庭の記録 🌱 e\u{301}"),
        );
    }
    let out = site.tmp.path().join("out");
    let first = export_to(&site, &out);
    assert!(first.documents > 600, "{}", first.documents);
    let mut round = 0;
    let mut check = |what: &str, most: usize| {
        let report = export_to(&site, &out);
        round += 1;
        let full = assert_same_as_full(&site, &out, &format!("full-{round}"));
        assert!(
            report.documents <= most,
            "{what}: rendered {} of {full} documents (at most {most} expected): {:?}",
            report.documents,
            report.written
        );
        assert!(report.documents > 0, "{what}: nothing rendered");
        eprintln!("{what}: rendered {} of {full} documents", report.documents);
        report
    };

    // Edits: the post's page and Note, the one listing page per listing that shows it, the
    // sitemap, and the documents that show anything (home, feed, outbox).
    write_numbered(
        &site,
        150,
        "Nr. 150 — № 150",
        &[TAGS[2], TAGS[1]],
        "public",
        "Geändert: 変更 ✓",
    );
    let edit = check("an edited body", 10);
    assert!(
        edit.written
            .iter()
            .any(|f| f.starts_with("posts/") && f.ends_with(".html"))
    );
    write_numbered(
        &site,
        150,
        "Ein neuer Titel — عنوان",
        &[TAGS[2], TAGS[1]],
        "public",
        "Geändert: 変更 ✓",
    );
    check("an edited title", 10);
    // Leaving a tag or joining one moves that tag's later posts to other pages.
    write_numbered(
        &site,
        150,
        "Ein neuer Titel — عنوان",
        &[TAGS[0], "neu"],
        "public",
        "Geändert: 変更 ✓",
    );
    check("changed tags", 40);

    // A new reply on a post's page, and a like: that page and Note and the documents that show
    // anything (home, feed, outbox); no listing page, and neither the sitemap nor NodeInfo
    // (no post changed).
    let post_id: i64 = site
        .db()
        .query_row(
            "SELECT id FROM posts WHERE source_path LIKE '%p100.md'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let slug: String = site
        .db()
        .query_row("SELECT slug FROM posts WHERE id = ?1", [post_id], |r| {
            r.get(0)
        })
        .unwrap();
    let urls = Site::open(&site.dir).unwrap().urls;
    let raw = serde_json::json!({
        "id": "https://m.example/notes/1", "type": "Note",
        "attributedTo": "https://m.example/users/bob",
        "inReplyTo": urls.post_object(&slug), "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "content": "<p>Schön! 綺麗 — جميل</p>", "published": "2026-02-01T00:00:00Z",
    });
    let note = RemoteNote::parse(&raw).unwrap();
    let now = "2026-02-01T00:00:01Z";
    store::receive_note(&site.db(), &urls, &note, &raw, "m.example", now).unwrap();
    let reply = check("a new reply", 5);
    let page = format!("posts/{slug}.html");
    assert!(reply.written.contains(&page), "{:?}", reply.written);
    assert!(
        std::fs::read_to_string(out.join(&page))
            .unwrap()
            .contains("綺麗")
    );
    let like = serde_json::json!({"id": "https://m.example/likes/1", "type": "Like"});
    store::add_reaction(
        &site.db(),
        store::ReactionKind::Like,
        "https://m.example/users/bob",
        post_id,
        "https://m.example/likes/1",
        &like,
        now,
    )
    .unwrap();
    let liked = check("a like", 5);
    assert!(liked.written.contains(&page), "{:?}", liked.written);

    // Changes that move every later post to another page: those pages are rendered again.
    write_numbered(
        &site,
        300,
        "Neu — новый",
        &[TAGS[3]],
        "public",
        "Ganz neu 🆕",
    );
    check("a new post", 200);
    site.remove_post("p010.md");
    check("a deleted post", 200);
    write_numbered(
        &site,
        200,
        "Nr. 200",
        &[TAGS[0]],
        "followers",
        "Nur für Folgende",
    );
    check("a post made followers-only", 200);

    // Nothing changed.
    assert_eq!(export_to(&site, &out).documents, 0);
}

/// A site of a few posts in several scripts, exported once into `out`.
fn small_site_exported(out: &Path) -> TestSite {
    let site = TestSite::federating("127.0.0.2");
    site.write_post(
        "one.md",
        "+++\ntags = [\"garten\"]\n+++\nErster Beitrag über den Garten 🌱",
    );
    site.write_post(
        "two.md",
        "+++\ntags = [\"花\"]\n+++\n二番目の投稿、花について。",
    );
    site.write_post("three.md", "منشور ثالث عن الحديقة e\u{301}");
    export_to(&site, out);
    site
}

/// The owner's file beside the export is kept; then it is set aside so the rest compares.
fn owners_file_kept(out: &Path) {
    assert_eq!(std::fs::read(out.join("CNAME")).unwrap(), b"blog.example");
    std::fs::remove_file(out.join("CNAME")).unwrap();
}

/// A manifest cut short (a full disk, a copy interrupted) is not a refusal: the paths of its
/// complete rows are still ours, so a post removed since has its files removed; the export
/// equals a full one, and a file the manifest never named stays.
#[test]
fn a_truncated_manifest_is_repaired_by_a_full_export() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let site = small_site_exported(&out);
    let was: Vec<String> = files(&out)
        .into_keys()
        .filter(|f| f.starts_with("posts/two"))
        .collect();
    assert!(!was.is_empty());
    std::fs::write(out.join("CNAME"), b"blog.example").unwrap();
    site.remove_post("two.md");
    let manifest = out.join(".hortus/manifest.bin");
    let bytes = std::fs::read(&manifest).unwrap();
    std::fs::write(&manifest, &bytes[..bytes.len() - 5]).unwrap();

    let report = export_to(&site, &out);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("manifest.bin") && w.contains("damaged")),
        "{:?}",
        report.warnings
    );
    for f in &was {
        assert!(report.removed.contains(f), "{f} in {:?}", report.removed);
        assert!(!out.join(f).exists());
    }
    owners_file_kept(&out);
    assert_same_as_full(&site, &out, "full-truncated");
    assert_eq!(
        export_to(&site, &out).documents,
        0,
        "the manifest is whole again"
    );
}

/// A directory exported by the version before the binary manifest (JSON rows, version 2): the
/// next export removes what it no longer produces and leaves exactly a full export's files.
#[test]
fn an_export_with_the_json_manifest_is_upgraded() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let site = small_site_exported(&out);
    std::fs::write(out.join("posts/孤児 🌱.html"), "orphan".as_bytes()).unwrap();
    // The rows as that version wrote them: [path, len, 128 bits of SHA-256 as hex, key, type].
    let rows: Vec<serde_json::Value> = files(&out)
        .iter()
        .map(|(path, bytes)| {
            let hash: String = openssl::sha::sha256(bytes)[..16]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let key = path.ends_with(".html").then(|| "ab".repeat(16));
            serde_json::json!([path, bytes.len(), hash, key, null])
        })
        .collect();
    let v2 = serde_json::json!({
        "version": 2,
        "base_url": site.url(""),
        "site": {"files": "0f", "page_generation": 1, "posts_generation": 1},
        "files": rows,
    });
    std::fs::remove_file(out.join(".hortus/manifest.bin")).unwrap();
    std::fs::write(out.join(".hortus/manifest.json"), v2.to_string()).unwrap();
    std::fs::write(out.join("CNAME"), b"blog.example").unwrap();

    let report = export_to(&site, &out);
    assert_eq!(report.removed, vec!["posts/孤児 🌱.html".to_string()]);
    assert!(!out.join(".hortus/manifest.json").exists());
    assert!(out.join(".hortus/manifest.bin").exists());
    owners_file_kept(&out);
    assert_same_as_full(&site, &out, "full-upgraded");
}

/// Issue 15, migration 22: the keys read each post's versions, which triggers move in the
/// writer's transaction. Each input routed through a trigger is moved here, one at a time, and
/// the export must render what shows it (the file is written: its bytes changed) and still
/// equal a full export; a trigger missing would keep the stale file and fail the comparison.
/// The inputs the keys read whole (followers, hortus.toml) are checked the same way.
#[test]
fn each_input_a_trigger_versions_renders_what_shows_it() {
    use hortus::actors::{RemoteActor, store_actor};
    use hortus::conversation::{note::RemoteNote, store};
    let site = TestSite::federating("127.0.0.5");
    site.allow("m.example");
    site.write_post(
        "target.md",
        "+++\ntitle = \"Ziel — 目標\"\ntags = [\"garten\"]\n+++\nWorauf geantwortet wird: 庭 🌱",
    );
    site.write_post(
        "mention.md",
        "+++\ntags = [\"花\"]\n+++\nHallo @fern@m.example — مرحبا 👋 e\u{301}",
    );
    site.write_post("quiet.md", "Ein ruhiger Beitrag, нетронутый.");
    let out = site.tmp.path().join("out");
    export_to(&site, &out);
    let db = site.db();
    let id_of = |name: &str| post_id(&db, name);
    let (target, target_slug) = id_of("target.md");
    let (_, mention_slug) = id_of("mention.md");
    let (_, quiet_slug) = id_of("quiet.md");
    let urls = Site::open(&site.dir).unwrap().urls;
    let page = format!("posts/{target_slug}.html");
    let mut round = 0;
    // Exports, compares with a full export, and checks that `shows` was written (and the quiet
    // post's page was not rendered at all, for a change that is not everywhere).
    let mut check = |what: &str, shows: &str, everywhere: bool| -> String {
        let report = export_to(&site, &out);
        round += 1;
        let full = assert_same_as_full(&site, &out, &format!("full-v{round}"));
        assert!(
            report.written.iter().any(|f| f == shows),
            "{what}: {shows} not written: {:?}",
            report.written
        );
        if !everywhere {
            assert!(
                report.documents < full / 2,
                "{what}: rendered {} of {full}",
                report.documents
            );
            assert!(
                !report.written.iter().any(|f| f.contains(&quiet_slug)),
                "{what}: {:?}",
                report.written
            );
        }
        std::fs::read_to_string(out.join(shows)).unwrap()
    };
    let actor = |id: &str, handle: &str, name: &str| {
        let a = RemoteActor {
            id: id.into(),
            host: "m.example".into(),
            inbox: format!("{id}/inbox"),
            shared_inbox: None,
            handle: Some(handle.into()),
            name: Some(name.into()),
            url: Some(format!(
                "https://m.example/@{}",
                handle.split('@').next().unwrap()
            )),
            public_key_id: None,
            public_key_pem: None,
        };
        let raw = serde_json::json!({"id": id, "type": "Person", "name": name});
        store_actor(&db, &a, &raw).unwrap();
    };
    let now = "2026-03-01T00:00:00Z";

    // A reply in the post's thread, by a known author.
    actor("https://m.example/users/bob", "bob@m.example", "Bob ボブ");
    let raw = serde_json::json!({
        "id": "https://m.example/notes/7", "type": "Note",
        "attributedTo": "https://m.example/users/bob",
        "inReplyTo": urls.post_object(&target_slug),
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "content": "<p>Eine Antwort — 返信 — ردّ</p>", "published": "2026-03-01T00:00:00Z",
    });
    let note = RemoteNote::parse(&raw).unwrap();
    store::receive_note(&db, &urls, &note, &raw, "m.example", now).unwrap();
    assert!(check("a reply", &page, false).contains("返信"));
    // Its author renamed: only `remote_actors` moves.
    actor(
        "https://m.example/users/bob",
        "bob@m.example",
        "Robert ロベルト",
    );
    assert!(check("the reply's author renamed", &page, false).contains("ロベルト"));
    // The owner hides it, then shows it again.
    store::set_hidden(&db, "https://m.example/notes/7", true).unwrap();
    assert!(!check("the reply hidden", &page, false).contains("返信"));
    store::set_hidden(&db, "https://m.example/notes/7", false).unwrap();
    assert!(check("the reply shown", &page, false).contains("返信"));
    // Its own reply setting.
    store::set_post_replies(&db, target, true).unwrap();
    check("replies off for the post", &page, false);
    // A like, then its Undo.
    let like = serde_json::json!({"id": "https://m.example/likes/7", "type": "Like"});
    let liker = "https://m.example/users/bob";
    store::add_reaction(
        &db,
        store::ReactionKind::Like,
        liker,
        target,
        "https://m.example/likes/7",
        &like,
        now,
    )
    .unwrap();
    check("a like", &page, false);
    store::remove_reaction(&db, liker, Some("https://m.example/likes/7"), None).unwrap();
    check("a like undone", &page, false);
    // The mentioned account becomes known: the mention now names its actor.
    actor("https://m.example/users/fern", "fern@m.example", "Fern 蕨");
    let note = check(
        "a mentioned account known",
        &format!("posts/{mention_slug}.json"),
        false,
    );
    assert!(note.contains("https://m.example/users/fern"), "{note}");
    // Read whole by the keys, not versioned: a follower (the counts), the configuration.
    hortus::graph::followers::upsert(
        &db,
        "https://m.example/users/bob",
        "https://m.example/f/1",
        "accepted",
        now,
    )
    .unwrap();
    check("a new follower", "users/alice/followers.json", true);
    let cfg = site.dir.join("hortus.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let bio = "bio = \"Ein kleiner Garten — 小さな庭 — حديقة صغيرة\"";
    std::fs::write(
        &cfg,
        text.replacen("bio = \"A small garden on the fediverse.\"", bio, 1),
    )
    .unwrap();
    assert!(check("the owner's bio", "index.html", true).contains("小さな庭"));
    assert_eq!(export_to(&site, &out).documents, 0);
}
