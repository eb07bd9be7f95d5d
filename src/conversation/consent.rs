//! Consent to quotes of the owner's posts (FEP-044f; PROTOCOL.md §9). A `QuoteRequest` names
//! one of the owner's posts (`object`) and the post that quotes it (`instrument`); the post's
//! policy (`activitypub::interaction`) answers it with an `Accept` whose `result` is a
//! `QuoteAuthorization` stamp, or a `Reject`. With `[site] quotes_need_approval` it waits for
//! `hortus quotes approve|reject`. Revoking deletes the stamp: its URL answers 410, the quote
//! stops counting under the post, and the quoting server gets a `Delete` (Mastodon then shows
//! the quote as removed). Only quotes with a live stamp count as quotes anywhere.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::store::local_post;
use crate::activitypub::fetch::{RemoteActor, id_of};
use crate::activitypub::incoming::Activity;
use crate::activitypub::interaction::{self, quote_policy};
use crate::activitypub::refusal::InboxError;
use crate::activitypub::{interaction::request_object, new_activity_id};
use crate::config::QuotePolicy;
use crate::context::Context;
use crate::urls::Urls;

/// One QuoteRequest and its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct QuoteRequest {
    pub token: String,
    pub request_id: String,
    pub post_id: i64,
    pub actor_id: String,
    pub actor_inbox: String,
    pub quoting: String,
    pub state: String,
    pub received_at: String,
}

const COLUMNS: &str =
    "token, request_id, post_id, actor_id, actor_inbox, quoting_object, state, received_at";

fn row(r: &rusqlite::Row) -> rusqlite::Result<QuoteRequest> {
    Ok(QuoteRequest {
        token: r.get(0)?,
        request_id: r.get(1)?,
        post_id: r.get(2)?,
        actor_id: r.get(3)?,
        actor_inbox: r.get(4)?,
        quoting: r.get(5)?,
        state: r.get(6)?,
        received_at: r.get(7)?,
    })
}

/// [`crate::urls::same_origin`], for http(s) ids only.
fn same_origin(a: &str, b: &str) -> bool {
    url::Url::parse(a).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        && crate::urls::same_origin(a, b)
}

/// An inbound `QuoteRequest` (the inbox verified the signature and that the signer is the
/// actor). The quoting post must be on the signer's own server: a server speaks only for its
/// own posts.
pub async fn receive(
    ctx: &Context,
    activity: &Activity,
    signer: &RemoteActor,
) -> Result<(), InboxError> {
    let Some(target) = id_of(&activity.object).map(str::to_string) else {
        return Err(InboxError::BadActivity(
            "QuoteRequest without object".into(),
        ));
    };
    let quoting = activity
        .raw
        .get("instrument")
        .and_then(id_of)
        .map(str::to_string)
        .ok_or_else(|| InboxError::BadActivity("QuoteRequest without instrument".into()))?;
    if quoting.len() > 2048 || !same_origin(&quoting, &signer.id) {
        return Err(InboxError::BadActivity(
            "the quoting post must be on the requester's own server".into(),
        ));
    }
    let ctx_urls = ctx.urls.clone();
    let config = ctx.config.clone();
    let signer = signer.clone();
    let request_id = activity.id.clone();
    ctx.db
        .call(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let Some(post) = local_post(&tx, &ctx_urls, &target)? else {
                tracing::debug!(%target, "a QuoteRequest for no post of ours; ignored");
                return Ok(());
            };
            if let Some(known) = by_request(&tx, &request_id)? {
                // A repeated request gets the same answer again (how peers repair a lost one).
                if known.state != "pending" {
                    send_answer(&tx, &ctx_urls, &known, &target)?;
                }
                tx.commit()?;
                return Ok(());
            }
            let allowed = match quote_policy(&config, &post) {
                QuotePolicy::Anyone => true,
                QuotePolicy::Followers => {
                    crate::graph::followers::state_of(&tx, &signer.id)?.as_deref()
                        == Some("accepted")
                }
                QuotePolicy::Nobody => false,
            };
            let state = match (allowed, config.site.quotes_need_approval) {
                (false, _) => "rejected",
                (true, true) => "pending",
                (true, false) => "accepted",
            };
            let req = QuoteRequest {
                token: uuid::Uuid::now_v7().simple().to_string(),
                request_id,
                post_id: post.id,
                actor_id: signer.id.clone(),
                actor_inbox: signer.inbox.clone(),
                quoting,
                state: state.into(),
                received_at: crate::times::now(),
            };
            tx.execute(
                &format!("INSERT INTO quote_requests ({COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)"),
                params![
                    req.token,
                    req.request_id,
                    req.post_id,
                    req.actor_id,
                    req.actor_inbox,
                    req.quoting,
                    req.state,
                    req.received_at
                ],
            )?;
            if state != "pending" {
                send_answer(&tx, &ctx_urls, &req, &target)?;
            }
            tx.commit()?;
            Ok::<_, InboxError>(())
        })
        .await?;
    crate::delivery::wake_workers();
    Ok(())
}

/// Queues the Accept (with the stamp) or Reject for `req`.
fn send_answer(
    conn: &Connection,
    urls: &Urls,
    req: &QuoteRequest,
    target: &str,
) -> Result<(), InboxError> {
    let object = request_object(&req.request_id, &req.actor_id, target, &req.quoting);
    let activity = if req.state == "accepted" {
        let stamp = interaction::stamp_url(urls, &req.token);
        interaction::answer(urls, &new_activity_id(urls), "Accept", object, Some(&stamp))
    } else {
        interaction::answer(urls, &new_activity_id(urls), "Reject", object, None)
    };
    crate::delivery::enqueue(conn, &activity, std::slice::from_ref(&req.actor_inbox))
        .map_err(|e| InboxError::Internal(e.to_string()))?;
    Ok(())
}

fn by_request(conn: &Connection, request_id: &str) -> rusqlite::Result<Option<QuoteRequest>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM quote_requests WHERE request_id = ?1"),
        [request_id],
        row,
    )
    .optional()
}

/// The stamp served at `/quote-authorizations/{token}`: `Ok(Some(doc))` while it stands,
/// `Err(())` once revoked (410 Gone), `Ok(None)` when there is none.
pub fn stamp(
    conn: &Connection,
    urls: &Urls,
    token: &str,
) -> rusqlite::Result<Result<Option<Value>, ()>> {
    let found: Option<(String, String, String)> = conn
        .query_row(
            "SELECT q.state, q.quoting_object, p.slug FROM quote_requests q
             JOIN posts p ON p.id = q.post_id WHERE q.token = ?1",
            [token],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    Ok(match found {
        Some((state, quoting, slug)) if state == "accepted" => Ok(Some(interaction::stamp(
            urls,
            token,
            &quoting,
            &urls.post_object(&slug),
        ))),
        Some((state, _, _)) if state == "revoked" => Err(()),
        _ => Ok(None),
    })
}

/// The tokens of every standing stamp, for the static export.
pub fn standing_tokens(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt =
        conn.prepare("SELECT token FROM quote_requests WHERE state = 'accepted' ORDER BY id")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

/// The tokens of every revoked stamp: the export answers them 410 Gone, as `serve` does.
pub fn revoked_tokens(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt =
        conn.prepare("SELECT token FROM quote_requests WHERE state = 'revoked' ORDER BY id")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

/// Requests waiting for the owner, newest first (listed by `hortus inbox`).
pub fn pending(conn: &Connection) -> rusqlite::Result<Vec<(QuoteRequest, String)>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {}, p.slug FROM quote_requests q JOIN posts p ON p.id = q.post_id
         WHERE q.state = 'pending' ORDER BY q.received_at DESC, q.id DESC",
        COLUMNS
            .split(", ")
            .map(|c| format!("q.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))?;
    let rows = stmt.query_map([], |r| Ok((row(r)?, r.get(8)?)))?;
    rows.collect()
}

/// `hortus quotes approve|reject|revoke URL`: URL is the quoting post, the stamp or the
/// request. Returns what was done, in words.
pub fn decide(conn: &mut Connection, urls: &Urls, verb: &str, url: &str) -> Result<String, String> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| e.to_string())?;
    let token = url.rsplit('/').next().unwrap_or_default();
    let (from, to) = match verb {
        "approve" => ("pending", "accepted"),
        "reject" => ("pending", "rejected"),
        "revoke" => ("accepted", "revoked"),
        other => {
            return Err(format!(
                "unknown action {other:?}\n  fix: use approve, reject or revoke"
            ));
        }
    };
    let found = tx
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM quote_requests
                 WHERE state = ?1 AND (quoting_object = ?2 OR request_id = ?2 OR token = ?3)
                 ORDER BY id DESC LIMIT 1"
            ),
            params![from, url, token],
            row,
        )
        .optional()
        .map_err(|e| e.to_string())?;
    let Some(mut req) = found else {
        return Err(format!(
            "no {from} quote of the owner's posts matches {url}\n  fix: run `hortus inbox` and copy the quoting post's URL from a quote_request (approve, reject) or quote (revoke) line"
        ));
    };
    tx.execute(
        "UPDATE quote_requests SET state = ?2, decided_at = ?3 WHERE token = ?1",
        params![req.token, to, crate::times::now()],
    )
    .map_err(|e| e.to_string())?;
    req.state = to.into();
    let slug: String = tx
        .query_row("SELECT slug FROM posts WHERE id = ?1", [req.post_id], |r| {
            r.get(0)
        })
        .map_err(|e| e.to_string())?;
    let target = urls.post_object(&slug);
    if to == "revoked" {
        let stamp = interaction::stamp_url(urls, &req.token);
        let delete = interaction::revoke(urls, &new_activity_id(urls), &stamp, &req.actor_id);
        crate::delivery::enqueue(&tx, &delete, std::slice::from_ref(&req.actor_inbox))
            .map_err(|e| e.to_string())?;
    } else {
        send_answer(&tx, urls, &req, &target).map_err(|e| e.to_string())?;
    }
    tx.commit().map_err(|e| e.to_string())?;
    Ok(format!(
        "{to}: {} quoting {}",
        req.quoting,
        urls.post_page(&slug)
    ))
}

/// SQL condition: remote note `alias` has a standing stamp for the post it quotes.
pub const AUTHORISED: &str = "EXISTS (SELECT 1 FROM quote_requests qr WHERE qr.quoting_object = {n}.id \
     AND qr.post_id = {n}.quote_post_id AND qr.state = 'accepted')";

/// [`AUTHORISED`] for the table alias `n`.
pub fn authorised(alias: &str) -> String {
    AUTHORISED.replace("{n}", alias)
}
