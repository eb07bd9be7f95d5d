//! What apps ask about the server before anything else: `/api/v1/instance`,
//! `/api/v2/instance` (the configuration apps size their composer by) and
//! `/api/v1/instance/peers` (empty unless `publish_peers = true` in `[federation]`: who the
//! garden talks to is private by default). Public, as on Mastodon.

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

use super::entities;
use super::error::{ApiError, ApiResult};
use super::{media, statuses};
use crate::web::AppState;

type State = web::Data<std::sync::Arc<AppState>>;

/// The Mastodon version apps compare against to choose features (4.3: RFC 8414 discovery).
const COMPAT: &str = "4.3.0";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/instance", web::get().to(v1))
        .route("/v2/instance", web::get().to(v2))
        .route("/v1/instance/peers", web::get().to(peers))
        .route("/v1/instance/rules", web::get().to(empty))
        .route("/v1/instance/extended_description", web::get().to(extended));
}

async fn empty() -> HttpResponse {
    HttpResponse::Ok().json(json!([]))
}

fn version() -> String {
    format!(
        "{COMPAT} (compatible; Hortus {})",
        env!("CARGO_PKG_VERSION")
    )
}

/// Where the streaming API answers: this server, over ws(s).
fn streaming_url(state: &AppState) -> String {
    let base = state.urls.base().trim_end_matches('/');
    match base.strip_prefix("https://") {
        Some(rest) => format!("wss://{rest}"),
        None => format!("ws://{}", base.trim_start_matches("http://")),
    }
}

fn configuration(state: &AppState) -> Value {
    json!({
        "urls": { "streaming": streaming_url(state) },
        "accounts": {
            "max_featured_tags": 0, "max_pinned_statuses": 0,
            "max_display_name_length": crate::config::profile::MAX_DISPLAY_NAME,
            "max_note_length": crate::config::profile::MAX_BIO,
            "max_profile_fields": crate::config::profile::MAX_FIELDS,
        },
        "statuses": {
            "max_characters": statuses::MAX_CHARS,
            "max_media_attachments": statuses::MAX_MEDIA,
            "characters_reserved_per_url": 23,
        },
        "media_attachments": {
            "supported_mime_types": ["image/jpeg", "image/png", "image/gif", "image/webp"],
            "image_size_limit": media::MAX_BYTES,
            "image_matrix_limit": 33_177_600,
            "video_size_limit": 0,
            "video_frame_rate_limit": 0,
            "video_matrix_limit": 0,
            "description_limit": media::MAX_DESCRIPTION,
        },
        "polls": { "max_options": 0, "max_characters_per_option": 0, "min_expiration": 0, "max_expiration": 0 },
        "translation": { "enabled": false },
    })
}

async fn owner_and_counts(state: &std::sync::Arc<AppState>) -> Result<(Value, u64), ApiError> {
    let s = state.clone();
    state
        .db
        .read(move |conn| -> Result<_, ApiError> {
            Ok((
                entities::owner_account(conn, &s, false)?,
                crate::posts::store::count_live(conn)?,
            ))
        })
        .await
}

fn description(state: &AppState) -> String {
    crate::text::plain_text(&state.live().user.bio, 500)
}

async fn v1(state: State) -> ApiResult {
    let (owner, statuses) = owner_and_counts(&state).await?;
    let cfg = state.live();
    Ok(HttpResponse::Ok().json(json!({
        "uri": cfg.domain,
        "title": cfg.site_title(),
        "short_description": description(&state),
        "description": description(&state),
        "email": "",
        "version": version(),
        "urls": { "streaming_api": streaming_url(&state) },
        "stats": { "user_count": 1, "status_count": statuses, "domain_count": 0 },
        "thumbnail": owner["avatar"],
        "languages": [cfg.site.language],
        "registrations": false,
        "approval_required": false,
        "invites_enabled": false,
        "configuration": configuration(&state),
        "contact_account": owner,
        "rules": [],
    })))
}

async fn v2(state: State) -> ApiResult {
    let (owner, _) = owner_and_counts(&state).await?;
    let cfg = state.live();
    Ok(HttpResponse::Ok().json(json!({
        "domain": cfg.domain,
        "title": cfg.site_title(),
        "version": version(),
        "description": description(&state),
        "usage": { "users": { "active_month": 1 } },
        "thumbnail": { "url": owner["avatar"] },
        "icon": [],
        "languages": [cfg.site.language],
        "configuration": configuration(&state),
        "registrations": { "enabled": false, "approval_required": false, "message": null, "url": null },
        "api_versions": { "mastodon": 2 },
        "contact": { "email": "", "account": owner },
        "rules": [],
    })))
}

async fn extended(state: State) -> ApiResult {
    Ok(HttpResponse::Ok().json(json!({
        "updated_at": crate::times::now(),
        "content": state.profile().bio_html,
    })))
}

/// The exact hosts of the allowlist, when the owner publishes them; wildcards are not hosts.
async fn peers(state: State) -> ApiResult {
    if !state.config.federation.publish_peers {
        return Ok(HttpResponse::Ok().json(json!([])));
    }
    let hosts = state
        .db
        .read(|conn| -> Result<_, ApiError> { Ok(crate::federation::allow_list(conn)?) })
        .await?
        .into_iter()
        .map(|e| e.pattern)
        .filter(|p| !p.starts_with('*'))
        .collect::<Vec<_>>();
    Ok(HttpResponse::Ok().json(hosts))
}
