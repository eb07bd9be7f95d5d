//! Search v2 (`GET /api/v2/search`): accounts (the owner, accounts Hortus knows by handle, and
//! with `resolve=true` one looked up by `user@host` or URL over WebFinger), the owner's
//! statuses by text or URL, and the owner's hashtags. A lookup goes only to a server the policy
//! allows; of any other server the answer says nothing, and nothing is sent to it.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::auth;
use super::entities;
use super::error::{ApiError, ApiResult};
use super::form::{limit, params};
use super::{remote, statuses};
use crate::activitypub::fetch;
use crate::web::AppState;

type State = web::Data<std::sync::Arc<AppState>>;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v2/search", web::get().to(search));
}

/// `user@host` (with or without the leading `@`), or `None`.
fn handle_of(q: &str) -> Option<String> {
    let h = q.trim().trim_start_matches('@');
    let (user, host) = h.split_once('@')?;
    (!user.is_empty()
        && !host.is_empty()
        && !h.contains(char::is_whitespace)
        && !host.contains('/'))
    .then(|| h.to_string())
}

/// The actor a query names that Hortus may look up: its host must be allowed by the policy.
async fn resolve(state: &AppState, q: &str) -> Option<String> {
    let remote = fetch::Remote::of(state);
    if let Some(handle) = handle_of(q) {
        let host = handle.rsplit_once('@').map_or("", |(_, h)| h);
        if !state.policy.decide(host).is_allowed() {
            return None;
        }
        let id = fetch::webfinger(&remote, &handle).await.ok()?;
        return fetch::actor(&remote, &id, true).await.ok().map(|a| a.id);
    }
    let url = url::Url::parse(q.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") || !state.policy.decide_url(&url).is_allowed() {
        return None;
    }
    fetch::actor(&remote, url.as_str(), true)
        .await
        .ok()
        .map(|a| a.id)
}

async fn search(req: HttpRequest, state: State) -> ApiResult {
    auth::owner(&req, &state, "read:search").await?;
    let p = params(&req, &[])?;
    let q = p.str("q").unwrap_or_default();
    if q.chars().count() > 500 {
        return Err(ApiError::Unprocessable("q is over 500 characters".into()));
    }
    let kind = p.str("type");
    let wants = |k: &str| kind.as_deref().is_none_or(|t| t == k);
    let n = u32::try_from(limit(&p)).unwrap_or(20);
    let q_trimmed = q.trim().to_string();
    if q_trimmed.is_empty() {
        return Ok(HttpResponse::Ok().json(json!({"accounts": [], "statuses": [], "hashtags": []})));
    }
    // Accounts: the owner, then accounts known by handle, then (resolve) a lookup.
    let mut accounts: Vec<Value> = Vec::new();
    if wants("accounts") {
        let (s, q) = (state.clone(), q_trimmed.clone());
        let known = state
            .db
            .call(move |conn| -> Result<_, ApiError> {
                let mut out = Vec::new();
                let bare = q.trim_start_matches('@');
                let (user, domain) = bare.split_once('@').unwrap_or((bare, &s.config.domain));
                if user.eq_ignore_ascii_case(&s.config.user.name)
                    && domain.eq_ignore_ascii_case(&s.config.domain)
                {
                    out.push(entities::owner_account(conn, &s, false)?);
                } else if let Some(handle) = handle_of(&q)
                    && let Some((actor, _)) = crate::actors::id_by_handle(conn, &handle)?
                {
                    let id = remote::id_for(conn, &actor)?;
                    out.extend(remote::account(conn, id, &actor)?);
                }
                Ok(out)
            })
            .await?;
        accounts.extend(known);
        if accounts.is_empty()
            && p.bool("resolve").unwrap_or(false)
            && let Some(actor) = resolve(&state, &q_trimmed).await
        {
            let found = state
                .db
                .call(move |conn| -> Result<_, ApiError> {
                    let id = remote::id_for(conn, &actor)?;
                    Ok(remote::account(conn, id, &actor)?)
                })
                .await?;
            accounts.extend(found);
        }
    }
    // Statuses: the owner's post a URL names, or the owner's posts holding the text.
    let mut found_statuses = Vec::new();
    if wants("statuses") {
        let (s, q) = (state.clone(), q_trimmed.clone());
        let posts = state
            .db
            .read(move |conn| -> Result<_, ApiError> {
                if let Some(id) = entities::own_post_id(conn, &s, &q)? {
                    return Ok(crate::posts::by_id(conn, id)?.into_iter().collect());
                }
                Ok(crate::posts::store::search_text(conn, &q, n)?)
            })
            .await?;
        found_statuses = statuses::render(&state, posts).await?;
    }
    let mut hashtags = Vec::new();
    if wants("hashtags") {
        let prefix = q_trimmed.trim_start_matches('#').to_lowercase();
        let tags = state
            .db
            .read(move |conn| -> Result<_, ApiError> {
                Ok(crate::posts::store::tags_starting(conn, &prefix, n)?)
            })
            .await?;
        hashtags = tags
            .into_iter()
            .map(|t| json!({"name": t, "url": state.urls.tag(&t), "history": [], "following": false}))
            .collect();
    }
    Ok(HttpResponse::Ok().json(json!({
        "accounts": accounts, "statuses": found_statuses, "hashtags": hashtags
    })))
}
