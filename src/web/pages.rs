//! The pages people read: home and its pages, posts (and their JSON), tags, the feed, the two
//! policy pages, and the 404/405 fallback.

use actix_web::http::header;
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::cache::Repr;
use super::documents::signed_fetch_gate;
use super::respond::{
    activity_json, error_page, html, not_found_for, parse_page, redirect, wants_activity_json,
};
use super::state::{AppState, Knocks, State, WebError, WebResult};
use super::views::{self, Feed, HomePage, Pager, PostPage, PostView, TagPage, TextPage};
use crate::activitypub as ap;
use crate::posts::{self, Listing, Post};

/// The default service: a real 404 page (and 405 for methods no route takes).
pub async fn fallback(req: HttpRequest, state: State) -> WebResult {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(HttpResponse::MethodNotAllowed().finish());
    }
    // `/posts/x/` → `/posts/x`. Done here rather than by rewriting every request, which would
    // change the path a signature's (request-target) covers.
    let path = req.path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let to = match req.query_string() {
            "" => trimmed.to_string(),
            q => format!("{trimmed}?{q}"),
        };
        return Ok(redirect(&to));
    }
    not_found_for(&req, &state)
}

pub(super) async fn home(req: HttpRequest, state: State) -> WebResult {
    // The same URL is the actor for servers (see `render_home`): one entry per representation.
    let repr = if wants_activity_json(&req) {
        Repr::ActivityJson
    } else {
        Repr::Html
    };
    state
        .pages
        .serve(&req, repr, render_home(&req, &state, 1))
        .await
}

pub(super) async fn home_page(
    req: HttpRequest,
    state: State,
    path: web::Path<String>,
) -> WebResult {
    match parse_page(&path) {
        Some(1) => Ok(redirect(&state.urls.home())),
        Some(n) => {
            state
                .pages
                .serve(&req, Repr::Html, render_home(&req, &state, n))
                .await
        }
        None => not_found_for(&req, &state),
    }
}

/// Posts for one page of the public listing (or of one tag's), the total, and the number of
/// pages.
pub(super) async fn listing_page(
    state: &AppState,
    tag: Option<String>,
    page: u32,
) -> Result<(Vec<Post>, u64, u32), WebError> {
    let per_page = state.config.site.posts_per_page;
    let (posts, total) = state
        .db
        .read(move |c| {
            let listing = tag.as_deref().map_or(Listing::Public, Listing::Tag);
            let total = posts::count(c, listing)?;
            let offset = u64::from(page - 1) * u64::from(per_page);
            let posts = posts::list(c, listing, per_page, offset)?;
            Ok::<_, WebError>((posts, total))
        })
        .await?;
    Ok((posts, total, ap::last_page(total, per_page)))
}

pub(super) async fn render_home(req: &HttpRequest, state: &AppState, page: u32) -> WebResult {
    if page == 1 && wants_activity_json(req) {
        // Some servers resolve the profile URL itself; give them the actor.
        let mut doc = state.actor();
        crate::conversation::moving::add_moved_to(state, &mut doc).await?;
        return Ok(activity_json(StatusCode::OK, &doc));
    }
    let (posts, _, last) = listing_page(state, None, page).await?;
    if page > last {
        return not_found_for(req, state);
    }
    let boosts = if page == 1 {
        state
            .db
            .read(|c| crate::timeline::shown::recent_boosts(c, 10).map_err(WebError::from))
            .await?
    } else {
        Vec::new()
    };
    let body = HomePage {
        l: &state.layout(),
        profile: &state.profile(),
        posts: posts
            .iter()
            .map(|p| PostView::new(p, &state.urls))
            .collect(),
        pager: Pager::new(page, last, |n| state.urls.home_page(n)),
        boosts,
    }
    .render()?;
    Ok(html(StatusCode::OK, body))
}

pub(super) async fn post(
    req: HttpRequest,
    state: State,
    knocks: Knocks,
    path: web::Path<String>,
) -> WebResult {
    let raw = path.into_inner();
    let (slug, json_url) = match raw.strip_suffix(".json") {
        Some(slug) => (slug.to_string(), true),
        None => (raw, false),
    };
    let json = json_url || wants_activity_json(&req);
    // The gate first: what it decides depends on who asks, so it is never cached.
    if json && let Some(refusal) = signed_fetch_gate(&req, &state, &knocks).await {
        return Ok(refusal);
    }
    let repr = if json { Repr::ActivityJson } else { Repr::Html };
    state
        .pages
        .serve(&req, repr, render_post(&req, &state, slug, json))
        .await
}

async fn render_post(req: &HttpRequest, state: &AppState, slug: String, json: bool) -> WebResult {
    let found = state
        .db
        .read(move |c| posts::by_slug(c, &slug).map_err(WebError::from))
        .await?;
    let Some(post) = found else {
        return not_found_for(req, state);
    };
    if post.deleted_at.is_some() {
        return if json {
            Ok(activity_json(
                StatusCode::GONE,
                &ap::tombstone(&state.site(), &post),
            ))
        } else {
            error_page(
                state,
                StatusCode::GONE,
                "Deleted",
                "This post was deleted by its author.",
            )
        };
    }
    if !post.is_world_readable() {
        // Followers-only posts are never shown publicly; don't even confirm they exist.
        return not_found_for(req, state);
    }
    if json {
        return Ok(activity_json(
            StatusCode::OK,
            &ap::note(&state.site(), &post),
        ));
    }
    let view = PostView::new(&post, &state.urls);
    let conversation = load_conversation(state, post.clone()).await?;
    // The description and, for an untitled post, the title: one parse of its HTML for both.
    let (description, page_title) = match &post.title {
        Some(title) => (views::excerpt(&post.content_html, 200), title.clone()),
        None => views::excerpts(&post.content_html, 200, 60),
    };
    let body = PostPage {
        l: &state.layout(),
        post: view,
        page_title,
        description,
        conversation,
    }
    .render()?;
    Ok(html(StatusCode::OK, body))
}

/// Replies and counts shown under a post (see `conversation::view`).
pub(super) async fn load_conversation(
    state: &AppState,
    post: Post,
) -> Result<crate::conversation::view::ConversationView, WebError> {
    let urls = state.urls.clone();
    let layout = state.layout();
    let policy = state.policy.clone();
    state
        .db
        .read(move |c| {
            // Allow and block lists change from the command line: one single-row read.
            if let Err(e) = policy.reload_if_changed(c) {
                tracing::warn!(error = %e, "could not reload the federation policy");
            }
            let owner = crate::conversation::view::Owner {
                name: &layout.author_name,
                handle: &layout.handle,
                home: &layout.home_url,
            };
            // One read transaction for the page's half-dozen queries: one snapshot, and the
            // shared lock taken once rather than per statement.
            let tx = c.transaction().map_err(WebError::from)?;
            // A blocked account's replies and reactions are left out, like a refused server's;
            // nothing is deleted, so an unblock shows them again.
            let blocked = crate::graph::accounts::blocked(&tx)?;
            let shown = |actor: &str| {
                !blocked.contains(actor)
                    && url::Url::parse(actor).is_ok_and(|u| policy.decide_url(&u).is_allowed())
            };
            let view = crate::conversation::view::load(&tx, &urls, &post, &owner, &shown)?;
            tx.finish().map_err(WebError::from)?;
            Ok(view)
        })
        .await
}

pub(super) async fn tag(req: HttpRequest, state: State, path: web::Path<String>) -> WebResult {
    state
        .pages
        .serve(
            &req,
            Repr::Html,
            render_tag(&req, &state, path.into_inner(), 1),
        )
        .await
}

pub(super) async fn tag_page(
    req: HttpRequest,
    state: State,
    path: web::Path<(String, String)>,
) -> WebResult {
    let (tag, n) = path.into_inner();
    match parse_page(&n) {
        Some(1) => Ok(redirect(&state.urls.tag(&tag))),
        Some(n) => {
            state
                .pages
                .serve(&req, Repr::Html, render_tag(&req, &state, tag, n))
                .await
        }
        None => not_found_for(&req, &state),
    }
}

pub(super) async fn render_tag(
    req: &HttpRequest,
    state: &AppState,
    tag: String,
    page: u32,
) -> WebResult {
    if tag.is_empty() || tag.len() > 100 || !tag.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return not_found_for(req, state);
    }
    let tag = tag.to_lowercase();
    let (posts, total, last) = listing_page(state, Some(tag.clone()), page).await?;
    if total == 0 || page > last {
        return not_found_for(req, state);
    }
    let body = TagPage {
        l: &state.layout(),
        pager: Pager::new(page, last, |n| state.urls.tag_page(&tag, n)),
        tag,
        posts: posts
            .iter()
            .map(|p| PostView::new(p, &state.urls))
            .collect(),
    }
    .render()?;
    Ok(html(StatusCode::OK, body))
}

pub(super) async fn feed(req: HttpRequest, state: State) -> WebResult {
    state
        .pages
        .serve(&req, Repr::Atom, render_feed(&state))
        .await
}

async fn render_feed(state: &AppState) -> WebResult {
    let (posts, _, _) = listing_page(state, None, 1).await?;
    let updated = posts
        .iter()
        .map(|p| p.updated.unwrap_or(p.published))
        .max()
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let body = Feed {
        l: &state.layout(),
        updated: crate::times::rfc3339(updated),
        posts: posts
            .iter()
            .map(|p| PostView::new(p, &state.urls))
            .collect(),
    }
    .render()?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/atom+xml; charset=utf-8"))
        .body(body))
}

pub(super) fn text_page(state: &AppState, title: &str, markdown: &str, default: &str) -> WebResult {
    let source = if markdown.trim().is_empty() {
        default
    } else {
        markdown
    };
    let body = TextPage {
        l: &state.layout(),
        title,
        body_html: crate::posts::markdown::render_plain(source),
    }
    .render()?;
    Ok(html(StatusCode::OK, body))
}

pub(super) async fn privacy(state: State) -> WebResult {
    text_page(
        &state,
        "Privacy policy",
        &state.config.site.privacy_policy,
        views::DEFAULT_PRIVACY,
    )
}

pub(super) async fn children(state: State) -> WebResult {
    text_page(
        &state,
        "Users under 13",
        &state.config.site.children_policy,
        views::DEFAULT_CHILDREN,
    )
}
