//! The client API for apps: a Mastodon-compatible subset with OAuth 2, so Ivory, Tusky, Elk,
//! Phanpy… read and write for the owner (issue 13). It sits beside `web` and `inbox` in the
//! layer picture (README, Development); `app::Shared::routes` mounts [`configure`]. A status
//! written here becomes a Markdown file in `content/posts/`, published like any other: the files
//! stay the source of truth.
//!
//! Files: `error` (the `{"error": …}` answers), `form` (parameters as JSON, form or query),
//! `paging` (`max_id`… and `Link`), `scopes`, `password` (argon2id), `store` (apps,
//! codes, tokens: hashes only), `auth` (the bearer token of a request, scope checks, CORS),
//! `throttle` (failed sign-ins), `oauth` and `signin` (the OAuth 2 endpoints and the sign-in
//! page), `entities` (Account, Status, MediaAttachment JSON), `instance`, `accounts`, `timelines` (the public
//! and tag ones), `search`,
//! `profile` (update_credentials: hortus.toml), `statuses`, `post_file` (a status as a Markdown file) and `publishing`, `media` and `metadata` (what a photo says
//! beyond its pixels, removed), `admin`,
//! `remote` (other accounts and their ids), `remote_status` (posts from other servers and
//! their status ids), `polls` (voting in
//! their polls), `note_tags` (their language, mentions, tags, emojis and quote), `quote`
//! (the Quote of a Status), `home` (the home timeline), `actions` (favourite, reblog, bookmark…,
//! through `timeline::act`; context), `notifications` (and follow requests), `streaming`
//! (one WebSocket) and `stream_feed` (what every stream is sent, found once), `misc`
//! (markers, preferences and the empty answers of what a single-user server does not have).

mod accounts;
mod actions;
mod admin;
mod auth;
mod entities;
mod error;
mod form;
mod home;
mod instance;
mod media;
mod metadata;
mod misc;
mod note_tags;
mod notifications;
mod oauth;
mod paging;
pub mod password;
mod polls;
mod post_file;
pub mod profile;
mod publishing;
mod quote;
mod remote;
mod remote_status;
pub mod scopes;
mod search;
mod signin;
mod statuses;
pub mod store;
mod stream_feed;
mod streaming;
mod throttle;
mod timelines;

use actix_web::web;

pub use error::ApiError;
pub use publishing::Publisher;
pub use stream_feed::Feed as StreamFeed;

/// Every route of the client API and OAuth, with the CORS answers web apps need.
pub fn configure(cfg: &mut web::ServiceConfig) {
    signin::configure(cfg);
    oauth::configure(cfg);
    cfg.service(
        web::scope("/api")
            .wrap(auth::cors())
            .configure(instance::configure)
            // Before `accounts`: its `/v1/accounts/{id}` would take the path first.
            .configure(profile::configure)
            .configure(accounts::configure)
            .configure(statuses::configure)
            .configure(actions::configure)
            .configure(home::configure)
            .configure(media::configure)
            .configure(admin::configure)
            .configure(misc::configure)
            .configure(notifications::configure)
            .configure(streaming::configure)
            .configure(timelines::configure)
            .configure(search::configure)
            .configure(polls::configure)
            .default_service(web::to(error::not_found)),
    );
}
