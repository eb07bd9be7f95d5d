//! Images apps upload (`POST /api/v2/media`, `GET`/`PUT /api/v1/media/:id`): JPEG, PNG, GIF or
//! WebP only (the kind is read from the bytes, never from the name or the declared type; AVIF
//! is refused because its metadata cannot be removed here), at most [`MAX_BYTES`], stripped of
//! their metadata (`metadata`), saved under `media/api/` with a random name; `description` is
//! the alt text.
//! A status then names them in `media_ids` and its file lists them as `[[images]]`.

use actix_multipart::Multipart;
use actix_web::{HttpRequest, HttpResponse, web};
use rusqlite::{Connection, OptionalExtension, params};

use super::auth;
use super::entities;
use super::error::{ApiError, ApiResult};
use super::form::params as form_params;
use super::post_file;
use crate::posts::Attachment;
use crate::web::AppState;

type State = web::Data<std::sync::Arc<AppState>>;

/// Mastodon takes images up to 16 MB; a phone photo is 2–6 MB.
pub const MAX_BYTES: usize = 10 * 1024 * 1024;
/// Mastodon's limit on a description.
pub const MAX_DESCRIPTION: usize = 1500;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v2/media", web::post().to(upload))
        .route("/v1/media", web::post().to(upload))
        .route("/v1/media/{id}", web::get().to(show))
        .route("/v1/media/{id}", web::put().to(update));
}

/// An uploaded image.
#[derive(Debug, Clone)]
pub struct Media {
    pub id: i64,
    pub path: String,
    pub media_type: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub description: String,
    pub post_slug: Option<String>,
}

fn row(r: &rusqlite::Row) -> rusqlite::Result<Media> {
    Ok(Media {
        id: r.get(0)?,
        path: r.get(1)?,
        media_type: r.get(2)?,
        width: r.get(3)?,
        height: r.get(4)?,
        description: r.get(5)?,
        post_slug: r.get(6)?,
    })
}

fn by_id(conn: &Connection, id: i64) -> rusqlite::Result<Option<Media>> {
    conn.query_row(
        "SELECT id, path, media_type, width, height, description, post_slug FROM api_media WHERE id = ?1",
        [id],
        row,
    )
    .optional()
}

pub async fn get(state: &AppState, id: i64) -> Result<Option<Media>, ApiError> {
    state
        .db
        .read(move |conn| -> Result<_, ApiError> { Ok(by_id(conn, id)?) })
        .await
}

/// Notes which post uses these uploads.
pub fn attach(conn: &Connection, ids: &[i64], slug: &str) -> rusqlite::Result<()> {
    for id in ids {
        conn.execute(
            "UPDATE api_media SET post_slug = ?2 WHERE id = ?1",
            params![id, slug],
        )?;
    }
    Ok(())
}

/// The image kinds taken, read from the bytes, with their extension and media type.
fn kind_of(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    use imagesize::ImageType;
    Some(match imagesize::image_type(bytes).ok()? {
        ImageType::Jpeg => ("jpg", "image/jpeg"),
        ImageType::Png => ("png", "image/png"),
        ImageType::Gif => ("gif", "image/gif"),
        ImageType::Webp => ("webp", "image/webp"),
        _ => return None,
    })
}

fn json_of(state: &AppState, m: &Media) -> serde_json::Value {
    entities::media_attachment(
        state,
        &m.id.to_string(),
        &Attachment {
            path: m.path.clone(),
            media_type: m.media_type.clone(),
            alt: m.description.clone(),
            width: m.width,
            height: m.height,
        },
    )
}

async fn upload(req: HttpRequest, form: Multipart, state: State) -> ApiResult {
    auth::owner(&req, &state, "write:media").await?;
    let parts = super::form::multipart_parts(
        form,
        |name| {
            if name == "file" {
                MAX_BYTES
            } else {
                4 * MAX_DESCRIPTION * 4
            }
        },
        |name| {
            ApiError::TooLarge(if name == "file" {
                format!("the image is over {} MB", MAX_BYTES / 1024 / 1024)
            } else {
                format!("{name} is too long")
            })
        },
    )
    .await?;
    let mut file: Option<Vec<u8>> = None;
    let mut description = String::new();
    for (name, bytes) in parts {
        match name.as_str() {
            "file" => file = Some(bytes),
            "description" => {
                let text = String::from_utf8(bytes)
                    .map_err(|_| ApiError::Unprocessable("description is not UTF-8".into()))?;
                description = checked_description(&text)?;
            }
            _ => {}
        }
    }
    let bytes = file.ok_or_else(|| ApiError::Unprocessable("file is missing".into()))?;
    let image = Image::check(bytes)?;
    let m = Media {
        id: 0,
        path: image.save(&state.site_dir)?,
        media_type: image.media_type.into(),
        width: image.width,
        height: image.height,
        description,
        post_slug: None,
    };
    let stored = m.clone();
    let id = state
        .db
        .call(move |conn| -> Result<_, ApiError> {
            conn.execute(
                "INSERT INTO api_media (path, media_type, width, height, description, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    stored.path,
                    stored.media_type,
                    stored.width,
                    stored.height,
                    stored.description,
                    crate::times::now()
                ],
            )?;
            Ok(conn.last_insert_rowid())
        })
        .await?;
    Ok(HttpResponse::Ok().json(json_of(&state, &Media { id, ..m })))
}

/// An image read and cleaned, not yet written.
pub struct Image {
    ext: &'static str,
    pub media_type: &'static str,
    bytes: Vec<u8>,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

impl Image {
    /// An image of a kind taken, without its metadata; 422 for anything else.
    pub fn check(bytes: Vec<u8>) -> Result<Image, ApiError> {
        let (ext, media_type) = kind_of(&bytes).ok_or_else(|| {
            ApiError::Unprocessable("Hortus takes images only: JPEG, PNG, GIF or WebP".into())
        })?;
        let bytes = super::metadata::strip(ext, bytes)
            .map_err(|e| ApiError::Unprocessable(format!("the image cannot be read: {e}")))?;
        let size = imagesize::blob_size(&bytes).ok();
        Ok(Image {
            ext,
            media_type,
            width: size.and_then(|s| u32::try_from(s.width).ok()),
            height: size.and_then(|s| u32::try_from(s.height).ok()),
            bytes,
        })
    }

    /// Writes it under `media/api/` with a random name; answers its path in the site.
    pub fn save(&self, site_dir: &std::path::Path) -> Result<String, ApiError> {
        let rel = format!("media/api/{}.{}", hex_name()?, self.ext);
        let dir = site_dir.join("media/api");
        std::fs::create_dir_all(&dir)
            .map_err(|e| ApiError::internal(format!("{}: {e}", dir.display())))?;
        write_new(&site_dir.join(&rel), &self.bytes)?;
        Ok(rel)
    }
}

fn checked_description(text: &str) -> Result<String, ApiError> {
    if text.chars().count() > MAX_DESCRIPTION {
        return Err(ApiError::Unprocessable(format!(
            "description is over {MAX_DESCRIPTION} characters"
        )));
    }
    // Alt text is one string a screen reader reads: no control characters.
    Ok(text
        .chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .collect::<String>()
        .trim()
        .to_string())
}

fn hex_name() -> Result<String, ApiError> {
    let mut bytes = [0u8; 16];
    openssl::rand::rand_bytes(&mut bytes).map_err(ApiError::internal)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn write_new(path: &std::path::Path, bytes: &[u8]) -> Result<(), ApiError> {
    use std::io::Write as _;
    let fail = |e: std::io::Error| ApiError::internal(format!("{}: {e}", path.display()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(fail)?;
    f.write_all(bytes).map_err(fail)?;
    f.sync_all().map_err(fail)
}

fn parse_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::NotFound("Record not found"))
}

async fn show(req: HttpRequest, id: web::Path<String>, state: State) -> ApiResult {
    auth::owner(&req, &state, "write:media").await?;
    let m = get(&state, parse_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound("Record not found"))?;
    Ok(HttpResponse::Ok().json(json_of(&state, &m)))
}

/// Changes the alt text; for an image a post already shows, in its file too (then published).
async fn update(
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
    state: State,
) -> ApiResult {
    auth::owner(&req, &state, "write:media").await?;
    let p = form_params(&req, &body)?;
    let m = get(&state, parse_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound("Record not found"))?;
    let description = checked_description(&p.str("description").unwrap_or_default())?;
    if let Some(slug) = &m.post_slug {
        let s = slug.clone();
        let rel = state
            .db
            .read(move |conn| -> Result<_, ApiError> {
                Ok(crate::posts::by_slug(conn, &s)?
                    .filter(|p| p.deleted_at.is_none())
                    .map(|p| p.id))
            })
            .await?;
        if let Some(post_id) = rel {
            let rel = state
                .db
                .read(move |conn| -> Result<_, ApiError> {
                    Ok(crate::posts::store::source_path(conn, post_id)?)
                })
                .await?
                .ok_or(ApiError::NotFound("Record not found"))?;
            if description.is_empty() {
                return Err(ApiError::Unprocessable(
                    "a published image keeps its alt text: write a new one instead".into(),
                ));
            }
            post_file::set_alt(&state.site_dir, &rel, &m.path, &description)?;
            super::publishing::publish_now(&req).await?;
        }
    }
    let (mid, d) = (m.id, description.clone());
    state
        .db
        .call(move |conn| -> Result<_, ApiError> {
            conn.execute(
                "UPDATE api_media SET description = ?2 WHERE id = ?1",
                params![mid, d],
            )?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::Ok().json(json_of(&state, &Media { description, ..m })))
}
