//! Connection set-up and migrations. SQL lives beside the module that owns the data; this module
//! only opens connections and hands async code a non-blocking way to use them, and takes
//! consistent copies of the whole database ([`snapshot`]: backups, the copy before a migration).

pub mod digest;
pub mod snapshot;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use include_dir::{Dir, include_dir};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use rusqlite_migration::Migrations;

static MIGRATIONS_DIR: Dir = include_dir!("$CARGO_MANIFEST_DIR/migrations");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("keeping a copy of the database before migrating it: {0}")]
    Snapshot(#[from] snapshot::SnapshotError),
    #[error("database worker stopped: {0}")]
    Closed(String),
}

pub(crate) fn migrations() -> Migrations<'static> {
    // The directory is embedded at compile time; a malformed one is a build bug caught by tests.
    Migrations::from_directory(&MIGRATIONS_DIR).expect("migrations/ is well-formed")
}

/// Settings every connection gets: WAL so readers never block the writer, a busy timeout so
/// concurrent writers wait instead of failing, and foreign keys on.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

/// Opens (creating if needed) the database file and brings its schema up to date.
pub fn open(path: &Path) -> Result<Connection, DbError> {
    let mut conn = Connection::open(path)?;
    configure(&conn)?;
    let migrations = migrations();
    snapshot::keep_before_migrating(&conn, path, &migrations)?;
    migrations.to_latest(&mut conn)?;
    Ok(conn)
}

/// An in-memory database with the full schema, for unit tests.
pub fn open_in_memory() -> Result<Connection, DbError> {
    let mut conn = Connection::open_in_memory()?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrations().to_latest(&mut conn)?;
    Ok(conn)
}

/// An IMMEDIATE transaction on a shared `&Connection`: for work that reads then writes. A
/// deferred one could not upgrade its read lock if the server wrote in between (SQLITE_BUSY
/// without waiting); this one waits its turn. Fails if `conn` is already inside a transaction.
pub fn write_transaction(conn: &Connection) -> rusqlite::Result<Transaction<'_>> {
    Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
}

/// Page cache of each reader (negative: in KiB; SQLite's default is 2,000 KiB per connection). Readers render
/// what the rendered-page cache misses, and a listing's count scans its whole index once per
/// change: at the default that left 1.3 MiB of index pages held by a reader for the life of
/// `serve` (issue 15). A page evicted is read again from the OS's file cache, not the disk.
const READER_CACHE_SIZE: i64 = -512;

/// The async boundary to SQLite: one writer connection and a few read-only ones, each on its
/// own thread (tokio-rusqlite).
///
/// [`Db::call`] runs on the writer: every write, and every read that decides a write. SQLite
/// lets one connection write at a time anyway, so writes queue here instead of in the busy
/// handler. [`Db::read`] runs on a reader, round-robin: a page or document read never waits
/// behind a slow write transaction queued on the writer's thread (WAL readers see the last
/// commit and are not blocked by the write lock). Readers are `query_only`: a write sent to
/// one fails instead of slipping past the writer.
#[derive(Clone)]
pub struct Db {
    writer: tokio_rusqlite::Connection,
    readers: Arc<Vec<tokio_rusqlite::Connection>>,
    next: Arc<AtomicUsize>,
}

impl Db {
    /// The writer plus `readers` read-only connections (none: reads share the writer).
    pub async fn open(path: &Path, readers: usize) -> Result<Db, DbError> {
        // Migrate once on a plain connection before the others exist.
        drop(open(path)?);
        let connect = async |query_only: bool| {
            let conn = tokio_rusqlite::Connection::open(path)
                .await
                .map_err(|e| DbError::Closed(e.to_string()))?;
            conn.call(move |c| {
                configure(c)?;
                if query_only {
                    c.pragma_update(None, "query_only", true)?;
                    c.pragma_update(None, "cache_size", READER_CACHE_SIZE)?;
                }
                Ok::<_, rusqlite::Error>(())
            })
            .await
            .map_err(|e| DbError::Closed(e.to_string()))?;
            Ok::<_, DbError>(conn)
        };
        let writer = connect(false).await?;
        let mut pool = Vec::with_capacity(readers);
        for _ in 0..readers {
            pool.push(connect(true).await?);
        }
        Ok(Db {
            writer,
            readers: Arc::new(pool),
            next: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Runs `f` on the writer's thread, never on the async worker that awaits it.
    pub async fn call<F, R, E>(&self, f: F) -> Result<R, E>
    where
        F: FnOnce(&mut Connection) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        run(&self.writer, f).await
    }

    /// Runs a read-only `f` on a reader's thread: it never queues behind the writer.
    pub async fn read<F, R, E>(&self, f: F) -> Result<R, E>
    where
        F: FnOnce(&mut Connection) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        if self.readers.is_empty() {
            return run(&self.writer, f).await;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        run(&self.readers[i], f).await
    }
}

async fn run<F, R, E>(conn: &tokio_rusqlite::Connection, f: F) -> Result<R, E>
where
    F: FnOnce(&mut Connection) -> Result<R, E> + Send + 'static,
    R: Send + 'static,
    E: From<DbError> + Send + 'static,
{
    match conn.call(move |c| Ok::<_, rusqlite::Error>(f(c))).await {
        Ok(r) => r,
        Err(e) => Err(E::from(DbError::Closed(e.to_string()))),
    }
}

/// The lines of `EXPLAIN QUERY PLAN` for `sql` (its `detail` column), every parameter bound to
/// NULL (the plan does not depend on the values): for the tests that hold each hot statement to
/// its index (`inbox::query_plans`, `delivery::claim`).
#[cfg(test)]
pub(crate) fn query_plan(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let nulls = vec![rusqlite::types::Null; stmt.parameter_count()];
    stmt.query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn readers_refuse_writes_and_see_the_writers_commits() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), 2).await.unwrap();
        db.call(|c| c.execute("INSERT INTO keys (name, private_pem, public_pem, created_at) VALUES ('x', 'p', 'q', 't')", []).map_err(DbError::from))
            .await
            .unwrap();
        for _ in 0..2 {
            let seen: String = db
                .read(|c| {
                    c.query_row("SELECT public_pem FROM keys WHERE name = 'x'", [], |r| {
                        r.get(0)
                    })
                    .map_err(DbError::from)
                })
                .await
                .unwrap();
            assert_eq!(seen, "q");
            let write = db
                .read(|c| c.execute("DELETE FROM keys", []).map_err(DbError::from))
                .await;
            assert!(
                matches!(&write, Err(DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _)))
                    if e.code == rusqlite::ErrorCode::ReadOnly),
                "{write:?}"
            );
        }
    }

    #[tokio::test]
    async fn readers_keep_a_smaller_page_cache_than_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), 2).await.unwrap();
        let size = |c: &mut Connection| {
            c.pragma_query_value(None, "cache_size", |r| r.get::<_, i64>(0))
                .map_err(DbError::from)
        };
        for _ in 0..2 {
            assert_eq!(db.read(size).await.unwrap(), READER_CACHE_SIZE);
        }
        assert_eq!(
            db.call(size).await.unwrap(),
            -2000,
            "the writer keeps the default"
        );
    }

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }

    #[test]
    fn file_database_uses_wal_and_records_version() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("t.db")).unwrap();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert!(version >= 1);
    }
}
