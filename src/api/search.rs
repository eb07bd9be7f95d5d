//! Search v2 (`GET /api/v2/search`): accounts (the owner, accounts Hortus knows by handle, and
//! with `resolve=true` one looked up by `user@host` or URL over WebFinger), the owner's
//! statuses and the posts from other servers Hortus holds, by text or URL (`resolve=true`
//! fetches a post only from an allowed server), and the owner's hashtags. A lookup goes only to a server the policy
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

/// At most this many stored posts are read for a text search (newest first).
const SCANNED: usize = 2000;

/// Posts from other servers: the one a URL names (fetched when `resolve` and its server is
/// allowed), or the newest whose text holds `q` (case-insensitive), blocked and muted accounts
/// left out.
async fn remote_statuses(
    state: &std::sync::Arc<AppState>,
    q: &str,
    limit: usize,
    resolve: bool,
) -> Result<Vec<Value>, ApiError> {
    let is_url = url::Url::parse(q).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
    let (s, query) = (state.clone(), q.to_string());
    let notes = state
        .db
        .read(move |conn| -> Result<Vec<String>, ApiError> {
            if is_url {
                return Ok(stored_note(conn, &query)?.into_iter().collect());
            }
            Ok(notes_holding(conn, &query, limit)?)
        })
        .await?;
    let notes = match (notes.is_empty(), is_url && resolve) {
        // Fetched only from an allowed server (`timeline::act::resolve` asks the policy
        // first and never contacts any other).
        (true, true) => match crate::timeline::act::resolve(&s.ctx, q).await {
            Ok(target) => vec![target.id],
            Err(e) => {
                tracing::debug!(error = %e, "search: no post at that URL");
                Vec::new()
            }
        },
        _ => notes,
    };
    let s = state.clone();
    state
        .db
        .call(move |conn| -> Result<_, ApiError> {
            let mut out = Vec::new();
            for note in notes {
                if let Some(v) = super::remote_status::status(conn, &s, &note)? {
                    out.push(super::quote::full(conn, &s, v)?);
                }
            }
            Ok(out)
        })
        .await
}

/// The stored post a URL names: its id, or its page on its own server.
fn stored_note(conn: &rusqlite::Connection, url: &str) -> rusqlite::Result<Option<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, url FROM remote_notes
         WHERE (id = ?1 OR url = ?1) AND deleted_at IS NULL AND hidden = 0",
    )?;
    let rows = stmt.query_map([url], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
    })?;
    for row in rows {
        let (id, page) = row?;
        if crate::conversation::store::names_note(&id, page.as_deref(), url) {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// The newest stored posts whose text holds `q`: LIKE narrows the rows, the text (not the
/// markup) decides.
fn notes_holding(
    conn: &rusqlite::Connection,
    q: &str,
    limit: usize,
) -> rusqlite::Result<Vec<String>> {
    let pattern = format!(
        "%{}%",
        q.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let needle = q.to_lowercase();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id, content_html, summary FROM remote_notes
         WHERE deleted_at IS NULL AND hidden = 0
           AND (content_html LIKE ?1 ESCAPE '\\' OR summary LIKE ?1 ESCAPE '\\')
           AND actor_id NOT IN ({})
         ORDER BY published DESC LIMIT ?2",
        crate::graph::accounts::SILENCED_IDS
    ))?;
    let rows = stmt.query_map(
        rusqlite::params![pattern, i64::try_from(SCANNED).unwrap_or(i64::MAX)],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        },
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (id, html, summary) = row?;
        let text = crate::text::text_of(&html, 100_000).to_lowercase();
        if text.contains(&needle) || summary.is_some_and(|s| s.to_lowercase().contains(&needle)) {
            out.push(id);
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
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
    // Statuses: the owner's post a URL names, or the owner's posts holding the text; then
    // posts from other servers Hortus holds (the timeline, replies, mentions) the same way, and
    // with `resolve=true` a post a URL names, fetched from its own server if that is allowed.
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
        let room = (n as usize).saturating_sub(found_statuses.len());
        if room > 0 {
            let resolve = p.bool("resolve").unwrap_or(false);
            found_statuses.extend(remote_statuses(&state, &q_trimmed, room, resolve).await?);
        }
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
