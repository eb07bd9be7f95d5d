//! The owner's quotes asking for consent (FEP-044f; PROTOCOL.md §9): a post with
//! `quote = "URL"` sends a `QuoteRequest` to the quoted author once its Create went out. Until
//! the answer the post shows "quote pending" (Mastodon shows it so too); an `Accept` brings the
//! `QuoteAuthorization` stamp, which the Note then carries as `quoteAuthorization` (sent again
//! as an `Update`); a `Reject`, or a `Delete` of the stamp, leaves only the `RE:` link.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use crate::activitypub::fetch::{RemoteActor, id_of};
use crate::activitypub::incoming::Activity;
use crate::activitypub::refusal::InboxError;
use crate::activitypub::{self as ap, Site, interaction};
use crate::context::Context;
use crate::urls::Urls;
use crate::urls::same_origin;

/// Queues a `QuoteRequest` for every live post that quotes a post whose author is known and was
/// not asked yet (or was asked about another post before an edit). Run after the posts'
/// Creates are queued, so the quoted server can fetch the quoting post. Returns how many.
pub fn request_own_quotes(conn: &mut Connection, urls: &Urls) -> rusqlite::Result<usize> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let todo: Vec<(i64, String, String)> = {
        let mut stmt = tx.prepare(
            "SELECT p.id, p.slug, p.quote FROM posts p
             LEFT JOIN own_quote_requests o ON o.post_id = p.id
             WHERE p.quote IS NOT NULL AND p.deleted_at IS NULL
               AND (o.post_id IS NULL OR o.quoted != p.quote)
             ORDER BY p.id",
        )?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?
    };
    let mut sent = 0;
    for (post_id, slug, quoted) in todo {
        if super::store::local_post_slug(urls, &quoted).is_some() {
            // Quoting oneself needs nobody's consent.
            continue;
        }
        let Some(author) = super::replying::known_author(&tx, urls, &quoted)? else {
            continue;
        };
        let Some(inbox) = crate::actors::inbox_for(&tx, Some(&author), "")? else {
            continue;
        };
        let id = ap::new_activity_id(urls);
        let request = json!({
            "@context": [ap::AS_CONTEXT, interaction::context_terms()],
            "id": id,
            "type": "QuoteRequest",
            "actor": urls.actor(),
            "to": [author],
            "object": quoted,
            "instrument": urls.post_object(&slug),
        });
        tx.execute(
            "INSERT INTO own_quote_requests (post_id, request_id, quoted, state, updated_at)
             VALUES (?1, ?2, ?3, 'pending', ?4)
             ON CONFLICT (post_id) DO UPDATE SET request_id = ?2, quoted = ?3,
                 state = 'pending', authorization = NULL, updated_at = ?4",
            params![post_id, id, quoted, crate::times::now()],
        )?;
        crate::delivery::enqueue(&tx, &request, &[inbox])
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        sent += 1;
    }
    tx.commit()?;
    if sent > 0 {
        crate::delivery::wake_workers();
    }
    Ok(sent)
}

/// Posts whose quote its author's policy forbids (FEP-044f `canQuote`, as fetched when the
/// author was looked up, or as the post came here): `(source_path, quoted URL)`. Posts already
/// asked about that same URL are left to their answer. `hortus publish` refuses these.
pub fn forbidden_quotes(conn: &Connection, urls: &Urls) -> rusqlite::Result<Vec<(String, String)>> {
    let todo: Vec<(String, String)> = {
        let mut stmt = conn.prepare(
            "SELECT p.source_path, p.quote FROM posts p
             LEFT JOIN own_quote_requests o ON o.post_id = p.id
             WHERE p.quote IS NOT NULL AND p.deleted_at IS NULL
               AND (o.post_id IS NULL OR o.quoted != p.quote)
             ORDER BY p.id",
        )?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?
    };
    let mut out = Vec::new();
    for (path, quoted) in todo {
        if super::store::local_post_slug(urls, &quoted).is_some() {
            continue;
        }
        if super::replying::forbidden_by_policy(conn, urls, &quoted, "canQuote")? {
            out.push((path, quoted));
        }
    }
    Ok(out)
}

/// An `Accept` or `Reject` of one of the owner's QuoteRequests, from the quoted post's server.
/// `Ok(false)`: not an answer to a QuoteRequest of ours (the caller tries follows next).
pub async fn answered(
    ctx: &Context,
    activity: &Activity,
    signer: &RemoteActor,
) -> Result<bool, InboxError> {
    let Some(request_id) = id_of(&activity.object).map(str::to_string) else {
        return Ok(false);
    };
    let accepted = activity.kind == "Accept";
    let stamp = activity
        .raw
        .get("result")
        .and_then(id_of)
        .map(str::to_string);
    if let (true, Some(stamp)) = (accepted, &stamp) {
        if stamp.len() > 2048 || !same_origin(stamp, &signer.id) {
            return Err(InboxError::BadActivity(
                "an Accept of a QuoteRequest needs a result on its own server".into(),
            ));
        }
        verify_stamp(ctx, &request_id, stamp).await?;
    }
    let signer_id = signer.id.clone();
    let site_config = ctx.config.clone();
    let urls = ctx.urls.clone();
    let changed = ctx
        .db
        .call(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let found: Option<(i64, String)> = tx
                .query_row(
                    "SELECT post_id, quoted FROM own_quote_requests WHERE request_id = ?1",
                    [&request_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((post_id, quoted)) = found else {
                return Ok(None);
            };
            // Only the quoted post's own server speaks for it.
            if !same_origin(&quoted, &signer_id) {
                return Err(InboxError::BadActivity(
                    "an answer to a QuoteRequest from another server".into(),
                ));
            }
            let (state, authorization) = match (accepted, stamp) {
                (true, Some(s)) if s.len() <= 2048 && same_origin(&s, &signer_id) => {
                    ("accepted", Some(s))
                }
                (true, _) => {
                    return Err(InboxError::BadActivity(
                        "an Accept of a QuoteRequest needs a result on its own server".into(),
                    ));
                }
                (false, _) => ("rejected", None),
            };
            tx.execute(
                "UPDATE own_quote_requests SET state = ?2, authorization = ?3, updated_at = ?4
                 WHERE post_id = ?1",
                params![post_id, state, authorization, crate::times::now()],
            )?;
            let site = Site {
                config: &site_config,
                urls: &urls,
            };
            send_update(&tx, &site, post_id, "quote")?;
            tx.commit()?;
            Ok::<_, InboxError>(Some(()))
        })
        .await?;
    if changed.is_some() {
        crate::delivery::wake_workers();
    }
    Ok(changed.is_some())
}

/// The stamp an `Accept` of the owner's QuoteRequest `request_id` points at, dereferenced on
/// the quoted author's server (a signed GET, allowed servers only) rather than taken on the
/// Accept's word (FEP-044f): a `QuoteAuthorization` at that id, attributed to the quoted
/// author, for our post quoting theirs. `Ok` also when the request is not ours (the caller
/// then finds nothing to do).
async fn verify_stamp(ctx: &Context, request_id: &str, stamp: &str) -> Result<(), InboxError> {
    let (urls, id) = (ctx.urls.clone(), request_id.to_string());
    let asked = ctx
        .db
        .read(move |c| -> Result<_, InboxError> {
            let row: Option<(String, String)> = c
                .query_row(
                    "SELECT p.slug, o.quoted FROM own_quote_requests o
                     JOIN posts p ON p.id = o.post_id WHERE o.request_id = ?1",
                    [&id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((slug, quoted)) = row else {
                return Ok(None);
            };
            let author = super::replying::known_author(c, &urls, &quoted)?;
            Ok(Some((urls.post_object(&slug), quoted, author)))
        })
        .await?;
    let Some((ours, quoted, author)) = asked else {
        return Ok(());
    };
    let bad =
        |why: String| InboxError::BadActivity(format!("the QuoteAuthorization {stamp} {why}"));
    let (_, doc) =
        crate::activitypub::fetch::get_document(&crate::activitypub::fetch::Remote::of(ctx), stamp)
            .await
            .map_err(|e| bad(format!("cannot be fetched: {e}")))?;
    let Some(author) = author else {
        return Err(bad(
            "does not grant this quote: the quoted post's author is unknown".into(),
        ));
    };
    crate::activitypub::quote::check_stamp(&doc, stamp, &author, &ours, &quoted)
        .map_err(|why| bad(format!("does not grant this quote: {why}")))?;
    Ok(())
}

/// A `Delete` of a stamp the owner holds: the quoted author revoked consent. `Ok(false)`: not
/// one of ours.
pub async fn stamp_deleted(
    ctx: &Context,
    activity: &Activity,
    signer: &RemoteActor,
) -> Result<bool, InboxError> {
    let Some(stamp) = id_of(&activity.object).map(str::to_string) else {
        return Ok(false);
    };
    if !same_origin(&stamp, &signer.id) {
        return Ok(false);
    }
    let site_config = ctx.config.clone();
    let urls = ctx.urls.clone();
    let done = ctx
        .db
        .call(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let post_id: Option<i64> = tx
                .query_row(
                    "SELECT post_id FROM own_quote_requests
                     WHERE authorization = ?1 AND state = 'accepted'",
                    [&stamp],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(post_id) = post_id else {
                return Ok(false);
            };
            tx.execute(
                "UPDATE own_quote_requests SET state = 'revoked', updated_at = ?2 WHERE post_id = ?1",
                params![post_id, crate::times::now()],
            )?;
            let site = Site { config: &site_config, urls: &urls };
            send_update(&tx, &site, post_id, "quote")?;
            tx.commit()?;
            Ok::<_, InboxError>(true)
        })
        .await?;
    if done {
        crate::delivery::wake_workers();
    }
    Ok(done)
}

/// Queues an `Update` of the post to everyone its Create reached: it now carries the stamp, or
/// only the `RE:` link (or, for a reply, its `approvedBy`). `why` names it in the id.
pub(super) fn send_update(
    conn: &Connection,
    site: &Site,
    post_id: i64,
    why: &str,
) -> Result<(), InboxError> {
    let Some(post) = crate::posts::by_id(conn, post_id)?.filter(|p| p.deleted_at.is_none()) else {
        return Ok(());
    };
    let id = format!(
        "{}#update-{why}-{}",
        site.urls.post_object(&post.slug),
        uuid::Uuid::now_v7().simple()
    );
    let activity: Value = ap::update(site, &post, &id);
    let internal = |e: crate::delivery::DeliveryError| InboxError::Internal(e.to_string());
    // A reply waiting for approval still goes to its author alone (GoToSocial).
    let inboxes = match super::replying::audience(conn, site.urls, &post)? {
        Some(only) => only,
        None => crate::delivery::fanout::recipients(conn, &post).map_err(internal)?,
    };
    crate::delivery::enqueue(conn, &activity, &inboxes).map_err(internal)?;
    Ok(())
}
