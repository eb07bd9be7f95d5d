//! `hortus backup FILE`: one `.tar.gz` holding everything a site is — `hortus.toml`, a
//! consistent snapshot of `hortus.db` taken while `hortus serve` keeps running, `content/` and
//! `media/` — plus `hortus-backup.json`, the row counts of every table as they are in the
//! snapshot, which `hortus restore` checks against what it unpacked.
//!
//! The archive holds the site's private keys: it is created readable by its owner only (0600).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::config::{CONFIG_FILE, DB_FILE};
use crate::db::snapshot::{self, SnapshotError};

/// The name of the manifest inside the archive.
pub const MANIFEST: &str = "hortus-backup.json";
/// The folders of a site that are archived, with `hortus.toml` and `hortus.db`.
pub const FOLDERS: [&str; 2] = ["content", "media"];
/// Bumped when the archive layout changes in a way an older `hortus restore` cannot read.
pub const FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "{0}: not a Hortus site (no {CONFIG_FILE} or {DB_FILE})\n  fix: pass the site directory with --dir, or run `hortus init` there first"
    )]
    NotASite(PathBuf),
    #[error(
        "{0} already exists: a backup never replaces a file\n  fix: choose a new name, e.g. hortus-$(date +%F).tar.gz, or remove the old file first"
    )]
    Exists(PathBuf),
    #[error(
        "{0}: a backup cannot be written inside the site's content/ or media/ (it would archive itself)\n  fix: write it outside the site directory"
    )]
    InsideSite(PathBuf),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: reading the snapshot: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a backup holds, written into it as `hortus-backup.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// The Hortus version that wrote it.
    pub hortus: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// The database's `user_version` (its migration number).
    pub schema_version: i64,
    /// Rows in every table of the snapshot.
    pub rows: BTreeMap<String, i64>,
}

/// What `backup` wrote.
#[derive(Debug)]
pub struct BackupReport {
    pub path: PathBuf,
    pub manifest: Manifest,
    /// Files archived from content/ and media/.
    pub files: usize,
    /// Size of the archive.
    pub bytes: u64,
}

impl BackupReport {
    /// One paragraph for the owner.
    pub fn summary(&self) -> String {
        let rows = |t: &str| self.manifest.rows.get(t).copied().unwrap_or(0);
        format!(
            "wrote {} ({} bytes): {CONFIG_FILE}, {DB_FILE} (schema {}; {} posts, {} followers, {} keys, {} deliveries), {} files from content/ and media/\n",
            self.path.display(),
            self.bytes,
            self.manifest.schema_version,
            rows("posts"),
            rows("followers"),
            rows("keys"),
            rows("deliveries"),
            self.files,
        )
    }
}

/// Writes the backup of the site in `site_dir` to the new file `out`.
pub fn backup(site_dir: &Path, out: &Path) -> Result<BackupReport, BackupError> {
    let db_path = site_dir.join(DB_FILE);
    if !site_dir.join(CONFIG_FILE).is_file() || !db_path.is_file() {
        return Err(BackupError::NotASite(site_dir.to_path_buf()));
    }
    if out.symlink_metadata().is_ok() {
        return Err(BackupError::Exists(out.to_path_buf()));
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let parent_abs = parent.canonicalize().map_err(io(&parent))?;
    for folder in FOLDERS {
        if let Ok(inside) = site_dir.join(folder).canonicalize()
            && parent_abs.starts_with(&inside)
        {
            return Err(BackupError::InsideSite(out.to_path_buf()));
        }
    }

    // The snapshot and the archive are made beside `out`, never in a /tmp that may be small.
    let work = tempfile::Builder::new()
        .prefix(".hortus-backup-")
        .tempdir_in(&parent)
        .map_err(io(&parent))?;
    let db_copy = work.path().join(DB_FILE);
    snapshot::copy_file(&db_path, &db_copy)?;
    let manifest = {
        let conn = Connection::open(&db_copy).map_err(|source| BackupError::Sqlite {
            path: db_copy.clone(),
            source,
        })?;
        let (schema_version, rows) =
            snapshot::count_rows(&conn).map_err(|source| BackupError::Sqlite {
                path: db_copy.clone(),
                source,
            })?;
        Manifest {
            format: FORMAT,
            hortus: env!("CARGO_PKG_VERSION").to_string(),
            created_at: crate::times::rfc3339(time::OffsetDateTime::now_utc()),
            schema_version,
            rows,
        }
    };

    let archive = tempfile::Builder::new()
        .prefix(".hortus-backup-")
        .suffix(".partial")
        .tempfile_in(&parent)
        .map_err(io(&parent))?;
    let mut tar = tar::Builder::new(GzEncoder::new(
        archive.as_file().try_clone().map_err(io(out))?,
        Compression::default(),
    ));
    // Symbolic links in content/ or media/ are archived as the files they point to: a restore
    // never has to create a link.
    tar.follow_symlinks(true);
    let manifest_json = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    let mut header = tar::Header::new_gnu();
    header.set_size(manifest_json.len() as u64);
    header.set_mode(0o600);
    header.set_mtime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    );
    header.set_cksum();
    tar.append_data(&mut header, MANIFEST, manifest_json.as_slice())
        .map_err(io(out))?;
    tar.append_path_with_name(site_dir.join(CONFIG_FILE), CONFIG_FILE)
        .map_err(io(&site_dir.join(CONFIG_FILE)))?;
    tar.append_path_with_name(&db_copy, DB_FILE)
        .map_err(io(&db_path))?;
    let mut files = 0;
    for folder in FOLDERS {
        let path = site_dir.join(folder);
        if path.is_dir() {
            files += count_files(&path);
            tar.append_dir_all(folder, &path).map_err(io(&path))?;
        }
    }
    let gz = tar.into_inner().map_err(io(out))?;
    let mut file = gz.finish().map_err(io(out))?;
    file.flush().map_err(io(out))?;
    file.sync_all().map_err(io(out))?;
    // Appears under its name only once whole; never replaces a file that appeared meanwhile.
    let written = archive
        .persist_noclobber(out)
        .map_err(|e| match e.error.kind() {
            std::io::ErrorKind::AlreadyExists => BackupError::Exists(out.to_path_buf()),
            _ => io(out)(e.error),
        })?;
    let bytes = written.metadata().map_err(io(out))?.len();
    drop(written);
    if let Ok(dir) = File::open(&parent) {
        let _ = dir.sync_all();
    }
    Ok(BackupReport {
        path: out.to_path_buf(),
        manifest,
        files,
        bytes,
    })
}

/// Regular files under `dir` (following links, as the archive does).
fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                count_files(&path)
            } else {
                usize::from(path.is_file())
            }
        })
        .sum()
}
