//! Answers in the form the client asked for: content negotiation, ActivityPub JSON, HTML, the
//! error pages (documents and well-known endpoints answer 404 too, so they live here, not with
//! the pages).

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, guard, web};
use askama::Template;
use serde_json::Value;

use super::state::{AppState, WebResult};
use super::views::ErrorPage;
use crate::activitypub as ap;

/// GET, and HEAD answered by the same handler (actix sends the headers without the body):
/// link checkers, caches and `curl -I` ask with HEAD.
pub(super) fn read() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// Does the client ask for ActivityPub JSON? Mastodon sends
/// `application/activity+json, application/ld+json; profile="…", text/html;q=0.1`.
/// Media ranges are parsed with their q-values (actix's typed `Accept`): a type refused with
/// `q=0` is not asked for. `application/ld+json` counts with or without the ActivityStreams
/// profile, as Mastodon's negotiation does.
pub fn wants_activity_json(req: &HttpRequest) -> bool {
    use actix_web::http::header::{Accept, Header};
    let Ok(accept) = Accept::parse(req) else {
        return false;
    };
    accept.iter().any(|item| {
        let mime = &item.item;
        mime.type_() == "application"
            && matches!(mime.subtype().as_str(), "activity" | "ld")
            && mime.suffix().is_some_and(|s| s == "json")
            && item.quality > actix_web::http::header::Quality::ZERO
    })
}

/// Is this a browser that prefers a page (and not a server that takes JSON)?
pub(super) fn wants_html(req: &HttpRequest) -> bool {
    !wants_activity_json(req)
        && req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
}

pub fn activity_json(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, ap::CONTENT_TYPE))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((header::VARY, "Accept"))
        .body(body.to_string())
}

pub(super) fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::VARY, "Accept"))
        .body(body)
}

pub(super) fn redirect(to: &str) -> HttpResponse {
    HttpResponse::MovedPermanently()
        .insert_header((header::LOCATION, to))
        .finish()
}

pub(super) fn parse_page(raw: &str) -> Option<u32> {
    raw.parse::<u32>()
        .ok()
        .filter(|&n| (1..=1_000_000).contains(&n))
}

pub(super) fn error_page(
    state: &AppState,
    status: StatusCode,
    title: &str,
    message: &str,
) -> WebResult {
    let body = ErrorPage {
        l: &state.layout(),
        title,
        message,
    }
    .render()?;
    Ok(html(status, body))
}

pub fn not_found_page(state: &AppState) -> WebResult {
    error_page(
        state,
        StatusCode::NOT_FOUND,
        "Not found",
        "There is nothing at this address. It may have moved, or never existed.",
    )
}

pub(super) fn not_found_for(req: &HttpRequest, state: &AppState) -> WebResult {
    if wants_activity_json(req) {
        return Ok(activity_json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"error": "not found"}),
        ));
    }
    not_found_page(state)
}
