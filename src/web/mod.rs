//! The HTTP side: pages for people, ActivityPub documents for servers, the well-known endpoints.
//! Handlers stay thin: they read through `Db::call`, build views or documents, and answer.

pub mod sitemap;
pub mod views;

use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, guard, web};
use askama::Template;
use include_dir::{Dir, include_dir};
use serde_json::Value;

use crate::activitypub::{self as ap, Site};
use crate::config::Config;
use crate::context::Context;
use crate::db::DbError;
use crate::federation::KnockLimiter;
use crate::posts::{self, Listing, Post};
use crate::urls::Urls;
use views::{
    ErrorPage, Feed, HomePage, Layout, Pager, PostPage, PostView, ProfileView, TagPage, TextPage,
};

static STATIC_DIR: Dir = include_dir!("$CARGO_MANIFEST_DIR/static");

/// What pages and documents share: the application context, and what only the web needs
/// (the page layout, the profile). Built once by [`AppState::new`]; it derefs to [`Context`], so
/// `state.config`, `state.db` … read the context, and `&AppState` goes wherever `&Context` does.
pub struct AppState {
    pub ctx: Arc<Context>,
    pub layout: Layout,
    pub profile: ProfileView,
}

impl std::ops::Deref for AppState {
    type Target = Context;
    fn deref(&self) -> &Context {
        &self.ctx
    }
}

impl AppState {
    pub fn new(ctx: Arc<Context>) -> AppState {
        AppState {
            layout: Layout::new(&ctx.config, &ctx.urls),
            profile: ProfileView::new(&ctx.config, &ctx.urls),
            ctx,
        }
    }

    pub fn site(&self) -> Site<'_> {
        Site {
            config: &self.config,
            urls: &self.urls,
        }
    }
}

type State = web::Data<Arc<AppState>>;
/// The inbox's knock limiter, one per running server (see `inbox::knock`).
type Knocks = web::Data<KnockLimiter>;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("internal error")]
    Db(#[from] DbError),
    #[error("internal error")]
    Sqlite(#[from] rusqlite::Error),
    #[error("internal error")]
    Template(#[from] askama::Error),
    #[error("{0}")]
    BadRequest(&'static str),
}

impl actix_web::ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
    fn error_response(&self) -> HttpResponse {
        if self.status_code().is_server_error() {
            // The peer sees a short status; the owner sees the cause in the log.
            tracing::error!(error = ?self, "request failed");
        }
        HttpResponse::build(self.status_code())
            .content_type("text/plain; charset=utf-8")
            .body(self.to_string())
    }
}

type WebResult = Result<HttpResponse, WebError>;

/// GET, and HEAD answered by the same handler (actix sends the headers without the body):
/// link checkers, caches and `curl -I` ask with HEAD.
fn read() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// Registers every route. Used by `hortus serve` and by the tests.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", read().to(home))
        .route("/page/{n}", read().to(home_page))
        .route("/posts/{slug}", read().to(post))
        .route("/tags/{tag}", read().to(tag))
        .route("/tags/{tag}/page/{n}", read().to(tag_page))
        .route("/feed.xml", read().to(feed))
        .route("/privacy", read().to(privacy))
        .route("/children", read().to(children))
        .route("/users/{name}", read().to(actor))
        .route("/users/{name}/{collection}", read().to(collection))
        .route(
            "/users/{name}/{collection}/page/{n}",
            read().to(collection_page),
        )
        .route("/actor", read().to(instance_actor))
        .route("/actor/outbox", read().to(instance_outbox))
        .route("/.well-known/webfinger", read().to(webfinger))
        .route("/.well-known/host-meta", read().to(host_meta))
        .route("/.well-known/nodeinfo", read().to(nodeinfo_links))
        .route("/nodeinfo/{version}", read().to(nodeinfo))
        .route("/static/{file:.*}", read().to(static_file))
        .route("/robots.txt", read().to(robots))
        .route("/sitemap.xml", read().to(sitemap::sitemap))
        .route("/@{name}", read().to(profile_redirect));
    // Inboxes: the shared one, the owner's and the instance actor's all take the same path.
    cfg.service(web::resource("/inbox").route(web::post().to(inbox)))
        .service(web::resource("/users/{name}/inbox").route(web::post().to(inbox)))
        .service(web::resource("/actor/inbox").route(web::post().to(inbox)));
}

/// Headers as the signature verifier wants them: lower-case names, values as sent.
pub fn header_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    req.headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect()
}

/// With `signed_fetch = true` (authorized fetch), ActivityPub JSON other than the actors needs a
/// valid signature from an allowed server: 401 without one, 403 from a refused server. The
/// actors, their keys, WebFinger, NodeInfo and the HTML pages stay public, or two signed-fetch
/// servers would deadlock fetching each other's keys (PROTOCOL.md §2).
async fn signed_fetch_gate(
    req: &HttpRequest,
    state: &AppState,
    knocks: &KnockLimiter,
) -> Option<HttpResponse> {
    if !state.config.federation.signed_fetch {
        return None;
    }
    let headers = header_pairs(req);
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let parts = crate::httpsig::RequestParts {
        method: req.method().as_str(),
        path_and_query: target,
        headers: &headers,
        body: None,
    };
    let peer = req.peer_addr().map(|a| a.ip());
    match crate::inbox::verify_request(state, knocks, &parts, peer).await {
        Ok(_) => None,
        Err(e) => {
            let key_id = crate::httpsig::signature_key_id(&parts).ok();
            crate::inbox::refusals::log(&e, key_id.as_ref().map(|p| p.key_id()));
            if let Some(pending) = &key_id {
                // An allowed server that cannot read us is as much a problem as one we cannot
                // read: the owner sees it in `hortus inbox` (issue 10.4).
                record_refusal(state, pending.key_id(), &[], &e).await;
            }
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
            Some(
                HttpResponse::build(status)
                    .insert_header((header::VARY, "Accept, Signature"))
                    .content_type("text/plain; charset=utf-8")
                    .body(e.to_string()),
            )
        }
    }
}

async fn inbox(
    req: HttpRequest,
    state: State,
    knocks: Knocks,
    mut payload: web::Payload,
) -> HttpResponse {
    use crate::inbox::{InboxError, MAX_BODY, Screened};
    let headers = header_pairs(&req);
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut parts = crate::httpsig::RequestParts {
        method: req.method().as_str(),
        path_and_query: target,
        headers: &headers,
        body: None,
    };
    // Named in the log line of a refusal (issue 10.5); parsed again here because `screen`
    // keeps it only for servers it lets through.
    let key_id = crate::httpsig::signature_key_id(&parts)
        .ok()
        .map(|p| p.key_id().to_string());
    // The head first: a wrong content type, a missing signature or a refused server is
    // answered before the body is read (of a refused server's, only a peek for the knock).
    let outcome = match crate::inbox::screen(&state, &parts).await {
        Screened::Refuse(e) => Err(e),
        Screened::Knock(host) => {
            let peek = read_at_most(&mut payload, crate::inbox::KNOCK_PEEK).await;
            let peer = req.peer_addr().map(|a| a.ip());
            Err(crate::inbox::knock(&state, &knocks, host, peer, &peek).await)
        }
        Screened::Pass(pending) => {
            let declared = req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
            // A declared length over the limit is refused before a byte of the body is read.
            let body = if declared.is_some_and(|n| n > MAX_BODY) {
                Ok(Err(()))
            } else {
                payload
                    .to_bytes_limited(MAX_BODY)
                    .await
                    .map(|limited| limited.map_err(|_| ()))
            };
            let (outcome, body) = match body {
                Ok(Ok(body)) => {
                    parts.body = Some(&body);
                    let outcome = crate::inbox::receive(&state, &parts, &pending).await;
                    (outcome, body)
                }
                Ok(Err(_)) => (Err(InboxError::TooLarge), Default::default()),
                Err(e) => (
                    Err(InboxError::BadActivity(format!("reading the body: {e}"))),
                    Default::default(),
                ),
            };
            if let Err(e) = &outcome {
                // An allowed server refused: the owner sees it in `hortus inbox` (issue 10.4).
                record_refusal(&state, pending.key_id(), &body, e).await;
            }
            outcome
        }
    };
    match outcome {
        Ok(()) => HttpResponse::Accepted().finish(),
        Err(e) => {
            crate::inbox::refusals::log(&e, key_id.as_deref());
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            let msg = if status.is_server_error() {
                "internal error".to_string()
            } else {
                e.to_string()
            };
            HttpResponse::build(status)
                .content_type("text/plain; charset=utf-8")
                .body(msg)
        }
    }
}

/// Records a refusal of a request from an allowed server, with the actor and type its body
/// claims (unverified: only shown, and matched to a pending follow, never acted on).
async fn record_refusal(state: &AppState, key_id: &str, body: &[u8], e: &crate::inbox::InboxError) {
    use crate::inbox::refusals;
    if !refusals::worth_recording(e) {
        return;
    }
    let Ok(key_url) = url::Url::parse(key_id) else {
        return;
    };
    let host = crate::activitypub::fetch::host_of(&key_url);
    let (actor, kind) = crate::inbox::knock_details(body);
    let seen = refusals::NewRefusal::new(&host, e, Some(key_id), actor.as_deref(), kind.as_deref());
    let recorded = state
        .db
        .call(move |c| {
            refusals::record(c, &seen, time::OffsetDateTime::now_utc())
                .map_err(crate::inbox::InboxError::from)
        })
        .await;
    if let Err(e) = recorded {
        tracing::warn!(error = %e, "could not record a refused request");
    }
}

/// Up to `limit` bytes of a body, and no more read from the connection (it is then closed).
async fn read_at_most(payload: &mut web::Payload, limit: usize) -> Vec<u8> {
    use futures_util::StreamExt;
    let mut out = Vec::new();
    while out.len() < limit {
        match payload.next().await {
            Some(Ok(chunk)) => out.extend_from_slice(&chunk[..chunk.len().min(limit - out.len())]),
            _ => break,
        }
    }
    out
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
fn wants_html(req: &HttpRequest) -> bool {
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

fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::VARY, "Accept"))
        .body(body)
}

fn error_page(state: &AppState, status: StatusCode, title: &str, message: &str) -> WebResult {
    let body = ErrorPage {
        l: &state.layout,
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

fn not_found_for(req: &HttpRequest, state: &AppState) -> WebResult {
    if wants_activity_json(req) {
        return Ok(activity_json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"error": "not found"}),
        ));
    }
    not_found_page(state)
}

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

fn parse_page(raw: &str) -> Option<u32> {
    raw.parse::<u32>()
        .ok()
        .filter(|&n| (1..=1_000_000).contains(&n))
}

async fn home(req: HttpRequest, state: State) -> WebResult {
    render_home(&req, &state, 1).await
}

async fn home_page(req: HttpRequest, state: State, path: web::Path<String>) -> WebResult {
    match parse_page(&path) {
        Some(1) => Ok(redirect(&state.urls.home())),
        Some(n) => render_home(&req, &state, n).await,
        None => not_found_for(&req, &state),
    }
}

fn redirect(to: &str) -> HttpResponse {
    HttpResponse::MovedPermanently()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// Posts for one page of the public listing (or of one tag's), the total, and the number of
/// pages.
async fn listing_page(
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

async fn render_home(req: &HttpRequest, state: &AppState, page: u32) -> WebResult {
    if page == 1 && wants_activity_json(req) {
        // Some servers resolve the profile URL itself; give them the actor.
        let mut doc = ap::actor(&state.site(), &state.actor_key.public_pem);
        crate::conversation::moving::add_moved_to(state, &mut doc).await?;
        return Ok(activity_json(StatusCode::OK, &doc));
    }
    let (posts, _, last) = listing_page(state, None, page).await?;
    if page > last {
        return not_found_for(req, state);
    }
    let body = HomePage {
        l: &state.layout,
        profile: &state.profile,
        posts: posts
            .iter()
            .map(|p| PostView::new(p, &state.urls))
            .collect(),
        pager: Pager::new(page, last, |n| state.urls.home_page(n)),
    }
    .render()?;
    Ok(html(StatusCode::OK, body))
}

async fn post(
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
    let lookup = slug.clone();
    let found = state
        .db
        .read(move |c| posts::by_slug(c, &lookup).map_err(WebError::from))
        .await?;
    let json = json_url || wants_activity_json(&req);
    if json && let Some(refusal) = signed_fetch_gate(&req, &state, &knocks).await {
        return Ok(refusal);
    }
    let Some(post) = found else {
        return not_found_for(&req, &state);
    };
    if post.deleted_at.is_some() {
        return if json {
            Ok(activity_json(
                StatusCode::GONE,
                &ap::tombstone(&state.site(), &post),
            ))
        } else {
            error_page(
                &state,
                StatusCode::GONE,
                "Deleted",
                "This post was deleted by its author.",
            )
        };
    }
    if !post.is_world_readable() {
        // Followers-only posts are never shown publicly; don't even confirm they exist.
        return not_found_for(&req, &state);
    }
    if json {
        return Ok(activity_json(
            StatusCode::OK,
            &ap::note(&state.site(), &post),
        ));
    }
    let view = PostView::new(&post, &state.urls);
    let conversation = load_conversation(&state, post.clone()).await?;
    let description = views::excerpt(&post.content_html, 200);
    let page_title = post
        .title
        .clone()
        .unwrap_or_else(|| views::excerpt(&post.content_html, 60));
    let body = PostPage {
        l: &state.layout,
        post: view,
        page_title,
        description,
        conversation,
    }
    .render()?;
    Ok(html(StatusCode::OK, body))
}

/// Replies and counts shown under a post (see `conversation::view`).
async fn load_conversation(
    state: &AppState,
    post: Post,
) -> Result<crate::conversation::view::ConversationView, WebError> {
    let urls = state.urls.clone();
    let layout = state.layout.clone();
    let policy = state.policy.clone();
    state
        .db
        .read(move |c| {
            // Allow and block lists change from the command line: one single-row read.
            if let Err(e) = policy.reload_if_changed(c) {
                tracing::warn!(error = %e, "could not reload the federation policy");
            }
            let shown = |actor: &str| {
                url::Url::parse(actor).is_ok_and(|u| policy.decide_url(&u).is_allowed())
            };
            let owner = crate::conversation::view::Owner {
                name: &layout.author_name,
                handle: &layout.handle,
                home: &layout.home_url,
            };
            // One read transaction for the page's half-dozen queries: one snapshot, and the
            // shared lock taken once rather than per statement.
            let tx = c.transaction().map_err(WebError::from)?;
            let view = crate::conversation::view::load(&tx, &urls, &post, &owner, &shown)?;
            tx.finish().map_err(WebError::from)?;
            Ok(view)
        })
        .await
}

async fn tag(req: HttpRequest, state: State, path: web::Path<String>) -> WebResult {
    render_tag(&req, &state, path.into_inner(), 1).await
}

async fn tag_page(req: HttpRequest, state: State, path: web::Path<(String, String)>) -> WebResult {
    let (tag, n) = path.into_inner();
    match parse_page(&n) {
        Some(1) => Ok(redirect(&state.urls.tag(&tag))),
        Some(n) => render_tag(&req, &state, tag, n).await,
        None => not_found_for(&req, &state),
    }
}

async fn render_tag(req: &HttpRequest, state: &AppState, tag: String, page: u32) -> WebResult {
    if tag.is_empty() || tag.len() > 100 || !tag.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return not_found_for(req, state);
    }
    let tag = tag.to_lowercase();
    let (posts, total, last) = listing_page(state, Some(tag.clone()), page).await?;
    if total == 0 || page > last {
        return not_found_for(req, state);
    }
    let body = TagPage {
        l: &state.layout,
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

async fn feed(state: State) -> WebResult {
    let (posts, _, _) = listing_page(&state, None, 1).await?;
    let updated = posts
        .iter()
        .map(|p| p.updated.unwrap_or(p.published))
        .max()
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let body = Feed {
        l: &state.layout,
        updated: posts::format_time(updated),
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

fn text_page(state: &AppState, title: &str, markdown: &str, default: &str) -> WebResult {
    let source = if markdown.trim().is_empty() {
        default
    } else {
        markdown
    };
    let body = TextPage {
        l: &state.layout,
        title,
        body_html: crate::posts::markdown::render_plain(source),
    }
    .render()?;
    Ok(html(StatusCode::OK, body))
}

async fn privacy(state: State) -> WebResult {
    text_page(
        &state,
        "Privacy policy",
        &state.config.site.privacy_policy,
        views::DEFAULT_PRIVACY,
    )
}

async fn children(state: State) -> WebResult {
    text_page(
        &state,
        "Users under 13",
        &state.config.site.children_policy,
        views::DEFAULT_CHILDREN,
    )
}

fn is_owner(state: &AppState, name: &str) -> bool {
    name.eq_ignore_ascii_case(&state.config.user.name)
}

async fn actor(req: HttpRequest, state: State, path: web::Path<String>) -> WebResult {
    if !is_owner(&state, &path) {
        return not_found_for(&req, &state);
    }
    if wants_html(&req) {
        return Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, state.urls.home()))
            .insert_header((header::VARY, "Accept"))
            .finish());
    }
    let mut doc = ap::actor(&state.site(), &state.actor_key.public_pem);
    crate::conversation::moving::add_moved_to(&state, &mut doc).await?;
    Ok(activity_json(StatusCode::OK, &doc))
}

async fn instance_actor(state: State) -> WebResult {
    Ok(activity_json(
        StatusCode::OK,
        &ap::instance_actor(&state.site(), &state.instance_key.public_pem),
    ))
}

async fn instance_outbox(state: State) -> WebResult {
    Ok(activity_json(
        StatusCode::OK,
        &ap::instance_outbox(&state.site()),
    ))
}

#[derive(Clone, Copy)]
enum CollectionKind {
    Outbox,
    Followers,
    Following,
}

impl CollectionKind {
    /// Whether who is in it stays private (`hide_social_graph`); the outbox never is.
    fn hidden(self, config: &Config) -> bool {
        config.federation.hide_social_graph && !matches!(self, CollectionKind::Outbox)
    }

    fn parse(s: &str) -> Option<CollectionKind> {
        match s {
            "outbox" => Some(CollectionKind::Outbox),
            "followers" => Some(CollectionKind::Followers),
            "following" => Some(CollectionKind::Following),
            _ => None,
        }
    }
    fn id(self, urls: &Urls) -> String {
        match self {
            CollectionKind::Outbox => urls.outbox(),
            CollectionKind::Followers => urls.followers(),
            CollectionKind::Following => urls.following(),
        }
    }
}

pub const COLLECTION_PAGE_SIZE: u32 = 20;

fn count_collection(c: &rusqlite::Connection, kind: CollectionKind) -> rusqlite::Result<u64> {
    match kind {
        CollectionKind::Outbox => posts::count(c, Listing::Outbox),
        CollectionKind::Followers => c
            .query_row(
                "SELECT COUNT(*) FROM followers WHERE state = 'accepted'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64),
        CollectionKind::Following => c
            .query_row(
                "SELECT COUNT(*) FROM following WHERE state = 'accepted'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64),
    }
}

async fn collection(
    req: HttpRequest,
    state: State,
    knocks: Knocks,
    path: web::Path<(String, String)>,
) -> WebResult {
    let (name, which) = path.into_inner();
    let Some(kind) = CollectionKind::parse(&which).filter(|_| is_owner(&state, &name)) else {
        return not_found_for(&req, &state);
    };
    if let Some(refusal) = signed_fetch_gate(&req, &state, &knocks).await {
        return Ok(refusal);
    }
    let total = state
        .db
        .read(move |c| count_collection(c, kind).map_err(WebError::from))
        .await?;
    let mut doc = ap::collection(&kind.id(&state.urls), total, COLLECTION_PAGE_SIZE);
    if kind.hidden(&state.config) {
        // The count, and no page to list who is in it (what Mastodon does when hiding).
        if let Some(fields) = doc.as_object_mut() {
            fields.remove("first");
            fields.remove("last");
        }
    }
    Ok(activity_json(StatusCode::OK, &doc))
}

async fn collection_page(
    req: HttpRequest,
    state: State,
    knocks: Knocks,
    path: web::Path<(String, String, String)>,
) -> WebResult {
    let (name, which, n) = path.into_inner();
    let (Some(kind), Some(page)) = (CollectionKind::parse(&which), parse_page(&n)) else {
        return not_found_for(&req, &state);
    };
    if !is_owner(&state, &name) || kind.hidden(&state.config) {
        return not_found_for(&req, &state);
    }
    if let Some(refusal) = signed_fetch_gate(&req, &state, &knocks).await {
        return Ok(refusal);
    }
    let offset = i64::from(page - 1) * i64::from(COLLECTION_PAGE_SIZE);
    let (total, posts, actors) = state
        .db
        .read(move |c| {
            let total = count_collection(c, kind)?;
            let mut posts = Vec::new();
            let mut actors = Vec::new();
            match kind {
                CollectionKind::Outbox => {
                    posts = posts::list(c, Listing::Outbox, COLLECTION_PAGE_SIZE, offset as u64)?;
                }
                CollectionKind::Followers | CollectionKind::Following => {
                    let table = if matches!(kind, CollectionKind::Followers) { "followers" } else { "following" };
                    let mut stmt = c.prepare_cached(&format!(
                        "SELECT actor_id FROM {table} WHERE state = 'accepted' ORDER BY created_at, actor_id LIMIT ?1 OFFSET ?2"
                    ))?;
                    actors = stmt
                        .query_map(rusqlite::params![COLLECTION_PAGE_SIZE, offset], |r| r.get::<_, String>(0))?
                        .collect::<Result<_, _>>()?;
                }
            }
            Ok::<_, WebError>((total, posts, actors))
        })
        .await?;
    if page > ap::last_page(total, COLLECTION_PAGE_SIZE) {
        return not_found_for(&req, &state);
    }
    let items: Vec<Value> = match kind {
        CollectionKind::Outbox => posts.iter().map(|p| ap::create(&state.site(), p)).collect(),
        _ => actors.into_iter().map(Value::String).collect(),
    };
    Ok(activity_json(
        StatusCode::OK,
        &ap::collection_page(
            &kind.id(&state.urls),
            page,
            total,
            COLLECTION_PAGE_SIZE,
            items,
        ),
    ))
}

#[derive(serde::Deserialize)]
struct WebfingerQuery {
    resource: Option<String>,
}

/// What a WebFinger `resource` names, after stripping `acct:` and normalising case.
enum Resource {
    Owner,
    Instance,
    Nobody,
}

fn resolve_resource(state: &AppState, resource: &str) -> Option<Resource> {
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

async fn webfinger(state: State, query: web::Query<WebfingerQuery>) -> WebResult {
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

async fn host_meta(state: State) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/xrd+xml; charset=utf-8"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .body(ap::host_meta(&state.site()))
}

async fn nodeinfo_links(state: State) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .body(ap::nodeinfo_links(&state.site()).to_string())
}

async fn nodeinfo(req: HttpRequest, state: State, path: web::Path<String>) -> WebResult {
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

async fn static_file(req: HttpRequest, state: State, path: web::Path<String>) -> WebResult {
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

async fn robots(state: State) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(format!(
            "User-agent: *\nAllow: /\n\nSitemap: {}/sitemap.xml\n",
            state.urls.base()
        ))
}

async fn profile_redirect(req: HttpRequest, state: State, path: web::Path<String>) -> WebResult {
    if !is_owner(&state, &path) {
        return not_found_for(&req, &state);
    }
    Ok(redirect(&state.urls.home()))
}

/// Serves `DIR/media/*` (avatars, post images) with actix-files: ranges, ETags, content types.
pub fn media_service(site_dir: &std::path::Path) -> actix_files::Files {
    actix_files::Files::new("/media", site_dir.join("media"))
        .prefer_utf8(true)
        .use_etag(true)
        .use_last_modified(true)
}
