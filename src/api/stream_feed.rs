//! What the streaming API sends, found once for the whole server and handed to every open
//! stream through a `tokio::sync::broadcast` channel (`streaming` is one WebSocket). The feed
//! runs only while an app listens. It looks again when `Context::changed` wakes it (the inbox
//! accepted an activity, a post was published, an app wrote), and at most [`LOOK`] later
//! otherwise, for what another process wrote (`hortus publish` beside `hortus serve`): a look is
//! one small read on a reader connection (the page generation, which moves with every write to
//! what notifications are made of, and the newest home timeline entry). Only when that moved
//! are the new notifications, posts and entries read and rendered, once for every stream, on
//! the writer (rendering may number a new account or notification). A stream that falls
//! [`BUFFER`] changes behind is closed (`streaming`): a slow app never slows the feed.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::broadcast;

use super::error::ApiError;
use super::{entities, notifications};
use crate::posts::store::IdPage;
use crate::web::AppState;

/// Changes a stream may fall behind before it is closed.
pub const BUFFER: usize = 256;
/// The longest wait for what another process wrote.
const LOOK: Duration = Duration::from_secs(1);
/// Rows read per look; a look that fills a batch looks again at once.
const BATCH: u32 = 40;

/// Which streams a change goes to (`streaming::frames` picks the names a stream subscribed to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Notification,
    /// A new post of the owner's; `public` for public posts (the public streams).
    Post {
        public: bool,
    },
    /// The home timeline's new post or boost (`user` only).
    Home,
    /// An edit of the owner's post.
    Edited {
        public: bool,
    },
    Deleted,
}

/// One event, rendered once: Mastodon's `event` name and its payload (a JSON text, or the bare
/// id of a `delete`).
#[derive(Debug)]
pub struct Change {
    pub kind: Kind,
    pub event: &'static str,
    pub payload: String,
}

/// The feed of one server (`app::Shared` makes it).
pub struct Feed {
    sender: broadcast::Sender<Arc<Change>>,
    /// Whether the task runs; taken with the subscriber count so that a stream opening as the
    /// last one closes still gets a task.
    running: Mutex<bool>,
}

impl Default for Feed {
    fn default() -> Feed {
        Feed {
            sender: broadcast::channel(BUFFER).0,
            running: Mutex::new(false),
        }
    }
}

impl Feed {
    /// A stream's receiver; starts the feed when it is the first.
    pub fn subscribe(self: &Arc<Feed>, state: Arc<AppState>) -> broadcast::Receiver<Arc<Change>> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let rx = self.sender.subscribe();
        if !*running {
            *running = true;
            actix_web::rt::spawn(run(self.clone(), state));
        }
        rx
    }

    /// Whether the task should stop now (no stream left); marks it stopped if so.
    fn stop_if_unheard(&self) -> bool {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if self.sender.receiver_count() == 0 {
            *running = false;
            return true;
        }
        false
    }
}

async fn run(feed: Arc<Feed>, state: Arc<AppState>) {
    let mut cursor = match Cursor::now(&state).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "streaming: cannot start the feed");
            *feed.running.lock().unwrap_or_else(PoisonError::into_inner) = false;
            return;
        }
    };
    let mut seen = fingerprint(&state).await.ok();
    loop {
        tokio::select! {
            () = state.changed.notified() => {}
            () = tokio::time::sleep(LOOK) => {}
        }
        if feed.stop_if_unheard() {
            return;
        }
        let now = fingerprint(&state).await.ok();
        if now.is_some() && now == seen {
            continue;
        }
        seen = now;
        loop {
            match cursor.next(&state).await {
                Ok((changes, more)) => {
                    for c in changes {
                        // No receiver left: the next turn stops.
                        let _ = feed.sender.send(Arc::new(c));
                    }
                    if !more {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "streaming: reading events failed");
                    break;
                }
            }
        }
    }
}

/// What moves when anything a stream shows was written, read on a reader connection.
async fn fingerprint(state: &AppState) -> Result<(i64, i64), ApiError> {
    state
        .db
        .read(|conn| -> Result<_, ApiError> {
            let generation = crate::web::cache::generation_of(conn)?;
            let entry = crate::timeline::store::page(conn, None, 1)?
                .first()
                .map_or(0, |e| e.id);
            Ok((generation, entry))
        })
        .await
}

/// Where the feed stands: the newest notification, post and home timeline entry already sent.
struct Cursor {
    notification: i64,
    post: i64,
    entry: i64,
    /// Edits and deletions at or after this time are looked for; `told` remembers which
    /// (post, time) were sent, since times have whole seconds.
    changed: String,
    told: BTreeSet<(i64, String)>,
}

impl Cursor {
    /// The newest ids now: the feed sends what comes after.
    async fn now(state: &Arc<AppState>) -> Result<Cursor, ApiError> {
        let s = state.clone();
        let (notification, post, entry) = state
            .db
            .call(move |conn| -> Result<_, ApiError> {
                let notification = notifications::newest_id(conn, &s)?;
                let post = crate::posts::store::page_by_id(
                    conn,
                    IdPage {
                        limit: 1,
                        ..Default::default()
                    },
                )?
                .first()
                .map_or(0, |p| p.id);
                let entry = crate::timeline::store::page(conn, None, 1)?
                    .first()
                    .map_or(0, |e| e.id);
                Ok((notification, post, entry))
            })
            .await?;
        Ok(Cursor {
            notification,
            post,
            entry,
            changed: crate::times::now(),
            told: BTreeSet::new(),
        })
    }

    /// The changes since the last call, oldest first, and whether a batch was full (more wait).
    async fn next(&mut self, state: &Arc<AppState>) -> Result<(Vec<Change>, bool), ApiError> {
        let s = state.clone();
        let (since_n, since_p, since_e) = (self.notification, self.post, self.entry);
        let (since_changed, told) = (self.changed.clone(), self.told.clone());
        let checked = crate::times::now();
        let json = |v: &Value| v.to_string();
        let (out, n, p, e, sent, more) = state
            .db
            .call(move |conn| -> Result<_, ApiError> {
                let mut out = Vec::new();
                let mut sent = Vec::new();
                let (mut n, mut p, mut e) = (since_n, since_p, since_e);
                let owner = entities::owner_account(conn, &s, false)?;
                for (id, v) in notifications::after(conn, &s, since_n, &owner)? {
                    n = n.max(id);
                    out.push(Change {
                        kind: Kind::Notification,
                        event: "notification",
                        payload: json(&v),
                    });
                }
                // The oldest after the cursor (`min_id`; `since_id` would give the newest and
                // skip the rest of a burst).
                let page = IdPage {
                    min_id: Some(since_p),
                    limit: BATCH,
                    ..Default::default()
                };
                let posts = crate::posts::store::page_by_id(conn, page)?;
                let full_posts = posts.len() >= BATCH as usize;
                for post in posts.iter().rev() {
                    p = p.max(post.id);
                    let status = entities::status(conn, &s, post, &owner)?;
                    let status = super::quote::full(conn, &s, status)?;
                    out.push(Change {
                        kind: Kind::Post {
                            public: post.is_public_listed(),
                        },
                        event: "update",
                        payload: json(&status),
                    });
                }
                // The home timeline: what followed accounts posted and boosted since.
                // Oldest first, in windows of at most 5 batches of entries: a burst bigger than
                // that goes out over several looks, none skipped.
                let window =
                    crate::timeline::store::window_end(conn, since_e, 5 * i64::from(BATCH))?;
                let mut fresh = Vec::new();
                let mut before = window.map(|w| w + 1);
                loop {
                    let page = crate::timeline::store::page(conn, before, BATCH as usize)?;
                    let end = page.len() < BATCH as usize || page.iter().any(|x| x.id <= since_e);
                    for entry in page.into_iter().filter(|x| x.id > since_e) {
                        before = Some(entry.id);
                        fresh.push(entry);
                    }
                    if end {
                        break;
                    }
                }
                if let Some(w) = window {
                    e = e.max(w);
                }
                for entry in fresh.iter().rev() {
                    e = e.max(entry.id);
                    if let Some(status) = super::home::entry_status(conn, &s, entry)? {
                        out.push(Change {
                            kind: Kind::Home,
                            event: "update",
                            payload: json(&status),
                        });
                    }
                }
                let more = full_posts || window.is_some();
                // Edits and deletions of posts the feed had already seen.
                for (id, updated, deleted) in
                    crate::posts::store::changed_since(conn, &since_changed)?
                {
                    let stamp = deleted.clone().or(updated).unwrap_or_default();
                    if id > since_p || told.contains(&(id, stamp.clone())) {
                        continue;
                    }
                    sent.push((id, stamp));
                    if deleted.is_some() {
                        // Mastodon's `delete` payload is the bare id, not JSON.
                        out.push(Change {
                            kind: Kind::Deleted,
                            event: "delete",
                            payload: id.to_string(),
                        });
                    } else if let Some(post) = crate::posts::by_id(conn, id)? {
                        let status = entities::status(conn, &s, &post, &owner)?;
                        let status = super::quote::full(conn, &s, status)?;
                        out.push(Change {
                            kind: Kind::Edited {
                                public: post.is_public_listed(),
                            },
                            event: "status.update",
                            payload: json(&status),
                        });
                    }
                }
                Ok((out, n, p, e, sent, more))
            })
            .await?;
        self.notification = n;
        self.post = p;
        self.entry = e;
        // The next look starts at this one's time (whole seconds, so the same second is looked
        // at again); what was told at or after it is remembered so it is not told twice.
        self.told.extend(sent);
        self.told.retain(|(_, t)| *t >= checked);
        self.changed = checked;
        Ok((out, more))
    }
}
