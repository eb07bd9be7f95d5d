//! Mastodon's pagination: `max_id` / `since_id` / `min_id` / `limit` in, a `Link` header with
//! `next` (older) and `prev` (newer) out (docs.joinmastodon.org/api/guidelines/#pagination).

use actix_web::HttpRequest;

use super::form::{Params, limit};
use crate::posts::store::IdPage;

/// The page a request asks for.
pub fn id_page(p: &Params) -> IdPage {
    let id = |name: &str| p.str(name).and_then(|v| v.parse::<i64>().ok());
    IdPage {
        max_id: id("max_id"),
        since_id: id("since_id"),
        min_id: id("min_id"),
        limit: u32::try_from(limit(p)).unwrap_or(20),
        exclude_replies: p.bool("exclude_replies").unwrap_or(false),
        public_only: false,
    }
}

/// The `Link` header for a page whose items run from `newest` to `oldest` (ids), or `None`
/// for an empty page.
fn link(
    req: &HttpRequest,
    base: &str,
    newest: Option<i64>,
    oldest: Option<i64>,
    limit: u32,
) -> Option<String> {
    let (newest, oldest) = (newest?, oldest?);
    // Keep the request's other parameters (exclude_replies…), replace the paging ones.
    let kept: Vec<(String, String)> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .filter(|(k, _)| !matches!(k.as_ref(), "max_id" | "since_id" | "min_id" | "limit"))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let url = |key: &str, id: i64| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &kept {
            q.append_pair(k, v);
        }
        q.append_pair("limit", &limit.to_string());
        q.append_pair(key, &id.to_string());
        format!("{}{}?{}", base, req.path(), q.finish())
    };
    Some(format!(
        "<{}>; rel=\"next\", <{}>; rel=\"prev\"",
        url("max_id", oldest),
        url("min_id", newest)
    ))
}

/// The JSON answer for a page whose items run from `newest` to `oldest` (ids), with its
/// `Link` header when the page is not empty.
pub fn answer(
    req: &HttpRequest,
    base: &str,
    (newest, oldest): (Option<i64>, Option<i64>),
    limit: u32,
    body: impl serde::Serialize,
) -> actix_web::HttpResponse {
    let mut resp = actix_web::HttpResponse::Ok();
    if let Some(link) = link(req, base, newest, oldest, limit) {
        resp.insert_header(("Link", link));
    }
    resp.json(body)
}

/// [`answer`] for a page of `(id, item)` pairs, newest first.
pub fn answer_items<T: serde::Serialize>(
    req: &HttpRequest,
    base: &str,
    items: Vec<(i64, T)>,
    limit: u32,
) -> actix_web::HttpResponse {
    let ends = (
        items.first().map(|(id, _)| *id),
        items.last().map(|(id, _)| *id),
    );
    let body: Vec<T> = items.into_iter().map(|(_, v)| v).collect();
    answer(req, base, ends, limit, body)
}
