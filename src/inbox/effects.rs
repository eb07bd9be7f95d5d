//! What verified activities do. Each effect is idempotent: a repeated activity changes nothing
//! more, and anything Hortus does not handle is acknowledged and ignored.
//!
//! Follows and actor updates are handled here; conversations (replies, mentions, quotes,
//! likes, boosts, their edits, deletions and undos) and Move in `crate::conversation`.

use rusqlite::Connection;
use serde_json::Value;
use url::Url;

use super::{Activity, InboxError};
use crate::activitypub::fetch::RemoteActor;
use crate::activitypub::{self as ap, fetch};
use crate::context::Context;
use crate::conversation;
use crate::graph::{followers, following};

pub async fn apply(
    ctx: &Context,
    activity: &Activity,
    signer: &RemoteActor,
) -> Result<(), InboxError> {
    match activity.kind.as_str() {
        "Follow" => follow(ctx, activity, signer).await,
        "Undo" => undo(ctx, activity, signer).await,
        // FEP-044f answers to the owner's QuoteRequests first, then follows.
        "Accept" | "Reject" if conversation::quoting::answered(ctx, activity, signer).await? => {
            Ok(())
        }
        // GoToSocial's approvals of the owner's replies, then follows.
        "Accept" | "Reject" if conversation::approvals::answered(ctx, activity, signer).await? => {
            Ok(())
        }
        "Accept" | "Reject" => follow_answered(ctx, activity, signer).await,
        "Delete" => delete(ctx, activity, signer).await,
        "Update" => update(ctx, activity, signer).await,
        // Posts and boosts by followed accounts also fill the home timeline (src/timeline).
        "Create" => crate::timeline::receive::post(ctx, activity, signer).await,
        "Announce" => crate::timeline::receive::announce(ctx, activity, signer).await,
        "Like" | "EmojiReact" => conversation::receive::react(ctx, activity, signer).await,
        "Move" => conversation::moving::receive(ctx, activity, signer).await,
        "QuoteRequest" => conversation::consent::receive(ctx, activity, signer).await,
        other => {
            tracing::debug!(kind = other, id = %activity.id, "activity acknowledged, not handled");
            Ok(())
        }
    }
}

fn now() -> String {
    crate::times::now()
}

/// Someone follows the owner. Allowed servers get an Accept at once, unless the owner approves
/// followers by hand; then the follow waits in `hortus followers pending`. A repeated Follow
/// of an accepted follower gets the Accept again: that is how peers repair a lost Accept.
async fn follow(
    ctx: &Context,
    activity: &Activity,
    signer: &RemoteActor,
) -> Result<(), InboxError> {
    if fetch::id_of(&activity.object) != Some(ctx.urls.actor().as_str()) {
        return Ok(());
    }
    let manual = ctx.config.federation.manually_approves_followers;
    let follower = signer.clone();
    let follow_id = activity.id.clone();
    let urls = ctx.urls.clone();
    ctx.db
        .call(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let existing = followers::state_of(&tx, &follower.id).ok().flatten();
            let accept_now = match existing.as_deref() {
                Some("accepted") => true,
                // Suspended by the policy: the owner decides; never silently restored.
                Some("suspended") => false,
                _ => !manual,
            };
            let new_state = match existing.as_deref() {
                Some("suspended") => "suspended",
                _ if accept_now => "accepted",
                _ => "pending",
            };
            followers::upsert(&tx, &follower.id, &follow_id, new_state, &now())?;
            if accept_now {
                let accept = ap::answer_follow(&urls, "Accept", &follower.id, &follow_id);
                crate::delivery::enqueue(&tx, &accept, std::slice::from_ref(&follower.inbox))
                    .map_err(|e| InboxError::Internal(e.to_string()))?;
            }
            tx.commit()?;
            Ok::<_, InboxError>(())
        })
        .await?;
    crate::delivery::wake_workers();
    Ok(())
}

/// Undo of a Follow removes the follower. The Follow may be embedded or referenced by id.
/// Undo of a like or boost goes to conversations (a bare id is tried as a reaction first).
async fn undo(ctx: &Context, activity: &Activity, signer: &RemoteActor) -> Result<(), InboxError> {
    if crate::timeline::receive::undo_boost(ctx, activity, signer).await?
        || conversation::receive::undo_reaction(ctx, activity, signer).await?
    {
        return Ok(());
    }
    let object = &activity.object;
    let is_follow = object
        .get("type")
        .and_then(Value::as_str)
        .is_none_or(|t| t == "Follow");
    if !is_follow {
        return Ok(());
    }
    if let Some(actor) = object.get("actor").and_then(fetch::id_of)
        && actor != signer.id
    {
        return Err(InboxError::BadActivity(
            "cannot undo someone else's follow".into(),
        ));
    }
    let follow_id = fetch::id_of(object).map(str::to_string);
    let embedded = object.is_object();
    let signer_id = signer.id.clone();
    ctx.db
        .call(move |c| {
            // An embedded Follow names its actor (checked above); a bare id must match the one
            // we stored for this follower.
            if embedded {
                followers::remove(c, &signer_id)?;
            } else {
                followers::remove_follow(c, &signer_id, follow_id.as_deref())?;
            }
            Ok::<_, InboxError>(())
        })
        .await
}

/// Accept or Reject of the owner's Follow. Unknown ones are acknowledged and ignored.
async fn follow_answered(
    ctx: &Context,
    activity: &Activity,
    signer: &RemoteActor,
) -> Result<(), InboxError> {
    let follow_id = fetch::id_of(&activity.object).map(str::to_string);
    let new_state = if activity.kind == "Accept" {
        "accepted"
    } else {
        "rejected"
    };
    let signer_id = signer.id.clone();
    let changed = ctx
        .db
        .call(move |c| {
            Ok::<_, InboxError>(following::set_state(
                c,
                &signer_id,
                follow_id.as_deref(),
                new_state,
            )?)
        })
        .await?;
    if changed == 0 {
        tracing::debug!(id = %activity.id, "an Accept/Reject we cannot match; ignored");
    }
    Ok(())
}

fn forget_actor(c: &Connection, actor_id: &str) -> rusqlite::Result<()> {
    followers::remove(c, actor_id)?;
    following::remove(c, actor_id)?;
    crate::actors::forget(c, actor_id)?;
    Ok(())
}

/// Delete of an actor (by itself) forgets it entirely, its replies and reactions too. Other
/// deletions belong to conversations.
async fn delete(
    ctx: &Context,
    activity: &Activity,
    signer: &RemoteActor,
) -> Result<(), InboxError> {
    if fetch::id_of(&activity.object) != Some(signer.id.as_str()) {
        // A revoked QuoteAuthorization the owner held (FEP-044f), else a post.
        if conversation::quoting::stamp_deleted(ctx, activity, signer).await? {
            return Ok(());
        }
        return conversation::receive::delete(ctx, activity, signer).await;
    }
    let id = signer.id.clone();
    ctx.db
        .call(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            forget_actor(&tx, &id)?;
            conversation::receive::forget_actor(&tx, &id)?;
            tx.commit()?;
            Ok::<_, InboxError>(())
        })
        .await
}

/// Update of an actor by itself refreshes the cached profile, inbox and key; an Update of
/// anything else is an edit of a post (conversations).
async fn update(
    ctx: &Context,
    activity: &Activity,
    signer: &RemoteActor,
) -> Result<(), InboxError> {
    let object = &activity.object;
    if fetch::id_of(object) != Some(signer.id.as_str()) {
        return conversation::receive::post(ctx, activity, signer).await;
    }
    if !object.is_object() {
        return Ok(());
    }
    let from = Url::parse(&signer.id).map_err(|_| InboxError::BadActivity("actor id".into()))?;
    let updated = fetch::parse_actor(object, &from).map_err(InboxError::BadActivity)?;
    let raw = object.clone();
    ctx.db
        .call(move |c| fetch::store_actor(c, &updated, &raw).map_err(InboxError::from))
        .await
}
