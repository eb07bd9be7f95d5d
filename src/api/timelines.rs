//! The timelines that need nothing but the owner's own posts: `public` (with `local=true`, and
//! without: Hortus keeps no federated timeline, so both are the owner's public posts) and
//! `tag/:hashtag`. Public, as Mastodon serves them by default. The home timeline is the
//! `timeline` module's, next.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::form::params;
use super::{paging, statuses};
use crate::web::AppState;

type State = web::Data<std::sync::Arc<AppState>>;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/timelines/public", web::get().to(public))
        .route("/v1/timelines/tag/{tag}", web::get().to(tag));
}

async fn public(req: HttpRequest, state: State) -> ApiResult {
    page(req, state, None).await
}

async fn tag(req: HttpRequest, tag: web::Path<String>, state: State) -> ApiResult {
    let tag = tag.trim_start_matches('#').to_lowercase();
    if tag.is_empty() || tag.chars().count() > 100 {
        return Err(ApiError::NotFound("Record not found"));
    }
    page(req, state, Some(tag)).await
}

async fn page(req: HttpRequest, state: State, tag: Option<String>) -> ApiResult {
    let p = params(&req, &[])?;
    // Posts from other servers are the home timeline's; none are public here.
    if p.bool("remote").unwrap_or(false) {
        return Ok(HttpResponse::Ok().json(json!([])));
    }
    let mut page = paging::id_page(&p);
    page.public_only = true;
    let only_media = p.bool("only_media").unwrap_or(false);
    let posts = state
        .db
        .read(move |conn| -> Result<_, ApiError> {
            Ok(crate::posts::store::page_by_id_tagged(
                conn,
                page,
                tag.as_deref(),
            )?)
        })
        .await?
        .into_iter()
        .filter(|post| !only_media || !post.attachments.is_empty())
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
