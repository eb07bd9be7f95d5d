//! Statuses: create, read, edit, delete and `source` for the owner's posts. Writing one is
//! writing a Markdown file (`post_file`) and publishing it as `hortus publish` does (the
//! [`super::Publisher`] `app` hands in): the post federates like any other, and the file stays
//! the source of truth.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::auth;
use super::entities;
use super::error::{ApiError, ApiResult};
use super::form::{Params, params};
use super::media;
use super::post_file::{self, Input};
use super::publishing::publish_now;
use crate::posts::{self, Post, Visibility};
use crate::web::AppState;

type State = web::Data<std::sync::Arc<AppState>>;

/// Longest status text taken (the instance answer says so too).
pub const MAX_CHARS: usize = 5000;
pub const MAX_MEDIA: usize = 4;
/// An Idempotency-Key is remembered this long (Mastodon: an hour; a day is kinder to phones).
const IDEMPOTENCY: time::Duration = time::Duration::hours(24);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/statuses", web::post().to(create))
        .route("/v1/statuses/{id}", web::get().to(get))
        .route("/v1/statuses/{id}", web::put().to(edit))
        .route("/v1/statuses/{id}", web::delete().to(delete))
        .route("/v1/statuses/{id}/source", web::get().to(source));
}

/// The post an earlier create with this Idempotency-Key made, if it is still live.
fn idempotent_post(
    conn: &rusqlite::Connection,
    key: &str,
    since: &str,
) -> rusqlite::Result<Option<Post>> {
    use rusqlite::OptionalExtension as _;
    let slug: Option<String> = conn
        .query_row(
            "SELECT slug FROM api_idempotency WHERE key = ?1 AND created_at > ?2",
            [key, since],
            |r| r.get(0),
        )
        .optional()?;
    Ok(match slug {
        Some(slug) => posts::by_slug(conn, &slug)?.filter(|p| p.deleted_at.is_none()),
        None => None,
    })
}

fn remember_key(
    conn: &rusqlite::Connection,
    key: &str,
    slug: &str,
    now: &str,
) -> rusqlite::Result<()> {
    let since = crate::times::rfc3339(time::OffsetDateTime::now_utc() - IDEMPOTENCY);
    conn.execute(
        "DELETE FROM api_idempotency WHERE created_at <= ?1",
        [since],
    )?;
    conn.execute(
        "INSERT INTO api_idempotency (key, slug, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE SET slug = excluded.slug, created_at = excluded.created_at",
        [key, slug, now],
    )?;
    Ok(())
}

fn parse_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::NotFound("Record not found"))
}

/// The URI a status id names, for `in_reply_to` and `quote` in a post's front matter: the owner's
/// post object, or a stored remote post's id (`remote_status`).
async fn status_uri(state: &AppState, id: &str) -> Result<String, ApiError> {
    let n = parse_id(id)?;
    if n < super::remote_status::REMOTE_BASE {
        return Ok(state.urls.post_object(&live_post(state, n).await?.slug));
    }
    state
        .db
        .read(move |conn| -> Result<_, ApiError> {
            use rusqlite::OptionalExtension as _;
            let note = match super::remote_status::named(conn, n)? {
                Some(super::remote_status::Named::Remote(note)) => Some(note),
                Some(super::remote_status::Named::Boost(e)) => {
                    crate::timeline::store::boost_entry(conn, e)?.map(|(_, _, note)| note)
                }
                _ => None,
            };
            // Only a post still there: a deleted one is answered by nobody.
            Ok(match note {
                Some(note) => conn
                    .query_row(
                        "SELECT id FROM remote_notes WHERE id = ?1 AND deleted_at IS NULL",
                        [note],
                        |r| r.get(0),
                    )
                    .optional()?,
                None => None,
            })
        })
        .await?
        .ok_or(ApiError::NotFound("Record not found"))
}

/// A live post of the owner, by status id.
async fn live_post(state: &AppState, id: i64) -> Result<Post, ApiError> {
    state
        .db
        .read(move |conn| -> Result<_, ApiError> { Ok(posts::by_id(conn, id)?) })
        .await?
        .filter(|p| p.deleted_at.is_none())
        .ok_or(ApiError::NotFound("Record not found"))
}

/// Statuses as JSON, with the owner's account built once.
pub async fn render(
    state: &std::sync::Arc<AppState>,
    posts: Vec<Post>,
) -> Result<Vec<Value>, ApiError> {
    let quotes = posts.iter().any(|p| p.quote.is_some());
    let s = state.clone();
    let work = move |conn: &mut rusqlite::Connection| -> Result<Vec<Value>, ApiError> {
        let account = entities::owner_account(conn, &s, false)?;
        posts
            .iter()
            .map(|p| {
                let v = entities::status(conn, &s, p, &account)?;
                Ok(super::quote::full(conn, &s, v)?)
            })
            .collect()
    };
    // A quoted post from another server may give ids to accounts it names (a write): only then
    // on the writer.
    if quotes {
        state.db.call(work).await
    } else {
        state.db.read(work).await
    }
}

async fn render_one(state: &std::sync::Arc<AppState>, post: Post) -> ApiResult {
    let mut out = render(state, vec![post]).await?;
    Ok(HttpResponse::Ok().json(out.pop().unwrap_or(Value::Null)))
}

/// A language tag as Mastodon takes it (ISO 639-1/3, optionally with a region).
fn language(p: &Params) -> Result<Option<String>, ApiError> {
    let Some(lang) = p.str("language") else {
        return Ok(None);
    };
    let (main, rest) = lang.split_once('-').unwrap_or((&lang, ""));
    let ok = (2..=3).contains(&main.len())
        && main.bytes().all(|b| b.is_ascii_lowercase())
        && rest.len() <= 8
        && rest.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then_some(Some(lang.clone())).ok_or_else(|| {
        ApiError::Unprocessable(format!(
            "language {:?} is not an ISO 639 code",
            crate::text::plain_text(&lang, 20)
        ))
    })
}

fn text_and_spoiler(p: &Params) -> Result<(String, Option<String>), ApiError> {
    let text = p.str("status").unwrap_or_default();
    if text.chars().count() > MAX_CHARS {
        return Err(ApiError::Unprocessable(format!(
            "Text is over {MAX_CHARS} characters"
        )));
    }
    if text.contains('\0') {
        return Err(ApiError::Unprocessable("Text holds a NUL character".into()));
    }
    let spoiler = p
        .str("spoiler_text")
        .map(|s| crate::text::plain_text(&s, 500))
        .filter(|s| !s.is_empty());
    Ok((text, spoiler))
}

/// The images of `media_ids`, each with its alt text: Hortus publishes no image without one.
async fn images(state: &AppState, p: &Params) -> Result<Vec<(i64, String, String)>, ApiError> {
    let ids = p.list("media_ids");
    if ids.len() > MAX_MEDIA {
        return Err(ApiError::Unprocessable(format!(
            "at most {MAX_MEDIA} images"
        )));
    }
    let mut out = Vec::new();
    for id in ids {
        let id: i64 = id
            .parse()
            .map_err(|_| ApiError::Unprocessable("media_ids holds an unknown id".into()))?;
        let m = media::get(state, id)
            .await?
            .ok_or_else(|| ApiError::Unprocessable("media_ids holds an unknown id".into()))?;
        if m.description.trim().is_empty() {
            return Err(ApiError::Unprocessable(format!(
                "image {id} has no description: Hortus publishes images with alt text only, add one for people who cannot see it"
            )));
        }
        out.push((id, m.path, m.description));
    }
    Ok(out)
}

async fn create(req: HttpRequest, body: web::Bytes, state: State) -> ApiResult {
    auth::owner(&req, &state, "write:statuses").await?;
    let p = params(&req, &body)?;
    let key = req
        .headers()
        .get("Idempotency-Key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty() && k.len() <= 200)
        .map(str::to_string);
    if let Some(key) = &key {
        let (k, since) = (
            key.clone(),
            crate::times::rfc3339(time::OffsetDateTime::now_utc() - IDEMPOTENCY),
        );
        let earlier = state
            .db
            .read(move |conn| -> Result<_, ApiError> { Ok(idempotent_post(conn, &k, &since)?) })
            .await?;
        if let Some(post) = earlier {
            return render_one(&state, post).await;
        }
    }
    if p.has("poll") || p.has("poll[options]") {
        return Err(ApiError::Unprocessable("Hortus has no polls".into()));
    }
    if p.has("scheduled_at") {
        return Err(ApiError::Unprocessable(
            "Hortus does not schedule posts: write the file with a future date instead".into(),
        ));
    }
    let (text, spoiler) = text_and_spoiler(&p)?;
    let images = images(&state, &p).await?;
    if text.trim().is_empty() && images.is_empty() {
        return Err(ApiError::Unprocessable(
            "Validation failed: Text can't be blank".into(),
        ));
    }
    let visibility = match p.str("visibility").as_deref().unwrap_or("public") {
        "public" => Visibility::Public,
        "unlisted" => Visibility::Unlisted,
        "private" => Visibility::Followers,
        "direct" => {
            return Err(ApiError::Unprocessable(
                "Hortus has no direct messages: use private (followers only)".into(),
            ));
        }
        _ => return Err(ApiError::Unprocessable("visibility is unknown".into())),
    };
    let in_reply_to = match p.str("in_reply_to_id") {
        Some(id) => Some(status_uri(&state, &id).await?),
        None => None,
    };
    let quote = match p.str("quoted_status_id") {
        Some(id) => Some(status_uri(&state, &id).await?),
        None => None,
    };
    let input = Input {
        text,
        spoiler,
        visibility,
        language: language(&p)?,
        sensitive: p.bool("sensitive").unwrap_or(false),
        in_reply_to,
        quote,
        images: images
            .iter()
            .map(|(_, path, alt)| (path.clone(), alt.clone()))
            .collect(),
    };
    let site_dir = state.site_dir.clone();
    let (rel, slug) = state
        .db
        .read(move |conn| {
            post_file::create(&site_dir, &input, time::OffsetDateTime::now_utc(), |s| {
                posts::store::slug_taken(conn, s).unwrap_or(true)
                    || site_dir.join(format!("content/posts/{s}.md")).exists()
            })
        })
        .await?;
    if let Err(e) = publish_now(&req).await {
        // What did not publish must not linger to publish later by surprise.
        let _ = post_file::remove(&state.site_dir, &rel);
        return Err(e);
    }
    let media_ids: Vec<i64> = images.iter().map(|(id, _, _)| *id).collect();
    let (s, k) = (slug.clone(), key.clone());
    let post = state
        .db
        .call(move |conn| -> Result<_, ApiError> {
            media::attach(conn, &media_ids, &s)?;
            if let Some(k) = k {
                remember_key(conn, &k, &s, &crate::times::now())?;
            }
            Ok(posts::by_slug(conn, &s)?)
        })
        .await?
        .ok_or_else(|| {
            ApiError::internal(format!(
                "{rel} was published but {slug} is not in the database"
            ))
        })?;
    tracing::info!(slug = %post.slug, file = %rel, "a status from an app was published");
    render_one(&state, post).await
}

async fn get(req: HttpRequest, id: web::Path<String>, state: State) -> ApiResult {
    auth::owner(&req, &state, "read:statuses").await?;
    let n = parse_id(&id)?;
    if n >= super::remote_status::REMOTE_BASE {
        return super::actions::show(&state, &id).await;
    }
    let post = live_post(&state, n).await?;
    render_one(&state, post).await
}

async fn source_path(state: &AppState, id: i64) -> Result<String, ApiError> {
    state
        .db
        .read(move |conn| -> Result<_, ApiError> { Ok(posts::store::source_path(conn, id)?) })
        .await?
        .ok_or(ApiError::NotFound("Record not found"))
}

async fn source(req: HttpRequest, id: web::Path<String>, state: State) -> ApiResult {
    auth::owner(&req, &state, "read:statuses").await?;
    let post = live_post(&state, parse_id(&id)?).await?;
    let rel = source_path(&state, post.id).await?;
    let (text, spoiler) = post_file::source(&state.site_dir, &rel)?;
    Ok(HttpResponse::Ok().json(json!({
        "id": post.id.to_string(), "text": text, "spoiler_text": spoiler
    })))
}

async fn edit(
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
    state: State,
) -> ApiResult {
    auth::owner(&req, &state, "write:statuses").await?;
    let p = params(&req, &body)?;
    let post = live_post(&state, parse_id(&id)?).await?;
    let rel = source_path(&state, post.id).await?;
    let (text, spoiler) = text_and_spoiler(&p)?;
    let images = images(&state, &p).await?;
    if text.trim().is_empty() && images.is_empty() {
        return Err(ApiError::Unprocessable(
            "Validation failed: Text can't be blank".into(),
        ));
    }
    let input = Input {
        text,
        spoiler,
        visibility: post.visibility,
        language: language(&p)?.or(post.language.clone()),
        sensitive: p.bool("sensitive").unwrap_or(post.sensitive),
        in_reply_to: post.in_reply_to.clone(),
        quote: post.quote.clone(),
        images: images
            .iter()
            .map(|(_, path, alt)| (path.clone(), alt.clone()))
            .collect(),
    };
    let before = std::fs::read(state.site_dir.join(&rel)).ok();
    post_file::rewrite(&state.site_dir, &rel, &input)?;
    if let Err(e) = publish_now(&req).await {
        if let Some(bytes) = before {
            let _ = std::fs::write(state.site_dir.join(&rel), bytes);
        }
        return Err(e);
    }
    let (media_ids, slug) = (
        images.iter().map(|(id, _, _)| *id).collect::<Vec<_>>(),
        post.slug.clone(),
    );
    state
        .db
        .call(move |conn| -> Result<_, ApiError> { Ok(media::attach(conn, &media_ids, &slug)?) })
        .await?;
    let post = live_post(&state, post.id).await?;
    render_one(&state, post).await
}

async fn delete(req: HttpRequest, id: web::Path<String>, state: State) -> ApiResult {
    auth::owner(&req, &state, "write:statuses").await?;
    let post = live_post(&state, parse_id(&id)?).await?;
    let rel = source_path(&state, post.id).await?;
    let (text, spoiler) = post_file::source(&state.site_dir, &rel).unwrap_or_default();
    let mut shown = render(&state, vec![post.clone()]).await?;
    post_file::remove(&state.site_dir, &rel)?;
    publish_now(&req).await?;
    tracing::info!(slug = %post.slug, file = %rel, "a status was deleted from an app");
    // Mastodon answers with the source, for "delete and redraft".
    let mut out = shown.pop().unwrap_or(Value::Null);
    out["text"] = json!(text);
    out["spoiler_text"] = json!(spoiler);
    Ok(HttpResponse::Ok().json(out))
}
