//! What every handler shares: [`AppState`] (the context plus what pages add), the request
//! data types, and the error a handler answers with.

use std::sync::Arc;

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
    pub layout: Layout,
    pub profile: ProfileView,
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
