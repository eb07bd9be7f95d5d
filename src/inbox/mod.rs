//! The inbox: every POST from another server passes here, in this order (cheapest refusal first):
//!
//! 1. body size (413, enforced by the extractor) and content type (415);
//! 2. the signature is parsed (401 if absent or malformed) and its keyId's host is checked
//!    against the federation policy (403 + a knock) — before any key is fetched;
//! 3. the key is fetched (cached; refetched once on failure) and the signature verified against
//!    the exact body (401);
//! 4. the body is parsed strictly; its actor must own the signing key (401) and not be an
//!    account the owner blocked (403, per actor: `graph::accounts`);
//! 5. duplicates (same activity id) are acknowledged and skipped; then the effect is applied.
//!
//! Verification happens at arrival, never in a worker: Threads' signatures expire in minutes.

pub mod effects;
pub mod follower_sync;
pub mod http;
pub mod probe;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::activitypub::fetch::{self, FetchError, RemoteActor, host_of};
pub use crate::activitypub::incoming::Activity;
use crate::activitypub::incoming::id_of;
use crate::context::Context;
use crate::federation::{self, Decision, KnockLimiter};
use crate::httpsig::{self, RequestParts, VerifyOptions};

pub use crate::activitypub::refusal::{InboxError, MAX_BODY};

/// What refused servers are recorded with: top-level `type` and `actor`, if the body has them.
pub(crate) fn knock_details(body: &[u8]) -> (Option<String>, Option<String>) {
    #[derive(Deserialize)]
    struct Peek {
        #[serde(rename = "type")]
        kind: Option<Value>,
        actor: Option<Value>,
    }
    match serde_json::from_slice::<Peek>(body) {
        Ok(p) => (
            p.actor.as_ref().and_then(id_of).map(str::to_string),
            p.kind.as_ref().and_then(Value::as_str).map(str::to_string),
        ),
        Err(_) => (None, None),
    }
}

pub fn acceptable_content_type(value: Option<&str>) -> bool {
    let Some(v) = value else { return false };
    let mime = v
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    matches!(
        mime.as_str(),
        "application/activity+json" | "application/ld+json" | "application/json"
    )
}

/// What a request that passed every check was.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// An activity, acted on (or a duplicate, acknowledged), with the signer and its FEP-8fcf
    /// `Collection-Synchronization` header when it sent one ([`follower_sync::spawn`]).
    Activity(Option<Box<(RemoteActor, String)>>),
    /// `hortus check`'s probe (see [`probe`]), with its nonce: no effect.
    Probe(String),
}

/// The rest of the pipeline for a request [`screen`] let through, body read: the signature
/// verified, the activity parsed, deduplicated and acted on.
pub async fn receive(
    ctx: &Context,
    req: &RequestParts<'_>,
    pending: &httpsig::PendingSignature,
) -> Result<Received, InboxError> {
    let signer = verify_signed(ctx, req, pending).await?;
    let body = req.body.unwrap_or_default();
    if let Some(nonce) = probe::recognise(&ctx.urls, &signer, body) {
        return Ok(Received::Probe(nonce));
    }
    let activity = Activity::parse(body)?;
    let sync = req
        .header("collection-synchronization")
        .map(|h| Box::new((signer.clone(), h.into_owned())));
    if activity.actor != signer.id {
        // A relayed or forwarded activity would need fetching back from its origin; Hortus
        // accepts only activities signed by their own actor.
        return Err(InboxError::ActorMismatch);
    }
    // A blocked account is refused per actor, once its signature proved who it is; checked in
    // the same trip to the database as the dedupe, so the inbox pays no extra hop. Its own
    // Delete still counts: taking back what one said is the author's right, and it only
    // empties rows that are hidden anyway.
    let id = activity.id.clone();
    let actor = (activity.kind != "Delete").then(|| activity.actor.clone());
    let first_time = ctx
        .db
        .call(move |c| {
            if let Some(actor) = actor
                && crate::graph::accounts::is_blocked(c, &actor)?
            {
                return Ok(None);
            }
            let n = c.execute(
                MARK_SEEN,
                rusqlite::params![id, crate::times::rfc3339(time::OffsetDateTime::now_utc())],
            )?;
            Ok::<_, InboxError>(Some(n == 1))
        })
        .await?;
    let Some(first_time) = first_time else {
        return Err(InboxError::AccountBlocked(activity.actor.clone()));
    };
    // A Follow sent again is how peers repair a lost Accept (PROTOCOL.md §6): its effect is
    // idempotent and answers with a fresh Accept, so it is never swallowed as a duplicate.
    if !first_time && activity.kind != "Follow" {
        tracing::debug!(id = %activity.id, "duplicate activity ignored");
        return Ok(Received::Activity(sync));
    }
    let result = effects::apply(ctx, &activity, &signer).await;
    if result.is_ok() {
        // Apps listening on the streaming API hear of it now.
        ctx.changed.notify_one();
    }
    if result.is_err() {
        // Let the peer retry: forget the id so the retry is processed.
        let id = activity.id.clone();
        let _ = ctx
            .db
            .call(move |c| c.execute(FORGET_SEEN, [id]).map_err(InboxError::from))
            .await;
    }
    result.map(|()| Received::Activity(sync))
}

/// Each activity id is processed once (primary key of inbox_seen).
pub(crate) const MARK_SEEN: &str =
    "INSERT OR IGNORE INTO inbox_seen (activity_id, received_at) VALUES (?1, ?2)";
/// An activity whose effects failed is forgotten, so the peer's retry is processed.
pub(crate) const FORGET_SEEN: &str = "DELETE FROM inbox_seen WHERE activity_id = ?1";
/// The hourly prune of old ids (index `inbox_seen_received`).
pub(crate) const PRUNE_SEEN: &str = "DELETE FROM inbox_seen WHERE received_at < ?1";

/// How long activity ids are remembered for deduplication. Peers retry for days at most.
pub const SEEN_RETENTION: std::time::Duration = std::time::Duration::from_secs(14 * 24 * 3600);

/// Forgets activity ids received before `cutoff`; returns how many.
pub fn prune_seen(
    conn: &rusqlite::Connection,
    cutoff: time::OffsetDateTime,
) -> rusqlite::Result<usize> {
    conn.execute(PRUNE_SEEN, [crate::times::rfc3339(cutoff)])
}

/// Prunes the dedupe table and the timeline once an hour, for as long as the server runs.
pub fn spawn_maintenance(ctx: std::sync::Arc<Context>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tick.tick().await;
            let cutoff = time::OffsetDateTime::now_utc() - SEEN_RETENTION;
            let pruned = ctx
                .db
                .call(move |c| prune_seen(c, cutoff).map_err(InboxError::from))
                .await;
            match pruned {
                Ok(n) if n > 0 => tracing::info!(pruned = n, "forgot old inbox activity ids"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not prune inbox activity ids"),
            }
            // `[timeline] keep_days`: the home timeline's storage stays bounded.
            match crate::timeline::prune(&ctx).await {
                Ok(p) if p.entries > 0 => {
                    tracing::info!(entries = p.entries, posts = p.posts, "pruned the timeline")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not prune the timeline"),
            }
        }
    })
}

/// Picks up allow/block changes made by the CLI in another process: one single-row read.
pub async fn refresh_policy(ctx: &Context) {
    let policy = ctx.policy.clone();
    let result = ctx
        .db
        .read(move |c| {
            policy
                .reload_if_changed(c)
                .map_err(|e| InboxError::Internal(e.to_string()))
        })
        .await;
    match result {
        Ok(true) => tracing::info!("federation lists changed; policy reloaded"),
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(error = %e, "could not reload the federation policy; keeping the old one")
        }
    }
}

/// How often one key may be fetched again because a signature did not verify with the cached
/// copy. Rotations are rare; requests signed with garbage are not, and each would otherwise
/// make Hortus fetch the named key from its (allowed) server again.
const REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// Whether `key_id` may be refetched now (and, if so, remembers that it was).
fn refetch_allowed(key_id: &str, now: Instant) -> bool {
    static LAST: OnceLock<Mutex<HashMap<String, Instant>>> = OnceLock::new();
    let mut last = LAST
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(at) = last.get(key_id)
        && now.saturating_duration_since(*at) < REFETCH_INTERVAL
    {
        return false;
    }
    if last.len() >= 10_000 {
        last.retain(|_, at| now.saturating_duration_since(*at) < REFETCH_INTERVAL);
    }
    last.insert(key_id.to_string(), now);
    true
}

/// How much of a refused server's body is read, to record what it tried (type and actor).
pub const KNOCK_PEEK: usize = 64 * 1024;

/// What the inbox may decide from the request head alone.
pub enum Screened {
    /// Signed by a server the policy allows: worth reading the body of, then verifying
    /// with [`receive`].
    Pass(httpsig::PendingSignature),
    /// Refused for what the head says (415, 401).
    Refuse(InboxError),
    /// Signed by a server the policy refuses: read no more than [`KNOCK_PEEK`], record the
    /// knock with [`knock`], answer 403.
    Knock(String),
}

/// Steps 1 and 2 before any of the body is read: the content type, the signature's syntax,
/// and the signer's server against the policy. A refused server costs a header parse and a
/// peek, not a megabyte of body.
pub async fn screen(ctx: &Context, head: &RequestParts<'_>) -> Screened {
    if !acceptable_content_type(head.header("content-type").as_deref()) {
        return Screened::Refuse(InboxError::ContentType);
    }
    gate(ctx, head).await
}

/// The policy's door, for POSTs and signed fetches alike: the signature parsed and its
/// keyId's host checked against the policy before any key is fetched (PROTOCOL.md §7).
async fn gate(ctx: &Context, head: &RequestParts<'_>) -> Screened {
    let pending = match httpsig::signature_key_id(head) {
        Ok(pending) => pending,
        Err(e) => return Screened::Refuse(e.into()),
    };
    let Ok(key_url) = Url::parse(pending.key_id()) else {
        return Screened::Refuse(
            httpsig::VerifyError::MalformedSignature("keyId is not a URL").into(),
        );
    };
    refresh_policy(ctx).await;
    match ctx.policy.decide_url(&key_url) {
        Decision::Refused(reason) => {
            let host = host_of(&key_url);
            // Debug only: the request's one log line is its refusal's (`refusal::log`).
            tracing::debug!(%host, %reason, "refused a request from a server that is not allowed");
            Screened::Knock(host)
        }
        _ => Screened::Pass(pending),
    }
}

/// Records that `host` knocked from `peer` (with what `peek` of its body shows), unless
/// `knocks` says it has written enough lately, and says so. The limiter is the inbox's, one per
/// running server (`app::server` makes it), shared by the inbox POST and signed fetches.
pub async fn knock(
    ctx: &Context,
    knocks: &KnockLimiter,
    host: String,
    peer: Option<std::net::IpAddr>,
    peek: &[u8],
) -> InboxError {
    if !knocks.admit(peer, &host, std::time::Instant::now()) {
        return InboxError::Refused(host);
    }
    let (actor, kind) = knock_details(peek);
    let h = host.clone();
    let recorded = ctx
        .db
        .call(move |c| {
            federation::record_knock(
                c,
                &h,
                actor.as_deref(),
                kind.as_deref(),
                time::OffsetDateTime::now_utc(),
            )
            .map_err(|e| InboxError::Internal(e.to_string()))
        })
        .await;
    if let Err(e) = recorded {
        tracing::warn!(error = %e, "could not record a knock");
    }
    InboxError::Refused(host)
}

/// Who signed this request, if anyone we talk to: signed fetch's check, for GETs.
pub async fn verify_request(
    ctx: &Context,
    knocks: &KnockLimiter,
    req: &RequestParts<'_>,
    peer: Option<std::net::IpAddr>,
) -> Result<RemoteActor, InboxError> {
    match gate(ctx, req).await {
        Screened::Pass(pending) => verify_signed(ctx, req, &pending).await,
        Screened::Refuse(e) => Err(e),
        Screened::Knock(host) => {
            Err(knock(ctx, knocks, host, peer, req.body.unwrap_or_default()).await)
        }
    }
}

/// The signature covers the Host header (see `httpsig::precheck`); that stops a request made
/// for another server only if the Host it covers is ours. Reverse proxies pass it through
/// unchanged (the generated nginx and Caddy configurations do), as signatures need anyway.
fn addressed_here(req: &RequestParts<'_>, base: &Url) -> Result<(), InboxError> {
    let host = req.header("host").unwrap_or_default();
    let shown = || host.chars().take(100).collect::<String>();
    if host.is_empty() || host.contains(['/', '\\', '@', '?', '#', ' ']) {
        return Err(InboxError::NotAddressedHere(shown()));
    }
    // Parsed as a URL of our scheme: case, IDNA and a spelled-out default port compare equal.
    let named = Url::parse(&format!("{}://{host}/", base.scheme()))
        .map_err(|_| InboxError::NotAddressedHere(shown()))?;
    if named.host() != base.host() || named.port_or_known_default() != base.port_or_known_default()
    {
        return Err(InboxError::NotAddressedHere(shown()));
    }
    Ok(())
}

/// Step 3, for a request the gate let through: the checks that need no key, then the key
/// (cached, or fetched with a signed GET), then the signature; the key is fetched again only
/// when the signature itself failed, at most once a minute per key.
async fn verify_signed(
    ctx: &Context,
    req: &RequestParts<'_>,
    pending: &httpsig::PendingSignature,
) -> Result<RemoteActor, InboxError> {
    let signer = verify_key(ctx, req, pending).await?;
    // The gate judged the keyId's server; what signed is the actor that owns the key. They must
    // be the same server, and it is the signer's that the policy judges (issue 9): a key id is
    // never a way in for a server the policy refuses.
    let key_host = Url::parse(pending.key_id()).map(|u| host_of(&u)).ok();
    let signer_url = Url::parse(&signer.id)
        .map_err(|_| InboxError::Key(format!("the signer {} is not a URL", signer.id)))?;
    if key_host.as_deref() != Some(host_of(&signer_url).as_str()) {
        return Err(InboxError::Key(format!(
            "the key {} belongs to {}, on another server",
            pending.key_id(),
            signer.id
        )));
    }
    if let Decision::Refused(reason) = ctx.policy.decide_url(&signer_url) {
        tracing::debug!(signer = %signer.id, %reason, "refused a signer the policy does not allow");
        return Err(InboxError::Refused(host_of(&signer_url)));
    }
    Ok(signer)
}

/// The owner's or the instance actor's own key, as the actor that signs with it.
fn own_signer(ctx: &Context, key_id: &str) -> Option<RemoteActor> {
    let urls = &ctx.urls;
    let (id, inbox, pem) = if key_id == urls.actor_key() {
        (urls.actor(), urls.inbox(), &ctx.actor_key.public_pem)
    } else if key_id == urls.instance_actor_key() {
        (
            urls.instance_actor(),
            urls.instance_inbox(),
            &ctx.instance_key.public_pem,
        )
    } else {
        return None;
    };
    Some(RemoteActor {
        id,
        host: host_of(&ctx.config.base_url),
        inbox,
        shared_inbox: Some(urls.shared_inbox()),
        handle: None,
        name: None,
        url: None,
        public_key_id: Some(key_id.to_string()),
        public_key_pem: Some(pem.clone()),
    })
}

/// The key and the signature: see [`verify_signed`].
async fn verify_key(
    ctx: &Context,
    req: &RequestParts<'_>,
    pending: &httpsig::PendingSignature,
) -> Result<RemoteActor, InboxError> {
    let opts = VerifyOptions {
        scheme: ctx.config.base_url.scheme(),
        ..VerifyOptions::default()
    };
    // Stale, replayed, tampered or under-signed: refused before anyone's key is fetched.
    httpsig::precheck(req, pending, (ctx.clock)(), &opts)?;
    addressed_here(req, &ctx.config.base_url)?;
    if let Some(own) = own_signer(ctx, pending.key_id()) {
        // Our own keys are known here: never fetched through our own proxy (or cached as remote).
        httpsig::verify_prechecked(
            req,
            pending,
            own.public_key_pem.as_deref().unwrap_or_default(),
            &opts,
        )?;
        return Ok(own);
    }
    let key_error = |e: FetchError| InboxError::Key(e.to_string());
    let signer = fetch::key_owner(&fetch::Remote::of(ctx), pending.key_id(), false)
        .await
        .map_err(key_error)?;
    let pem = signer.public_key_pem.clone().unwrap_or_default();
    match httpsig::verify_prechecked(req, pending, &pem, &opts) {
        Ok(_) => Ok(signer),
        Err(first) if !httpsig::key_may_have_rotated(&first) => Err(first.into()),
        Err(first) if !refetch_allowed(pending.key_id(), Instant::now()) => Err(first.into()),
        Err(first) => {
            // The key may have rotated: refetch once, then give up.
            let fresh = fetch::key_owner(&fetch::Remote::of(ctx), pending.key_id(), true)
                .await
                .map_err(key_error)?;
            let fresh_pem = fresh.public_key_pem.clone().unwrap_or_default();
            if fresh_pem == pem {
                return Err(first.into());
            }
            httpsig::verify_prechecked(req, pending, &fresh_pem, &opts)?;
            Ok(fresh)
        }
    }
}

#[cfg(test)]
mod query_plans;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_requests_addressed_to_our_host_pass() {
        let check = |base: &str, host: &str| {
            let headers = vec![("host".to_string(), host.to_string())];
            let req = RequestParts {
                method: "POST",
                path_and_query: "/inbox",
                headers: &headers,
                body: None,
            };
            addressed_here(&req, &Url::parse(base).unwrap()).is_ok()
        };
        assert!(check("https://example.net", "example.net"));
        assert!(check("https://example.net", "EXAMPLE.net:443"));
        assert!(check("http://127.0.0.2:8080", "127.0.0.2:8080"));
        assert!(check("https://xn--bcher-kva.example", "bücher.example"));
        for other in [
            "other.example",
            "example.net:8443",
            "example.net.evil.example",
            "evil.example@example.net",
            "example.net/x",
            "",
        ] {
            assert!(!check("https://example.net", other), "{other}");
        }
        assert!(!check("http://127.0.0.2:8080", "127.0.0.2:8081"));
    }

    #[test]
    fn prune_forgets_only_old_ids() {
        let conn = crate::db::open_in_memory().unwrap();
        let now = time::OffsetDateTime::now_utc();
        for (id, age_days) in [("https://a.example/1", 20), ("https://a.example/2", 1)] {
            conn.execute(
                "INSERT INTO inbox_seen (activity_id, received_at) VALUES (?1, ?2)",
                rusqlite::params![
                    id,
                    crate::times::rfc3339(now - time::Duration::days(age_days))
                ],
            )
            .unwrap();
        }
        assert_eq!(prune_seen(&conn, now - SEEN_RETENTION).unwrap(), 1);
        let left: String = conn
            .query_row("SELECT activity_id FROM inbox_seen", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, "https://a.example/2");
    }

    #[test]
    fn content_types() {
        assert!(acceptable_content_type(Some("application/activity+json")));
        assert!(acceptable_content_type(Some(
            "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\""
        )));
        assert!(acceptable_content_type(Some(
            "application/json; charset=utf-8"
        )));
        assert!(!acceptable_content_type(Some("text/html")));
        assert!(!acceptable_content_type(None));
    }

    #[test]
    fn knock_details_are_best_effort() {
        let (actor, kind) =
            knock_details(br#"{"type":"Follow","actor":{"id":"https://x.example/u"}}"#);
        assert_eq!(actor.as_deref(), Some("https://x.example/u"));
        assert_eq!(kind.as_deref(), Some("Follow"));
        assert_eq!(knock_details(b"garbage"), (None, None));
    }
}
