//! What every handler shares: [`AppState`] (the context plus what pages add), the request
//! data types, and the error a handler answers with.

use std::sync::{Arc, PoisonError, RwLock};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::cache::PageCache;
use super::views::{Layout, ProfileView};
use crate::activitypub::Site;
use crate::context::Context;
use crate::db::DbError;
use crate::federation::KnockLimiter;

/// What pages and documents share: the application context, and what only the web needs
/// (the page layout, the profile). Built once by [`AppState::new`]; it derefs to [`Context`], so
/// `state.config`, `state.db` … read the context, and `&AppState` goes wherever `&Context` does.
pub struct AppState {
    pub ctx: Arc<Context>,
    /// The layout and profile views, built from `ctx.live` and rebuilt when it moves (an app
    /// changed the profile): read them through [`AppState::layout`] and [`AppState::profile`].
    views: RwLock<Views>,
    /// Rendered public pages and documents (`cache`).
    pub pages: PageCache,
}

impl std::ops::Deref for AppState {
    type Target = Context;
    fn deref(&self) -> &Context {
        &self.ctx
    }
}

impl AppState {
    pub fn new(ctx: Arc<Context>) -> AppState {
        let limit = ctx.config.site.page_cache_mb as usize * (1 << 20);
        let pages = if limit == 0 {
            PageCache::off()
        } else {
            PageCache::open(
                &ctx.site_dir.join(crate::config::DB_FILE),
                limit,
                ctx.config.federation.signed_fetch,
            )
        };
        AppState::with_pages(ctx, pages)
    }

    /// Without the page cache: the export renders every page once, so keeping them (and their
    /// gzip copies) would only cost time.
    pub fn uncached(ctx: Arc<Context>) -> AppState {
        AppState::with_pages(ctx, PageCache::off())
    }

    fn with_pages(ctx: Arc<Context>, pages: PageCache) -> AppState {
        AppState {
            pages,
            views: RwLock::new(Views::of(&ctx)),
            ctx,
        }
    }

    /// The views as of the current `hortus.toml`; one atomic read when nothing changed.
    fn views(&self) -> Views {
        let now = self.ctx.live.version();
        let views = self.views.read().unwrap_or_else(PoisonError::into_inner);
        if views.version == now {
            return views.clone();
        }
        drop(views);
        let fresh = Views::of(&self.ctx);
        *self.views.write().unwrap_or_else(PoisonError::into_inner) = fresh.clone();
        fresh
    }

    /// Links and names every page shows.
    pub fn layout(&self) -> Arc<Layout> {
        self.views().layout
    }

    /// The owner's profile as pages and the API show it.
    pub fn profile(&self) -> Arc<ProfileView> {
        self.views().profile
    }

    /// hortus.toml as last read: what shows the profile (the actor, the API's account) reads
    /// this, not `config` (read at start).
    pub fn live(&self) -> Arc<crate::config::Config> {
        self.ctx.live.current()
    }

    /// The owner's actor (Person) as hortus.toml says now (without `movedTo`: see
    /// `conversation::moving::add_moved_to`).
    pub fn actor(&self) -> serde_json::Value {
        let config = self.live();
        let site = Site {
            config: &config,
            urls: &self.urls,
        };
        crate::activitypub::actor(&site, &self.actor_key.public_pem)
    }

    pub fn site(&self) -> Site<'_> {
        Site {
            config: &self.config,
            urls: &self.urls,
        }
    }
}

#[derive(Clone)]
struct Views {
    version: u64,
    layout: Arc<Layout>,
    profile: Arc<ProfileView>,
}

impl Views {
    fn of(ctx: &Context) -> Views {
        // The version before the read: a swap in between only causes one more rebuild.
        let version = ctx.live.version();
        let config = ctx.live.current();
        Views {
            version,
            layout: Arc::new(Layout::new(&config, &ctx.urls)),
            profile: Arc::new(ProfileView::new(&config, &ctx.urls)),
        }
    }
}

pub(super) type State = web::Data<Arc<AppState>>;

/// The inbox's knock limiter, one per running server (see `inbox::knock`).
pub(super) type Knocks = web::Data<KnockLimiter>;

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

pub(super) type WebResult = Result<HttpResponse, WebError>;

pub(super) fn is_owner(state: &AppState, name: &str) -> bool {
    name.eq_ignore_ascii_case(&state.config.user.name)
}
