//! Giving freed heap back to the system (issue 15). glibc keeps what a program frees for reuse;
//! after a publish (every post file read, then dropped) or a burst of connections (their
//! buffers) `hortus serve` would otherwise keep several MiB it no longer uses for its whole life.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

/// How long the server must have answered nothing before it gives memory back: once after each
/// burst, never while requests keep coming (their buffers would only be allocated again).
pub const IDLE: Duration = Duration::from_secs(2);

/// Requests started, by every server of the process.
static REQUESTS: AtomicU64 = AtomicU64::new(0);

/// Middleware: counts a request, for [`give_back_when_idle`].
pub async fn count_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    REQUESTS.fetch_add(1, Ordering::Relaxed);
    next.call(req).await
}

/// Returns free heap pages to the system. Cheap enough to call after rare events: it walks the
/// allocator's free lists once.
pub fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the OS; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Runs until aborted: every [`IDLE`], gives freed memory back if requests came since the last
/// time and none in the last [`IDLE`].
pub async fn give_back_when_idle() {
    let mut idle = Idle::default();
    let mut tick = tokio::time::interval(IDLE);
    loop {
        tick.tick().await;
        if idle.observe(REQUESTS.load(Ordering::Relaxed)) {
            give_back_freed_memory();
        }
    }
}

/// When to trim, from the request count seen at each tick.
#[derive(Debug, Default)]
struct Idle {
    seen: u64,
    /// Requests came since the last trim.
    busy: bool,
}

impl Idle {
    /// Whether to trim now, given the request count at this tick.
    fn observe(&mut self, requests: u64) -> bool {
        if requests != self.seen {
            self.seen = requests;
            self.busy = true;
            return false;
        }
        std::mem::take(&mut self.busy)
    }
}

#[cfg(test)]
mod tests {
    use super::Idle;

    #[test]
    fn trims_once_after_each_burst_and_never_during_one() {
        let mut idle = Idle::default();
        // Nothing served yet: nothing to give back.
        assert!(!idle.observe(0));
        // Requests keep coming: no trim while they do.
        assert!(!idle.observe(5));
        assert!(!idle.observe(900));
        // A quiet tick after the burst: trim, once.
        assert!(idle.observe(900));
        assert!(!idle.observe(900));
        assert!(!idle.observe(900));
        // The next burst, then quiet again: one more trim.
        assert!(!idle.observe(901));
        assert!(idle.observe(901));
        assert!(!idle.observe(901));
    }
}
