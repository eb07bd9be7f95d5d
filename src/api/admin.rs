//! The owner's garden gate from an app, as Mastodon names it: `/api/v1/admin/domain_allows`
//! and `/api/v1/admin/domain_blocks` (list, show, create, delete) act on the very lists `hortus
//! allow` and `hortus block` change (`federation::lists`), with the same suspensions of
//! followers. An entry's id is its pattern (`example.net`, `*.example.net`): ids are opaque
//! strings to apps, and a pattern is what the owner knows an entry by.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::auth;
use super::error::{ApiError, ApiResult};
use super::form::params;
use crate::federation::{self, List, ListEntry};
use crate::web::AppState;

type State = web::Data<std::sync::Arc<AppState>>;

pub fn configure(cfg: &mut web::ServiceConfig) {
    for (path, list) in [
        ("domain_allows", List::Allow),
        ("domain_blocks", List::Block),
    ] {
        let base = format!("/v1/admin/{path}");
        cfg.route(&base, web::get().to(move |r, s| index(r, s, list)))
            .route(&base, web::post().to(move |r, b, s| create(r, b, s, list)))
            .route(
                &format!("{base}/{{id}}"),
                web::get().to(move |r, i, s| show(r, i, s, list)),
            )
            .route(
                &format!("{base}/{{id}}"),
                web::delete().to(move |r, i, s| remove(r, i, s, list)),
            );
    }
}

fn scope(list: List, write: bool) -> &'static str {
    match (list, write) {
        (List::Allow, false) => "admin:read:domain_allows",
        (List::Allow, true) => "admin:write:domain_allows",
        (List::Block, false) => "admin:read:domain_blocks",
        (List::Block, true) => "admin:write:domain_blocks",
    }
}

fn entry_json(list: List, e: &ListEntry) -> Value {
    let mut out = json!({ "id": e.pattern, "domain": e.pattern, "created_at": e.created_at });
    if list == List::Block {
        // Hortus refuses a blocked server everything: Mastodon's `suspend`.
        out["severity"] = json!("suspend");
        out["reject_media"] = json!(true);
        out["reject_reports"] = json!(true);
        out["private_comment"] = json!(e.note);
        out["public_comment"] = Value::Null;
        out["obfuscate"] = json!(false);
        out["digest"] = json!(crate::posts::hex_sha256(e.pattern.as_bytes()));
    }
    out
}

async fn entries(state: &AppState, list: List) -> Result<Vec<ListEntry>, ApiError> {
    state
        .db
        .read(move |conn| -> Result<_, ApiError> {
            Ok(match list {
                List::Allow => federation::allow_list(conn)?,
                List::Block => federation::block_list(conn)?,
            })
        })
        .await
}

async fn index(req: HttpRequest, state: State, list: List) -> ApiResult {
    auth::owner(&req, &state, scope(list, false)).await?;
    let all = entries(&state, list).await?;
    Ok(HttpResponse::Ok().json(all.iter().map(|e| entry_json(list, e)).collect::<Vec<_>>()))
}

async fn find(state: &AppState, list: List, id: &str) -> Result<ListEntry, ApiError> {
    let wanted = federation::Pattern::parse(id)
        .map_err(|_| ApiError::NotFound("Record not found"))?
        .to_string();
    entries(state, list)
        .await?
        .into_iter()
        .find(|e| e.pattern == wanted)
        .ok_or(ApiError::NotFound("Record not found"))
}

async fn show(req: HttpRequest, id: web::Path<String>, state: State, list: List) -> ApiResult {
    auth::owner(&req, &state, scope(list, false)).await?;
    Ok(HttpResponse::Ok().json(entry_json(list, &find(&state, list, &id).await?)))
}

async fn create(req: HttpRequest, body: web::Bytes, state: State, list: List) -> ApiResult {
    auth::owner(&req, &state, scope(list, true)).await?;
    let p = params(&req, &body)?;
    let domain = p
        .str("domain")
        .ok_or_else(|| ApiError::Unprocessable("domain is missing".into()))?;
    let change = state
        .db
        .call(move |conn| -> Result<_, ApiError> {
            Ok(match list {
                List::Allow => federation::allow_add(conn, &domain)?,
                List::Block => federation::block_add(conn, &domain)?,
            })
        })
        .await?;
    for f in &change.suspended {
        tracing::warn!(actor = %f.actor_id, "follower suspended: its server was refused from an app");
    }
    Ok(HttpResponse::Ok().json(entry_json(
        list,
        &find(&state, list, &change.pattern).await?,
    )))
}

async fn remove(req: HttpRequest, id: web::Path<String>, state: State, list: List) -> ApiResult {
    auth::owner(&req, &state, scope(list, true)).await?;
    let entry = find(&state, list, &id).await?;
    let mode = state.config.federation.mode;
    let pattern = entry.pattern.clone();
    state
        .db
        .call(move |conn| -> Result<_, ApiError> {
            Ok(match list {
                List::Allow => federation::allow_remove(conn, mode, &pattern)?,
                List::Block => federation::block_remove(conn, &pattern)?,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({})))
}
