//! Outgoing delivery: a durable queue in SQLite and the worker pool that drains it.
//!
//! - [`enqueue`] stores an activity once and one pending delivery per distinct inbox. Everything
//!   that sends (publish, the inbox's Accept/Reject, the CLI's Follow/Undo) goes through it.
//! - [`queue`]: the SQL — claiming with leases, recording attempts, the per-server circuit
//!   breaker, `hortus queue`.

pub mod fanout;
pub mod queue;
pub mod schedule;

pub use queue::enqueue;
pub use schedule::{Backoff, Clock, ManualClock, SystemClock};

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
}

/// Milliseconds since the Unix epoch; times before it count as 0.
pub fn unix_ms(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Wakes idle workers in this process: set by [`enqueue`]. Workers in another process poll.
static WAKE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Tells this process's idle workers that there is work (no-op when none are waiting).
pub fn wake_workers() {
    WAKE.notify_waiters();
}
