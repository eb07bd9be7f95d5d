//! Inbound conversation activities, after the inbox verified them (signature, policy, signer ==
//! actor, dedupe): replies, mentions and quotes (Create/Update/Delete of posts), likes and boosts
//! (Like, EmojiReact, Announce, and their Undo). Called from `inbox::effects`.

use serde_json::Value;

use super::note::RemoteNote;
use super::store::{self, Outcome, ReactionKind};
use crate::activitypub::fetch::{self, RemoteActor, id_of};
use crate::activitypub::incoming::Activity;
use crate::activitypub::refusal::InboxError;
use crate::context::Context;
use crate::times::rfc3339;
use crate::urls::same_origin;

fn now() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}

/// The object of a Create or Update, as a document we may trust: embedded when it is on the
/// sender's own server (the signature covers it, and a server speaks only for its own objects),
/// fetched from its origin when only its id was sent. `None`: not the sender's object.
async fn sender_object(
    ctx: &Context,
    signer: &RemoteActor,
    object: &Value,
) -> Result<Option<Value>, InboxError> {
    let Some(id) = id_of(object) else {
        return Ok(None);
    };
    if !same_origin(id, &signer.id) {
        tracing::debug!(%id, signer = %signer.id, "an object from another server; ignored");
        return Ok(None);
    }
    if object.is_object() && object.get("type").is_some() {
        return Ok(Some(object.clone()));
    }
    // Only the id: fetch it from its origin (policy-checked and signed, like every fetch).
    let (from, doc) = fetch::get_document(&fetch::Remote::of(ctx), id)
        .await
        .map_err(|e| InboxError::BadActivity(format!("cannot fetch the object: {e}")))?;
    if fetch::id_of(&doc) != Some(id) || !same_origin(from.as_str(), id) {
        return Err(InboxError::BadActivity(format!(
            "{id} did not answer with itself"
        )));
    }
    Ok(Some(doc))
}

/// Create or Update of a post: stored when it answers, quotes or mentions the owner.
pub async fn post(
    ctx: &Context,
    activity: &Activity,
    signer: &RemoteActor,
) -> Result<(), InboxError> {
    post_kept(ctx, activity, signer, false, |_, _, _| Ok(()))
        .await
        .map(|_| ())
}

/// [`post`], also storing the post when `keep` (its author is followed: the home timeline
/// shows it), and running `then` in the transaction that stored it. Returns what storing did;
/// `None` when it was not the sender's post or not a post at all.
pub async fn post_kept(
    ctx: &Context,
    activity: &Activity,
    signer: &RemoteActor,
    keep: bool,
    then: impl FnOnce(&rusqlite::Connection, &RemoteNote, Outcome) -> rusqlite::Result<()>
    + Send
    + 'static,
) -> Result<Option<Outcome>, InboxError> {
    let Some(raw) = sender_object(ctx, signer, &activity.object).await? else {
        return Ok(None);
    };
    let Some(note) = RemoteNote::parse(&raw) else {
        tracing::debug!(id = %activity.id, "not a post; ignored");
        return Ok(None);
    };
    // A reply's object must be the sender's own: attributedTo is the actor that signed.
    if note.attributed_to.as_deref() != Some(signer.id.as_str()) {
        tracing::debug!(id = %note.id, "a post attributed to someone else; ignored");
        return Ok(None);
    }
    let urls = ctx.urls.clone();
    let host = signer.host.clone();
    let outcome = ctx
        .db
        .call(move |c| {
            store::receive_note_then(c, &urls, &note, &raw, &host, &now(), keep, |c, o| {
                then(c, &note, o)
            })
            .map_err(InboxError::from)
        })
        .await?;
    tracing::info!(kind = %activity.kind, id = %activity.id, ?outcome, "conversation");
    Ok(Some(outcome))
}

/// Delete of a post (by id or Tombstone) by its author.
pub async fn delete(
    ctx: &Context,
    activity: &Activity,
    signer: &RemoteActor,
) -> Result<(), InboxError> {
    let Some(id) = id_of(&activity.object).map(str::to_string) else {
        return Ok(());
    };
    let sender = signer.id.clone();
    let raw = activity.raw.clone();
    let outcome = ctx
        .db
        .call(move |c| store::delete_note(c, &id, &sender, &raw, &now()).map_err(InboxError::from))
        .await?;
    if outcome == Outcome::Deleted {
        tracing::info!(id = %activity.id, "a reply was deleted by its author");
    }
    Ok(())
}

/// The actor deleted itself: its replies and reactions go with it.
pub fn forget_actor(conn: &rusqlite::Connection, actor: &str) -> rusqlite::Result<()> {
    store::forget_actor(conn, actor, &now())
}

/// Like, EmojiReact or Announce of one of our posts.
pub async fn react(
    ctx: &Context,
    activity: &Activity,
    signer: &RemoteActor,
) -> Result<(), InboxError> {
    // A group relaying a comment or vote (FEP-1b12) announces the activity, not a post.
    if activity.kind == "Announce" && super::relayed::is_relay(&activity.object) {
        return super::relayed::receive(ctx, activity, signer).await;
    }
    let Some(kind) = ReactionKind::of_activity(&activity.kind) else {
        return Ok(());
    };
    let Some(target) = id_of(&activity.object).map(str::to_string) else {
        return Ok(());
    };
    let urls = ctx.urls.clone();
    let actor = signer.id.clone();
    let id = activity.id.clone();
    let raw = activity.raw.clone();
    let outcome = ctx
        .db
        .call(move |c| {
            let Some(post) = store::local_post(c, &urls, &target)? else {
                return Ok(Outcome::Ignored);
            };
            store::add_reaction(c, kind, &actor, post.id, &id, &raw, &now())
                .map_err(InboxError::from)
        })
        .await?;
    tracing::info!(kind = %activity.kind, id = %activity.id, ?outcome, "reaction");
    Ok(())
}

/// Undo of a like or boost. `Ok(true)` when the Undo was about a reaction (handled), `Ok(false)`
/// when it names something else (a bare id that is no reaction of ours may be a Follow).
pub async fn undo_reaction(
    ctx: &Context,
    activity: &Activity,
    signer: &RemoteActor,
) -> Result<bool, InboxError> {
    let object = &activity.object;
    let kind = object
        .get("type")
        .and_then(Value::as_str)
        .and_then(ReactionKind::of_activity);
    let embedded = object.is_object();
    if embedded && kind.is_none() {
        return Ok(false);
    }
    if let Some(actor) = object.get("actor").and_then(id_of)
        && actor != signer.id
    {
        return Err(InboxError::BadActivity(
            "cannot undo someone else's reaction".into(),
        ));
    }
    let activity_id = id_of(object).map(str::to_string);
    let target = object.get("object").and_then(id_of).map(str::to_string);
    let urls = ctx.urls.clone();
    let actor = signer.id.clone();
    let removed = ctx
        .db
        .call(move |c| {
            let target = match (kind, target) {
                (Some(kind), Some(t)) => store::local_post(c, &urls, &t)?.map(|p| (kind, p.id)),
                _ => None,
            };
            store::remove_reaction(c, &actor, activity_id.as_deref(), target)
                .map_err(InboxError::from)
        })
        .await?;
    if removed > 0 {
        tracing::info!(id = %activity.id, "a reaction was undone");
    }
    Ok(embedded || removed > 0)
}
