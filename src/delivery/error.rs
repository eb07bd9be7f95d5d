//! What can go wrong on our side of a delivery.

/// Why something could not be queued or delivered. These are our problems, never a peer's.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("database error: {0}")]
    Pool(#[from] crate::db::DbError),
    #[error("an activity to deliver needs a string \"id\"")]
    MissingActivityId,
    #[error("cannot deliver to {inbox:?}: {reason}")]
    InvalidInbox { inbox: String, reason: String },
    #[error(
        "another hortus process is delivering for this site (it holds {0})\n  fix: stop the other `hortus serve`; only one may run per site"
    )]
    Busy(String),
    #[error("cannot lock {0}: {1}")]
    Lock(String, String),
    #[error(transparent)]
    Client(#[from] crate::federation::FederationError),
    #[error("a delivery worker stopped: {0}")]
    Worker(String),
}
