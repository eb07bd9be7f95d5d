//! Inbound activities of the accounts the owner follows, after the verified inbox: their posts
//! (Create; Update and Delete go through `conversation`, which owns the rows), their boosts
//! (Announce) and the undo of a boost. Called from `inbox::effects`.
//!
//! Only accounts the owner follows (an accepted follow) fill the timeline; anything else goes on
//! to `conversation` as before (replies, mentions, likes and boosts of the owner's posts).

use serde_json::Value;
use url::Url;

use super::store;
use crate::activitypub::fetch::{self, RemoteActor, id_of};
use crate::activitypub::incoming::Activity;
use crate::activitypub::refusal::InboxError;
use crate::context::Context;
use crate::conversation::{self, note::RemoteNote, note::Visibility, store::Outcome};
use crate::times::rfc3339;
use crate::urls::same_origin;

fn now() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}

/// Whether the owner follows `actor` and it accepted.
async fn followed(ctx: &Context, actor: &str) -> Result<bool, InboxError> {
    let actor = actor.to_string();
    ctx.db
        .read(move |c| crate::graph::following::is_accepted(c, &actor).map_err(InboxError::from))
        .await
}

/// Whether a followed account's post enters the timeline. Not a post older than the retention
/// (it would be pruned at once, and a replayed old Create cannot bring back what retention
/// removed); not a direct message (addressed to the owner alone, or only to those it mentions),
/// which stays in `hortus inbox`, as Mastodon keeps it out of the home feed.
fn belongs(note: &RemoteNote, owner: &str, oldest: time::OffsetDateTime) -> bool {
    let direct = note.visibility == Visibility::Private
        && note
            .addressed
            .iter()
            .all(|a| a == owner || note.mentions.contains(a));
    !direct && note.published.is_none_or(|p| p >= oldest)
}

/// Create (and Update) of a post: stored through `conversation` (which keeps it when it concerns
/// the owner), kept as well when its author is followed, with its timeline entry in the same
/// transaction.
pub async fn post(
    ctx: &Context,
    activity: &Activity,
    signer: &RemoteActor,
) -> Result<(), InboxError> {
    let keep = followed(ctx, &signer.id).await?;
    let create = activity.kind == "Create";
    let owner = ctx.urls.actor();
    let oldest = time::OffsetDateTime::now_utc()
        - time::Duration::days(i64::from(ctx.config.timeline.keep_days));
    conversation::receive::post_kept(ctx, activity, signer, keep, move |c, note, o| {
        if keep && create && o != Outcome::Ignored && belongs(note, &owner, oldest) {
            let added = store::add_post(c, &note.id, &now())?;
            tracing::info!(id = %note.id, added, "timeline post");
        }
        Ok(())
    })
    .await?;
    // A quote of someone else's post: its stamp is checked on the quoted author's server.
    if keep
        && create
        && let Some(note) = RemoteNote::parse(&activity.object)
        && !note.quotes.is_empty()
    {
        super::quotes::record(ctx, &note, &activity.object).await?;
    }
    Ok(())
}

/// Announce by a followed account of a post that is not the owner's (those are reactions, in
/// `conversation`), nor a group relaying an activity (FEP-1b12, also `conversation`).
pub async fn announce(
    ctx: &Context,
    activity: &Activity,
    signer: &RemoteActor,
) -> Result<(), InboxError> {
    let object = &activity.object;
    let target = id_of(object).map(str::to_string);
    let ours = target
        .as_deref()
        .is_some_and(|t| conversation::store::local_post_slug(&ctx.urls, t).is_some());
    if ours || conversation::relayed::is_relay(object) || !followed(ctx, &signer.id).await? {
        return conversation::receive::react(ctx, activity, signer).await;
    }
    let Some(target) = target.as_deref().and_then(crate::sanitize::http_url) else {
        return Ok(());
    };
    let Ok(parsed) = Url::parse(&target) else {
        return Ok(());
    };
    // A post on a server the policy refuses: kept as a link only, and that server is never
    // asked for anything (not the post, not its author).
    if !ctx.policy.decide_url(&parsed).is_allowed() {
        let (booster, activity_id) = (signer.id.clone(), activity.id.clone());
        let added = ctx
            .db
            .call(move |c| {
                store::add_boost(c, &booster, &target, None, &activity_id, &now())
                    .map_err(InboxError::from)
            })
            .await?;
        tracing::info!(id = %activity.id, added, "a boost of a post on a refused server: kept as a link");
        return Ok(());
    }
    let Some(raw) = boosted_object(ctx, signer, object, &target).await? else {
        return Ok(());
    };
    let Some(note) = RemoteNote::parse(&raw) else {
        tracing::debug!(id = %activity.id, "a boost of something that is not a post; ignored");
        return Ok(());
    };
    // The post's author must be on the post's own server (a server speaks for its own).
    let Some(author) = note
        .attributed_to
        .clone()
        .filter(|a| same_origin(a, &note.id))
    else {
        tracing::info!(id = %note.id, "a boosted post attributed to another server; ignored");
        return Ok(());
    };
    if note.id != target || note.visibility == Visibility::Private {
        tracing::info!(id = %note.id, "a boosted post that is not what was named, or not public; ignored");
        return Ok(());
    }
    // The author's handle for the timeline (cached, or fetched once: its server is allowed).
    if let Err(e) = fetch::actor(&fetch::Remote::of(ctx), &author, false).await {
        tracing::debug!(%author, error = %e, "the boosted post's author could not be fetched");
    }
    let host = Url::parse(&author)
        .map(|u| fetch::host_of(&u))
        .unwrap_or_default();
    let (urls, booster, activity_id) = (ctx.urls.clone(), signer.id.clone(), activity.id.clone());
    let added = ctx
        .db
        .call(move |c| {
            let outcome =
                conversation::store::receive_note_kept(c, &urls, &note, &raw, &host, &now(), true)?;
            // A tombstone stays one: a boost cannot bring a deleted post back.
            let deleted = outcome == Outcome::Ignored
                && conversation::store::remote_note_named(c, &note.id)?.is_none();
            if deleted {
                return Ok(false);
            }
            store::add_boost(c, &booster, &note.id, Some(&note.id), &activity_id, &now())
                .map_err(InboxError::from)
        })
        .await?;
    tracing::info!(id = %activity.id, added, "timeline boost");
    Ok(())
}

/// The boosted post as a document we may trust: the embedded copy when it comes from the
/// booster's own server (the signature covers it, and its id is on that server), otherwise
/// fetched from its origin with a signed GET through the guard.
async fn boosted_object(
    ctx: &Context,
    signer: &RemoteActor,
    object: &Value,
    target: &str,
) -> Result<Option<Value>, InboxError> {
    if object.is_object() && object.get("type").is_some() && same_origin(target, &signer.id) {
        return Ok(Some(object.clone()));
    }
    match fetch::get_document(&fetch::Remote::of(ctx), target).await {
        Ok((from, doc)) if id_of(&doc) == Some(target) && same_origin(from.as_str(), target) => {
            Ok(Some(doc))
        }
        Ok(_) => {
            tracing::info!(%target, "a boosted post did not answer with itself; ignored");
            Ok(None)
        }
        Err(e) => {
            // The boost is acknowledged: the post may be gone, or its server down.
            tracing::info!(%target, error = %e, "a boosted post could not be fetched; ignored");
            Ok(None)
        }
    }
}

/// Undo of a boost by a followed account. `Ok(true)` when a timeline boost was removed.
pub async fn undo_boost(
    ctx: &Context,
    activity: &Activity,
    signer: &RemoteActor,
) -> Result<bool, InboxError> {
    let object = &activity.object;
    if object
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t != "Announce")
    {
        return Ok(false);
    }
    if let Some(actor) = object.get("actor").and_then(id_of)
        && actor != signer.id
    {
        return Ok(false);
    }
    let announce_id = id_of(object).map(str::to_string);
    let target = object.get("object").and_then(id_of).map(str::to_string);
    let booster = signer.id.clone();
    let removed = ctx
        .db
        .call(move |c| {
            store::remove_boost(c, &booster, announce_id.as_deref(), target.as_deref())
                .map_err(InboxError::from)
        })
        .await?;
    if removed > 0 {
        tracing::info!(id = %activity.id, "a timeline boost was undone");
    }
    Ok(removed > 0)
}
