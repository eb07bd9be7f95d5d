//! Fetches every planned document from the site's own HTTP handlers, in process: the same
//! `web::configure` routes `hortus serve` runs, called without a socket. What the export writes
//! is therefore byte for byte what the live server answers, and cannot drift from it.
//!
//! The actix service is not `Send`, so each worker thread builds its own on a single-threaded
//! runtime; they share the site state (database pool, keys) and pull documents from one list.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use actix_web::dev::Service;
use actix_web::http::header;
use actix_web::{App, test, web};

use super::plan::Doc;
use super::tree::{Entry, Outcome, Tree, TreeError};
use crate::web::AppState;

/// One document as fetched and stored.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub file: String,
    /// Borrowed for a kept document whose type its name says (most of them: no allocation
    /// for each of 21,000 files).
    pub content_type: std::borrow::Cow<'static, str>,
    pub entry: Entry,
    pub outcome: Outcome,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(
        "GET {url} answered {got}, expected {want}: the export stopped before removing anything\n  fix: if the site changed during the export (a publish), export again; if not, this is a bug"
    )]
    Status { url: String, got: u16, want: u16 },
    #[error("GET {url}: {reason}")]
    Request { url: String, reason: String },
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error("cannot start a worker: {0}")]
    Runtime(std::io::Error),
}

/// How many requests run at once: handlers wait on SQLite threads, so a few more workers than
/// cores keep every core busy.
pub fn workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) * 2
}

/// Documents a worker renders before starting another pays: each builds the site's routes and a
/// runtime, more than a few pages cost, so the handful of documents one edit touches render on
/// one worker (issue 15) and a full export still gets every worker.
const PER_WORKER: usize = 16;

/// Fetches every document and stores it in `tree`; `tick` is called once per document.
pub fn render_all(
    state: &Arc<AppState>,
    docs: &[Doc],
    tree: &Tree,
    tick: &(dyn Fn() + Sync),
) -> Result<Vec<Rendered>, RenderError> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<(usize, Rendered)>> = Mutex::new(Vec::with_capacity(docs.len()));
    let first_error: Mutex<Option<RenderError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..workers().min(docs.len().div_ceil(PER_WORKER).max(1)) {
            scope.spawn(|| {
                let outcome = worker(state, docs, tree, &next, &failed, tick);
                match outcome {
                    Ok(mut mine) => results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .append(&mut mine),
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        first_error
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_or_insert(e);
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(i, _)| *i);
    Ok(results.into_iter().map(|(_, r)| r).collect())
}

fn worker(
    state: &Arc<AppState>,
    docs: &[Doc],
    tree: &Tree,
    next: &AtomicUsize,
    failed: &AtomicBool,
    tick: &(dyn Fn() + Sync),
) -> Result<Vec<(usize, Rendered)>, RenderError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RenderError::Runtime)?;
    let shared = crate::app::Shared::new(state.clone());
    rt.block_on(async {
        // The same App as `app::server`, minus compression (no client asks for it here).
        let app = test::init_service(
            App::new()
                .configure(|cfg| shared.routes(cfg))
                .default_service(web::to(crate::web::fallback)),
        )
        .await;
        let mut done = Vec::new();
        loop {
            if failed.load(Ordering::Relaxed) {
                break;
            }
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(doc) = docs.get(i) else { break };
            let req = test::TestRequest::get()
                .uri(&doc.url)
                .insert_header((header::ACCEPT, doc.accept.header()))
                .to_request();
            let failure = |reason: String| RenderError::Request {
                url: doc.url.clone(),
                reason,
            };
            let resp = app.call(req).await.map_err(|e| failure(e.to_string()))?;
            let got = resp.status().as_u16();
            if got != doc.status {
                return Err(RenderError::Status {
                    url: doc.url.clone(),
                    got,
                    want: doc.status,
                });
            }
            let content_type = resp
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
                .into();
            let body = actix_web::body::to_bytes(resp.into_body())
                .await
                .map_err(|e| failure(e.to_string()))?;
            let (entry, outcome) = tree.put(&doc.file, &body)?;
            done.push((
                i,
                Rendered {
                    file: doc.file.clone(),
                    content_type,
                    entry,
                    outcome,
                },
            ));
            tick();
        }
        Ok(done)
    })
}
