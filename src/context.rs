//! The application context: what every part of a running site shares, built once by
//! `app::context` and handed down. Nothing HTTP here: pages add their own (`web::AppState`
//! wraps this), and a lower layer that needs only a part takes that part (remote fetching takes
//! `activitypub::fetch::Remote`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use crate::config::Config;
use crate::config::live::LiveConfig;
use crate::db::Db;
use crate::federation::PolicyHandle;
use crate::keys::KeyPair;
use crate::urls::Urls;

/// A source of the current time.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

pub struct Context {
    /// hortus.toml as read at start: what only a restart changes (addresses, federation).
    pub config: Config,
    /// hortus.toml as last read: the profile, which apps change while the server runs
    /// (`api::profile`). Whatever shows the profile reads it here.
    pub live: LiveConfig,
    pub urls: Urls,
    pub site_dir: PathBuf,
    pub db: Db,
    pub actor_key: KeyPair,
    pub instance_key: KeyPair,
    /// Who we talk to; reloaded when the lists change (see `federation::policy`).
    pub policy: PolicyHandle,
    /// The guarded client for every outgoing request (`federation::http_client`).
    pub http: reqwest::Client,
    /// Woken when something apps stream may have changed (the inbox accepted an activity, a
    /// post was published): the client API's streaming feed looks at once (`api::stream_feed`).
    pub changed: Arc<tokio::sync::Notify>,
    /// What time incoming signatures are judged at: now in production; a captured request's own
    /// `Date` in tests that replay real peers' traffic (tests/peers.rs).
    pub clock: Clock,
}

impl Context {
    pub fn new(
        config: Config,
        site_dir: PathBuf,
        db: Db,
        keys: (KeyPair, KeyPair),
        policy: PolicyHandle,
        http: reqwest::Client,
    ) -> Context {
        let urls = Urls::new(&config.base_url, &config.user.name);
        let (actor_key, instance_key) = keys;
        Context {
            live: LiveConfig::new(config.clone()),
            config,
            urls,
            site_dir,
            db,
            actor_key,
            instance_key,
            policy,
            http,
            clock: Arc::new(SystemTime::now),
            changed: Arc::new(tokio::sync::Notify::new()),
        }
    }
}
