//! FEP-8fcf, the receiving half. A peer's delivery may carry `Collection-Synchronization`: the
//! digest of the accounts here that it counts among its actor's followers. On a single-user
//! server that is one question: does the owner follow the signer? The digest is compared with
//! ours (the owner's id when the owner's Follow of the signer is accepted, nothing otherwise);
//! on a mismatch the partial collection is fetched (a signed GET through the guarded client,
//! the policy checked) and `following` repaired as Mastodon's `SynchronizeFollowersService`
//! does:
//! - listed, but the owner does not follow: `Undo(Follow)`, with a fresh Follow id since ours is
//!   gone (Mastodon does the same; peers match the Undo by actor and object);
//! - listed while our Follow is pending: the Accept was lost, the follow is accepted;
//! - accepted here but not listed: the peer lost our Follow, so it is pending again and sent
//!   once more (the owner still wants to follow; `hortus unfollow` is the way to stop).
//!
//! Nothing here fails the delivery that carried the header: it runs after the 202, in the
//! background, at most once per signer per [`MIN_INTERVAL`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;
use url::Url;

use crate::activitypub::fetch::{self, RemoteActor};
use crate::activitypub::follower_sync::{self as sync, SyncHeader};
use crate::activitypub::{self as ap};
use crate::context::Context;
use crate::graph::following;

/// A peer sends the header with every delivery; one check per signer this often is plenty.
pub const MIN_INTERVAL: Duration = Duration::from_secs(10 * 60);
/// Signers remembered by the interval limiter before it starts afresh.
const LIMITER_CAP: usize = 4096;
/// A partial collection listing more accounts than this is not from a peer that means well:
/// only ours can be in it, and there are two (the owner and the instance actor).
const MAX_ITEMS: usize = 1000;

/// What a repair did, for the log and the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair {
    /// Digests matched, or the header was ignored.
    Nothing,
    /// Listed as following, we do not: Undo(Follow) queued.
    Undone,
    /// Listed while pending: marked accepted.
    Accepted,
    /// Not listed while accepted: pending again, Follow queued again.
    Refollowed,
}

/// Runs [`check`] in the background unless the signer was checked lately.
pub fn spawn(ctx: Arc<Context>, signer: RemoteActor, header: String) {
    if !admit(&signer.id, Instant::now()) {
        return;
    }
    tokio::spawn(async move {
        match check(&ctx, &signer, &header).await {
            Ok(Repair::Nothing) => {}
            Ok(repair) => {
                tracing::info!(peer = %signer.id, ?repair, "FEP-8fcf: follow state repaired")
            }
            Err(e) => tracing::info!(peer = %signer.id, error = %e, "FEP-8fcf: header not used"),
        }
    });
}

fn admit(signer: &str, now: Instant) -> bool {
    static SEEN: OnceLock<Mutex<HashMap<String, Instant>>> = OnceLock::new();
    let mut seen = SEEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if seen
        .get(signer)
        .is_some_and(|t| now.duration_since(*t) < MIN_INTERVAL)
    {
        return false;
    }
    if seen.len() >= LIMITER_CAP {
        seen.clear();
    }
    seen.insert(signer.to_string(), now);
    true
}

/// Compares the header `value` sent by `signer` (already verified) with `following`, and repairs
/// a mismatch.
pub async fn check(ctx: &Context, signer: &RemoteActor, value: &str) -> Result<Repair, String> {
    let header = sync::parse_header(value)?;
    let signer_id = signer.id.clone();
    let (declared, state) = ctx
        .db
        .read(move |c| {
            Ok::<_, crate::db::DbError>((
                crate::actors::followers_collection(c, &signer_id)?,
                following::state_of(c, &signer_id)?,
            ))
        })
        .await
        .map_err(|e| e.to_string())?;
    check_header(&header, signer, declared.as_deref())?;
    let owner = ctx.urls.actor();
    let ours = if state.as_deref() == Some("accepted") {
        sync::digest([owner.as_str()])
    } else {
        sync::digest([])
    };
    if ours == header.digest {
        return Ok(Repair::Nothing);
    }
    let (_, doc) = fetch::get_document(&fetch::Remote::of(ctx), &header.url)
        .await
        .map_err(|e| e.to_string())?;
    let listed = listed_ids(&doc, &header.url)?.iter().any(|id| *id == owner);
    repair(ctx, signer, listed, state).await
}

/// The header speaks for the signer's own followers collection, on the signer's server: the
/// FEP requires `collectionId` to be the sender's followers and `url` on the same origin.
fn check_header(
    header: &SyncHeader,
    signer: &RemoteActor,
    declared: Option<&str>,
) -> Result<(), String> {
    let origin = |u: &str| Url::parse(u).ok().and_then(|u| sync::origin_of(&u));
    let signer_origin = origin(&signer.id).ok_or("the signer is not a URL")?;
    if let Some(declared) = declared
        && declared != header.collection_id
    {
        return Err("collectionId is not the signer's followers collection".into());
    }
    if origin(&header.collection_id).as_deref() != Some(&signer_origin)
        || origin(&header.url).as_deref() != Some(&signer_origin)
    {
        return Err("collectionId or url is not on the signer's server".into());
    }
    Ok(())
}

/// The ids of a partial collection answered inline (`orderedItems` or `items`, strings or
/// objects with an `id`), as Mastodon serves it. Its `id` must be the URL asked for.
fn listed_ids<'a>(doc: &'a Value, url: &str) -> Result<Vec<&'a str>, String> {
    if doc["id"].as_str() != Some(url) {
        return Err("the partial collection's id is not the url of the header".into());
    }
    let items = doc["orderedItems"]
        .as_array()
        .or_else(|| doc["items"].as_array())
        .ok_or("the partial collection lists no items inline")?;
    if items.len() > MAX_ITEMS {
        return Err(format!(
            "the partial collection lists {} items",
            items.len()
        ));
    }
    Ok(items
        .iter()
        .filter_map(crate::activitypub::incoming::id_of)
        .collect())
}

async fn repair(
    ctx: &Context,
    signer: &RemoteActor,
    listed: bool,
    state: Option<String>,
) -> Result<Repair, String> {
    let urls = ctx.urls.clone();
    let target = signer.id.clone();
    let inbox = signer.inbox.clone();
    let repair = ctx
        .db
        .call(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let repair = match (listed, state.as_deref()) {
                (true, None | Some("rejected")) => {
                    let undo = ap::undo_follow(&urls, &ap::new_activity_id(&urls), &target);
                    crate::delivery::queue::enqueue(&tx, &undo, &[inbox])?;
                    Repair::Undone
                }
                (true, Some("pending")) => {
                    following::set_state(&tx, &target, None, "accepted")?;
                    Repair::Accepted
                }
                (false, Some("accepted")) => {
                    let follow_id = ap::new_activity_id(&urls);
                    following::upsert_pending(&tx, &target, &follow_id, &crate::times::now())?;
                    let follow = ap::follow(&urls, &follow_id, &target);
                    crate::delivery::queue::enqueue(&tx, &follow, &[inbox])?;
                    Repair::Refollowed
                }
                _ => Repair::Nothing,
            };
            tx.commit()?;
            Ok::<_, crate::delivery::DeliveryError>(repair)
        })
        .await
        .map_err(|e| e.to_string())?;
    if repair != Repair::Nothing {
        crate::delivery::wake_workers();
    }
    Ok(repair)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(id: &str) -> RemoteActor {
        RemoteActor {
            id: id.into(),
            host: "p.example".into(),
            inbox: format!("{id}/inbox"),
            shared_inbox: None,
            handle: None,
            name: None,
            url: None,
            public_key_id: None,
            public_key_pem: None,
        }
    }

    #[test]
    fn a_header_about_another_server_or_collection_is_refused() {
        let signer = actor("https://p.example/users/bob");
        let ok = SyncHeader {
            collection_id: "https://p.example/users/bob/followers".into(),
            url: "https://p.example/users/bob/followers_synchronization".into(),
            digest: "0".repeat(64),
        };
        assert!(check_header(&ok, &signer, Some("https://p.example/users/bob/followers")).is_ok());
        assert!(check_header(&ok, &signer, None).is_ok());
        assert!(check_header(&ok, &signer, Some("https://p.example/users/eve/followers")).is_err());
        let elsewhere = SyncHeader {
            url: "https://other.example/sync".into(),
            ..ok.clone()
        };
        assert!(check_header(&elsewhere, &signer, None).is_err());
    }

    #[test]
    fn the_partial_collection_must_be_the_one_asked_for() {
        let url = "https://p.example/s";
        let doc = serde_json::json!({"id": url, "orderedItems": ["https://h.example/users/ü", {"id": "https://h.example/actor"}]});
        assert_eq!(
            listed_ids(&doc, url).unwrap(),
            vec!["https://h.example/users/ü", "https://h.example/actor"]
        );
        assert!(listed_ids(&doc, "https://p.example/other").is_err());
        assert!(listed_ids(&serde_json::json!({"id": url}), url).is_err());
    }

    #[test]
    fn one_check_per_signer_per_interval() {
        let t = Instant::now();
        assert!(admit("https://limiter.example/a", t));
        assert!(!admit(
            "https://limiter.example/a",
            t + Duration::from_secs(1)
        ));
        assert!(admit("https://limiter.example/b", t));
        assert!(admit("https://limiter.example/a", t + MIN_INTERVAL));
    }
}
