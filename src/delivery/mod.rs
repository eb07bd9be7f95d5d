//! Outgoing delivery: a durable queue in SQLite and the worker pool that drains it.
//!
//! - [`enqueue`] stores an activity once and one pending delivery per distinct inbox. Everything
//!   that sends (publish, the inbox's Accept/Reject, the CLI's Follow/Undo) goes through it.
//! - [`fanout`]: post changes → Create/Update/Delete → the inboxes of followers and mentions.
//! - [`queue`]: the SQL — enqueueing, claiming with leases (`claim`: bounded index ranges),
//!   `hortus queue retry`; [`attempts`]: recording an attempt and the per-server circuit
//!   breaker; [`status`]: `hortus queue`.
//! - [`schedule`]: pure rules — backoff with jitter, Retry-After, what a status means.
//! - [`worker`]: the pool that claims in batches, sends, records what finished together in one
//!   transaction, steppable in tests, stopped gracefully; `send`: one signed POST; `signer`:
//!   the signing threads (one per core, fed in batches).
//!
//! Guarantees: at-least-once (a delivery is done only after the peer answered 2xx; a worker
//! that dies leaves a lease that the next start takes back), one signature per attempt made at
//! the moment of sending, the federation policy checked at sending, a global and a per-server
//! concurrency limit, retries over about three days, and a server that keeps failing paused and
//! probed rather than hammered.

pub mod attempts;
mod claim;
mod error;
pub mod fanout;
pub mod queue;
mod recorder;
pub mod schedule;
mod send;
mod signer;
pub mod signing;
pub mod status;
mod wake;
pub mod worker;

pub use error::DeliveryError;
pub use fanout::{Federated, federate_posts};
pub use queue::enqueue;
pub use schedule::{Backoff, Clock, ManualClock, SystemClock, unix_ms};
pub(crate) use wake::WAKE;
pub use wake::wake_workers;
pub use worker::{Deliverer, Settings, Step, Workers};
