//! Exports of a test site compared file by file (issue 15's incremental export): shared by
//! `tests/export_incremental.rs` and `tests/export_upgrade.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hortus::app::Site;
use hortus::export::{self, ExportOptions, ExportReport};

use super::TestSite;

/// Publishes, then exports into `out` with the options both outputs of a comparison share.
pub fn export_to(site: &TestSite, out: &Path) -> ExportReport {
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
pub fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
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
    out.remove(".hortus/manifest.bin");
    out
}

/// Exports into an empty `name` and compares; returns how many documents the full one rendered.
pub fn assert_same_as_full(site: &TestSite, incremental: &Path, name: &str) -> usize {
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

/// The id and slug of the post published from `content/posts/NAME`.
pub fn post_id(db: &rusqlite::Connection, name: &str) -> (i64, String) {
    db.query_row(
        "SELECT id, slug FROM posts WHERE source_path LIKE '%' || ?1",
        [name],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}
