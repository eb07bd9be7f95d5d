//! Building and running the server: open the site, sync posts, bind, serve until a signal.

mod memory;
pub mod reload;
mod watch;

use memory::give_back_freed_memory;
pub use watch::WATCH_QUIET;
use watch::debounced;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::{App, HttpServer, middleware, web};

use crate::config::{self, Config};
use crate::context::Context;
use crate::db::Db;
use crate::federation::{self, HostPort, PolicyHandle};
use crate::keys;
use crate::posts;
use crate::urls::Urls;
use crate::web::{self as site_web, AppState};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    #[error(transparent)]
    Posts(#[from] posts::PostError),
    #[error(
        "cannot listen on {addr}: {reason}\n  fix: choose another address with --listen or `listen` in hortus.toml"
    )]
    Bind {
        addr: String,
        reason: std::io::Error,
    },
    #[error(
        "cannot serve metrics on {addr}: {reason}\n  fix: choose another address for `listen` under [metrics] in hortus.toml, or remove it"
    )]
    MetricsBind {
        addr: String,
        reason: std::io::Error,
    },
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    PolicyForbidden(String),
    #[error(transparent)]
    Federation(#[from] federation::FederationError),
    #[error(transparent)]
    Delivery(#[from] crate::delivery::DeliveryError),
    #[error(transparent)]
    Owner(#[from] crate::owner::OwnerError),
    #[error("a background task failed: {0}")]
    Task(String),
}

/// A site opened from its directory, ready to serve.
#[derive(Debug, Clone)]
pub struct Site {
    pub dir: PathBuf,
    pub config: Config,
    pub urls: Urls,
}

impl Site {
    pub fn open(dir: &Path) -> Result<Site, AppError> {
        let config = Config::load(dir)?;
        let urls = Urls::new(&config.base_url, &config.user.name);
        Ok(Site {
            dir: dir.to_path_buf(),
            config,
            urls,
        })
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.join(config::DB_FILE)
    }

    /// The content folder into the database, and every change queued for followers, without
    /// looking anyone up (no network): for tests and benchmarks. The commands use [`publish`].
    pub fn publish(&self) -> Result<posts::SyncReport, AppError> {
        Ok(self.publish_and_federate()?.0)
    }

    /// [`Site::publish`], also saying what was queued for delivery.
    pub fn publish_and_federate(
        &self,
    ) -> Result<(posts::SyncReport, crate::delivery::Federated), AppError> {
        let report = self.sync_posts()?;
        Ok((report, self.federate()?))
    }

    /// The content folder into the database, nothing queued yet.
    pub fn sync_posts(&self) -> Result<posts::SyncReport, AppError> {
        let mut conn = crate::db::open(&self.db_path())?;
        Ok(posts::publish(&mut conn, &self.dir, &self.urls)?)
    }

    /// Queues every post change followers have not been told about.
    pub fn federate(&self) -> Result<crate::delivery::Federated, AppError> {
        let mut conn = crate::db::open(&self.db_path())?;
        // Replies mention (and so reach) the author of what they answer.
        crate::conversation::replying::link_reply_mentions(&conn, &self.urls)
            .map_err(crate::db::DbError::from)?;
        // FEP-044f and GoToSocial: a quote or a reply its author's policy forbids is not sent
        // at all, whether `hortus reply`, the client API or the owner's editor wrote it.
        let mut forbidden: Vec<(String, String, Forbidden)> =
            crate::conversation::quoting::forbidden_quotes(&conn, &self.urls)
                .map_err(crate::db::DbError::from)?
                .into_iter()
                .map(|(path, url)| (path, url, Forbidden::Quote))
                .collect();
        forbidden.extend(
            crate::conversation::replying::forbidden_replies(&conn, &self.urls)
                .map_err(crate::db::DbError::from)?
                .into_iter()
                .map(|(path, url)| (path, url, Forbidden::Reply)),
        );
        if !forbidden.is_empty() {
            return Err(AppError::PolicyForbidden(forbidden_message(
                &self.dir, &forbidden,
            )));
        }
        let site = crate::activitypub::Site {
            config: &self.config,
            urls: &self.urls,
        };
        // GoToSocial: a reply waiting for its author's approval goes to that author alone.
        let urls = &self.urls;
        let narrow = |c: &rusqlite::Connection, post: &crate::posts::Post| {
            crate::conversation::replying::audience(c, urls, post)
        };
        let federated = crate::delivery::federate_posts(
            &mut conn,
            &site,
            std::time::SystemTime::now(),
            &narrow,
        )?;
        // FEP-044f: quotes ask the quoted author for consent once their Create is queued.
        crate::conversation::quoting::request_own_quotes(&mut conn, &self.urls)
            .map_err(crate::db::DbError::from)?;
        // GoToSocial: a reply to a post that asks for approval waits for its author.
        crate::conversation::approvals::record_pending(&mut conn, &self.urls)
            .map_err(crate::db::DbError::from)?;
        Ok(federated)
    }
}

/// What a remote post's `interactionPolicy` forbids the owner's post to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forbidden {
    Quote,
    Reply,
}

/// The owner's message for quotes and replies their authors forbid: each file, the line of
/// its `quote` / `in_reply_to`, the fix.
fn forbidden_message(dir: &std::path::Path, forbidden: &[(String, String, Forbidden)]) -> String {
    let mut out = format!(
        "{} post(s) quote or answer a post whose author does not allow it; nothing was sent:",
        forbidden.len()
    );
    for (path, url, what) in forbidden {
        let key = match what {
            Forbidden::Quote => "quote",
            Forbidden::Reply => "in_reply_to",
        };
        let text = std::fs::read_to_string(dir.join(path)).unwrap_or_default();
        let line = text
            .lines()
            .position(|l| {
                l.trim_start()
                    .strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            })
            .map_or(1, |n| n + 1);
        out.push_str(&match what {
            Forbidden::Quote => format!(
                "\n{path}:{line}: {url} may not be quoted by you (its interactionPolicy.canQuote)\n  \
                 fix: remove the `quote = …` line (a link in the text is fine), then publish again"
            ),
            Forbidden::Reply => format!(
                "\n{path}:{line}: {url} may not be answered by you (its interactionPolicy.canReply)\n  \
                 fix: remove the `in_reply_to = …` line (a new post that links it is fine), or \
                 the file, then publish again"
            ),
        });
    }
    out
}

/// What one publish did.
#[derive(Debug, Default)]
pub struct Published {
    pub report: posts::SyncReport,
    /// What the lookups found or could not find, for the owner.
    pub lookups: Vec<String>,
    pub queued: crate::delivery::Federated,
}

/// Publishing as every command does it — `hortus publish`, `serve` at start and on each change,
/// `export`: sync the content folder, look up mentioned accounts and the authors of what replies
/// answer (on allowed servers only), then queue the changes for followers. In that order, so
/// each activity addresses everyone it should: once queued, a post is not sent again.
pub async fn publish(site: &Site, state: &AppState) -> Result<Published, AppError> {
    let task = |e: tokio::task::JoinError| AppError::Task(e.to_string());
    // One trip to the blocking pool and one connection for the sync and what it left unknown.
    let s = site.clone();
    let (report, mentions, targets) =
        tokio::task::spawn_blocking(move || -> Result<_, AppError> {
            let mut conn = crate::db::open(&s.db_path())?;
            let report = posts::publish(&mut conn, &s.dir, &s.urls)?;
            let mentions = crate::owner::unresolved_mentions(&conn)?;
            let targets = crate::conversation::replying::unresolved_targets(&conn, &s.urls)
                .map_err(crate::db::DbError::from)?;
            Ok((report, mentions, targets))
        })
        .await
        .map_err(task)??;
    // Apps listening on the streaming API hear of new, edited and deleted posts now.
    state.changed.notify_one();
    let mut lookups = Vec::new();
    if !mentions.is_empty() {
        lookups.extend(crate::owner::resolve_mentions(state, &mentions).await);
    }
    if !targets.is_empty() {
        lookups.extend(crate::conversation::replying::resolve_targets(state).await);
    }
    let s = site.clone();
    let queued = tokio::task::spawn_blocking(move || s.federate())
        .await
        .map_err(task)??;
    Ok(Published {
        report,
        lookups,
        queued,
    })
}

/// Keeps `content/` (and `media/`, which posts' images come from) watched while it lives; its
/// thread ends when it is dropped.
pub struct ContentWatcher {
    _watcher: notify::RecommendedWatcher,
}

/// Watches the site's content while `hortus serve` runs and calls `on_change` (on the watcher's
/// own thread, never an async worker) once the folder has been quiet for [`WATCH_QUIET`] after
/// a post or image was saved, added or removed; `hortus serve` publishes then, as [`publish`]
/// does. A file with a mistake publishes nothing: what is online stays online until the file
/// is fixed.
pub fn watch_content(
    site: &Site,
    on_change: impl Fn() + Send + 'static,
) -> Result<ContentWatcher, AppError> {
    use notify::{EventKind, RecursiveMode, Watcher};
    use std::sync::mpsc::channel;

    // Reading a file is an event too (inotify's open): publishing reads every post, so
    // counting reads would have each publish start the next, forever.
    fn changes(event: &notify::Result<notify::Event>) -> bool {
        match event {
            Ok(e) => !matches!(e.kind, EventKind::Access(_)),
            Err(_) => true,
        }
    }
    let (tx, rx) = channel::<notify::Result<notify::Event>>();
    let mut watcher = notify::recommended_watcher(tx).map_err(|e| watch_error("content/", &e))?;
    for folder in ["content", "media"].map(|d| site.dir.join(d)) {
        if folder.is_dir() {
            watcher
                .watch(&folder, RecursiveMode::Recursive)
                .map_err(|e| watch_error(&folder.display().to_string(), &e))?;
        }
    }
    debounced("hortus-watch", rx, changes, move || {
        tracing::info!("content changed: publishing");
        on_change();
    })?;
    Ok(ContentWatcher { _watcher: watcher })
}

fn watch_error(what: &str, e: &notify::Error) -> AppError {
    AppError::Io(std::io::Error::other(format!("cannot watch {what}: {e}")))
}

/// The application context of a site: config, database, keys, policy, and the HTTP client,
/// built on first use (`serve` builds it at start; `export` and `publish` never do).
pub async fn context(site: &Site) -> Result<Arc<Context>, AppError> {
    let conn = crate::db::open(&site.db_path())?;
    let actor_key = keys::load(&conn, keys::ACTOR)?;
    let instance_key = keys::load(&conn, keys::INSTANCE)?;
    let policy = PolicyHandle::load(
        &conn,
        site.config.federation.mode,
        HostPort::from_url(&site.config.base_url),
    )?;
    let suspended = federation::enforce_policy(&conn, &policy.current())?;
    for f in &suspended {
        tracing::warn!(actor = %f.actor_id, "follower suspended: its server is not allowed by the policy");
    }
    drop(conn);
    // One writer, and a reader per core for pages and documents: under WAL they read in
    // parallel, and never wait behind a write transaction.
    let readers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let db = Db::open(&site.db_path(), readers).await?;
    Ok(Arc::new(Context::new(
        site.config.clone(),
        site.dir.clone(),
        db,
        (actor_key, instance_key),
        policy,
    )))
}

/// Everything the HTTP server shares: the context, and what pages add to it.
pub async fn state(site: &Site) -> Result<Arc<AppState>, AppError> {
    Ok(Arc::new(AppState::new(context(site).await?)))
}

/// `hortus serve` and `hortus demo`: publish, then serve on `addr` until SIGINT/SIGTERM,
/// publishing again whenever content/ changes. `published` gets every publish's outcome (a
/// failed one is reported, not fatal: what was published before stays online); `ready` is told
/// the bound address and whether content/ is watched, after the first publish.
pub fn serve_site(
    site: Site,
    addr: &str,
    published: impl Fn(Result<Published, AppError>) + Send + Sync + 'static,
    ready: impl FnOnce(&Site, std::net::SocketAddr, Option<&AppError>),
) -> Result<(), AppError> {
    let listener = bind(addr)?;
    let local = listener.local_addr()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let state = state(&site).await?;
        // A client that cannot be built stops `serve` at start, not at the first delivery.
        state.ctx.http.get()?;
        published(publish(&site, &state).await);
        // A publish reads every post file and the database's hashes (about 10 MiB of heap for
        // 10,000 posts), then frees it: given back, the server stays at its serving size.
        give_back_freed_memory();
        // A saved post goes online (and to followers) without a separate `hortus publish`.
        let runtime = tokio::runtime::Handle::current();
        let (watched, watching) = (site.clone(), state.clone());
        let watcher = watch_content(&site, move || {
            published(runtime.block_on(publish(&watched, &watching)));
            give_back_freed_memory();
        });
        ready(&site, local, watcher.as_ref().err());
        let _watcher = watcher.ok();
        // hortus.toml edited by hand: the profile goes live, as an app's change does.
        let (watched, watching) = (site.clone(), state.clone());
        let runtime = tokio::runtime::Handle::current();
        let config_watcher = reload::watch_config(&site.dir, move || {
            tracing::info!("hortus.toml changed: reading it again");
            runtime.block_on(reload::reload(&watched.dir, &watching));
        });
        if let Err(e) = &config_watcher {
            tracing::warn!(error = %e, "hortus.toml is not watched: a restart applies its changes");
        }
        serve(state, listener).await
    })
}

/// Runs the server on an already bound listener until SIGINT/SIGTERM.
/// The delivery workers run beside it and stop after it, finishing or releasing what is in flight.
pub async fn serve(state: Arc<AppState>, listener: TcpListener) -> Result<(), AppError> {
    let metrics = match &state.config.metrics.listen {
        Some(addr) => {
            let bound = TcpListener::bind(addr).map_err(|reason| AppError::MetricsBind {
                addr: addr.clone(),
                reason,
            })?;
            tracing::info!(%addr, "serving Prometheus metrics at /metrics");
            let server = crate::ops::metrics::server(state.ctx.clone(), bound)?;
            let handle = server.handle();
            tokio::spawn(server);
            Some(handle)
        }
        None => None,
    };
    let workers = crate::delivery::worker::start(&state).await?;
    let maintenance = crate::inbox::spawn_maintenance(state.ctx.clone());
    // A burst of connections leaves their freed buffers with the allocator: given back once the
    // server is quiet (5 MiB after the serving benchmark; benches/README.md).
    let trimmer = tokio::spawn(memory::give_back_when_idle());
    let served = server(state, listener)?.await;
    trimmer.abort();
    maintenance.abort();
    if let Some(metrics) = metrics {
        metrics.stop(true).await;
    }
    if let Some(workers) = workers {
        workers.shutdown().await;
    }
    Ok(served?)
}

/// Threads of each actix worker's blocking pool. They compress the pages the cache keeps and
/// read media files: work for a core each, not for actix's default of 512 / cores threads per
/// worker, which a burst of cache misses filled with one compressor each, all alive at once
/// (issue 15: 62 threads and 38 MiB after the serving benchmark; benches/README.md).
const BLOCKING_THREADS_PER_WORKER: usize = 2;

/// The HTTP server, started on `listener`; the handle stops it gracefully.
pub fn server(
    state: Arc<AppState>,
    listener: TcpListener,
) -> Result<actix_web::dev::Server, AppError> {
    let media_dir = state.site_dir.clone();
    let shared = Shared::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(middleware::Compress::default())
            .wrap(middleware::from_fn(crate::ops::metrics::time_request))
            .wrap(middleware::from_fn(memory::count_request))
            .configure(|cfg| shared.routes(cfg))
            .service(site_web::media_service(&media_dir))
            .default_service(web::to(site_web::fallback))
    })
    .listen(listener)?
    .worker_max_blocking_threads(BLOCKING_THREADS_PER_WORKER)
    .shutdown_timeout(10)
    .run();
    Ok(server)
}

/// What every request of one server shares, made once per server (not per worker thread):
/// the pages' state, the context the inbox takes, and the inbox's knock limiter.
#[derive(Clone)]
pub struct Shared {
    state: web::Data<Arc<AppState>>,
    ctx: web::Data<Arc<Context>>,
    knocks: web::Data<federation::KnockLimiter>,
    /// How the client API publishes a status it wrote: [`publish`], as `hortus publish` does.
    publisher: web::Data<crate::api::Publisher>,
    /// The client API's streaming feed, one per server.
    feed: web::Data<crate::api::StreamFeed>,
}

impl Shared {
    pub fn new(state: Arc<AppState>) -> Shared {
        let site = Site {
            dir: state.site_dir.clone(),
            config: state.config.clone(),
            urls: state.urls.clone(),
        };
        let for_api = state.clone();
        let publisher: crate::api::Publisher = Arc::new(move || {
            let (site, state) = (site.clone(), for_api.clone());
            Box::pin(async move {
                publish(&site, &state)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        });
        Shared {
            publisher: web::Data::new(publisher),
            ctx: web::Data::new(state.ctx.clone()),
            state: web::Data::new(state),
            knocks: web::Data::new(federation::KnockLimiter::default()),
            feed: web::Data::new(crate::api::StreamFeed::default()),
        }
    }

    /// The shared data and every route, in order: the pages and documents, then the inbox.
    /// `app::server` and the static export (`export::render`) both build their App with it,
    /// so the two cannot drift.
    pub fn routes(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(self.state.clone())
            .app_data(self.ctx.clone())
            .app_data(self.knocks.clone())
            .app_data(self.publisher.clone())
            .app_data(self.feed.clone())
            .configure(site_web::configure)
            .configure(crate::inbox::http::configure)
            .configure(crate::api::configure);
    }
}

pub fn bind(addr: &str) -> Result<TcpListener, AppError> {
    TcpListener::bind(addr).map_err(|reason| AppError::Bind {
        addr: addr.to_string(),
        reason,
    })
}
