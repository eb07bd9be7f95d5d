//! Waking this process's idle workers when work is queued. Apart from the worker because the
//! queue calls it, and the worker calls the queue.

/// Wakes idle workers in this process: set by [`super::enqueue`]. Workers in another process poll.
pub(crate) static WAKE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Tells this process's idle workers that there is work (no-op when none are waiting).
pub fn wake_workers() {
    WAKE.notify_waiters();
}
