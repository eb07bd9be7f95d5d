//! `hortus reply URL [-m TEXT]`: answer a post from the command line. It writes an ordinary
//! post file (the Markdown stays the source: edit it later and publish as usual) with
//! `in_reply_to` set and the author mentioned at the start, lets the owner write in `$EDITOR`
//! unless `-m` gave the text, and publishes it like `hortus publish`: `conversation::replying`
//! finds the author, mentions and delivers to them.
//!
//! Nothing is written, and no server contacted, when the URL is not an http(s) URL or its
//! server is not allowed; nothing is written when the post cannot be found.

use std::path::{Path, PathBuf};

use serde::Serialize;
use time::OffsetDateTime;

use super::{NewPost, ScaffoldError, new_post_with, toml_string};
use crate::app::{self, AppError, Site};
use crate::federation::Decision;
use crate::web::AppState;

#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Scaffold(#[from] ScaffoldError),
    #[error(transparent)]
    App(#[from] AppError),
}

/// What `hortus reply` did, printed as one line or as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Replied {
    /// The new post file.
    pub path: PathBuf,
    pub in_reply_to: String,
    /// The author's actor id; none when answering one's own post.
    pub author: Option<String>,
    /// `user@host`, when known.
    pub author_handle: Option<String>,
    /// The reply's page.
    pub url: String,
    /// Deliveries queued by this publish (the author, followers, other mentions).
    pub deliveries: usize,
}

impl Replied {
    pub fn line(&self) -> String {
        let to = match (&self.author_handle, &self.author) {
            (Some(h), _) => format!(" by @{}", crate::text::strip_controls(h)),
            (None, Some(a)) => format!(" by {}", crate::text::strip_controls(a)),
            (None, None) => String::new(),
        };
        format!(
            "{}: replied to {}{to}; published at {}, {} deliveries queued\n",
            self.path.display(),
            crate::text::strip_controls(&self.in_reply_to),
            self.url,
            self.deliveries
        )
    }
}

/// `url` as an absolute http(s) URL, or why not.
fn checked_url(url: &str) -> Result<url::Url, ReplyError> {
    url::Url::parse(url.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| {
            ReplyError::Refused(format!(
                "{} is not an http(s) URL: give the address of the post you answer",
                crate::text::strip_controls(url)
            ))
        })
}

/// Opens `$EDITOR` on `path` and waits for it. `EDITOR` may hold arguments (`code --wait`), so
/// it runs through `sh`, with the path passed as an argument, never spliced into the script.
fn edit(editor: &str, path: &Path) -> Result<(), ReplyError> {
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(path)
        .status()
        .map_err(|e| ReplyError::Refused(format!("cannot run $EDITOR ({editor}): {e}")))?;
    if !status.success() {
        return Err(ReplyError::Refused(format!(
            "$EDITOR ({editor}) failed ({status})"
        )));
    }
    Ok(())
}

/// Writes, edits and publishes the reply. `text` is `-m`'s; without it, `editor` (`$EDITOR`)
/// is opened on the file.
pub async fn reply(
    site: &Site,
    state: &AppState,
    url: &str,
    text: Option<&str>,
    editor: Option<&str>,
    now: OffsetDateTime,
) -> Result<Replied, ReplyError> {
    let target = checked_url(url)?;
    let url = target.to_string();
    if let Decision::Refused(reason) = state.policy.decide_url(&target) {
        return Err(ReplyError::Refused(format!(
            "not replying: {} is not allowed ({reason}), so Hortus never contacts it; `hortus \
             allow add {}` first",
            target.host_str().unwrap_or_default(),
            target.host_str().unwrap_or_default()
        )));
    }
    if text.is_none() && editor.is_none_or(|e| e.trim().is_empty()) {
        return Err(ReplyError::Refused(
            "give the text with -m TEXT, or set $EDITOR to write it there".into(),
        ));
    }
    let author = own_or_remote_author(state, &url).await?;
    // GoToSocial's canReply (PROTOCOL.md §9): refused here rather than sent to be rejected.
    let (urls, u) = (state.urls.clone(), url.clone());
    let forbidden = state
        .db
        .read(move |c| {
            crate::conversation::replying::forbidden_by_policy(c, &urls, &u, "canReply")
                .map_err(crate::db::DbError::from)
        })
        .await
        .map_err(AppError::from)?;
    if forbidden {
        return Err(ReplyError::Refused(format!(
            "not allowed by its author: {url} says who may reply (interactionPolicy.canReply) \
             and you are not among them; nothing was written or sent"
        )));
    }
    let handle = match &author {
        Some(a) => {
            let a = a.clone();
            state
                .db
                .read(move |c| {
                    crate::actors::handle_and_url(c, &a).map_err(crate::db::DbError::from)
                })
                .await
                .map_err(AppError::from)?
                .and_then(|(handle, _)| handle)
        }
        None => None,
    };
    let mention = handle
        .as_ref()
        .map(|h| format!("@{h} "))
        .unwrap_or_default();
    let opening = format!("{mention}{}\n", text.unwrap_or_default());
    let front_matter = format!("in_reply_to = {}\n", toml_string(&url));
    let name = match &handle {
        Some(h) => format!("reply to {}", h.split('@').next().unwrap_or(h)),
        None => "reply".into(),
    };
    let more = NewPost {
        name: Some(&name),
        front_matter: &front_matter,
        body: &opening,
    };
    let path = new_post_with(&site.dir, None, now, &more)?;
    if let (None, Some(editor)) = (text, editor) {
        let before = std::fs::read_to_string(&path).unwrap_or_default();
        let edited = edit(editor, &path).and_then(|()| {
            let after = std::fs::read_to_string(&path)
                .map_err(|e| ReplyError::Refused(format!("cannot read {}: {e}", path.display())))?;
            if after == before {
                return Err(ReplyError::Refused("the reply was left empty".into()));
            }
            Ok(())
        });
        if let Err(e) = edited {
            // Nothing half-written stays behind to be published by the next `hortus publish`.
            let _ = std::fs::remove_file(&path);
            return Err(ReplyError::Refused(format!("{e}: nothing published")));
        }
    }
    let published = app::publish(site, state).await?;
    // The slug the file gives (the owner may have set one in the editor), else its name's.
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let slug = crate::posts::front_matter::split(&text)
        .ok()
        .and_then(|(fm, _)| fm.slug)
        .unwrap_or_else(|| {
            crate::posts::slugify(
                path.file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default(),
            )
        });
    Ok(Replied {
        url: state.urls.post_page(&slug),
        path,
        in_reply_to: url,
        author,
        author_handle: handle,
        deliveries: published.queued.deliveries,
    })
}

/// The author of what `url` names (none for the owner's own live post), or why there is none.
async fn own_or_remote_author(state: &AppState, url: &str) -> Result<Option<String>, ReplyError> {
    if let Some(slug) = crate::conversation::store::local_post_slug(&state.urls, url) {
        let s = slug.clone();
        let live = state
            .db
            .read(move |c| crate::posts::by_slug(c, &s).map_err(crate::db::DbError::from))
            .await
            .map_err(AppError::from)?
            .is_some_and(|p| p.deleted_at.is_none());
        if !live {
            return Err(ReplyError::Refused(format!(
                "not found: you have no post {slug:?}"
            )));
        }
        return Ok(None);
    }
    crate::conversation::replying::author_of_target(state, url)
        .await
        .map_err(|e| ReplyError::Refused(format!("cannot reply to {url}: {e}")))
}
