//! The output directory, written incrementally. A manifest (`.hortus/manifest.json`: path →
//! SHA-256 and length) remembers what the last export wrote, so the next one rewrites only the
//! files whose bytes changed and removes the files it no longer produces. Files the export
//! never wrote (a `CNAME`, a host's own config) are left alone.
//!
//! Every write goes to a temporary file renamed into place, so a web server reading the
//! directory during an export never sees half a file.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::deps::Kept;
use super::fingerprint::Fingerprint;

use crate::posts::hex_sha256;

pub const STATE_DIR: &str = ".hortus";
pub const MANIFEST: &str = ".hortus/manifest.json";
const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub sha256: String,
    pub len: u64,
}

#[derive(Serialize, Deserialize)]
struct Manifest {
    version: u32,
    base_url: String,
    files: BTreeMap<String, Entry>,
    /// What the files were rendered from (`fingerprint`); absent in older manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<Source>,
}

/// What an export was rendered from: the site's fingerprint and each document's key (`deps`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Source {
    pub site: Fingerprint,
    #[serde(default)]
    pub deps: BTreeMap<String, Kept>,
}

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error(
        "{0} is not empty and holds no earlier export (no {MANIFEST})\n  fix: export into an empty or new directory, or pass --force to write into this one"
    )]
    NotAnExport(PathBuf),
    #[error("{path}: {reason}")]
    Io {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error(
        "{path}: the manifest is unreadable ({reason})\n  fix: delete it to export everything again"
    )]
    Manifest { path: PathBuf, reason: String },
    #[error("refusing to write outside the output directory: {0}")]
    Unsafe(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TreeError + '_ {
    move |reason| TreeError::Io {
        path: path.to_path_buf(),
        reason,
    }
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Written,
    Unchanged,
}

pub struct Tree {
    root: PathBuf,
    base_url: String,
    old: HashMap<String, Entry>,
    old_source: Option<Source>,
    /// The directory was empty: no web server serves it yet, so files are written in place
    /// rather than renamed into it (half the directory operations of a full export).
    fresh: bool,
}

impl Tree {
    /// Opens (creating) the output directory. One that is not empty must hold an earlier
    /// export, unless `force`.
    pub fn open(root: &Path, base_url: &str, force: bool) -> Result<Tree, TreeError> {
        std::fs::create_dir_all(root).map_err(io(root))?;
        let manifest = root.join(MANIFEST);
        let mut old_source = None;
        let mut fresh = false;
        let old = match std::fs::read(&manifest) {
            Ok(bytes) => {
                let m: Manifest =
                    serde_json::from_slice(&bytes).map_err(|e| TreeError::Manifest {
                        path: manifest.clone(),
                        reason: e.to_string(),
                    })?;
                if m.version == MANIFEST_VERSION && m.base_url == base_url {
                    old_source = m.source;
                }
                if m.version != MANIFEST_VERSION || m.base_url != base_url {
                    // Another layout or another site: every byte differs anyway, but the old
                    // paths are still ours to remove.
                    m.files
                        .into_keys()
                        .map(|k| {
                            (
                                k,
                                Entry {
                                    sha256: String::new(),
                                    len: 0,
                                },
                            )
                        })
                        .collect()
                } else {
                    m.files.into_iter().collect()
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let empty = std::fs::read_dir(root).map_err(io(root))?.next().is_none();
                if !empty && !force {
                    return Err(TreeError::NotAnExport(root.to_path_buf()));
                }
                fresh = empty;
                HashMap::new()
            }
            Err(e) => return Err(io(&manifest)(e)),
        };
        Ok(Tree {
            root: root.to_path_buf(),
            base_url: base_url.to_string(),
            old,
            old_source,
            fresh,
        })
    }

    /// The files of the last export, if it was rendered from `source` and every one of them is
    /// still on disk with its size: then they are this export's too.
    pub fn unchanged_since(&self, site: &Fingerprint) -> Option<BTreeMap<String, Entry>> {
        if self.old_source.as_ref().map(|s| &s.site) != Some(site) || self.old.is_empty() {
            return None;
        }
        let present = self.old.keys().all(|rel| self.kept(rel).is_some());
        present.then(|| self.old.clone().into_iter().collect())
    }

    /// What the last export was rendered from, if its manifest says.
    pub fn old_source(&self) -> Option<&Source> {
        self.old_source.as_ref()
    }

    /// The last export's entry for `rel`, if the file is still on disk at its size.
    pub fn kept(&self, rel: &str) -> Option<Entry> {
        let entry = self.old.get(rel)?;
        let path = self.target(rel).ok()?;
        std::fs::metadata(path)
            .is_ok_and(|m| m.is_file() && m.len() == entry.len)
            .then(|| entry.clone())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn target(&self, rel: &str) -> Result<PathBuf, TreeError> {
        let safe = !rel.is_empty()
            && !rel.starts_with('/')
            && rel
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != "..")
            && !rel.contains('\\');
        if !safe {
            return Err(TreeError::Unsafe(rel.to_string()));
        }
        Ok(self.root.join(rel))
    }

    /// Is the file on disk still the one the manifest describes?
    fn is_current(&self, rel: &str, path: &Path, entry: &Entry) -> bool {
        self.old.get(rel) == Some(entry)
            && std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == entry.len)
    }

    /// Writes `bytes` to `rel` unless the file already holds them.
    pub fn put(&self, rel: &str, bytes: &[u8]) -> Result<(Entry, Outcome), TreeError> {
        let path = self.target(rel)?;
        let entry = Entry {
            sha256: hex_sha256(bytes),
            len: bytes.len() as u64,
        };
        if self.is_current(rel, &path, &entry) {
            return Ok((entry, Outcome::Unchanged));
        }
        if self.fresh {
            write_in_place(&path, bytes)?;
        } else {
            write_atomically(&path, bytes)?;
        }
        Ok((entry, Outcome::Written))
    }

    /// Copies `source` to `rel` unless the file already holds the same bytes.
    pub fn put_file(&self, rel: &str, source: &Path) -> Result<(Entry, Outcome), TreeError> {
        let bytes = std::fs::read(source).map_err(io(source))?;
        self.put(rel, &bytes)
    }

    /// Removes what the last export wrote and this one did not, prunes emptied directories, and
    /// records the new manifest. Returns the removed paths, sorted.
    pub fn finish(
        self,
        files: BTreeMap<String, Entry>,
        source: Option<Source>,
    ) -> Result<Vec<String>, TreeError> {
        let mut removed: Vec<String> = self
            .old
            .keys()
            .filter(|k| !files.contains_key(*k))
            .cloned()
            .collect();
        removed.sort();
        for rel in &removed {
            let path = self.target(rel)?;
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path)(e)),
            }
            // Prune directories the removal emptied, up to the root.
            let mut dir = path.parent();
            while let Some(d) = dir {
                if d == self.root || std::fs::remove_dir(d).is_err() {
                    break;
                }
                dir = d.parent();
            }
        }
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            base_url: self.base_url.clone(),
            files,
            source,
        };
        let bytes = serde_json::to_vec(&manifest).map_err(|e| TreeError::Manifest {
            path: self.root.join(MANIFEST),
            reason: e.to_string(),
        })?;
        write_atomically(&self.root.join(MANIFEST), &bytes)?;
        Ok(removed)
    }
}

fn write_in_place(path: &Path, bytes: &[u8]) -> Result<(), TreeError> {
    let write = || std::fs::write(path, bytes);
    match write() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = path.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir).map_err(io(dir))?;
            write().map_err(io(path))
        }
        other => other.map_err(io(path)),
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TreeError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.hortus-tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finish_with(tree: Tree, written: &[(&str, &[u8])]) -> Vec<String> {
        let files = written
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    Entry {
                        sha256: hex_sha256(v),
                        len: v.len() as u64,
                    },
                )
            })
            .collect();
        tree.finish(files, None).unwrap()
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
}
