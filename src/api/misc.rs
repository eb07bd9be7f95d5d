//! The rest apps call on start: reading positions (`markers`), `preferences`, and valid empty
//! answers for what a single-user server does not have (custom emojis, filters, lists,
//! announcements, trends, suggestions), so apps show nothing instead of an error.

use actix_web::{HttpRequest, HttpResponse, web};
use rusqlite::params;
use serde_json::{Map, Value, json};

use super::auth;
use super::error::{ApiError, ApiResult};
use super::form::params as form_params;
use crate::web::AppState;

type State = web::Data<std::sync::Arc<AppState>>;

const TIMELINES: [&str; 2] = ["home", "notifications"];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/markers", web::get().to(markers))
        .route("/v1/markers", web::post().to(save_markers))
        .route("/v1/preferences", web::get().to(preferences))
        .route("/v1/custom_emojis", web::get().to(public_empty));
    // Owner-only lists that are always empty here.
    for (path, scope) in [
        ("/v2/filters", "read:filters"),
        ("/v1/filters", "read:filters"),
        ("/v1/lists", "read:lists"),
        ("/v1/announcements", "read"),
        ("/v1/suggestions", "read"),
        ("/v2/suggestions", "read"),
        ("/v1/followed_tags", "read:follows"),
    ] {
        cfg.route(path, web::get().to(move |r, s| owner_empty(r, s, scope)));
    }
    for path in [
        "/v1/trends",
        "/v1/trends/tags",
        "/v1/trends/statuses",
        "/v1/trends/links",
    ] {
        cfg.route(path, web::get().to(public_empty));
    }
}

async fn public_empty() -> HttpResponse {
    HttpResponse::Ok().json(json!([]))
}

async fn owner_empty(req: HttpRequest, state: State, scope: &'static str) -> ApiResult {
    auth::owner(&req, &state, scope).await?;
    Ok(HttpResponse::Ok().json(json!([])))
}

async fn preferences(req: HttpRequest, state: State) -> ApiResult {
    auth::owner(&req, &state, "read:accounts").await?;
    Ok(HttpResponse::Ok().json(json!({
        "posting:default:visibility": "public",
        "posting:default:sensitive": false,
        "posting:default:language": state.config.site.language,
        "reading:expand:media": "default",
        "reading:expand:spoilers": false,
    })))
}

async fn markers(req: HttpRequest, state: State) -> ApiResult {
    auth::owner(&req, &state, "read:statuses").await?;
    let p = form_params(&req, &[])?;
    let wanted: Vec<String> = p
        .list("timeline")
        .into_iter()
        .filter(|t| TIMELINES.contains(&t.as_str()))
        .collect();
    let rows = state
        .db
        .read(move |conn| -> Result<_, ApiError> {
            let mut stmt = conn
                .prepare("SELECT timeline, last_read_id, version, updated_at FROM api_markers")?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await?;
    let mut out = Map::new();
    for (timeline, last, version, at) in rows {
        if wanted.is_empty() || wanted.contains(&timeline) {
            out.insert(
                timeline,
                json!({ "last_read_id": last, "version": version, "updated_at": at }),
            );
        }
    }
    Ok(HttpResponse::Ok().json(Value::Object(out)))
}

async fn save_markers(req: HttpRequest, body: web::Bytes, state: State) -> ApiResult {
    auth::owner(&req, &state, "write:statuses").await?;
    let p = form_params(&req, &body)?;
    let raw: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut updates = Vec::new();
    for timeline in TIMELINES {
        // JSON `{"home": {"last_read_id": "…"}}` or the form's `home[last_read_id]=…`.
        let id = raw
            .get(timeline)
            .and_then(|t| t.get("last_read_id"))
            .and_then(|v| {
                v.as_str()
                    .map(str::to_string)
                    .or_else(|| v.as_i64().map(|n| n.to_string()))
            })
            .or_else(|| p.str(&format!("{timeline}[last_read_id]")));
        if let Some(id) =
            id.filter(|i| i.len() <= 40 && i.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            updates.push((timeline, id));
        }
    }
    let now = crate::times::now();
    state
        .db
        .call(move |conn| -> Result<_, ApiError> {
            for (timeline, id) in &updates {
                conn.execute(
                    "INSERT INTO api_markers (timeline, last_read_id, version, updated_at) VALUES (?1, ?2, 1, ?3)
                     ON CONFLICT (timeline) DO UPDATE SET last_read_id = excluded.last_read_id,
                         version = api_markers.version + 1, updated_at = excluded.updated_at",
                    params![timeline, id, now],
                )?;
            }
            Ok(())
        })
        .await?;
    markers(req, state).await
}
