//! `hortus restore FILE DIR`: unpacks a backup made by `hortus backup` into a new site
//! directory, and only there.
//!
//! The archive is read as untrusted: every entry must be a plain file or folder at one of the
//! places a site has (`hortus.toml`, `hortus.db`, `hortus-backup.json`, `content/…`,
//! `media/…`), with no absolute path and no `..`; links of any kind are refused (backups never
//! hold one, since `hortus backup` archives what a link points to). It is unpacked into a
//! temporary folder beside DIR, checked (the database's integrity, its row counts against the
//! manifest, hortus.toml), and only then renamed to DIR: a failed restore leaves nothing.

use std::collections::BTreeMap;
use std::io::{BufReader, Read};
use std::path::{Component, Path, PathBuf};

use flate2::read::GzDecoder;
use rusqlite::{Connection, OpenFlags};

use crate::config::{CONFIG_FILE, DB_FILE};
use crate::db::snapshot;
use crate::db::snapshot::count_rows;
use crate::ops::backup::{FOLDERS, FORMAT, MANIFEST, Manifest};

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(
        "{0} already holds a Hortus site: refusing to overwrite it\n  fix: restore into a new directory (e.g. {0}-restored), or move {0} away first"
    )]
    SiteExists(PathBuf),
    #[error(
        "{0} is not empty: a restore only writes into a new or empty directory\n  fix: restore into a new directory, or empty {0} first"
    )]
    NotEmpty(PathBuf),
    #[error(
        "{archive}: not a Hortus backup: {reason}\n  fix: pass a file written by `hortus backup`"
    )]
    NotABackup { archive: PathBuf, reason: String },
    #[error(
        "{archive}: refusing entry {entry:?}: {reason}; nothing was restored\n  fix: restore only archives written by `hortus backup`"
    )]
    BadEntry {
        archive: PathBuf,
        entry: String,
        reason: &'static str,
    },
    #[error("{archive}: the backup does not match its manifest: {reason}; nothing was restored")]
    Mismatch { archive: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RestoreError + '_ {
    move |source| RestoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What `restore` put back.
#[derive(Debug)]
pub struct RestoreReport {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub files: usize,
}

impl RestoreReport {
    pub fn summary(&self) -> String {
        let rows = |t: &str| self.manifest.rows.get(t).copied().unwrap_or(0);
        format!(
            "restored the backup of {} into {}: {} posts, {} followers, {} keys, {} deliveries, {} files from content/ and media/\n  next: hortus --dir {} serve\n",
            self.manifest.created_at,
            self.dir.display(),
            rows("posts"),
            rows("followers"),
            rows("keys"),
            rows("deliveries"),
            self.files,
            self.dir.display(),
        )
    }
}

/// Where an archive entry may go inside the site, or why it may not.
fn entry_path(raw: &Path, is_dir: bool) -> Result<PathBuf, &'static str> {
    let mut rel = PathBuf::new();
    for part in raw.components() {
        match part {
            Component::Normal(p) => rel.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err("it climbs out with `..`"),
            Component::RootDir | Component::Prefix(_) => return Err("it is an absolute path"),
        }
    }
    let mut parts = rel.components();
    let Some(Component::Normal(first)) = parts.next() else {
        return Err("it has no name");
    };
    let first = first.to_str().unwrap_or_default();
    let nested = parts.next().is_some();
    let allowed = if FOLDERS.contains(&first) {
        nested || is_dir
    } else {
        !is_dir && !nested && [MANIFEST, CONFIG_FILE, DB_FILE].contains(&first)
    };
    if allowed {
        Ok(rel)
    } else {
        Err("a site holds no such file")
    }
}

/// Restores the backup `archive` into `dir`, which must not exist or be empty.
pub fn restore(archive: &Path, dir: &Path) -> Result<RestoreReport, RestoreError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if dir.join(CONFIG_FILE).exists() || dir.join(DB_FILE).exists() {
                return Err(RestoreError::SiteExists(dir.to_path_buf()));
            }
            if entries.next().is_some() {
                return Err(RestoreError::NotEmpty(dir.to_path_buf()));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(dir)(e)),
    }
    let not_a_backup = |reason: String| RestoreError::NotABackup {
        archive: archive.to_path_buf(),
        reason,
    };
    let mut reader = BufReader::new(std::fs::File::open(archive).map_err(io(archive))?);
    let mut magic = [0u8; 2];
    reader
        .read_exact(&mut magic)
        .map_err(|_| not_a_backup("it is empty".into()))?;
    if magic != [0x1f, 0x8b] {
        return Err(not_a_backup("it is not gzip-compressed".into()));
    }
    let reader = std::io::Cursor::new(magic).chain(reader);

    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    let staging = tempfile::Builder::new()
        .prefix(".hortus-restore-")
        .tempdir_in(&parent)
        .map_err(io(&parent))?;
    let files = unpack(archive, reader, staging.path())?;
    let manifest = verify(archive, staging.path())?;

    if dir.exists() {
        // Checked empty above; rename cannot replace a directory.
        std::fs::remove_dir(dir).map_err(io(dir))?;
    }
    std::fs::rename(staging.path(), dir).map_err(io(dir))?;
    // The folder now lives on as DIR; nothing left to clean up.
    let _ = staging.keep();
    Ok(RestoreReport {
        dir: dir.to_path_buf(),
        manifest,
        files,
    })
}

/// Unpacks every entry into `into` after checking it; returns the number of files from
/// content/ and media/.
fn unpack(archive: &Path, reader: impl Read, into: &Path) -> Result<usize, RestoreError> {
    let mut tar = tar::Archive::new(GzDecoder::new(reader));
    let bad = |entry: &Path, reason: &'static str| RestoreError::BadEntry {
        archive: archive.to_path_buf(),
        entry: entry.display().to_string(),
        reason,
    };
    let broken = |e: std::io::Error| RestoreError::NotABackup {
        archive: archive.to_path_buf(),
        reason: e.to_string(),
    };
    let mut files = 0;
    for entry in tar.entries().map_err(broken)? {
        let mut entry = entry.map_err(broken)?;
        let raw = entry.path().map_err(broken)?.into_owned();
        let is_dir = match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => false,
            tar::EntryType::Directory => true,
            tar::EntryType::Symlink | tar::EntryType::Link => {
                return Err(bad(&raw, "it is a link (backups hold none)"));
            }
            _ => return Err(bad(&raw, "it is neither a file nor a folder")),
        };
        let rel = entry_path(&raw, is_dir).map_err(|reason| bad(&raw, reason))?;
        let dest = into.join(&rel);
        if dest.symlink_metadata().is_ok() && !is_dir {
            return Err(bad(&raw, "it appears twice"));
        }
        if is_dir {
            std::fs::create_dir_all(&dest).map_err(io(&dest))?;
            continue;
        }
        if let Some(p) = dest.parent() {
            std::fs::create_dir_all(p).map_err(io(p))?;
        }
        // Only the permission bits: never set-user-id or sticky bits from an archive.
        entry.set_preserve_permissions(false);
        entry.unpack(&dest).map_err(io(&dest))?;
        if rel.components().count() > 1 {
            files += 1;
        }
    }
    Ok(files)
}

/// Checks what was unpacked: a manifest this version reads, a whole database whose row counts
/// are the manifest's, and a hortus.toml that loads.
fn verify(archive: &Path, site: &Path) -> Result<Manifest, RestoreError> {
    let mismatch = |reason: String| RestoreError::Mismatch {
        archive: archive.to_path_buf(),
        reason,
    };
    let not_a_backup = |reason: String| RestoreError::NotABackup {
        archive: archive.to_path_buf(),
        reason,
    };
    let text = std::fs::read(site.join(MANIFEST))
        .map_err(|_| not_a_backup(format!("it holds no {MANIFEST}")))?;
    let manifest: Manifest =
        serde_json::from_slice(&text).map_err(|e| not_a_backup(format!("{MANIFEST}: {e}")))?;
    if manifest.format > FORMAT {
        return Err(not_a_backup(format!(
            "written by Hortus {} in backup format {}; this Hortus reads format {FORMAT} (upgrade Hortus first)",
            manifest.hortus, manifest.format
        )));
    }
    for name in [CONFIG_FILE, DB_FILE] {
        if !site.join(name).is_file() {
            return Err(not_a_backup(format!("it holds no {name}")));
        }
    }
    let db = site.join(DB_FILE);
    let conn = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| mismatch(format!("{DB_FILE}: {e}")))?;
    snapshot::check(&conn, &db).map_err(|e| mismatch(e.to_string()))?;
    let (version, rows): (i64, BTreeMap<String, i64>) =
        count_rows(&conn).map_err(|e| mismatch(format!("{DB_FILE}: {e}")))?;
    drop(conn);
    if version != manifest.schema_version || rows != manifest.rows {
        return Err(mismatch(format!(
            "{DB_FILE} has schema {version} and rows {rows:?}, the manifest says schema {} and rows {:?}",
            manifest.schema_version, manifest.rows
        )));
    }
    crate::config::Config::load(site).map_err(|e| mismatch(e.to_string()))?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;

    /// A gzip'd tar with one entry named `name` (raw bytes, so `..` and `/` survive) of `kind`.
    fn archive_with(name: &[u8], kind: tar::EntryType, link: Option<&str>) -> Vec<u8> {
        let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_entry_type(kind);
        header.set_mode(0o644);
        if let Some(target) = link {
            header.set_link_name(target).unwrap();
        }
        let body = "悪意 🐍 خبيث".as_bytes();
        header.set_size(if kind == tar::EntryType::Regular {
            body.len() as u64
        } else {
            0
        });
        header.set_cksum();
        let data: &[u8] = if kind == tar::EntryType::Regular {
            body
        } else {
            &[]
        };
        tar.append(&header, data).unwrap();
        tar.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn entries_outside_the_site_or_not_plain_files_are_refused_and_nothing_is_written() {
        let cases: [(&[u8], tar::EntryType, Option<&str>, &str); 7] = [
            (b"../escaped.md", tar::EntryType::Regular, None, "`..`"),
            (
                b"content/../../escaped.md",
                tar::EntryType::Regular,
                None,
                "`..`",
            ),
            (
                b"/tmp/escaped.md",
                tar::EntryType::Regular,
                None,
                "absolute",
            ),
            (
                b"content/posts/x.md",
                tar::EntryType::Symlink,
                Some("/etc/passwd"),
                "link",
            ),
            (b"media/up", tar::EntryType::Symlink, Some("../.."), "link"),
            (
                b"content/hard",
                tar::EntryType::Link,
                Some("hortus.toml"),
                "link",
            ),
            (
                b".ssh/authorized_keys",
                tar::EntryType::Regular,
                None,
                "no such file",
            ),
        ];
        for (name, kind, link, why) in cases {
            let tmp = tempfile::tempdir().unwrap();
            let file = tmp.path().join("b.tar.gz");
            std::fs::write(&file, archive_with(name, kind, link)).unwrap();
            let dir = tmp.path().join("restored");
            let err = restore(&file, &dir).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, RestoreError::BadEntry { .. }), "{msg}");
            assert!(msg.contains(why), "{msg}");
            assert!(msg.contains("b.tar.gz"), "names the archive: {msg}");
            assert!(!dir.exists(), "nothing restored for {name:?}");
            let left: Vec<_> = std::fs::read_dir(tmp.path())
                .unwrap()
                .flatten()
                .map(|e| e.file_name())
                .collect();
            assert_eq!(left.len(), 1, "no leftovers: {left:?}");
            assert!(!tmp.path().parent().unwrap().join("escaped.md").exists());
        }
    }

    #[test]
    fn a_file_that_is_no_backup_is_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("notes 📝.txt");
        std::fs::write(&file, "ceci n'est pas une archive").unwrap();
        let err = restore(&file, &tmp.path().join("x"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("notes 📝.txt") && err.contains("not gzip"),
            "{err}"
        );
        // A tar of the right shape without a manifest or database.
        std::fs::write(
            &file,
            archive_with(b"content/posts/a.md", tar::EntryType::Regular, None),
        )
        .unwrap();
        let err = restore(&file, &tmp.path().join("x"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(MANIFEST), "{err}");
        assert!(!tmp.path().join("x").exists());
    }

    #[test]
    fn an_existing_site_or_a_non_empty_directory_is_never_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("b.tar.gz");
        std::fs::write(
            &file,
            archive_with(b"content/a.md", tar::EntryType::Regular, None),
        )
        .unwrap();
        let site = tmp.path().join("站点");
        std::fs::create_dir(&site).unwrap();
        std::fs::write(site.join(DB_FILE), "precious").unwrap();
        let err = restore(&file, &site).unwrap_err().to_string();
        assert!(
            err.contains("already holds a Hortus site")
                && err.contains("站点")
                && err.contains("fix:"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(site.join(DB_FILE)).unwrap(),
            "precious"
        );
        let other = tmp.path().join("other");
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join("notes.txt"), "mine").unwrap();
        let err = restore(&file, &other).unwrap_err().to_string();
        assert!(
            err.contains("is not empty") && err.contains("other"),
            "{err}"
        );
    }

    #[test]
    fn entry_paths_map_into_the_site() {
        assert_eq!(
            entry_path(Path::new("./content/posts/日本.md"), false).unwrap(),
            Path::new("content/posts/日本.md")
        );
        assert_eq!(
            entry_path(Path::new("media"), true).unwrap(),
            Path::new("media")
        );
        assert!(entry_path(Path::new("media"), false).is_err());
        assert!(entry_path(Path::new("hortus.db/x"), false).is_err());
        assert!(entry_path(Path::new("content"), false).is_err());
        assert!(entry_path(Path::new("."), true).is_err());
    }
}
