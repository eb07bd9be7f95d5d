//! Waiting for a burst of file events to end before acting on it: `hortus serve` publishes
//! when content/ is quiet (`app::watch_content`) and reads hortus.toml again when it is
//! (`app::reload`).

use std::time::{Duration, Instant};

/// How long watched files must be quiet before a change is acted on: an editor's save
/// (temporary file, rename, metadata) arrives as a burst of events.
pub const WATCH_QUIET: Duration = Duration::from_millis(400);

/// Runs `on_change` on a thread of its own once the events `rx` gets that `relevant` keeps have
/// been quiet for [`WATCH_QUIET`]. Ends when the watcher, and with it the sender, is dropped.
pub(super) fn debounced(
    name: &str,
    rx: std::sync::mpsc::Receiver<notify::Result<notify::Event>>,
    relevant: impl Fn(&notify::Result<notify::Event>) -> bool + Send + 'static,
    on_change: impl Fn() + Send + 'static,
) -> std::io::Result<()> {
    use std::sync::mpsc::RecvTimeoutError;
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            // `due`: when the watched files will have been quiet long enough; only relevant events
            // move it.
            let mut due: Option<Instant> = None;
            loop {
                let event = match due {
                    None => match rx.recv() {
                        Ok(event) => event,
                        Err(_) => return,
                    },
                    Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now()))
                    {
                        Ok(event) => event,
                        Err(RecvTimeoutError::Timeout) => {
                            due = None;
                            on_change();
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => return,
                    },
                };
                if relevant(&event) {
                    if let Err(e) = &event {
                        tracing::warn!(error = %e, "watching the site's files");
                    }
                    due = Some(Instant::now() + WATCH_QUIET);
                }
            }
        })?;
    Ok(())
}
