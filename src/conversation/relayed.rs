//! Activities a group relays (FEP-1b12). A Lemmy, Mbin or PieFed community that received a
//! comment on, or a vote for, a post Hortus made in it forwards that activity to the post's
//! author wrapped in its own `Announce` (lemmy crates/apub/activities/src/community/announce.rs:
//! `AnnounceActivity::send` embeds the whole activity). The group signed the Announce, not the
//! comment: the embedded copy speaks for another server, so it is never trusted as sent. The
//! inner activity is fetched from its own origin (Lemmy serves activities at their ids), and its
//! object too when the fetched activity does not embed it; only then is it stored, as if its
//! author had sent it. Servers the policy refuses are never asked (`fetch::get_document`).

use serde_json::Value;
use url::Url;

use super::note::RemoteNote;
use super::store::{self, ReactionKind};
use crate::activitypub::fetch::{self, RemoteActor, id_of};
use crate::activitypub::incoming::Activity;
use crate::activitypub::refusal::InboxError;
use crate::context::Context;
use crate::times::rfc3339;
use crate::urls::same_origin;

/// Whether an Announce's object is an activity (a group relaying it) rather than a post (a boost).
pub fn is_relay(object: &Value) -> bool {
    object.is_object()
        && object.get("actor").is_some()
        && object.get("object").is_some()
        && object.get("type").and_then(Value::as_str).is_some()
}

/// Fetches `id` from its origin and checks that it answered with itself.
async fn from_origin(ctx: &Context, id: &str) -> Result<Value, String> {
    let (from, doc) = fetch::get_document(&fetch::Remote::of(ctx), id)
        .await
        .map_err(|e| e.to_string())?;
    if id_of(&doc) != Some(id) || !same_origin(from.as_str(), id) {
        return Err(format!("{id} did not answer with itself"));
    }
    Ok(doc)
}

/// Handles an Announce whose object is an activity (see [`is_relay`]). What cannot be verified
/// at its origin is acknowledged and left out, with a log line saying why.
pub async fn receive(
    ctx: &Context,
    announce: &Activity,
    signer: &RemoteActor,
) -> Result<(), InboxError> {
    let Some(id) = id_of(&announce.object).map(str::to_string) else {
        return Ok(());
    };
    let inner = match from_origin(ctx, &id).await {
        Ok(doc) => doc,
        Err(reason) => {
            tracing::info!(group = %signer.id, %id, %reason, "a relayed activity could not be verified at its origin; ignored");
            return Ok(());
        }
    };
    let kind = inner
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(actor) = inner.get("actor").and_then(id_of).map(str::to_string) else {
        return Ok(());
    };
    if !same_origin(&actor, &id) {
        tracing::info!(%id, %actor, "a relayed activity by an actor of another server; ignored");
        return Ok(());
    }
    match kind {
        "Create" | "Update" => post(ctx, &inner, &actor).await,
        "Like" | "EmojiReact" => like(ctx, &inner, &id, &actor).await,
        other => {
            // Dislikes, removals and moderation have no place in Hortus.
            tracing::debug!(kind = other, %id, "relayed activity acknowledged, not handled");
            Ok(())
        }
    }
}

/// A relayed comment: its object, from the fetched activity when it embeds one of the actor's
/// own server, else fetched by id; stored when it answers, quotes or mentions the owner.
async fn post(ctx: &Context, inner: &Value, actor: &str) -> Result<(), InboxError> {
    let Some(object_id) = inner.get("object").and_then(id_of).map(str::to_string) else {
        return Ok(());
    };
    if !same_origin(&object_id, actor) {
        return Ok(());
    }
    let embedded = inner
        .get("object")
        .filter(|o| o.is_object() && o.get("type").is_some())
        .cloned();
    let raw = match embedded {
        Some(o) => o,
        None => match from_origin(ctx, &object_id).await {
            Ok(doc) => doc,
            Err(reason) => {
                tracing::info!(id = %object_id, %reason, "a relayed post could not be fetched; ignored");
                return Ok(());
            }
        },
    };
    let Some(note) = RemoteNote::parse(&raw) else {
        return Ok(());
    };
    if note.id != object_id || note.attributed_to.as_deref() != Some(actor) {
        tracing::info!(id = %object_id, "a relayed post attributed to someone else; ignored");
        return Ok(());
    }
    let host = Url::parse(actor)
        .map(|u| fetch::host_of(&u))
        .unwrap_or_default();
    let urls = ctx.urls.clone();
    let now = rfc3339(time::OffsetDateTime::now_utc());
    let outcome = ctx
        .db
        .call(move |c| {
            store::receive_note(c, &urls, &note, &raw, &host, &now).map_err(InboxError::from)
        })
        .await?;
    tracing::info!(id = %object_id, ?outcome, "a comment relayed by a group");
    Ok(())
}

/// A relayed vote for one of our posts counts as a like from its voter.
async fn like(ctx: &Context, inner: &Value, id: &str, actor: &str) -> Result<(), InboxError> {
    let Some(target) = inner.get("object").and_then(id_of).map(str::to_string) else {
        return Ok(());
    };
    let urls = ctx.urls.clone();
    let (actor, id, raw) = (actor.to_string(), id.to_string(), inner.clone());
    let now = rfc3339(time::OffsetDateTime::now_utc());
    let outcome = ctx
        .db
        .call(move |c| {
            let Some(post) = store::local_post(c, &urls, &target)? else {
                return Ok(store::Outcome::Ignored);
            };
            store::add_reaction(c, ReactionKind::Like, &actor, post.id, &id, &raw, &now)
                .map_err(InboxError::from)
        })
        .await?;
    tracing::info!(?outcome, "a vote relayed by a group");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn relays_are_activities_boosts_are_posts() {
        let relayed = json!({"id": "https://l.example/activities/like/1", "type": "Like",
            "actor": "https://l.example/u/a", "object": "https://h.example/posts/x"});
        assert!(is_relay(&relayed));
        assert!(!is_relay(&json!("https://h.example/posts/x")));
        assert!(!is_relay(
            &json!({"id": "https://h.example/posts/x", "type": "Note", "attributedTo": "x"})
        ));
    }
}
