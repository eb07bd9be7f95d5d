//! Accounts: the owner's (`verify_credentials`, `:id`, `lookup`, `:id/statuses`,
//! `relationships`). Remote accounts arrive with the timeline.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::auth;
use super::entities::{self, OWNER_ID};
use super::error::{ApiError, ApiResult};
use super::form::params;
use super::{paging, statuses};
use crate::graph::Collection;
use crate::web::AppState;

type State = web::Data<std::sync::Arc<AppState>>;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/v1/accounts/verify_credentials",
        web::get().to(verify_credentials),
    )
    .route("/v1/accounts/lookup", web::get().to(lookup))
    .route("/v1/accounts/relationships", web::get().to(relationships))
    .route("/v1/accounts/{id}", web::get().to(account))
    .route(
        "/v1/accounts/{id}/statuses",
        web::get().to(account_statuses),
    )
    .route(
        "/v1/accounts/{id}/follow",
        web::post().to(move |r, i, s| follow(r, i, s, true)),
    )
    .route(
        "/v1/accounts/{id}/unfollow",
        web::post().to(move |r, i, s| follow(r, i, s, false)),
    )
    .route(
        "/v1/accounts/{id}/block",
        web::post().to(move |r, i, s| relate(r, i, s, Relate::Block)),
    )
    .route(
        "/v1/accounts/{id}/unblock",
        web::post().to(move |r, i, s| relate(r, i, s, Relate::Unblock)),
    )
    .route(
        "/v1/accounts/{id}/mute",
        web::post().to(move |r, i, s| relate(r, i, s, Relate::Mute)),
    )
    .route(
        "/v1/accounts/{id}/unmute",
        web::post().to(move |r, i, s| relate(r, i, s, Relate::Unmute)),
    )
    .route(
        "/v1/accounts/{id}/followers",
        web::get().to(move |r, i, s| graph(r, i, s, Collection::Followers)),
    )
    .route(
        "/v1/accounts/{id}/following",
        web::get().to(move |r, i, s| graph(r, i, s, Collection::Following)),
    );
}

async fn owner(
    state: &std::sync::Arc<AppState>,
    source: bool,
) -> Result<serde_json::Value, ApiError> {
    let s = state.clone();
    state
        .db
        .read(move |conn| -> Result<_, ApiError> { Ok(entities::owner_account(conn, &s, source)?) })
        .await
}

async fn verify_credentials(req: HttpRequest, state: State) -> ApiResult {
    auth::owner_profile(&req, &state).await?;
    Ok(HttpResponse::Ok().json(owner(&state, true).await?))
}

fn not_found() -> ApiError {
    ApiError::NotFound("Record not found")
}

/// The owner's account is public, as the actor is. Other accounts only for the owner's token:
/// their ids are given in order, and listing them would tell who the garden talks to.
async fn account(req: HttpRequest, id: web::Path<String>, state: State) -> ApiResult {
    if id.as_str() == OWNER_ID {
        return Ok(HttpResponse::Ok().json(owner(&state, false).await?));
    }
    auth::owner(&req, &state, "read:accounts").await?;
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let found = state
        .db
        .read(move |conn| -> Result<_, ApiError> {
            match super::remote::actor_of(conn, id)? {
                Some(actor) => Ok(super::remote::account(conn, id, &actor)?),
                None => Ok(None),
            }
        })
        .await?;
    Ok(HttpResponse::Ok().json(found.ok_or_else(not_found)?))
}

/// `acct` as `alice`, `@alice`, `alice@domain` or `@alice@domain`.
async fn lookup(req: HttpRequest, state: State) -> ApiResult {
    let p = params(&req, &[])?;
    let acct = p.str("acct").unwrap_or_default();
    let acct = acct.trim_start_matches('@');
    let (user, domain) = acct.split_once('@').unwrap_or((acct, &state.config.domain));
    if !user.eq_ignore_ascii_case(&state.config.user.name)
        || !domain.eq_ignore_ascii_case(&state.config.domain)
    {
        return Err(not_found());
    }
    Ok(HttpResponse::Ok().json(owner(&state, false).await?))
}

/// The owner's posts, every visibility for the owner's token, public and unlisted without one.
async fn account_statuses(req: HttpRequest, id: web::Path<String>, state: State) -> ApiResult {
    if id.as_str() != OWNER_ID {
        return Err(not_found());
    }
    let p = params(&req, &[])?;
    let signed_in = auth::owner(&req, &state, "read:statuses").await;
    // Hortus has no pinned posts.
    let everything = match signed_in {
        Ok(_) => true,
        // A token was sent but is not good enough: say so rather than answer less.
        Err(e) if req.headers().contains_key("authorization") => return Err(e),
        Err(_) => false,
    };
    if p.bool("pinned").unwrap_or(false) {
        return Ok(HttpResponse::Ok().json(json!([])));
    }
    let page = paging::id_page(&p);
    let only_media = p.bool("only_media").unwrap_or(false);
    let tagged = p.str("tagged").map(|t| t.to_lowercase());
    let posts = state
        .db
        .read(move |conn| -> Result<_, ApiError> {
            Ok(crate::posts::store::page_by_id(conn, page)?)
        })
        .await?
        .into_iter()
        .filter(|post| everything || post.is_world_readable())
        .filter(|post| !only_media || !post.attachments.is_empty())
        .filter(|post| {
            tagged
                .as_ref()
                .is_none_or(|t| post.tags.iter().any(|x| x.to_lowercase() == *t))
        })
        .collect::<Vec<_>>();
    let ends = (posts.first().map(|p| p.id), posts.last().map(|p| p.id));
    let body = statuses::render(&state, posts).await?;
    Ok(paging::answer(
        &req,
        state.urls.base().trim_end_matches('/'),
        ends,
        page.limit,
        body,
    ))
}

/// Who follows the owner and whom the owner follows, as the actor's collections show them:
/// nothing with `hide_social_graph = true` (counts only), as on the site.
async fn graph(
    req: HttpRequest,
    id: web::Path<String>,
    state: State,
    which: Collection,
) -> ApiResult {
    if id.as_str() != OWNER_ID {
        return Err(not_found());
    }
    if state.config.federation.hide_social_graph {
        return Ok(HttpResponse::Ok().json(json!([])));
    }
    let p = params(&req, &[])?;
    let page = paging::id_page(&p);
    let accounts = state
        .db
        .call(move |conn| -> Result<_, ApiError> {
            let mut all = Vec::new();
            for actor in crate::graph::page_accepted(conn, which, 10_000, 0)? {
                all.push((super::remote::id_for(conn, &actor)?, actor));
            }
            all.sort_by_key(|(id, _)| std::cmp::Reverse(*id));
            let mut out = Vec::new();
            for (id, actor) in all.into_iter().filter(|(id, _)| {
                page.max_id.is_none_or(|m| *id < m) && page.since_id.is_none_or(|m| *id > m)
            }) {
                if out.len() >= page.limit as usize {
                    break;
                }
                if let Some(a) = super::remote::account(conn, id, &actor)? {
                    out.push((id, a));
                }
            }
            Ok(out)
        })
        .await?;
    Ok(paging::answer_items(
        &req,
        state.urls.base().trim_end_matches('/'),
        accounts,
        page.limit,
    ))
}

/// Follows or unfollows an account apps know by id, as `hortus follow` / `unfollow` do: the
/// Follow (or its Undo) is queued for the account's server, which must be allowed.
async fn follow(req: HttpRequest, id: web::Path<String>, state: State, on: bool) -> ApiResult {
    auth::owner(&req, &state, "write:follows").await?;
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let actor = state
        .db
        .read(move |conn| -> Result<_, ApiError> { Ok(super::remote::actor_of(conn, id)?) })
        .await?
        .ok_or_else(not_found)?;
    let done = if on {
        crate::owner::follow(&state.ctx, &actor).await
    } else {
        crate::owner::unfollow(&state.ctx, &actor).await
    };
    done.map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let relationship = state
        .db
        .read(move |conn| -> Result<_, ApiError> {
            Ok(super::remote::relationship(conn, id, &actor)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(relationship))
}

#[derive(Clone, Copy)]
enum Relate {
    Block,
    Unblock,
    Mute,
    Unmute,
}

/// Blocks, mutes and their undos, as `hortus block add` / `hortus mute` do them
/// (`owner::accounts`: a block also ends the follows both ways).
async fn relate(req: HttpRequest, id: web::Path<String>, state: State, what: Relate) -> ApiResult {
    let scope = match what {
        Relate::Block | Relate::Unblock => "write:blocks",
        Relate::Mute | Relate::Unmute => "write:mutes",
    };
    auth::owner(&req, &state, scope).await?;
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let actor = state
        .db
        .read(move |conn| -> Result<_, ApiError> { Ok(super::remote::actor_of(conn, id)?) })
        .await?
        .ok_or_else(not_found)?;
    let ctx = &state.ctx;
    let done = match what {
        Relate::Block => crate::owner::accounts::block(ctx, &actor).await,
        Relate::Unblock => crate::owner::accounts::unblock(ctx, &actor).await,
        Relate::Mute => crate::owner::accounts::mute(ctx, &actor, true).await,
        Relate::Unmute => crate::owner::accounts::mute(ctx, &actor, false).await,
    };
    done.map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let relationship = state
        .db
        .read(move |conn| -> Result<_, ApiError> {
            Ok(super::remote::relationship(conn, id, &actor)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(relationship))
}

/// The owner's relationship to accounts: its own (all false), and those of accounts apps know
/// by id, from the follow tables.
async fn relationships(req: HttpRequest, state: State) -> ApiResult {
    auth::owner(&req, &state, "read:follows").await?;
    let p = params(&req, &[])?;
    let ids: Vec<String> = p.list("id").into_iter().take(40).collect();
    let out = state
        .db
        .read(move |conn| -> Result<_, ApiError> {
            let mut out = Vec::new();
            for id in ids {
                let Ok(n) = id.parse::<i64>() else { continue };
                if id == OWNER_ID {
                    out.push(json!({
                        "id": id, "following": false, "showing_reblogs": false, "notifying": false,
                        "languages": null, "followed_by": false, "blocking": false, "blocked_by": false,
                        "muting": false, "muting_notifications": false, "requested": false,
                        "requested_by": false, "domain_blocking": false, "endorsed": false, "note": ""
                    }));
                } else if let Some(actor) = super::remote::actor_of(conn, n)? {
                    out.push(super::remote::relationship(conn, n, &actor)?);
                }
            }
            Ok(out)
        })
        .await?;
    Ok(HttpResponse::Ok().json(out))
}
