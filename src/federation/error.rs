//! Why a federation operation failed: the database, a list entry, or the HTTP client.

use super::domain::PatternError;

#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error(transparent)]
    Pattern(#[from] PatternError),
    #[error(
        "the {list} list holds {pattern:?}, which is not a valid entry: {source}\n  fix: delete \
         it with `sqlite3 hortus.db \"DELETE FROM federation_domains WHERE pattern = '{pattern}'\"`"
    )]
    CorruptEntry {
        list: String,
        pattern: String,
        source: PatternError,
    },
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(reqwest::Error),
}
