//! The output directory, written incrementally. A manifest (`.hortus/manifest.bin`) remembers
//! what the last export wrote — each file's length, a hash of its bytes, and the key of what it
//! was rendered from (`deps`) — so the next one rewrites only the files whose bytes changed,
//! keeps the documents whose key did not move, and removes the files it no longer produces.
//! Files the export never wrote (a `CNAME`, a host's own config) are left alone.
//!
//! The manifest (`manifest`) is binary: a 10,000-post site has 21,000 rows, read and written on
//! every export, and the JSON rows before it (2.8 MB) were a third of a one-edit export's fixed
//! cost (issue 15). A JSON manifest of an earlier version still marks the directory as an export:
//! its paths are ours to remove, and nothing else in it is trusted.
//!
//! An incremental write goes to a temporary file renamed into place, so a web server reading
//! the directory during an export never sees half a file.
//!
//! An export that is interrupted (killed, a full disk) has written some files the manifest does
//! not describe. So before its first write it leaves `.hortus/export-running`, naming the files it
//! is about to create that the manifest does not list, and removes it after the manifest. The
//! next export that finds it trusts nothing of the old manifest (every file is rendered and
//! compared again) and removes the named files it does not produce.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::fingerprint::Fingerprint;
use super::manifest;
/// What the manifest keeps of each file (defined beside its bytes).
pub use super::manifest::{Entry, Key, Old};

pub const STATE_DIR: &str = ".hortus";
pub const MANIFEST: &str = ".hortus/manifest.bin";
/// Where earlier versions kept their (JSON) manifest.
pub const JSON_MANIFEST: &str = ".hortus/manifest.json";
/// Left by an export while it writes (see the module's comment).
const RUNNING: &str = ".hortus/export-running";

/// A JSON manifest, of any earlier version: only the paths matter (they are still ours to
/// remove).
#[derive(Deserialize)]
struct JsonManifest {
    files: AnyFiles,
}

/// The files of a JSON manifest: an object keyed by path (version 1) or rows that start with the
/// path (version 2).
#[derive(Deserialize)]
#[serde(untagged)]
enum AnyFiles {
    Keyed(BTreeMap<String, IgnoredAny>),
    Rows(Vec<Vec<serde_json::Value>>),
}

impl AnyFiles {
    fn paths(self) -> Vec<String> {
        match self {
            AnyFiles::Keyed(map) => map.into_keys().collect(),
            AnyFiles::Rows(rows) => rows
                .into_iter()
                .filter_map(|row| row.first().and_then(|p| p.as_str()).map(str::to_string))
                .collect(),
        }
    }
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
    old: HashMap<String, Old>,
    /// What the last export was rendered from, when its manifest is this layout and this site's.
    old_site: Option<Fingerprint>,
    /// The directory was empty: no web server serves it yet, so files are written in place
    /// rather than renamed into it (half the directory operations of a full export).
    fresh: bool,
    /// For the owner: what was wrong with the manifest and what was done about it.
    warnings: Vec<String>,
}

impl Tree {
    /// Opens (creating) the output directory. One that is not empty must hold an earlier
    /// export, unless `force`.
    pub fn open(root: &Path, base_url: &str, force: bool) -> Result<Tree, TreeError> {
        std::fs::create_dir_all(root).map_err(io(root))?;
        let manifest = root.join(MANIFEST);
        let mut warnings = Vec::new();
        let mut old_site = None;
        let mut fresh = false;
        // An export that did not finish: what it names is ours to remove, and nothing the
        // manifest says about the files can be trusted.
        let interrupted: Option<Vec<String>> = match std::fs::read(root.join(RUNNING)) {
            Ok(bytes) => {
                let paths: Vec<String> = serde_json::from_slice(&bytes).unwrap_or_default();
                Some(safe_paths(paths, &root.join(RUNNING), &mut warnings))
            }
            Err(_) => None,
        };
        let mut is_export = true;
        let mut old: HashMap<String, Old> = match std::fs::read(&manifest) {
            Ok(bytes) => {
                let m = manifest::decode(&bytes);
                for row in &m.dropped {
                    warnings.push(format!(
                        "{}: {row}: dropped, nothing is removed by it",
                        manifest.display()
                    ));
                }
                if let Some(damage) = &m.damage {
                    // Not a refusal: the directory is still ours, and the next export after a
                    // refusal would have orphaned every file the manifest named.
                    warnings.push(format!(
                        "{}: damaged ({damage}); the paths of its {} complete rows are kept as \
                         ours and everything is exported again",
                        manifest.display(),
                        m.files.len()
                    ));
                }
                let trusted =
                    m.damage.is_none() && m.version == manifest::VERSION && m.base_url == base_url;
                if trusted {
                    old_site = m.site;
                }
                let mut old = HashMap::with_capacity(m.files.len());
                for (path, o) in m.files {
                    // Another site or version: every byte differs anyway, but the old paths
                    // are still ours to remove.
                    old.insert(path, if trusted { o } else { Old::unknown() });
                }
                old
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                is_export = false;
                HashMap::new()
            }
            Err(e) => return Err(io(&manifest)(e)),
        };
        // A JSON manifest is an earlier version's, or newer than ours (an earlier Hortus
        // exported here since: it does not know the binary one, which we remove when we write
        // ours). Its paths are ours; nothing the binary one says can be trusted.
        let json = root.join(JSON_MANIFEST);
        match std::fs::read(&json) {
            Ok(bytes) => {
                // Damaged, it still marks the directory as ours (as a damaged binary one).
                let paths = match serde_json::from_slice::<JsonManifest>(&bytes) {
                    Ok(m) => m.files.paths(),
                    Err(e) => {
                        warnings.push(format!(
                            "{}: damaged ({e}); everything is exported again",
                            json.display()
                        ));
                        Vec::new()
                    }
                };
                let paths = safe_paths(paths, &json, &mut warnings);
                for o in old.values_mut() {
                    *o = Old::unknown();
                }
                old_site = None;
                for path in paths {
                    old.entry(path).or_insert_with(Old::unknown);
                }
                is_export = true;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&json)(e)),
        }
        // Not an export yet: empty (ours), or refused without `force`. (A first export that was
        // interrupted left its marker: the directory is ours.)
        if !is_export && interrupted.is_none() {
            let empty = std::fs::read_dir(root).map_err(io(root))?.next().is_none();
            if !empty && !force {
                return Err(TreeError::NotAnExport(root.to_path_buf()));
            }
            fresh = empty;
        }
        if let Some(paths) = interrupted {
            for o in old.values_mut() {
                *o = Old::unknown();
            }
            for path in paths {
                old.entry(path).or_insert_with(Old::unknown);
            }
            old_site = None;
        }
        mark_present(root, &mut old);
        Ok(Tree {
            root: root.to_path_buf(),
            base_url: base_url.to_string(),
            old,
            old_site,
            fresh,
            warnings,
        })
    }

    /// What the owner should know about the manifest read (damage, dropped rows).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The files of the last export, if it was rendered from `site` and every one of them is
    /// still on disk: then they are this export's too.
    pub fn unchanged_since(&self, site: &Fingerprint) -> Option<BTreeMap<String, Entry>> {
        if self.old_site.as_ref() != Some(site) || self.old.is_empty() {
            return None;
        }
        let all_there = self.old.values().all(|o| o.present);
        all_there.then(|| self.old.iter().map(|(k, o)| (k.clone(), o.entry)).collect())
    }

    /// Says, before the first write, which files this export may create: the marker an
    /// interrupted export leaves (module comment). Only the paths the manifest does not list
    /// are named (none when one post was edited), so it costs nothing on a small change.
    pub fn begin<'p>(&self, planned: impl Iterator<Item = &'p str>) -> Result<(), TreeError> {
        let new: Vec<&str> = planned.filter(|p| !self.old.contains_key(*p)).collect();
        let path = self.root.join(RUNNING);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let bytes = serde_json::to_vec(&new).map_err(|e| TreeError::Manifest {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        write_durably(&path, &bytes)
    }

    /// What the last export wrote at `rel`, if that file is still there.
    pub fn kept(&self, rel: &str) -> Option<&Old> {
        self.old.get(rel).filter(|o| o.present)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn target(&self, rel: &str) -> Result<PathBuf, TreeError> {
        if !manifest::is_safe_path(rel) {
            return Err(TreeError::Unsafe(rel.to_string()));
        }
        Ok(self.root.join(rel))
    }

    /// Is the file on disk still the one the manifest describes?
    fn is_current(&self, rel: &str, path: &Path, entry: &Entry) -> bool {
        self.old.get(rel).is_some_and(|o| &o.entry == entry)
            && std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == entry.len)
    }

    /// Writes `bytes` to `rel` unless the file already holds them.
    pub fn put(&self, rel: &str, bytes: &[u8]) -> Result<(Entry, Outcome), TreeError> {
        let path = self.target(rel)?;
        let entry = Entry::of(bytes);
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
    /// records the new manifest: every file with its entry, and for documents the key and
    /// content type they were rendered with. Returns the removed paths, sorted.
    pub fn finish(
        self,
        files: Vec<(String, Entry)>,
        site: Option<Fingerprint>,
        documents: &HashMap<&str, (Key, Option<&str>)>,
    ) -> Result<Vec<String>, TreeError> {
        // Usually every old file is still produced: counted by hash lookups, that needs no pass
        // over the old paths (issue 15). A path given twice (none is) counts once.
        let produced: HashSet<&str> = files.iter().map(|(f, _)| f.as_str()).collect();
        let kept = produced
            .iter()
            .filter(|f| self.old.contains_key(**f))
            .count();
        let mut removed: Vec<String> = if kept == self.old.len() {
            Vec::new()
        } else {
            self.old
                .keys()
                .filter(|k| !produced.contains(k.as_str()))
                .cloned()
                .collect()
        };
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
        let rows = files.iter().map(|(path, entry)| {
            let doc = documents.get(path.as_str());
            manifest::Row {
                path,
                entry: *entry,
                key: doc.map(|(k, _)| k),
                content_type: doc.and_then(|(_, t)| *t),
            }
        });
        let path = self.root.join(MANIFEST);
        let bytes = manifest::encode(&self.base_url, site.as_ref(), rows).map_err(|reason| {
            TreeError::Manifest {
                path: path.clone(),
                reason,
            }
        })?;
        write_durably(&path, &bytes)?;
        // Ours is the manifest now (see `open`).
        let json = self.root.join(JSON_MANIFEST);
        match std::fs::remove_file(&json) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&json)(e)),
        }
        let running = self.root.join(RUNNING);
        match std::fs::remove_file(&running) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&running)(e)),
        }
        Ok(removed)
    }
}

/// The paths of `paths` (read from `file`) inside the output directory; each other one is
/// dropped with a warning, so nothing outside is ever removed on a file's word.
fn safe_paths(paths: Vec<String>, file: &Path, warnings: &mut Vec<String>) -> Vec<String> {
    let (safe, bad): (Vec<String>, Vec<String>) =
        paths.into_iter().partition(|p| manifest::is_safe_path(p));
    for p in bad {
        warnings.push(format!(
            "{}: {p:?} is not a path inside the output: dropped, nothing is removed by it",
            file.display()
        ));
    }
    safe
}

/// Marks which of `old`'s paths are files on disk: one listing per directory instead of a `stat`
/// per file (a 10,000-post site keeps 20,000 files in `posts/`), each name looked up once in
/// `old` (issue 15: a set of names per directory, then one of paths, was most of opening the
/// tree). A file the owner deleted from the output is therefore written again by the next
/// export; one edited in place is not noticed (its entry is trusted), as with any static-site
/// generator's cache.
fn mark_present(root: &Path, old: &mut HashMap<String, Old>) {
    let dirs: HashSet<String> = old
        .keys()
        .map(|p| p.rsplit_once('/').map_or("", |(d, _)| d).to_string())
        .collect();
    let mut path = String::new();
    for dir in dirs {
        let Ok(listing) = std::fs::read_dir(root.join(&dir)) else {
            continue;
        };
        for entry in listing.flatten() {
            // The type comes with the listing on every common file system (no extra call).
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            path.clear();
            if !dir.is_empty() {
                path.push_str(&dir);
                path.push('/');
            }
            path.push_str(name);
            if let Some(o) = old.get_mut(path.as_str()) {
                o.present = true;
            }
        }
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
    write_atomically_with(path, bytes, false)
}

fn write_atomically_with(path: &Path, bytes: &[u8], durable: bool) -> Result<(), TreeError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.hortus-tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    if durable {
        f.sync_all().map_err(io(&tmp))?;
    }
    drop(f);
    std::fs::rename(&tmp, path).map_err(io(path))?;
    if durable {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    Ok(())
}

/// As [`write_atomically`], for the manifest and the marker: their bytes reach the disk before
/// the rename, and the rename before anything that relies on it (a crash could otherwise leave
/// an empty manifest or marker in place of the last good one).
fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), TreeError> {
    write_atomically_with(path, bytes, true)
}

#[cfg(test)]
#[path = "tree_tests.rs"]
mod tests;
