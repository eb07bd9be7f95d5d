//! The HTTP side for GET: pages for people, ActivityPub documents for servers, the well-known
//! endpoints, files. Handlers stay thin: they read through `Db::call`, build views or documents,
//! and answer. The inbox POST is the inbox's own (`inbox::http`); `app::Shared::routes` puts both
//! together.
//!
//! Files: `state` (AppState, errors), `respond` (negotiation, error pages), `pages`,
//! `documents`, `wellknown`, `assets`, `sitemap`, `views` (templates). Children import `state`
//! and `respond`, never this file, which only declares, routes and re-exports.

mod assets;
pub mod cache;
mod documents;
mod pages;
mod respond;
pub mod sitemap;
mod state;
pub mod views;
mod wellknown;

use actix_web::web;

pub use assets::{media_service, static_asset, static_files};
pub use documents::COLLECTION_PAGE_SIZE;
pub use pages::fallback;
pub use respond::{activity_json, not_found_page, wants_activity_json};
pub use state::{AppState, WebError};

use assets::static_file;
use documents::{
    actor, collection, collection_page, followers_synchronization, instance_actor, instance_outbox,
    quote_authorization,
};
use pages::{children, feed, home, home_page, post, privacy, tag, tag_page};
use respond::read;
use wellknown::{host_meta, nodeinfo, nodeinfo_links, profile_redirect, robots, webfinger};

/// Registers every GET route (the inbox's POST is `inbox::http::configure`; `app::Shared::routes`
/// registers both).
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
        .route(
            "/users/{name}/followers_synchronization",
            read().to(followers_synchronization),
        )
        .route("/users/{name}/{collection}", read().to(collection))
        .route(
            "/users/{name}/{collection}/page/{n}",
            read().to(collection_page),
        )
        .route(
            "/quote-authorizations/{token}",
            read().to(quote_authorization),
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
}
