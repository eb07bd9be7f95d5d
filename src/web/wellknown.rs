//! The well-known endpoints servers ask first: WebFinger, host-meta, NodeInfo, robots.txt, and
//! the `/@name` profile redirect.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::respond::{not_found_for, redirect};
use super::state::{AppState, State, WebError, WebResult, is_owner};
use crate::activitypub as ap;
use crate::posts::{self, Listing};

#[derive(serde::Deserialize)]
pub(super) struct WebfingerQuery {
    resource: Option<String>,
}

/// What a WebFinger `resource` names, after stripping `acct:` and normalising case.
pub(super) enum Resource {
    Owner,
    Instance,
    Nobody,
}

pub(super) fn resolve_resource(state: &AppState, resource: &str) -> Option<Resource> {
    let resource = resource.trim();
    if resource.is_empty() {
        return None;
    }
    if resource.starts_with("https://") || resource.starts_with("http://") {
        let owner = [
            state.urls.actor(),
            state.urls.home(),
            state.urls.base().to_string(),
        ];
        if owner.iter().any(|u| u.eq_ignore_ascii_case(resource)) {
            return Some(Resource::Owner);
        }
        if resource.eq_ignore_ascii_case(&state.urls.instance_actor()) {
            return Some(Resource::Instance);
        }
        return Some(Resource::Nobody);
    }
    let acct = resource.strip_prefix("acct:").unwrap_or(resource);
    let acct = acct.strip_prefix('@').unwrap_or(acct);
    let (user, host) = acct.rsplit_once('@')?;
    if user.is_empty() || host.is_empty() || user.contains(['/', ' ']) {
        return None;
    }
    if !host.eq_ignore_ascii_case(&state.config.domain) {
        return Some(Resource::Nobody);
    }
    if user.eq_ignore_ascii_case(&state.config.user.name) {
        Some(Resource::Owner)
    } else if user.eq_ignore_ascii_case(&state.config.domain) {
        Some(Resource::Instance)
    } else {
        Some(Resource::Nobody)
    }
}

pub(super) async fn webfinger(state: State, query: web::Query<WebfingerQuery>) -> WebResult {
    let cors = (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*");
    let Some(resource) = query
        .resource
        .as_deref()
        .and_then(|r| resolve_resource(&state, r))
    else {
        return Ok(HttpResponse::BadRequest()
            .insert_header(cors)
            .content_type("text/plain; charset=utf-8")
            .body("resource must be acct:user@domain or a URL"));
    };
    let body = match resource {
        Resource::Owner => ap::webfinger(&state.site()),
        Resource::Instance => ap::webfinger_instance(&state.site()),
        Resource::Nobody => {
            return Ok(HttpResponse::NotFound().insert_header(cors).finish());
        }
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/jrd+json"))
        .insert_header(cors)
        .body(body.to_string()))
}

pub(super) async fn host_meta(state: State) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/xrd+xml; charset=utf-8"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .body(ap::host_meta(&state.site()))
}

pub(super) async fn nodeinfo_links(state: State) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .body(ap::nodeinfo_links(&state.site()).to_string())
}

pub(super) async fn nodeinfo(req: HttpRequest, state: State, path: web::Path<String>) -> WebResult {
    let version = path.into_inner();
    if version != "2.0" && version != "2.1" {
        return not_found_for(&req, &state);
    }
    let local_posts = state
        .db
        .read(|c| posts::count(c, Listing::Outbox).map_err(WebError::from))
        .await?;
    let profile = format!("http://nodeinfo.diaspora.software/ns/schema/{version}#");
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            format!("application/json; profile=\"{profile}\""),
        ))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .body(ap::nodeinfo(&state.site(), &version, local_posts).to_string()))
}

pub(super) async fn robots(state: State) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(format!(
            "User-agent: *\nAllow: /\n\nSitemap: {}/sitemap.xml\n",
            state.urls.base()
        ))
}

pub(super) async fn profile_redirect(
    req: HttpRequest,
    state: State,
    path: web::Path<String>,
) -> WebResult {
    if !is_owner(&state, &path) {
        return not_found_for(&req, &state);
    }
    Ok(redirect(&state.urls.home()))
}
