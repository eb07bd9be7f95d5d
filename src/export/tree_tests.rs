//! Tests of `export::tree`: the manifest, keys, deleted files, interrupted exports.

use super::*;

fn finish_with(tree: Tree, written: &[(&str, &[u8])]) -> Vec<String> {
    let files = written
        .iter()
        .map(|(k, v)| (k.to_string(), Entry::of(v)))
        .collect();
    tree.finish(files, None, &HashMap::new()).unwrap()
}

#[test]
fn rewrites_only_changes_and_removes_what_is_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let tree = Tree::open(&out, "https://a.example", false).unwrap();
    assert_eq!(tree.put("a/b.html", b"one").unwrap().1, Outcome::Written);
    assert_eq!(tree.put("c.json", b"two").unwrap().1, Outcome::Written);
    assert!(finish_with(tree, &[("a/b.html", b"one"), ("c.json", b"two")]).is_empty());

    let tree = Tree::open(&out, "https://a.example", false).unwrap();
    assert_eq!(tree.put("c.json", b"two").unwrap().1, Outcome::Unchanged);
    assert_eq!(tree.put("c.json", b"TWO").unwrap().1, Outcome::Written);
    let removed = finish_with(tree, &[("c.json", b"TWO")]);
    assert_eq!(removed, vec!["a/b.html"]);
    assert!(!out.join("a").exists(), "emptied directory pruned");
    assert_eq!(std::fs::read(out.join("c.json")).unwrap(), b"TWO");

    // A file changed or deleted behind the exporter's back is written again.
    std::fs::write(out.join("c.json"), b"tampered!").unwrap();
    let tree = Tree::open(&out, "https://a.example", false).unwrap();
    assert_eq!(tree.put("c.json", b"TWO").unwrap().1, Outcome::Written);
}

#[test]
fn keeps_keys_and_notices_deleted_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let tree = Tree::open(&out, "https://a.example", false).unwrap();
    tree.put("posts/木.html", "木の投稿".as_bytes()).unwrap();
    tree.put("posts/b.json", b"{}").unwrap();
    let key = [7u8; 16];
    let docs = HashMap::from([("posts/木.html", (key, Some("text/x-test")))]);
    let files = [
        ("posts/木.html", "木の投稿".as_bytes()),
        ("posts/b.json", b"{}"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), Entry::of(v)))
    .collect();
    tree.finish(files, None, &docs).unwrap();

    let tree = Tree::open(&out, "https://a.example", false).unwrap();
    let old = tree.kept("posts/木.html").unwrap();
    assert_eq!(old.key, Some(key));
    assert_eq!(old.content_type.as_deref(), Some("text/x-test"));
    assert_eq!(old.entry, Entry::of("木の投稿".as_bytes()));
    assert_eq!(tree.kept("posts/b.json").unwrap().key, None);

    // Deleted by hand (or replaced by a directory): not kept, so written again.
    std::fs::remove_file(out.join("posts/b.json")).unwrap();
    std::fs::create_dir(out.join("posts/b.json")).unwrap();
    std::fs::remove_file(out.join("posts/木.html")).unwrap();
    let tree = Tree::open(&out, "https://a.example", false).unwrap();
    assert!(tree.kept("posts/木.html").is_none());
    assert!(tree.kept("posts/b.json").is_none());
}

#[test]
fn an_earlier_layout_is_still_an_export_whose_files_are_ours() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join(".hortus")).unwrap();
    std::fs::write(tmp.path().join("old.html"), b"old").unwrap();
    // Version 1: files as an object of {sha256, len}.
    let v1 = r#"{"version":1,"base_url":"https://a.example","files":{"old.html":{"sha256":"ab","len":3}}}"#;
    std::fs::write(tmp.path().join(JSON_MANIFEST), v1).unwrap();
    let tree = Tree::open(tmp.path(), "https://a.example", false).unwrap();
    assert!(tree.kept("old.html").is_some_and(|o| o.key.is_none()));
    assert_eq!(tree.put("old.html", b"old").unwrap().1, Outcome::Written);
    assert_eq!(finish_with(tree, &[]), vec!["old.html"]);
    assert!(!tmp.path().join("old.html").exists());
}

/// An export killed halfway: a file it created that the next export does not produce is
/// removed, and a file it rewrote (the manifest still describing the old bytes) is not
/// trusted; without the marker's run, a first export's directory is still ours.
#[test]
fn an_interrupted_export_is_repaired_by_the_next() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let tree = Tree::open(&out, "https://a.example", false).unwrap();
    tree.begin(["posts/a.html", "tags/عربي.html"].into_iter())
        .unwrap();
    tree.put("posts/a.html", b"a").unwrap();
    tree.put("tags/عربي.html", "وسم".as_bytes()).unwrap();
    assert!(out.join(RUNNING).exists());
    finish_with(
        tree,
        &[("posts/a.html", b"a"), ("tags/عربي.html", "وسم".as_bytes())],
    );
    assert!(
        !out.join(RUNNING).exists(),
        "a finished export leaves no marker"
    );

    // The next export starts: a new post's page, and the tag page rewritten, then it dies.
    let tree = Tree::open(&out, "https://a.example", false).unwrap();
    assert!(tree.kept("posts/a.html").is_some());
    tree.begin(["posts/a.html", "posts/新.html", "tags/عربي.html"].into_iter())
        .unwrap();
    tree.put("posts/新.html", "新しい".as_bytes()).unwrap();
    tree.put("tags/عربي.html", "وسم جديد".as_bytes()).unwrap();
    drop(tree);

    // The one after: the new post was removed meanwhile. Nothing is kept on trust, the
    // orphan page goes, the tag page is written back.
    let tree = Tree::open(&out, "https://a.example", false).unwrap();
    assert!(tree.kept("posts/a.html").is_some_and(|o| o.key.is_none()));
    assert_eq!(
        tree.put("tags/عربي.html", "وسم".as_bytes()).unwrap().1,
        Outcome::Written
    );
    let removed = finish_with(
        tree,
        &[("posts/a.html", b"a"), ("tags/عربي.html", "وسم".as_bytes())],
    );
    assert_eq!(removed, vec!["posts/新.html"]);
    assert_eq!(
        std::fs::read(out.join("tags/عربي.html")).unwrap(),
        "وسم".as_bytes()
    );

    // A first export killed before its manifest: the directory is not refused.
    let first = tmp.path().join("first");
    let tree = Tree::open(&first, "https://a.example", false).unwrap();
    tree.begin(["x.html"].into_iter()).unwrap();
    tree.put("x.html", b"x").unwrap();
    drop(tree);
    let tree = Tree::open(&first, "https://a.example", false).unwrap();
    assert_eq!(finish_with(tree, &[]), vec!["x.html"]);
}

/// The JSON manifest of version 2 (rows) is still read for its paths.
#[test]
fn a_json_row_layout_is_still_an_export_whose_files_are_ours() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join(".hortus")).unwrap();
    std::fs::write(tmp.path().join("p.html"), b"p").unwrap();
    let v2 = r#"{"version":2,"base_url":"https://a.example","site":{"files":"ab","page_generation":1,"posts_generation":1},"files":[["p.html",1,"00",null,null]]}"#;
    std::fs::write(tmp.path().join(JSON_MANIFEST), v2).unwrap();
    let tree = Tree::open(tmp.path(), "https://a.example", false).unwrap();
    assert_eq!(finish_with(tree, &[]), vec!["p.html"]);
}

/// An earlier Hortus exported into the directory after this one (it writes JSON and does not
/// know the binary manifest): nothing either says is trusted, and every path of both is ours.
#[test]
fn a_json_manifest_beside_ours_is_trusted_for_paths_only() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    let tree = Tree::open(out, "https://a.example", false).unwrap();
    tree.put("posts/ours.html", "ours 🌱".as_bytes()).unwrap();
    let key = [3u8; 16];
    let docs = HashMap::from([("posts/ours.html", (key, None))]);
    let files = [(
        "posts/ours.html".to_string(),
        Entry::of("ours 🌱".as_bytes()),
    )]
    .into();
    tree.finish(files, None, &docs).unwrap();
    assert!(out.join(MANIFEST).exists());

    std::fs::write(out.join("theirs.html"), b"x").unwrap();
    let v2 = r#"{"version":2,"base_url":"https://a.example","site":null,"files":[["theirs.html",1,"00",null,null]]}"#;
    std::fs::write(out.join(JSON_MANIFEST), v2).unwrap();
    let tree = Tree::open(out, "https://a.example", false).unwrap();
    assert!(
        tree.kept("posts/ours.html")
            .is_some_and(|o| o.key.is_none())
    );
    assert_eq!(
        finish_with(tree, &[("posts/ours.html", "ours 🌱".as_bytes())]),
        vec!["theirs.html"]
    );
    assert!(!out.join(JSON_MANIFEST).exists(), "ours replaces it");
    let tree = Tree::open(out, "https://a.example", false).unwrap();
    assert!(tree.kept("posts/ours.html").is_some());
}

/// A truncated manifest is not a refusal: the paths of its complete rows stay ours (removed if
/// this export does not produce them), nothing in it is trusted, and the owner is told.
#[test]
fn a_damaged_manifest_keeps_its_paths_and_trusts_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    let tree = Tree::open(out, "https://a.example", false).unwrap();
    let written: [(&str, &[u8]); 3] = [
        ("a.html", b"a"),
        ("posts/孤児.html", "孤児".as_bytes()),
        ("z.html", b"z"),
    ];
    for (p, b) in written {
        tree.put(p, b).unwrap();
    }
    finish_with(tree, &written);
    std::fs::write(out.join("CNAME"), b"blog.example").unwrap();
    let bytes = std::fs::read(out.join(MANIFEST)).unwrap();
    // Cut inside the last row ("z.html"): the first two are whole.
    std::fs::write(out.join(MANIFEST), &bytes[..bytes.len() - 3]).unwrap();
    let tree = Tree::open(out, "https://a.example", false).unwrap();
    let warning = tree.warnings().join("\n");
    assert!(
        warning.contains("manifest.bin") && warning.contains("damaged"),
        "{warning}"
    );
    assert_eq!(
        tree.kept("a.html"),
        Some(&Old {
            present: true,
            ..Old::unknown()
        })
    );
    assert_eq!(tree.put("a.html", b"a").unwrap().1, Outcome::Written);
    let removed = finish_with(tree, &[("a.html", b"a")]);
    assert_eq!(removed, vec!["posts/孤児.html"]);
    assert!(!out.join("posts").exists());
    assert!(out.join("CNAME").exists(), "never ours: kept");
    let tree = Tree::open(out, "https://a.example", false).unwrap();
    assert!(tree.warnings().is_empty());
    assert!(
        tree.kept("a.html")
            .is_some_and(|o| o.entry == Entry::of(b"a"))
    );
}

/// Rows naming paths outside the output (`..`, absolute) are dropped when the manifest is
/// read, with a warning: the files they name are never removed.
#[test]
fn a_manifest_naming_paths_outside_is_never_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let victim = tmp.path().join("victim");
    std::fs::write(&victim, "まだここ".as_bytes()).unwrap();
    let outside = tempfile::tempdir().unwrap();
    let abs = outside.path().join("abs 🌱");
    std::fs::write(&abs, b"keep").unwrap();
    let abs_text = abs.to_str().unwrap().to_string();
    let entry = Entry::of(b"x");
    let rows = ["../victim", abs_text.as_str(), "ok.html"].map(|path| manifest::Row {
        path,
        entry,
        key: None,
        content_type: None,
    });
    std::fs::create_dir_all(out.join(STATE_DIR)).unwrap();
    std::fs::write(out.join("ok.html"), b"x").unwrap();
    let bytes = manifest::encode("https://a.example", None, rows.into_iter()).unwrap();
    std::fs::write(out.join(MANIFEST), bytes).unwrap();
    let tree = Tree::open(&out, "https://a.example", false).unwrap();
    let warning = tree.warnings().join("\n");
    assert!(
        warning.contains("manifest.bin") && warning.contains("../victim"),
        "{warning}"
    );
    assert_eq!(tree.warnings().len(), 2);
    assert_eq!(finish_with(tree, &[]), vec!["ok.html"]);
    assert_eq!(std::fs::read(&victim).unwrap(), "まだここ".as_bytes());
    assert_eq!(std::fs::read(&abs).unwrap(), b"keep");
}

#[test]
fn refuses_a_foreign_directory_and_unsafe_paths() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("precious.txt"), b"x").unwrap();
    assert!(matches!(
        Tree::open(tmp.path(), "https://a.example", false),
        Err(TreeError::NotAnExport(_))
    ));
    let tree = Tree::open(tmp.path(), "https://a.example", true).unwrap();
    for bad in ["../x", "/etc/x", "a/../../x", "a//b", ""] {
        assert!(
            matches!(tree.put(bad, b"x"), Err(TreeError::Unsafe(_))),
            "{bad}"
        );
    }
    finish_with(tree, &[]);
    assert!(tmp.path().join("precious.txt").exists(), "not ours: kept");
}
