use std::path::Path;

use super::source::parse_file;
use super::*;
use crate::db;
use crate::times::rfc3339;
use crate::urls::Urls;

fn urls() -> Urls {
    Urls::new(&url::Url::parse("https://example.net").unwrap(), "alice")
}

fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("content/posts")).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join("content/posts").join(name), text).unwrap();
}

#[test]
fn publish_creates_edits_deletes_and_is_idempotent() {
    let dir = site();
    let mut conn = db::open_in_memory().unwrap();
    write(
        dir.path(),
        "hello.md",
        "+++\ntitle = \"Hello\"\ndate = 2026-01-02T03:04:05Z\ntags = [\"Rust\"]\n+++\nHi #fediverse",
    );
    write(dir.path(), "second.md", "Second");
    let r = publish(&mut conn, dir.path(), &urls()).unwrap();
    assert_eq!(r.created.len(), 2);
    let again = publish(&mut conn, dir.path(), &urls()).unwrap();
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(again.unchanged, 2);

    let before = by_slug(&conn, "hello").unwrap().unwrap();
    assert_eq!(rfc3339(before.published), "2026-01-02T03:04:05Z");
    assert_eq!(before.tags, vec!["fediverse", "Rust"]);
    write(
        dir.path(),
        "hello.md",
        "+++\ntitle = \"Hello again\"\ndate = 2026-01-02T03:04:05Z\n+++\nEdited",
    );
    let r = publish(&mut conn, dir.path(), &urls()).unwrap();
    assert_eq!(r.updated, vec![(before.id, "hello".to_string())]);
    let after = by_slug(&conn, "hello").unwrap().unwrap();
    assert_eq!(after.id, before.id);
    assert!(after.updated.is_some());
    assert_eq!(after.title.as_deref(), Some("Hello again"));
    assert_eq!(count(&conn, Listing::Tag("rust")).unwrap(), 0);

    std::fs::remove_file(dir.path().join("content/posts/second.md")).unwrap();
    let r = publish(&mut conn, dir.path(), &urls()).unwrap();
    assert_eq!(r.deleted.len(), 1);
    assert!(
        by_slug(&conn, "second")
            .unwrap()
            .unwrap()
            .deleted_at
            .is_some()
    );
    assert!(publish(&mut conn, dir.path(), &urls()).unwrap().is_empty());
}

#[test]
fn one_bad_file_publishes_nothing_and_names_file_and_line() {
    let dir = site();
    let mut conn = db::open_in_memory().unwrap();
    write(dir.path(), "good.md", "fine");
    write(
        dir.path(),
        "bad.md",
        "+++\ntitle = \"x\"\nvisibility = \"everyone\"\n+++\n",
    );
    let err = publish(&mut conn, dir.path(), &urls())
        .unwrap_err()
        .to_string();
    assert!(err.contains("content/posts/bad.md:3:"), "{err}");
    assert!(err.contains("fix:"), "{err}");
    assert_eq!(count(&conn, Listing::Outbox).unwrap(), 0);
}

/// Enough files for the parallel parse (`map_on_all_cores`): every bad one is named with its
/// line, in file order, a duplicate slug across threads is found, and the good ones publish in
/// file order once fixed.
#[test]
fn parallel_parse_keeps_file_order_and_names_every_bad_file() {
    let dir = site();
    let mut conn = db::open_in_memory().unwrap();
    for i in 0..300 {
        write(
            dir.path(),
            &format!("p{i:03}.md"),
            &format!("投稿 {i} — منشور 🌱"),
        );
    }
    write(
        dir.path(),
        "p010.md",
        "+++\ntitle = \"x\"\nvisibility = \"everyone\"\n+++\n",
    );
    write(
        dir.path(),
        "p250.md",
        "+++\ntitle = \"y\"\n\nvisibility = \"nobody\"\n+++\n",
    );
    write(dir.path(), "p299.md", "+++\nslug = \"p001\"\n+++\ncopy");
    let err = publish(&mut conn, dir.path(), &urls())
        .unwrap_err()
        .to_string();
    let first = err.find("content/posts/p010.md:3:").expect(&err);
    let second = err.find("content/posts/p250.md:4:").expect(&err);
    assert!(first < second, "{err}");
    assert!(err.contains("also used by content/posts/p001.md"), "{err}");
    assert_eq!(count(&conn, Listing::Outbox).unwrap(), 0);

    write(dir.path(), "p010.md", "zehn");
    write(dir.path(), "p250.md", "двести пятьдесят");
    write(dir.path(), "p299.md", "last");
    let r = publish(&mut conn, dir.path(), &urls()).unwrap();
    assert_eq!(r.created.len(), 300);
    let slugs: Vec<&str> = r.created.iter().map(|(_, s)| s.as_str()).collect();
    let expected: Vec<String> = (0..300).map(|i| format!("p{i:03}")).collect();
    assert_eq!(
        slugs,
        expected.iter().map(String::as_str).collect::<Vec<_>>()
    );
}

#[test]
fn duplicate_slugs_are_refused() {
    let dir = site();
    let mut conn = db::open_in_memory().unwrap();
    write(dir.path(), "a.md", "+++\nslug = \"same\"\n+++\na");
    write(dir.path(), "b.md", "+++\nslug = \"same\"\n+++\nb");
    let err = publish(&mut conn, dir.path(), &urls())
        .unwrap_err()
        .to_string();
    assert!(err.contains("also used by"), "{err}");
}

#[test]
fn listings_respect_visibility() {
    let dir = site();
    let mut conn = db::open_in_memory().unwrap();
    write(dir.path(), "pub.md", "+++\ntags=[\"x\"]\n+++\npublic");
    write(
        dir.path(),
        "unl.md",
        "+++\nvisibility = \"unlisted\"\ntags=[\"x\"]\n+++\nunlisted",
    );
    write(
        dir.path(),
        "fol.md",
        "+++\nvisibility = \"followers\"\ntags=[\"x\"]\n+++\nsecret",
    );
    publish(&mut conn, dir.path(), &urls()).unwrap();
    assert_eq!(count(&conn, Listing::Public).unwrap(), 1);
    assert_eq!(count(&conn, Listing::Tag("X")).unwrap(), 1);
    assert_eq!(count(&conn, Listing::Outbox).unwrap(), 2);
    let outbox = list(&conn, Listing::Outbox, 10, 0).unwrap();
    assert!(outbox.iter().all(|p| p.visibility != Visibility::Followers));
}

#[test]
fn remembered_counts_follow_every_change() {
    let dir = site();
    let db = dir.path().join("hortus.db");
    let mut conn = db::open(&db).unwrap();
    let other = db::open(&db).unwrap(); // a server's connection, beside `hortus publish`'s
    write(dir.path(), "a.md", "+++\ntags=[\"x\"]\n+++\na");
    publish(&mut conn, dir.path(), &urls()).unwrap();
    assert_eq!(count(&other, Listing::Public).unwrap(), 1);
    assert_eq!(count(&other, Listing::Tag("x")).unwrap(), 1);
    write(dir.path(), "b.md", "+++\ntags=[\"x\"]\n+++\nb");
    publish(&mut conn, dir.path(), &urls()).unwrap();
    assert_eq!(count(&other, Listing::Public).unwrap(), 2);
    assert_eq!(count(&other, Listing::Tag("X")).unwrap(), 2);
    // A retag changes only post_tags; a visibility change only a column.
    write(dir.path(), "b.md", "+++\ntags=[\"y\"]\n+++\nb");
    publish(&mut conn, dir.path(), &urls()).unwrap();
    assert_eq!(count(&other, Listing::Tag("x")).unwrap(), 1);
    write(dir.path(), "a.md", "+++\nvisibility=\"unlisted\"\n+++\na");
    publish(&mut conn, dir.path(), &urls()).unwrap();
    assert_eq!(count(&other, Listing::Public).unwrap(), 1);
    assert_eq!(count(&other, Listing::Outbox).unwrap(), 2);
    std::fs::remove_file(dir.path().join("content/posts/b.md")).unwrap();
    publish(&mut conn, dir.path(), &urls()).unwrap();
    assert_eq!(count(&other, Listing::Public).unwrap(), 0);
    assert_eq!(count(&other, Listing::Outbox).unwrap(), 1);

    // And it is memory, not a recount: with the trigger gone, a change the generation does
    // not record stays unseen until the generation moves.
    conn.execute_batch("DROP TRIGGER posts_generation_update")
        .unwrap();
    conn.execute(
        "UPDATE posts SET visibility = 'public' WHERE deleted_at IS NULL",
        [],
    )
    .unwrap();
    assert_eq!(count(&other, Listing::Public).unwrap(), 0, "remembered");
    conn.execute("UPDATE posts_generation SET n = n + 1", [])
        .unwrap();
    assert_eq!(count(&other, Listing::Public).unwrap(), 1);
}

#[test]
fn more_images_than_mastodon_shows_is_a_warning() {
    let dir = site();
    std::fs::create_dir_all(dir.path().join("media")).unwrap();
    let mut front = String::from("+++\n");
    for i in 0..5 {
        std::fs::write(
            dir.path().join(format!("media/{i}.png")),
            include_bytes!("../../static/avatar.png"),
        )
        .unwrap();
        front.push_str(&format!(
            "[[images]]\nsrc = \"media/{i}.png\"\nalt = \"image {i}\"\n"
        ));
    }
    write(dir.path(), "many.md", &format!("{front}+++\nMany pictures"));
    write(dir.path(), "few.md", "Few pictures");
    let mut conn = db::open_in_memory().unwrap();
    let report = publish(&mut conn, dir.path(), &urls()).unwrap();
    assert_eq!(report.created.len(), 2, "it still publishes");
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(
        report.warnings[0].contains("many.md: 5 images"),
        "{:?}",
        report.warnings
    );
}

#[test]
fn images_need_alt_text_and_exist() {
    let dir = site();
    std::fs::create_dir_all(dir.path().join("media")).unwrap();
    let text = "+++\n[[images]]\nsrc = \"media/missing.png\"\nalt = \"a cat\"\n+++\nhi";
    let err = parse_file(dir.path(), "content/posts/x.md", text, &urls()).unwrap_err();
    assert!(err[0].message.contains("does not exist"), "{err:?}");
    assert_eq!(err[0].line, 3);
}

#[test]
fn known_accounts_are_mentioned_by_actor_id() {
    let dir = site();
    let mut conn = db::open_in_memory().unwrap();
    write(
        dir.path(),
        "hi.md",
        "Hello @Bob@Example.org and @carol@elsewhere.net",
    );
    publish(&mut conn, dir.path(), &urls()).unwrap();
    conn.execute(
            "INSERT INTO remote_actors (id, host, inbox, handle, raw, fetched_at)
             VALUES ('https://example.org/users/bob', 'example.org', 'https://example.org/users/bob/inbox',
                     'bob@example.org', '{}', '2026-01-01T00:00:00Z')",
            [],
        )
        .unwrap();
    let post = by_slug(&conn, "hi").unwrap().unwrap();
    assert_eq!(
        post.mentions[0].actor.as_deref(),
        Some("https://example.org/users/bob")
    );
    assert_eq!(
        post.mentions[0].href, "https://example.org/@Bob",
        "the link stays a link"
    );
    assert_eq!(
        post.mentions[1].actor, None,
        "unknown accounts stay unresolved"
    );
    let listed = list(&conn, Listing::Outbox, 10, 0).unwrap();
    assert_eq!(
        listed[0].mentions[0].actor.as_deref(),
        Some("https://example.org/users/bob")
    );
    assert!(!post.mentions[0].group, "raw without a type is no group");

    // A community (its stored actor JSON says Group) is marked so the post is addressed to
    // it (FEP-1b12); garbage in `raw` is no group and no error.
    conn.execute(
            "INSERT INTO remote_actors (id, host, inbox, handle, raw, fetched_at)
             VALUES ('https://elsewhere.net/c/carol', 'elsewhere.net', 'https://elsewhere.net/inbox',
                     'carol@elsewhere.net', '{\"type\":\"Group\"}', '2026-01-01T00:00:00Z')",
            [],
        )
        .unwrap();
    conn.execute(
        "UPDATE remote_actors SET raw = 'not json' WHERE id = 'https://example.org/users/bob'",
        [],
    )
    .unwrap();
    let post = by_slug(&conn, "hi").unwrap().unwrap();
    assert!(post.mentions[1].group, "{:?}", post.mentions[1]);
    assert!(!post.mentions[0].group, "{:?}", post.mentions[0]);
}

#[test]
fn slugify_makes_url_safe_slugs() {
    assert_eq!(slugify("Hello, World! Ça va?"), "hello-world-a-va");
    assert_eq!(slugify("2026-11-22 note"), "2026-11-22-note");
}

#[test]
fn a_quote_must_be_an_absolute_http_url_named_at_its_line() {
    let dir = site();
    for bad in [
        "not a url",
        "ftp://example.org/1",
        "/posts/mine",
        "mailto:bob@example.org",
    ] {
        let text = format!("+++\ntitle = \"引用\"\nquote = \"{bad}\"\n+++\nصحيح 👍");
        let err = parse_file(dir.path(), "content/posts/q.md", &text, &urls()).unwrap_err();
        assert_eq!(err.len(), 1, "{err:?}");
        assert_eq!(err[0].line, 3, "{err:?}");
        assert!(err[0].message.contains(bad), "{err:?}");
        assert!(err[0].fix.contains("quote = \"https://"), "{err:?}");
    }
    let text = "+++\nquote = \"https://example.org/@bob/1\"\n+++\nصحيح 👍";
    let loaded = parse_file(dir.path(), "content/posts/q.md", text, &urls()).unwrap();
    let draft = loaded.expect("a draft");
    assert_eq!(draft.quote.as_deref(), Some("https://example.org/@bob/1"));
}

#[test]
fn who_may_quote_is_read_and_a_bad_value_is_named_at_its_line() {
    let dir = site();
    let text = "+++\ntitle = \"引用\"\nquotes = \"everyone\"\n+++\nصحيح 👍";
    let err = parse_file(dir.path(), "content/posts/q.md", text, &urls()).unwrap_err();
    assert_eq!(err.len(), 1, "{err:?}");
    assert_eq!(err[0].line, 3, "{err:?}");
    assert!(err[0].message.contains("everyone"), "{err:?}");
    assert!(
        err[0].fix.contains("anyone | followers | nobody"),
        "{err:?}"
    );
    let text = "+++\nquotes = \"followers\"\n+++\nصحيح 👍";
    let draft = parse_file(dir.path(), "content/posts/q.md", text, &urls())
        .unwrap()
        .expect("a draft");
    assert_eq!(draft.quotes, Some(crate::config::QuotePolicy::Followers));
}

/// The export keys listing pages by `list_ids`: the same posts in the same order as
/// `list_keys` (equal times included), for every listing.
#[test]
fn list_ids_are_list_keys_without_the_times() {
    let dir = site();
    let mut conn = db::open_in_memory().unwrap();
    for (n, (vis, tag, date)) in [
        ("public", "garten", "2026-01-02T00:00:00Z"),
        ("unlisted", "花", "2026-01-02T00:00:00Z"),
        ("public", "花", "2026-01-02T00:00:00Z"),
        ("followers", "garten", "2026-01-03T00:00:00Z"),
        ("public", "garten", "2026-01-01T00:00:00Z"),
        ("public", "книги", "2026-01-04T00:00:00Z"),
    ]
    .into_iter()
    .enumerate()
    {
        write(
            dir.path(),
            &format!("p{n}.md"),
            &format!(
                "+++\nvisibility = \"{vis}\"\ndate = {date}\ntags = [\"{tag}\"]\n+++\nNr. {n} — 番号 {n}"
            ),
        );
    }
    publish(&mut conn, dir.path(), &urls()).unwrap();
    for listing in [
        Listing::Public,
        Listing::Outbox,
        Listing::Tag("garten"),
        Listing::Tag("花"),
        Listing::Tag("КНИГИ"),
    ] {
        let keys: Vec<i64> = list_keys(&conn, listing, 0, u32::MAX)
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert!(!keys.is_empty());
        assert_eq!(list_ids(&conn, listing).unwrap(), keys);
    }
}
