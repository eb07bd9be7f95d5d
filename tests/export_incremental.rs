//! Incremental export (issue 15): an export into an earlier one's directory stops after reading
//! the manifest when nothing it depends on changed, renders again when anything did (a post, a
//! blocked server, a media file), and always leaves exactly the files a full export into an
//! empty directory writes.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use hortus::app::Site;
use hortus::export::{self, ExportOptions, ExportReport};

fn export_to(site: &TestSite, out: &Path) -> ExportReport {
    let opts = ExportOptions {
        out: out.to_path_buf(),
        // The same web root for both outputs: it is written into the nginx and Caddy files.
        root: Some(PathBuf::from("/srv/garden")),
        upstream: Some("127.0.0.1:9".into()),
        ..ExportOptions::default()
    };
    site.publish();
    export::export(&Site::open(&site.dir).unwrap(), &opts).expect("export")
}

/// Every file under `dir` but the manifest (which names the output directory), with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out.remove(".hortus/manifest.json");
    out
}

/// Exports into an empty `name` and compares; returns how many documents the full one rendered.
fn assert_same_as_full(site: &TestSite, incremental: &Path, name: &str) -> usize {
    let full = site.tmp.path().join(name);
    let report = export_to(site, &full);
    assert!(report.documents > 0);
    let (a, b) = (files(incremental), files(&full));
    let only: Vec<_> = a.keys().filter(|k| !b.contains_key(*k)).collect();
    let missing: Vec<_> = b.keys().filter(|k| !a.contains_key(*k)).collect();
    assert!(
        only.is_empty() && missing.is_empty(),
        "{only:?} / {missing:?}"
    );
    for (file, bytes) in &a {
        assert!(bytes == &b[file], "{file} differs from a full export");
    }
    report.documents
}

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
    // Only posts changed: the page and Note of the unchanged one were kept, not rendered.
    assert_eq!(changed.documents + 2, full, "{:?}", changed.written);
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
    assert_eq!(reply.documents, full);
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
}
