//! What the owner does with statuses from an app, through `timeline::act` (the same likes,
//! boosts and bookmarks, and undos, as `hortus like`… send through the delivery queue):
//! `favourite`, `reblog`, `bookmark` and their undos; the `bookmarks` and `favourites` lists;
//! `favourited_by` / `reblogged_by` of the owner's posts (the `reactions` table); `context`;
//! and a remote status by id.

use actix_web::{HttpRequest, HttpResponse, web};
use rusqlite::{Connection, params};
use serde_json::{Value, json};

use super::auth;
use super::entities;
use super::error::{ApiError, ApiResult};
use super::form::params;
use super::paging;
use super::remote_status::{self, Named};
use crate::timeline::act::{self, ActError, Action};
use crate::timeline::store::{self, ActionKind};
use crate::web::AppState;

type State = web::Data<std::sync::Arc<AppState>>;

/// Longest reply chain walked up, and most replies walked down, for `context`.
const ANCESTORS: usize = 40;
const DESCENDANTS: usize = 60;

pub fn configure(cfg: &mut web::ServiceConfig) {
    for (path, action, scope) in [
        ("favourite", Action::Like, "write:favourites"),
        ("unfavourite", Action::Unlike, "write:favourites"),
        ("reblog", Action::Boost, "write:statuses"),
        ("unreblog", Action::Unboost, "write:statuses"),
        ("bookmark", Action::Bookmark, "write:bookmarks"),
        ("unbookmark", Action::Unbookmark, "write:bookmarks"),
    ] {
        cfg.route(
            &format!("/v1/statuses/{{id}}/{path}"),
            web::post().to(move |r, i, s| act_on(r, i, s, action, scope)),
        );
    }
    cfg.route(
        "/v1/bookmarks",
        web::get().to(|r, s| listed(r, s, ActionKind::Bookmark, "read:bookmarks")),
    )
    .route(
        "/v1/favourites",
        web::get().to(|r, s| listed(r, s, ActionKind::Like, "read:favourites")),
    )
    .route(
        "/v1/statuses/{id}/favourited_by",
        web::get().to(|r, i, s| reacted(r, i, s, "like")),
    )
    .route(
        "/v1/statuses/{id}/reblogged_by",
        web::get().to(|r, i, s| reacted(r, i, s, "boost")),
    )
    .route("/v1/statuses/{id}/context", web::get().to(context));
}

fn not_found() -> ApiError {
    ApiError::NotFound("Record not found")
}

async fn named(state: &AppState, id: &str) -> Result<Named, ApiError> {
    let id: i64 = id.parse().map_err(|_| not_found())?;
    state
        .db
        .read(move |c| -> Result<_, ApiError> { Ok(remote_status::named(c, id)?) })
        .await?
        .ok_or_else(not_found)
}

/// A status by what its id names, as JSON (`None` when it is gone).
fn render(conn: &Connection, state: &AppState, what: &Named) -> rusqlite::Result<Option<Value>> {
    render_shallow(conn, state, what)?
        .map(|v| super::quote::full(conn, state, v))
        .transpose()
}

fn render_shallow(
    conn: &Connection,
    state: &AppState,
    what: &Named,
) -> rusqlite::Result<Option<Value>> {
    match what {
        Named::Own(id) => {
            match crate::posts::by_id(conn, *id)?.filter(|p| p.deleted_at.is_none()) {
                Some(post) => {
                    let account = entities::owner_account(conn, state, false)?;
                    Ok(Some(entities::status(conn, state, &post, &account)?))
                }
                None => Ok(None),
            }
        }
        Named::Remote(note) => remote_status::status(conn, state, note),
        Named::Boost(e) => match crate::timeline::store::boost_entry(conn, *e)? {
            Some((booster, at, note)) => {
                remote_status::boost(conn, state, *e, &booster, &at, &note)
            }
            None => Ok(None),
        },
    }
}

/// `GET /api/v1/statuses/:id` for a status from another server (`statuses::get` hands over).
pub async fn show(state: &std::sync::Arc<AppState>, id: &str) -> ApiResult {
    let what = named(state, id).await?;
    let s = state.clone();
    let found = state
        .db
        .call(move |c| -> Result<_, ApiError> { Ok(render(c, &s, &what)?) })
        .await?;
    Ok(HttpResponse::Ok().json(found.ok_or_else(not_found)?))
}

fn act_error(e: ActError) -> ApiError {
    match e {
        ActError::NotFound { .. } => not_found(),
        ActError::Db(_) | ActError::Queue(_) => ApiError::internal(e),
        other => ApiError::Unprocessable(other.to_string()),
    }
}

async fn act_on(
    req: HttpRequest,
    id: web::Path<String>,
    state: State,
    action: Action,
    scope: &'static str,
) -> ApiResult {
    auth::owner(&req, &state, scope).await?;
    let note = match named(&state, &id).await? {
        Named::Remote(note) => note,
        Named::Boost(e) => state
            .db
            .read(move |c| -> Result<_, ApiError> {
                Ok(crate::timeline::store::boost_entry(c, e)?)
            })
            .await?
            .map(|(_, _, note)| note)
            .ok_or_else(not_found)?,
        Named::Own(post) => {
            let post = state
                .db
                .read(move |c| -> Result<_, ApiError> { Ok(crate::posts::by_id(c, post)?) })
                .await?
                .filter(|p| p.deleted_at.is_none())
                .ok_or_else(not_found)?;
            let visibility = match post.visibility {
                crate::posts::Visibility::Public => "public",
                crate::posts::Visibility::Unlisted => "unlisted",
                crate::posts::Visibility::Followers => "followers",
            };
            let object = state.urls.post_object(&post.slug);
            act::act_own(&state.ctx, action, &object, visibility)
                .await
                .map_err(act_error)?;
            return show(&state, &id).await;
        }
    };
    act::act(&state.ctx, action, &note)
        .await
        .map_err(act_error)?;
    show(&state, &id).await
}

/// The owner's bookmarks or likes, newest first, paged by status id.
async fn listed(
    req: HttpRequest,
    state: State,
    kind: ActionKind,
    scope: &'static str,
) -> ApiResult {
    auth::owner(&req, &state, scope).await?;
    let p = params(&req, &[])?;
    let page = paging::id_page(&p);
    let s = state.clone();
    let shown = state
        .db
        .call(move |conn| -> Result<Vec<(i64, Value)>, ApiError> {
            // The action of a status id: where a page starts or ends.
            let bound = |id: Option<i64>| -> rusqlite::Result<Option<(String, String)>> {
                let Some(Named::Remote(note)) = id
                    .map(|i| remote_status::named(conn, i))
                    .transpose()?
                    .flatten()
                else {
                    return Ok(None);
                };
                Ok(store::action_at(conn, kind, &note)?.map(|at| (at, note)))
            };
            let older = bound(page.max_id)?;
            let newer = bound(page.min_id.or(page.since_id))?;
            let pair =
                |b: &Option<(String, String)>| b.as_ref().map(|(a, n)| (a.clone(), n.clone()));
            let (older, newer) = (pair(&older), pair(&newer));
            let notes = store::acted_page(
                conn,
                kind,
                older.as_ref().map(|(a, n)| (a.as_str(), n.as_str())),
                newer.as_ref().map(|(a, n)| (a.as_str(), n.as_str())),
                page.limit,
            )?;
            let mut out = Vec::new();
            for note in notes {
                if let Some(v) = remote_status::status(conn, &s, &note)? {
                    let v = super::quote::full(conn, &s, v)?;
                    out.push((remote_status::id_for(conn, &note)?, v));
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

/// Who liked or boosted one of the owner's posts (blocked accounts left out). Hortus does not
/// know who reacted to posts on other servers: those answer an empty list.
async fn reacted(
    req: HttpRequest,
    id: web::Path<String>,
    state: State,
    kind: &'static str,
) -> ApiResult {
    auth::owner(&req, &state, "read:statuses").await?;
    let Named::Own(post) = named(&state, &id).await? else {
        return Ok(HttpResponse::Ok().json(json!([])));
    };
    let p = params(&req, &[])?;
    let limit = paging::id_page(&p).limit;
    let accounts = state
        .db
        .call(move |conn| -> Result<Vec<Value>, ApiError> {
            let blocked = crate::graph::accounts::blocked(conn)?;
            let actors: Vec<String> = conn
                .prepare_cached(
                    "SELECT actor_id FROM reactions WHERE post_id = ?1 AND kind = ?2
                     ORDER BY created_at DESC",
                )?
                .query_map(params![post, kind], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut out = Vec::new();
            for actor in actors.iter().filter(|a| !blocked.contains(*a)) {
                if out.len() >= limit as usize {
                    break;
                }
                let id = super::remote::id_for(conn, actor)?;
                if let Some(a) = super::remote::account(conn, id, actor)? {
                    out.push(a);
                }
            }
            Ok(out)
        })
        .await?;
    Ok(HttpResponse::Ok().json(accounts))
}

/// What a status answers (up the chain of `in_reply_to`, oldest first) and the answers to it
/// (down, breadth first), among what Hortus holds: the owner's posts and stored remote posts,
/// blocked and muted accounts left out.
async fn context(req: HttpRequest, id: web::Path<String>, state: State) -> ApiResult {
    auth::owner(&req, &state, "read:statuses").await?;
    let what = named(&state, &id).await?;
    let s = state.clone();
    let body =
        state
            .db
            .call(move |conn| -> Result<Value, ApiError> {
                let silenced = crate::graph::accounts::silenced(conn)?;
                let what = match what {
                    Named::Boost(e) => match crate::timeline::store::boost_entry(conn, e)? {
                        Some((_, _, note)) => Named::Remote(note),
                        None => return Err(not_found()),
                    },
                    w => w,
                };
                let (uri, mut up) = uri_and_parent(conn, &s, &what)?.ok_or_else(not_found)?;
                let mut ancestors = Vec::new();
                while let Some(parent) = up.take() {
                    if ancestors.len() >= ANCESTORS {
                        break;
                    }
                    let named = match entities::own_post_id(conn, &s, &parent)? {
                        Some(id) => Named::Own(id),
                        None => Named::Remote(parent),
                    };
                    let Some((_, next)) = uri_and_parent(conn, &s, &named)? else {
                        break;
                    };
                    if let Some(v) = render(conn, &s, &named)? {
                        ancestors.push(v);
                    }
                    up = next;
                }
                ancestors.reverse();
                let mut descendants = Vec::new();
                let mut queue = std::collections::VecDeque::from([uri]);
                while let Some(uri) = queue.pop_front() {
                    let mut children: Vec<(Named, String)> = Vec::new();
                    for (id, actor) in conn
                        .prepare_cached(
                            "SELECT id, actor_id FROM remote_notes
                         WHERE in_reply_to = ?1 AND deleted_at IS NULL AND hidden = 0
                         ORDER BY published",
                        )?
                        .query_map([&uri], |r| {
                            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                        })?
                        .collect::<rusqlite::Result<Vec<_>>>()?
                    {
                        if !silenced.contains(&actor) {
                            children.push((Named::Remote(id.clone()), id));
                        }
                    }
                    for (id, slug) in conn
                    .prepare_cached(
                        "SELECT id, slug FROM posts WHERE in_reply_to = ?1 AND deleted_at IS NULL
                         ORDER BY published",
                    )?
                    .query_map([&uri], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()?
                {
                    children.push((Named::Own(id), s.urls.post_object(&slug)));
                }
                    for (named, child_uri) in children {
                        if descendants.len() >= DESCENDANTS {
                            break;
                        }
                        if let Some(v) = render(conn, &s, &named)? {
                            descendants.push(v);
                            queue.push_back(child_uri);
                        }
                    }
                }
                Ok(json!({"ancestors": ancestors, "descendants": descendants}))
            })
            .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// A status's URI (what answers name in `in_reply_to`) and what it answers.
fn uri_and_parent(
    conn: &Connection,
    state: &AppState,
    what: &Named,
) -> rusqlite::Result<Option<(String, Option<String>)>> {
    use rusqlite::OptionalExtension as _;
    match what {
        Named::Own(id) => Ok(crate::posts::by_id(conn, *id)?
            .filter(|p| p.deleted_at.is_none())
            .map(|p| (state.urls.post_object(&p.slug), p.in_reply_to))),
        Named::Remote(note) => conn
            .query_row(
                "SELECT id, in_reply_to FROM remote_notes WHERE id = ?1 AND deleted_at IS NULL",
                [note],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional(),
        Named::Boost(_) => Ok(None),
    }
}
