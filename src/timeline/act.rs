//! The owner's actions on remote posts: like / unlike, boost / unboost, bookmark / unbookmark.
//! Likes and boosts are activities through the durable delivery queue (signed when sent);
//! bookmarks stay local. Each returns one line saying what it did; a refusal says why.

use rusqlite::Connection;
use serde_json::{Value, json};
use url::Url;

use super::store::{self, ActionKind};
use crate::activitypub::{self as ap, fetch};
use crate::context::Context;
use crate::conversation::{self, note::RemoteNote, store::names_note};
use crate::urls::same_origin;

#[derive(Debug, thiserror::Error)]
pub enum ActError {
    #[error(
        "not allowed: {host} is not a server you federate with; nothing was sent to it (`hortus allow add {host}` to open the gate)"
    )]
    NotAllowed { host: String },
    #[error("not found: {url} ({reason})")]
    NotFound { url: String, reason: String },
    #[error("not public: {url} is {visibility}; only public or unlisted posts can be boosted")]
    NotPublic { url: String, visibility: String },
    #[error(
        "not allowed by its author: {url} says who may {what} it (interactionPolicy.{rule}) and you are not among them; nothing was sent"
    )]
    Forbidden {
        url: String,
        what: &'static str,
        rule: &'static str,
    },
    #[error("{0}")]
    Usage(String),
    #[error("database error: {0}")]
    Db(String),
    #[error("queueing the activity failed: {0}")]
    Queue(String),
}

impl From<rusqlite::Error> for ActError {
    fn from(e: rusqlite::Error) -> Self {
        ActError::Db(e.to_string())
    }
}

impl From<crate::db::DbError> for ActError {
    fn from(e: crate::db::DbError) -> Self {
        ActError::Db(e.to_string())
    }
}

/// One of the six commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Like,
    Unlike,
    Boost,
    Unboost,
    Bookmark,
    Unbookmark,
}

impl Action {
    fn kind(self) -> ActionKind {
        match self {
            Action::Like | Action::Unlike => ActionKind::Like,
            Action::Boost | Action::Unboost => ActionKind::Boost,
            Action::Bookmark | Action::Unbookmark => ActionKind::Bookmark,
        }
    }
    fn undoes(self) -> bool {
        matches!(self, Action::Unlike | Action::Unboost | Action::Unbookmark)
    }
    fn past(self) -> &'static str {
        match self {
            Action::Like => "liked",
            Action::Unlike => "unliked",
            Action::Boost => "boosted",
            Action::Unboost => "unboosted",
            Action::Bookmark => "bookmarked",
            Action::Unbookmark => "unbookmarked",
        }
    }
}

/// A remote post the owner acts on.
#[derive(Debug, Clone)]
pub struct Target {
    pub id: String,
    pub author: String,
    pub visibility: String,
}

/// What an action did, for the one line (and `--json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Done {
    pub action: &'static str,
    pub object: String,
    /// `false` when there was nothing to do (already liked, never boosted…).
    pub changed: bool,
    /// The activity queued (Like, Announce or Undo), if any.
    pub activity: Option<String>,
    pub inboxes: usize,
}

impl Done {
    pub fn line(&self) -> String {
        let object = crate::text::strip_controls(&self.object);
        match (&self.activity, self.changed) {
            (_, false) => format!("nothing to do: {object} is already {}", self.state()),
            (Some(a), true) => format!(
                "{} {object}; {} queued for {} inbox(es), delivered by `hortus serve`",
                self.action,
                crate::text::strip_controls(a),
                self.inboxes
            ),
            (None, true) => format!("{} {object} (kept here only)", self.action),
        }
    }
    fn state(&self) -> &'static str {
        match self.action {
            "liked" => "liked",
            "boosted" => "boosted",
            "bookmarked" => "bookmarked",
            "unliked" => "not liked",
            "unboosted" => "not boosted",
            _ => "not bookmarked",
        }
    }
}

/// The stored remote post that `url` names (its id, or its page on its own server: issue 9).
fn stored(conn: &Connection, url: &str) -> rusqlite::Result<Option<Target>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, url, actor_id, visibility FROM remote_notes
         WHERE (id = ?1 OR url = ?1) AND deleted_at IS NULL",
    )?;
    let rows = stmt.query_map([url], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    for row in rows {
        let (id, page, author, visibility) = row?;
        if names_note(&id, page.as_deref(), url) {
            return Ok(Some(Target {
                id,
                author,
                visibility,
            }));
        }
    }
    Ok(None)
}

/// The post `url` names: from the database, or fetched from its own server (signed GET through
/// the guard) when that server is allowed. A refused server is never contacted.
pub async fn resolve(ctx: &Context, url: &str) -> Result<Target, ActError> {
    resolve_or_fetch(ctx, url, true).await
}

async fn resolve_or_fetch(ctx: &Context, url: &str, may_fetch: bool) -> Result<Target, ActError> {
    let url = url.trim();
    let Some(parsed) = crate::sanitize::http_url(url).and_then(|u| Url::parse(&u).ok()) else {
        return Err(ActError::Usage(format!(
            "{url} is not a post's URL: give its id or its page (https://…), as `hortus timeline` shows it"
        )));
    };
    if conversation::store::local_post_slug(&ctx.urls, parsed.as_str()).is_some() {
        return Err(ActError::Usage(format!("{url} is your own post")));
    }
    let lookup = url.to_string();
    if let Some(t) = ctx
        .db
        .read(move |c| stored(c, &lookup).map_err(ActError::from))
        .await?
    {
        return Ok(t);
    }
    if !may_fetch {
        return Err(ActError::NotFound {
            url: url.to_string(),
            reason: "Hortus has no such post".into(),
        });
    }
    if !ctx.policy.decide_url(&parsed).is_allowed() {
        return Err(ActError::NotAllowed {
            host: fetch::host_of(&parsed),
        });
    }
    let not_found = |reason: String| ActError::NotFound {
        url: url.to_string(),
        reason,
    };
    let (from, raw) = fetch::get_document(&fetch::Remote::of(ctx), parsed.as_str())
        .await
        .map_err(|e| not_found(e.to_string()))?;
    let note = RemoteNote::parse(&raw).ok_or_else(|| not_found("it is not a post".into()))?;
    // A page URL may answer with the post's id, but only on the same server (issue 9).
    if !same_origin(parsed.as_str(), &note.id) || !same_origin(from.as_str(), &note.id) {
        return Err(not_found(format!(
            "it answered with {}, on another server",
            note.id
        )));
    }
    let Some(author) = note
        .attributed_to
        .clone()
        .filter(|a| same_origin(parsed.as_str(), a))
    else {
        return Err(not_found("its author is not on its server".into()));
    };
    let host = fetch::host_of(&parsed);
    let (urls, kept, now) = (ctx.urls.clone(), note.clone(), crate::times::now());
    ctx.db
        .call(move |c| {
            conversation::store::receive_note_kept(c, &urls, &kept, &raw, &host, &now, true)
                .map_err(ActError::from)
        })
        .await?;
    Ok(Target {
        id: note.id,
        author,
        visibility: note.visibility.as_str().to_string(),
    })
}

/// Like, as Mastodon sends it (app/serializers/activitypub/like_serializer.rb), addressed to the
/// author.
fn like(ctx: &Context, t: &Target) -> Value {
    json!({
        "@context": ap::AS_CONTEXT,
        "id": ap::new_activity_id(&ctx.urls),
        "type": "Like",
        "actor": ctx.urls.actor(),
        "object": t.id,
        "to": [t.author],
    })
}

/// Announce, addressed as Mastodon addresses a reblog: public — to Public, cc the author and
/// the owner's followers; unlisted — to the followers, cc the author and Public.
fn announce(ctx: &Context, t: &Target) -> Value {
    let (to, cc) = if t.visibility == "public" {
        (json!([ap::PUBLIC]), json!([t.author, ctx.urls.followers()]))
    } else {
        (json!([ctx.urls.followers()]), json!([t.author, ap::PUBLIC]))
    };
    json!({
        "@context": ap::AS_CONTEXT,
        "id": ap::new_activity_id(&ctx.urls),
        "type": "Announce",
        "actor": ctx.urls.actor(),
        "published": crate::times::now(),
        "to": to,
        "cc": cc,
        "object": t.id,
    })
}

/// Runs one of the six commands on the post `url` names.
pub async fn act(ctx: &Context, action: Action, url: &str) -> Result<Done, ActError> {
    // An undo needs what was done, never a fetch.
    let target = resolve_or_fetch(ctx, url, !action.undoes()).await?;
    // A post stored before its server was refused: nothing new goes there.
    if !action.undoes()
        && action.kind() != ActionKind::Bookmark
        && let Ok(id) = Url::parse(&target.id)
        && !ctx.policy.decide_url(&id).is_allowed()
    {
        return Err(ActError::NotAllowed {
            host: fetch::host_of(&id),
        });
    }
    if action == Action::Boost && !matches!(target.visibility.as_str(), "public" | "unlisted") {
        return Err(ActError::NotPublic {
            url: url.to_string(),
            visibility: "followers-only or direct".into(),
        });
    }
    // GoToSocial's interaction policies (PROTOCOL.md §9): refused here rather than sent to be
    // rejected there.
    if let Some((what, rule)) = match action {
        Action::Like => Some(("like", "canLike")),
        Action::Boost => Some(("boost", "canAnnounce")),
        _ => None,
    } {
        let (id, urls) = (target.id.clone(), ctx.urls.clone());
        let forbidden = ctx
            .db
            .read(move |c| {
                crate::conversation::replying::forbidden_by_policy(c, &urls, &id, rule)
                    .map_err(ActError::from)
            })
            .await?;
        if forbidden {
            return Err(ActError::Forbidden {
                url: url.to_string(),
                what,
                rule,
            });
        }
    }
    // Only likes and boosts go out; the author's inbox, from the cache or fetched (allowed).
    let author_inbox = match action.kind() {
        ActionKind::Bookmark => None,
        _ => Some(
            fetch::actor(&fetch::Remote::of(ctx), &target.author, false)
                .await
                .map_err(|e| ActError::NotFound {
                    url: target.author.clone(),
                    reason: format!("the post's author: {e}"),
                })?
                .delivery_inbox()
                .to_string(),
        ),
    };
    let built = match action {
        Action::Like => Some(like(ctx, &target)),
        Action::Boost => Some(announce(ctx, &target)),
        _ => None,
    };
    record(ctx, action, target, author_inbox, built).await
}

/// One of the six commands on one of the owner's own posts (`object`: its object id), as
/// Mastodon allows them (app/services/favourite_service.rb, reblog_service.rb): a like and a
/// bookmark stay here, since the author is the owner and there is no one to tell; a boost is
/// an Announce to the followers, of a public or unlisted post only.
pub async fn act_own(
    ctx: &Context,
    action: Action,
    object: &str,
    visibility: &str,
) -> Result<Done, ActError> {
    if action == Action::Boost && !matches!(visibility, "public" | "unlisted") {
        return Err(ActError::NotPublic {
            url: object.to_string(),
            visibility: "followers-only".into(),
        });
    }
    let target = Target {
        id: object.to_string(),
        author: ctx.urls.actor(),
        visibility: visibility.to_string(),
    };
    let built = (action == Action::Boost).then(|| announce(ctx, &target));
    record(ctx, action, target, None, built).await
}

/// Records the action (or takes it back) and queues what it sends: to the author's inbox, and
/// for a boost to every follower too.
async fn record(
    ctx: &Context,
    action: Action,
    target: Target,
    author_inbox: Option<String>,
    built: Option<Value>,
) -> Result<Done, ActError> {
    let ctx_urls = ctx.urls.clone();
    let undo_for = move |a: &Value| undo_with(&ctx_urls, a);
    let kind = action.kind();
    let t = target.clone();
    let now = crate::times::now();
    let done = ctx
        .db
        .call(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let (changed, sent) = if action.undoes() {
                match store::take_action(&tx, kind, &t.id)? {
                    None => (false, None),
                    Some(Value::Null) => (true, None),
                    Some(original) => (true, Some(undo_for(&original))),
                }
            } else if store::add_action(&tx, kind, &t.id, &t.author, built.as_ref(), &now)? {
                (true, built)
            } else {
                (false, None)
            };
            let mut inboxes: Vec<String> = author_inbox.into_iter().collect();
            if kind == ActionKind::Boost {
                for inbox in crate::graph::followers::accepted_inboxes(&tx)? {
                    if !inboxes.contains(&inbox) {
                        inboxes.push(inbox);
                    }
                }
            }
            let mut queued = 0;
            if let Some(activity) = &sent {
                crate::delivery::enqueue(&tx, activity, &inboxes)
                    .map_err(|e| ActError::Queue(e.to_string()))?;
                queued = inboxes.len();
            }
            tx.commit()?;
            Ok::<_, ActError>(Done {
                action: action.past(),
                object: t.id.clone(),
                changed,
                activity: sent
                    .as_ref()
                    .and_then(|a| a.get("type").and_then(Value::as_str))
                    .map(str::to_string),
                inboxes: queued,
            })
        })
        .await?;
    crate::delivery::wake_workers();
    Ok(done)
}

/// Undo embedding the whole activity (Threads answered a bare id with 500), addressed as it was.
fn undo_with(urls: &crate::urls::Urls, activity: &Value) -> Value {
    let mut inner = activity.clone();
    if let Some(o) = inner.as_object_mut() {
        o.remove("@context");
    }
    json!({
        "@context": ap::AS_CONTEXT,
        "id": ap::new_activity_id(urls),
        "type": "Undo",
        "actor": urls.actor(),
        "to": activity.get("to").cloned().unwrap_or(Value::Null),
        "cc": activity.get("cc").cloned().unwrap_or(json!([])),
        "object": inner,
    })
}
