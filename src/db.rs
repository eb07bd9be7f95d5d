//! Connection set-up and migrations. SQL lives beside the module that owns the data; this module
//! only opens connections and hands async code a non-blocking way to use them.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use include_dir::{Dir, include_dir};
use rusqlite::Connection;
use rusqlite_migration::Migrations;

static MIGRATIONS_DIR: Dir = include_dir!("$CARGO_MANIFEST_DIR/migrations");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("database worker stopped: {0}")]
    Closed(String),
}

fn migrations() -> Migrations<'static> {
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
    migrations().to_latest(&mut conn)?;
    Ok(conn)
}

/// An in-memory database with the full schema, for unit tests.
pub fn open_in_memory() -> Result<Connection, DbError> {
    let mut conn = Connection::open_in_memory()?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrations().to_latest(&mut conn)?;
    Ok(conn)
}

/// The async boundary to SQLite: a few connections, each on its own thread (tokio-rusqlite), used
/// round-robin. WAL lets them read in parallel; writes serialise inside SQLite.
#[derive(Clone)]
pub struct Db {
    conns: Arc<Vec<tokio_rusqlite::Connection>>,
    next: Arc<AtomicUsize>,
}

impl Db {
    pub async fn open(path: &Path, connections: usize) -> Result<Db, DbError> {
        // Migrate once on a plain connection before the pool exists.
        drop(open(path)?);
        let mut conns = Vec::with_capacity(connections.max(1));
        for _ in 0..connections.max(1) {
            let conn = tokio_rusqlite::Connection::open(path)
                .await
                .map_err(|e| DbError::Closed(e.to_string()))?;
            conn.call(|c| configure(c))
                .await
                .map_err(|e| DbError::Closed(e.to_string()))?;
            conns.push(conn);
        }
        Ok(Db {
            conns: Arc::new(conns),
            next: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Runs `f` on a database thread, never on the async worker that awaits it.
    pub async fn call<F, R, E>(&self, f: F) -> Result<R, E>
    where
        F: FnOnce(&mut Connection) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len();
        match self.conns[i]
            .call(move |c| Ok::<_, rusqlite::Error>(f(c)))
            .await
        {
            Ok(r) => r,
            Err(e) => Err(E::from(DbError::Closed(e.to_string()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
