//! Notifications and follow requests from what Hortus already stores: the followers, pending
//! follows, likes and boosts `hortus inbox` lists (`conversation::notifications`), with ids of
//! their own (`api_notifications`, given oldest first, so newer means larger) and dismissals.
//! Replies and mentions are `mention`, quotes `quote`, their status the remote post
//! (`remote_status`); `update` is an edit of a post the owner liked, boosted or bookmarked
//! (`timeline::store::edited_after_action`), one per edit.

use actix_web::{HttpRequest, HttpResponse, web};
use rusqlite::{Connection, params};
use serde_json::{Value, json};

use super::auth;
use super::entities;
use super::error::{ApiError, ApiResult};
use super::form::params;
use super::paging;
use super::remote;
use crate::web::AppState;

type State = web::Data<std::sync::Arc<AppState>>;

/// How many of `hortus inbox`'s newest entries are read for one answer.
const WINDOW: usize = 1000;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/notifications", web::get().to(index))
        .route("/v1/notifications/clear", web::post().to(clear))
        .route("/v1/notifications/{id}", web::get().to(show))
        .route("/v1/notifications/{id}/dismiss", web::post().to(dismiss))
        .route("/v1/follow_requests", web::get().to(follow_requests))
        .route(
            "/v1/follow_requests/{id}/authorize",
            web::post().to(move |r, i, s| answer(r, i, s, true)),
        )
        .route(
            "/v1/follow_requests/{id}/reject",
            web::post().to(move |r, i, s| answer(r, i, s, false)),
        );
}

/// Mastodon's type for a kind `hortus inbox` shows; `None` for what apps have no type for yet.
fn mastodon_type(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "follower" => "follow",
        "follow_request" => "follow_request",
        "like" => "favourite",
        "boost" => "reblog",
        "reply" | "mention" => "mention",
        "quote" => "quote",
        _ => return None,
    })
}

/// One notification with its id, newest first; dismissed ones left out.
struct Item {
    id: i64,
    kind: &'static str,
    at: String,
    actor: String,
    post: Option<String>,
    /// The remote post of a mention or quote.
    object: Option<String>,
}

/// The id of a notification (given on first sight) and whether it was dismissed.
fn numbered(conn: &Connection, key: &str) -> rusqlite::Result<(i64, bool)> {
    conn.execute(
        "INSERT INTO api_notifications (key) VALUES (?1) ON CONFLICT (key) DO NOTHING",
        [key],
    )?;
    conn.query_row(
        "SELECT id, dismissed FROM api_notifications WHERE key = ?1",
        [key],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

fn items(conn: &Connection, state: &AppState) -> Result<Vec<Item>, ApiError> {
    let all = crate::conversation::notifications::list(conn, &state.urls, WINDOW)
        .map_err(ApiError::internal)?;
    let mut out = Vec::new();
    // Oldest first, so ids given now grow with time.
    for n in all.iter().rev() {
        let Some(kind) = mastodon_type(&n.kind) else {
            continue;
        };
        let mut key = format!("{kind}\n{}\n{}", n.actor, n.post.as_deref().unwrap_or(""));
        // One account may answer or quote the same post many times: one notification each.
        let object = matches!(kind, "mention" | "quote")
            .then(|| n.object.clone())
            .flatten();
        if let Some(o) = &object {
            key.push('\n');
            key.push_str(o);
        }
        let (id, dismissed) = numbered(conn, &key)?;
        if !dismissed {
            out.push(Item {
                id,
                kind,
                at: n.at.clone(),
                actor: n.actor.clone(),
                post: n.post.clone(),
                object,
            });
        }
    }
    for (note, author, at) in crate::timeline::store::edited_after_action(conn, WINDOW)?
        .into_iter()
        .rev()
    {
        let key = format!("update\n{author}\n\n{note}\n{at}");
        let (id, dismissed) = numbered(conn, &key)?;
        if !dismissed {
            out.push(Item {
                id,
                kind: "update",
                at,
                actor: author,
                post: None,
                object: Some(note),
            });
        }
    }
    out.sort_by_key(|i| std::cmp::Reverse(i.id));
    Ok(out)
}

/// The newest notification id now (0 when there is none).
pub fn newest_id(conn: &Connection, state: &AppState) -> Result<i64, ApiError> {
    Ok(items(conn, state)?.first().map_or(0, |i| i.id))
}

/// Notifications newer than `since`, oldest first, rendered (for the streaming API).
pub fn after(
    conn: &Connection,
    state: &AppState,
    since: i64,
    owner: &Value,
) -> Result<Vec<(i64, Value)>, ApiError> {
    let mut out = Vec::new();
    for item in items(conn, state)?.iter().rev().filter(|i| i.id > since) {
        if let Some(v) = render(conn, state, item, owner)? {
            out.push((item.id, v));
        }
    }
    Ok(out)
}

fn render(
    conn: &Connection,
    state: &AppState,
    item: &Item,
    owner: &Value,
) -> Result<Option<Value>, ApiError> {
    let account_id = remote::id_for(conn, &item.actor)?;
    let Some(account) = remote::account(conn, account_id, &item.actor)? else {
        return Ok(None);
    };
    let status = match (&item.object, &item.post) {
        (Some(note), _) => match super::remote_status::status(conn, state, note)? {
            Some(status) => status,
            None => return Ok(None),
        },
        (None, Some(slug)) => {
            match crate::posts::by_slug(conn, slug)?.filter(|p| p.deleted_at.is_none()) {
                Some(post) => entities::status(conn, state, &post, owner)?,
                None => return Ok(None),
            }
        }
        (None, None) => Value::Null,
    };
    let status = super::quote::full(conn, state, status)?;
    Ok(Some(json!({
        "id": item.id.to_string(),
        "type": item.kind,
        "created_at": item.at,
        "account": account,
        "status": status,
    })))
}

async fn index(req: HttpRequest, state: State) -> ApiResult {
    auth::owner(&req, &state, "read:notifications").await?;
    let p = params(&req, &[])?;
    let page = paging::id_page(&p);
    let (types, exclude) = (p.list("types"), p.list("exclude_types"));
    let s = state.clone();
    let shown = state
        .db
        .call(move |conn| -> Result<_, ApiError> {
            let owner = entities::owner_account(conn, &s, false)?;
            let mut picked: Vec<&Item> = Vec::new();
            let all = items(conn, &s)?;
            let wanted = |i: &Item| {
                (types.is_empty() || types.iter().any(|t| t == i.kind))
                    && !exclude.iter().any(|t| t == i.kind)
                    && page.max_id.is_none_or(|m| i.id < m)
                    && page.since_id.is_none_or(|m| i.id > m)
                    && page.min_id.is_none_or(|m| i.id > m)
            };
            let candidates: Vec<&Item> = all.iter().filter(|i| wanted(i)).collect();
            // min_id asks for the ones just after it: the oldest of the newer ones.
            if page.min_id.is_some() && page.max_id.is_none() {
                picked.extend(candidates.iter().rev().take(page.limit as usize).rev());
            } else {
                picked.extend(candidates.iter().take(page.limit as usize));
            }
            let mut out = Vec::new();
            for item in picked {
                if let Some(v) = render(conn, &s, item, &owner)? {
                    out.push((item.id, v));
                }
            }
            Ok(out)
        })
        .await?;
    Ok(paging::answer_items(
        &req,
        state.urls.base().trim_end_matches('/'),
        shown,
        page.limit,
    ))
}

fn parse_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::NotFound("Record not found"))
}

async fn show(req: HttpRequest, id: web::Path<String>, state: State) -> ApiResult {
    auth::owner(&req, &state, "read:notifications").await?;
    let id = parse_id(&id)?;
    let s = state.clone();
    let found = state
        .db
        .call(move |conn| -> Result<_, ApiError> {
            let owner = entities::owner_account(conn, &s, false)?;
            match items(conn, &s)?.iter().find(|i| i.id == id) {
                Some(item) => render(conn, &s, item, &owner),
                None => Ok(None),
            }
        })
        .await?;
    found
        .map(|v| HttpResponse::Ok().json(v))
        .ok_or(ApiError::NotFound("Record not found"))
}

async fn dismiss(req: HttpRequest, id: web::Path<String>, state: State) -> ApiResult {
    auth::owner(&req, &state, "write:notifications").await?;
    let id = parse_id(&id)?;
    let changed = state
        .db
        .call(move |conn| -> Result<_, ApiError> {
            Ok(conn.execute(
                "UPDATE api_notifications SET dismissed = 1 WHERE id = ?1",
                params![id],
            )?)
        })
        .await?;
    if changed == 0 {
        return Err(ApiError::NotFound("Record not found"));
    }
    Ok(HttpResponse::Ok().json(json!({})))
}

async fn clear(req: HttpRequest, state: State) -> ApiResult {
    auth::owner(&req, &state, "write:notifications").await?;
    let s = state.clone();
    state
        .db
        .call(move |conn| -> Result<_, ApiError> {
            // Give ids to what was never listed, so it is cleared too.
            items(conn, &s)?;
            conn.execute("UPDATE api_notifications SET dismissed = 1", [])?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({})))
}

/// Follows waiting for the owner's approval (`manually_approves_followers`), as Accounts.
async fn follow_requests(req: HttpRequest, state: State) -> ApiResult {
    auth::owner(&req, &state, "read:follows").await?;
    let accounts = state
        .db
        .call(|conn| -> Result<_, ApiError> {
            let mut out = Vec::new();
            for f in crate::graph::followers::list(conn, Some("pending"))?
                .iter()
                .rev()
                .take(80)
            {
                let id = remote::id_for(conn, &f.actor_id)?;
                if let Some(a) = remote::account(conn, id, &f.actor_id)? {
                    out.push(a);
                }
            }
            Ok(out)
        })
        .await?;
    Ok(HttpResponse::Ok().json(accounts))
}

/// Approves or rejects a follow request as `hortus followers approve|reject` does: the
/// Accept or Reject is queued for the follower's server.
async fn answer(req: HttpRequest, id: web::Path<String>, state: State, approve: bool) -> ApiResult {
    auth::owner(&req, &state, "write:follows").await?;
    let id = parse_id(&id)?;
    let ctx = state.ctx.clone();
    let relationship = state
        .db
        .call(move |conn| -> Result<_, ApiError> {
            let actor =
                remote::actor_of(conn, id)?.ok_or(ApiError::NotFound("Record not found"))?;
            let pending = crate::graph::followers::state_of(conn, &actor)?;
            if pending.as_deref() != Some("pending") {
                return Err(ApiError::NotFound("Record not found"));
            }
            crate::owner::answer_follower(conn, &ctx, &actor, approve)
                .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
            Ok(remote::relationship(conn, id, &actor)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(relationship))
}
