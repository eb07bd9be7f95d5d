//! `PATCH /api/v1/accounts/update_credentials`: the owner's name, bio, fields, avatar and
//! header, and whether follows wait for approval (`locked`) and the follower lists are hidden
//! (`hide_collections`), changed from an app. hortus.toml stays the source: the change is written into it
//! (`config::profile`, comments and layout kept), read again by the running server
//! (`Context::live`), every cached page is dropped (`web::cache::invalidate_all`), and
//! followers get an `Update` of the actor, as Mastodon sends one
//! (app/services/update_account_service.rb → ActivityPub::UpdateDistributionWorker).
//! Bad input is refused with 422 before anything is written.

use actix_multipart::Multipart;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt as _;
use serde_json::{Value, json};

use super::auth;
use super::error::{ApiError, ApiResult};
use super::form::{self, MAX_BODY, Params};
use super::media::Image;
use crate::activitypub::{self as ap, PUBLIC};
use crate::config::ProfileField;
use crate::config::profile::ProfileEdit;
use crate::web::AppState;

type State = web::Data<std::sync::Arc<AppState>>;

/// An avatar or header image; apps scale them down before sending.
pub const MAX_IMAGE_BYTES: usize = 2 * 1024 * 1024;
/// Text fields of a multipart form (Mastodon's limits are far below).
const MAX_TEXT_FIELD: usize = 8 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Mastodon routes PATCH; some apps still send PUT.
    cfg.service(
        web::resource("/v1/accounts/update_credentials")
            .route(web::patch().to(update_credentials))
            .route(web::put().to(update_credentials)),
    );
}

/// What the request asked for: the text as parameters, the images as bytes.
struct Request {
    params: Params,
    avatar: Option<Vec<u8>>,
    header: Option<Vec<u8>>,
}

async fn read(req: &HttpRequest, mut payload: web::Payload) -> Result<Request, ApiError> {
    let multipart = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !multipart {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("bad body: {e}")))?;
            if body.len() + chunk.len() > MAX_BODY {
                return Err(ApiError::TooLarge(format!(
                    "the body is over {MAX_BODY} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        return Ok(Request {
            params: form::params(req, &body)?,
            avatar: None,
            header: None,
        });
    }
    let parts = Multipart::new(req.headers(), payload);
    let image = |name: &str| matches!(name, "avatar" | "header");
    let all = form::multipart_parts(
        parts,
        |name| {
            if image(name) {
                MAX_IMAGE_BYTES
            } else {
                MAX_TEXT_FIELD
            }
        },
        |name| {
            if image(name) {
                ApiError::Unprocessable(format!(
                    "the {name} image is over {} MB",
                    MAX_IMAGE_BYTES / 1024 / 1024
                ))
            } else {
                ApiError::TooLarge(format!("{name} is too long"))
            }
        },
    )
    .await?;
    let (mut text, mut avatar, mut header) = (Vec::new(), None, None);
    for (name, bytes) in all {
        match name.as_str() {
            "avatar" => avatar = Some(bytes),
            "header" => header = Some(bytes),
            _ => {
                let value = String::from_utf8(bytes)
                    .map_err(|_| ApiError::Unprocessable(format!("{name} is not UTF-8")))?;
                text.push((name, value));
            }
        }
    }
    Ok(Request {
        params: form::from_pairs(text),
        avatar,
        header,
    })
}

/// The text part of the change; `Err` is the 422's message.
fn edit_of(p: &Params) -> Result<ProfileEdit, String> {
    let fields = if p.has("fields_attributes") || !p.objects("fields_attributes").is_empty() {
        let mut out = Vec::new();
        for f in p.objects("fields_attributes") {
            let get = |k: &str| match f.get(k) {
                Some(Value::String(s)) => s.trim().to_string(),
                _ => String::new(),
            };
            let (name, value) = (get("name"), get("value"));
            // Mastodon drops a field whose name and value are both empty: how apps clear one.
            if name.is_empty() && value.is_empty() {
                continue;
            }
            if name.is_empty() {
                return Err("a profile field needs a name".into());
            }
            out.push(ProfileField { name, value });
        }
        Some(out)
    } else {
        None
    };
    let edit = ProfileEdit {
        display_name: p.text("display_name").map(|s| s.trim().to_string()),
        bio: p
            .text("note")
            .map(|s| s.replace("\r\n", "\n").trim().to_string()),
        fields,
        avatar: None,
        header: None,
        discoverable: p
            .has("discoverable")
            .then(|| p.bool("discoverable"))
            .flatten(),
        indexable: p.has("indexable").then(|| p.bool("indexable")).flatten(),
        locked: p.has("locked").then(|| p.bool("locked")).flatten(),
        hide_collections: p
            .has("hide_collections")
            .then(|| p.bool("hide_collections"))
            .flatten(),
    };
    edit.check()?;
    Ok(edit)
}

async fn update_credentials(req: HttpRequest, payload: web::Payload, state: State) -> ApiResult {
    auth::owner(&req, &state, "write:accounts").await?;
    let request = read(&req, payload).await?;
    let mut edit = edit_of(&request.params).map_err(ApiError::Unprocessable)?;
    // Every image is read and cleaned before anything is written.
    let avatar = request.avatar.map(Image::check).transpose()?;
    let header = request.header.map(Image::check).transpose()?;
    let mut written = Vec::new();
    let site_dir = state.site_dir.clone();
    let saved = (|| -> Result<(), ApiError> {
        if let Some(image) = &avatar {
            let path = image.save(&site_dir)?;
            written.push(path.clone());
            edit.avatar = Some(path);
        }
        if let Some(image) = &header {
            let path = image.save(&site_dir)?;
            written.push(path.clone());
            edit.header = Some(path);
        }
        Ok(())
    })();
    // One profile change at a time: the file is read, edited and written whole, and the live
    // configuration must end as the last write left the file.
    let _one_at_a_time = CHANGING.lock().await;
    let config = match saved {
        Ok(()) => {
            let (dir, e) = (site_dir.clone(), edit.clone());
            web::block(move || crate::config::profile::write(&dir, &e))
                .await
                .map_err(ApiError::internal)
                .and_then(|r| r.map_err(|e| ApiError::Unprocessable(e.to_string())))
        }
        Err(e) => Err(e),
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            // Nothing half-done: the images of a refused change go too.
            for path in written {
                let _ = std::fs::remove_file(site_dir.join(path));
            }
            return Err(e);
        }
    };
    let before = state.ctx.live.current();
    let still_used = [config.user.avatar.clone(), config.user.header.clone()];
    apply_locked(&state, config).await?;
    // A replaced image that an app uploaded goes (Mastodon keeps no old avatars either); one the
    // owner placed elsewhere in the site is theirs and stays.
    for old in [&before.user.avatar, &before.user.header]
        .into_iter()
        .flatten()
    {
        let uploaded = old
            .strip_prefix("media/api/")
            .is_some_and(|name| name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'));
        if uploaded
            && !still_used.iter().flatten().any(|p| p == old)
            && let Err(e) = std::fs::remove_file(site_dir.join(old))
        {
            tracing::warn!(path = %old, error = %e, "the replaced image was not removed");
        }
    }
    drop(_one_at_a_time);
    let s = state.clone().into_inner();
    let account = state
        .db
        .read(move |conn| -> Result<_, ApiError> {
            Ok(super::entities::owner_account(conn, &s, true)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(account))
}

/// Makes `config` the running server's hortus.toml ([`crate::context::Context::live`]), from an
/// app's change or the owner's own edit of the file (`reload`). Pages show the profile: every
/// cached one is stale. Followers' servers keep a copy of the actor: when the actor document
/// changed they get an `Update` of it, as Mastodon sends one (to Public, cc the followers); an
/// edit that leaves it as it was (a comment, a setting the actor does not show) sends nothing.
/// Returns how many inboxes the `Update` was queued for.
pub async fn apply(state: &AppState, config: crate::config::Config) -> Result<usize, ApiError> {
    let _one_at_a_time = CHANGING.lock().await;
    apply_locked(state, config).await
}

/// Serialises profile changes (an app's and the owner's edit of the file).
static CHANGING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn apply_locked(state: &AppState, config: crate::config::Config) -> Result<usize, ApiError> {
    let before = current_actor(state).await?;
    let was_locked = state
        .ctx
        .live
        .current()
        .federation
        .manually_approves_followers;
    let unlocked = was_locked && !config.federation.manually_approves_followers;
    state.ctx.live.replace(config);
    if unlocked {
        approve_waiting(state).await?;
    }
    // The pages are stale now, whatever happens to the Update below.
    state
        .db
        .call(|conn| -> Result<_, ApiError> { Ok(crate::web::cache::invalidate_all(conn)?) })
        .await?;
    let after = current_actor(state).await?;
    let activity = (before != after).then(|| update_activity(&state.urls, after));
    let queued = state
        .db
        .call(move |conn| -> Result<_, ApiError> {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let n = match &activity {
                Some(activity) => {
                    let inboxes = crate::graph::followers::accepted_inboxes(&tx)?;
                    crate::delivery::enqueue(&tx, activity, &inboxes).map_err(ApiError::internal)?
                }
                None => 0,
            };
            tx.commit()?;
            Ok(n)
        })
        .await?;
    if queued > 0 {
        crate::delivery::wake_workers();
    }
    tracing::info!(
        inboxes = queued,
        "profile changed; Update of the actor queued"
    );
    Ok(queued)
}

/// Approves every follow request still waiting: an unlocked account has nobody to ask, as
/// Mastodon does when `locked` is turned off (UpdateAccountService#authorize_all_follow_requests).
/// Each gets its `Accept`; a follower whose server is no longer allowed stays as it was.
async fn approve_waiting(state: &AppState) -> Result<(), ApiError> {
    let ctx = state.ctx.clone();
    let approved = state
        .db
        .call(move |conn| -> Result<_, ApiError> {
            let waiting = crate::graph::followers::list(conn, Some("pending"))?;
            let mut approved = 0;
            for follower in waiting {
                match crate::owner::answer_follower(conn, &ctx, &follower.actor_id, true) {
                    Ok(_) => approved += 1,
                    Err(e) => tracing::warn!(
                        actor = %follower.actor_id,
                        error = %e,
                        "follow request left waiting after unlocking"
                    ),
                }
            }
            Ok(approved)
        })
        .await?;
    if approved > 0 {
        tracing::info!(
            approved,
            "account unlocked: waiting follow requests approved"
        );
        crate::delivery::wake_workers();
    }
    Ok(())
}

/// The actor as followers' servers see it, `movedTo` included.
async fn current_actor(state: &AppState) -> Result<Value, ApiError> {
    let mut actor = state.actor();
    crate::conversation::moving::add_moved_to(state, &mut actor).await?;
    Ok(actor)
}

/// `Update` of the actor: the actor's own `@context` on the activity, the actor embedded.
fn update_activity(urls: &crate::urls::Urls, mut actor: Value) -> Value {
    let context = actor
        .as_object_mut()
        .and_then(|o| o.remove("@context"))
        .unwrap_or_else(|| json!(ap::AS_CONTEXT));
    json!({
        "@context": context,
        "id": ap::new_activity_id(urls),
        "type": "Update",
        "actor": urls.actor(),
        "object": actor,
        "to": [PUBLIC],
        "cc": [urls.followers()],
    })
}
