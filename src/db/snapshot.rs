//! Consistent copies of a live database with SQLite's online backup API
//! (<https://www.sqlite.org/backup.html>).
//!
//! The copy is made in a single step (`sqlite3_backup_step(-1)`): the whole file is read inside
//! one read transaction, so it is the database as of one commit. In WAL mode a reader never blocks
//! the writer, so a running `hortus serve` keeps delivering and accepting activities meanwhile.
//! (Copying a few pages per step would restart from scratch each time another connection writes:
//! on a busy server it might never finish.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{path}: the copy of the database is damaged ({detail})")]
    Damaged { path: PathBuf, detail: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn sqlite(path: &Path) -> impl FnOnce(rusqlite::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

/// Copies the database `src` (an open connection, a live one is fine) into a new file `dest`,
/// as of one commit, then checks the copy with `PRAGMA integrity_check`. The copy is a single
/// file in rollback-journal mode (no `-wal` beside it): it can be archived or renamed as is.
pub fn copy(src: &Connection, dest: &Path) -> Result<(), SnapshotError> {
    let mut out = Connection::open(dest).map_err(sqlite(dest))?;
    {
        let backup = rusqlite::backup::Backup::new(src, &mut out).map_err(sqlite(dest))?;
        // -1: every page in one step, under one read transaction (see the module comment).
        // Busy or Locked (a checkpoint holding a lock for a moment): wait and try again.
        let mut waits = 0;
        loop {
            match backup.step(-1).map_err(sqlite(dest))? {
                rusqlite::backup::StepResult::Done => break,
                _ if waits < 500 => {
                    waits += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => {
                    return Err(SnapshotError::Sqlite {
                        path: dest.to_path_buf(),
                        source: rusqlite::Error::SqliteFailure(
                            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                            Some("the database stayed locked for 5 s".into()),
                        ),
                    });
                }
            }
        }
    }
    // The copied header says WAL, as the source does; a lone file is simpler to carry around.
    out.pragma_update(None, "journal_mode", "DELETE")
        .map_err(sqlite(dest))?;
    check(&out, dest)?;
    out.close().map_err(|(_, e)| sqlite(dest)(e))?;
    Ok(())
}

/// Copies the database file at `src` (opened read-only, so a missing file is an error, never a
/// new empty database).
pub fn copy_file(src: &Path, dest: &Path) -> Result<(), SnapshotError> {
    let conn = Connection::open_with_flags(
        src,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite(src))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(sqlite(src))?;
    copy(&conn, dest)
}

/// `PRAGMA integrity_check`: "ok", or the first problems SQLite found.
pub fn check(conn: &Connection, path: &Path) -> Result<(), SnapshotError> {
    let mut stmt = conn
        .prepare("PRAGMA integrity_check(5)")
        .map_err(sqlite(path))?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .map_err(sqlite(path))?
        .collect::<Result<_, _>>()
        .map_err(sqlite(path))?;
    if rows == ["ok"] {
        Ok(())
    } else {
        Err(SnapshotError::Damaged {
            path: path.to_path_buf(),
            detail: rows.join("; "),
        })
    }
}

/// Before migrating an existing database (`user_version` > 0) that has `pending` migrations,
/// keeps a copy beside it as `hortus.db.before-NN`, NN being the first migration to run: a
/// migration that goes wrong (or a release that must be rolled back) can be undone by putting
/// that file back. The copy is written under a temporary name and renamed, so the file with the
/// final name is always whole. Returns its path, or `None` when nothing is pending.
pub fn keep_before_migrating(
    conn: &Connection,
    db_path: &Path,
    migrations: &rusqlite_migration::Migrations<'_>,
) -> Result<Option<PathBuf>, SnapshotError> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sqlite(db_path))?;
    let version = usize::try_from(version).unwrap_or(0);
    // Negative when the database is newer than this binary: rusqlite_migration refuses that.
    let pending = migrations
        .pending_migrations(conn)
        .map_or(0, |n| usize::try_from(n).unwrap_or(0));
    let kept = keep_copy(conn, db_path, version, pending)?;
    if let Some(kept) = &kept {
        tracing::info!(
            "kept a copy of the database before migrating it: {}",
            kept.display()
        );
    }
    Ok(kept)
}

fn keep_copy(
    conn: &Connection,
    db_path: &Path,
    version: usize,
    pending: usize,
) -> Result<Option<PathBuf>, SnapshotError> {
    if version == 0 || pending == 0 {
        return Ok(None);
    }
    let mut name = db_path.as_os_str().to_owned();
    name.push(format!(".before-{:02}", version + 1));
    let kept = PathBuf::from(name);
    let io = |source| SnapshotError::Io {
        path: kept.clone(),
        source,
    };
    // A name of its own: two commands started at once after an upgrade never share one.
    let dir = match kept.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let partial = tempfile::Builder::new()
        .prefix(".hortus.db.before-")
        .suffix(".partial")
        .tempfile_in(dir)
        .map_err(io)?;
    copy(conn, partial.path())?;
    partial.persist(&kept).map_err(|e| io(e.error))?;
    Ok(Some(kept))
}

/// Every table's row count, and the schema version, of the database `conn`.
pub fn count_rows(conn: &Connection) -> rusqlite::Result<(i64, BTreeMap<String, i64>)> {
    let version = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut rows = BTreeMap::new();
    for table in tables {
        // Names come from the schema itself; quoted as identifiers all the same.
        let sql = format!("SELECT COUNT(*) FROM \"{}\"", table.replace('"', "\"\""));
        rows.insert(table, conn.query_row(&sql, [], |r| r.get(0))?);
    }
    Ok((version, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(conn: &Connection) -> Vec<String> {
        conn.prepare("SELECT t FROM notes ORDER BY rowid")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn a_copy_is_one_commit_while_another_connection_keeps_writing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.db");
        let writer = Connection::open(&path).unwrap();
        writer.pragma_update(None, "journal_mode", "WAL").unwrap();
        writer.execute("CREATE TABLE notes (t TEXT)", []).unwrap();
        for t in ["庭園 ✿", "حديقة مغلقة", "🌱 e\u{301}"] {
            writer
                .execute("INSERT INTO notes VALUES (?1)", [t])
                .unwrap();
        }
        // A write transaction in progress on the writer is not part of the copy, and does not
        // stop it: WAL readers see the last commit.
        writer
            .execute_batch("BEGIN; INSERT INTO notes VALUES ('uncommitted');")
            .unwrap();
        let dest = dir.path().join("copy.db");
        copy_file(&path, &dest).unwrap();
        writer.execute_batch("COMMIT").unwrap();

        assert!(!dir.path().join("copy.db-wal").exists());
        let copied = Connection::open(&dest).unwrap();
        let mode: String = copied
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete");
        assert_eq!(rows(&copied), ["庭園 ✿", "حديقة مغلقة", "🌱 e\u{301}"]);
        assert_eq!(rows(&writer).len(), 4);
    }

    #[test]
    fn a_missing_database_is_an_error_naming_it_not_a_new_empty_copy() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nothing.db");
        let err = copy_file(&missing, &dir.path().join("c.db")).unwrap_err();
        assert!(err.to_string().contains("nothing.db"), "{err}");
        assert!(!missing.exists());
    }

    #[test]
    fn nothing_is_kept_for_a_new_database_or_one_up_to_date() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hortus.db");
        let conn = Connection::open(&path).unwrap();
        assert_eq!(keep_copy(&conn, &path, 0, 10).unwrap(), None);
        assert_eq!(keep_copy(&conn, &path, 10, 0).unwrap(), None);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A brand-new site: no copy of an empty database.
        drop(conn);
        drop(crate::db::open(&path).unwrap());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.contains("before")), "{names:?}");
    }

    #[test]
    fn opening_a_database_with_pending_migrations_keeps_it_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hortus.db");
        let migrations = crate::db::migrations();
        let latest = migrations
            .pending_migrations(&Connection::open_in_memory().unwrap())
            .unwrap() as usize;
        // A site made by the release before the last migration, with a key in it.
        {
            let mut old = Connection::open(&path).unwrap();
            old.pragma_update(None, "journal_mode", "WAL").unwrap();
            migrations.to_version(&mut old, latest - 1).unwrap();
            old.execute(
                "INSERT INTO keys (name, private_pem, public_pem, created_at) VALUES ('鍵 🔑', 'p', 'مفتاح', 't')",
                [],
            )
            .unwrap();
        }
        let conn = crate::db::open(&path).unwrap();
        let version = |c: &Connection| -> usize {
            c.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
                .unwrap() as usize
        };
        assert_eq!(version(&conn), latest);
        let kept = dir.path().join(format!("hortus.db.before-{latest:02}"));
        let copy = Connection::open(&kept).unwrap();
        assert_eq!(
            version(&copy),
            latest - 1,
            "the copy is the database before migrating"
        );
        let key: String = copy
            .query_row(
                "SELECT public_pem FROM keys WHERE name = '鍵 🔑'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(key, "مفتاح");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.contains("partial")), "{names:?}");
        // Opening it again, up to date, keeps nothing new and leaves the copy alone.
        drop(conn);
        let modified = std::fs::metadata(&kept).unwrap().modified().unwrap();
        drop(crate::db::open(&path).unwrap());
        assert_eq!(
            std::fs::metadata(&kept).unwrap().modified().unwrap(),
            modified
        );
        let copies = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains("before")
            })
            .count();
        assert_eq!(copies, 1);
    }
}
