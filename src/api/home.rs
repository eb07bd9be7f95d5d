//! `GET /api/v1/timelines/home`: the `timeline` module's home timeline (what followed accounts
//! post and boost, blocked and muted accounts left out by `timeline::store::page`), as Statuses;
//! a boost is a reblog Status. Paging takes status ids (`remote_status`) and walks the timeline
//! entries they stand for.

use actix_web::{HttpRequest, web};
use rusqlite::Connection;
use serde_json::Value;

use super::auth;
use super::error::{ApiError, ApiResult};
use super::form::params;
use super::paging;
use super::remote_status::{self, Named};
use crate::timeline::store::{self, Entry};
use crate::web::AppState;

type State = web::Data<std::sync::Arc<AppState>>;

/// Entries read per step while walking down to a `since_id` / `min_id`.
const STEP: usize = 200;
/// At most this many entries are walked for one page with `since_id` / `min_id`: a client that
/// was away longer gets the newest (`since_id`) or the oldest of those (`min_id`), then pages on.
const WALK: usize = 2000;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/timelines/home", web::get().to(home));
}

/// The timeline entry a status id stands for: a boost's own entry, or a post's entry.
fn entry_of(conn: &Connection, id: i64) -> rusqlite::Result<Option<i64>> {
    match remote_status::named(conn, id)? {
        Some(Named::Boost(e)) => Ok(Some(e)),
        Some(Named::Remote(note)) => store::post_entry(conn, &note),
        _ => Ok(None),
    }
}

/// One entry as a Status: its post, or a reblog Status for a boost (`None` for what cannot be
/// shown, such as a boost of a post on a refused server, of which only the link is kept).
pub fn entry_status(
    conn: &Connection,
    state: &AppState,
    e: &Entry,
) -> rusqlite::Result<Option<Value>> {
    let status = e.post.as_ref().map_or(Ok(None), |_| match &e.booster {
        None => remote_status::status(conn, state, &e.object_id),
        Some(booster) => match store::boost_entry(conn, e.id)? {
            Some((_, at, note)) => remote_status::boost(conn, state, e.id, &booster.id, &at, &note),
            None => Ok(None),
        },
    })?;
    status
        .map(|v| super::quote::full(conn, state, v))
        .transpose()
}

async fn home(req: HttpRequest, state: State) -> ApiResult {
    auth::owner(&req, &state, "read:statuses").await?;
    let p = params(&req, &[])?;
    let page = paging::id_page(&p);
    let limit = page.limit as usize;
    let s = state.clone();
    let shown = state
        .db
        .call(move |conn| -> Result<Vec<(i64, Value)>, ApiError> {
            let before = match page.max_id {
                Some(m) => match entry_of(conn, m)? {
                    Some(e) => Some(e),
                    // An id the timeline does not hold: nothing older to show.
                    None => return Ok(Vec::new()),
                },
                None => None,
            };
            let after = match page.min_id.or(page.since_id) {
                Some(m) => entry_of(conn, m)?,
                None => None,
            };
            let mut entries: Vec<Entry> = Vec::new();
            let mut cursor = before;
            'walk: loop {
                let batch = store::page(conn, cursor, STEP)?;
                let Some(last) = batch.last() else { break };
                cursor = Some(last.id);
                for e in batch {
                    if after.is_some_and(|a| e.id <= a) {
                        break 'walk;
                    }
                    entries.push(e);
                }
                if (after.is_none() && entries.len() >= limit) || entries.len() >= WALK {
                    break;
                }
            }
            // `min_id` asks for the page just above it: the oldest of the newer entries.
            if page.min_id.is_some() && entries.len() > limit {
                entries.drain(..entries.len() - limit);
            }
            entries.truncate(limit);
            let mut out = Vec::new();
            for e in &entries {
                if let Some(v) = entry_status(conn, &s, e)? {
                    let id = v["id"].as_str().and_then(|i| i.parse().ok()).unwrap_or(0);
                    out.push((id, v));
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
