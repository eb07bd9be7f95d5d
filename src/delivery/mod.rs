//! Outgoing delivery: a durable queue in SQLite and the worker pool that drains it.
//!
//! - [`enqueue`] stores an activity once and one pending delivery per distinct inbox. Everything
//!   that sends (publish, the inbox's Accept/Reject, the CLI's Follow/Undo) goes through it.
//! - [`fanout`]: post changes → Create/Update/Delete → the inboxes of followers and mentions.
//! - [`queue`]: the SQL — claiming with leases, recording attempts, the per-server circuit
//!   breaker, `hortus queue`.
//! - [`schedule`]: pure rules — backoff with jitter, Retry-After, what a status means.
//! - [`worker`]: the pool that signs and sends, steppable in tests, stopped gracefully.
//!
//! Guarantees: at-least-once (a delivery is done only after the peer answered 2xx; a worker
//! that dies leaves a lease that the next start takes back), one signature per attempt made at
//! the moment of sending, the federation policy checked at sending, a global and a per-server
//! concurrency limit, retries over about three days, and a server that keeps failing paused and
//! probed rather than hammered.

pub mod fanout;
pub mod queue;
pub mod schedule;
pub mod worker;

pub use fanout::{Federated, federate_posts};
pub use queue::enqueue;
pub use schedule::{Backoff, Clock, ManualClock, SystemClock};
pub use worker::{Deliverer, Settings, Step, Workers};

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
    #[error("a delivery worker stopped: {0}")]
    Worker(String),
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
