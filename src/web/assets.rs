//! Files: the stylesheet and icons built into the binary (`static/`), and the site's `media/`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use include_dir::{Dir, include_dir};

use super::respond::not_found_for;
use super::state::{State, WebResult};

pub(super) static STATIC_DIR: Dir = include_dir!("$CARGO_MANIFEST_DIR/static");

/// Every file served under `/static/`, by path (for `hortus export`).
pub fn static_files() -> Vec<&'static str> {
    fn walk(dir: &'static Dir<'static>, out: &mut Vec<&'static str>) {
        for f in dir.files() {
            out.extend(f.path().to_str());
        }
        for d in dir.dirs() {
            walk(d, out);
        }
    }
    let mut out = Vec::new();
    walk(&STATIC_DIR, &mut out);
    out.sort_unstable();
    out
}

pub fn static_asset(path: &str) -> Option<(&'static [u8], &'static str)> {
    let file = STATIC_DIR.get_file(path)?;
    let mime = match path.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("ico") => "image/x-icon",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
    Some((file.contents(), mime))
}

pub(super) async fn static_file(
    req: HttpRequest,
    state: State,
    path: web::Path<String>,
) -> WebResult {
    match static_asset(&path) {
        Some((bytes, mime)) => Ok(HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, mime))
            .insert_header((
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            ))
            .body(bytes)),
        None => not_found_for(&req, &state),
    }
}

/// Serves `DIR/media/*` (avatars, post images) with actix-files: ranges, ETags, content types.
pub fn media_service(site_dir: &std::path::Path) -> actix_files::Files {
    actix_files::Files::new("/media", site_dir.join("media"))
        .prefer_utf8(true)
        .use_etag(true)
        .use_last_modified(true)
}
