//! The application context: what every part of a running site shares, built once by
//! `app::context` and handed down. Nothing HTTP here: pages add their own (`web::AppState`
//! wraps this), and a lower layer that needs only a part takes that part (remote fetching takes
//! `activitypub::fetch::Remote`).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use crate::config::Config;
use crate::config::live::LiveConfig;
use crate::db::Db;
use crate::federation::{self, FederationError, PolicyHandle};
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
    /// The guarded client for every outgoing request (`federation::http_client`), built on first
    /// use: `hortus export` and `publish` never connect, and building it loads the system's CA
    /// bundle (16 % of a one-edit export's samples, issue 15).
    pub http: LazyClient,
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
    ) -> Context {
        let urls = Urls::new(&config.base_url, &config.user.name);
        let (actor_key, instance_key) = keys;
        Context {
            http: LazyClient::new(&config, policy.clone()),
            live: LiveConfig::new(config.clone()),
            config,
            urls,
            site_dir,
            db,
            actor_key,
            instance_key,
            policy,
            clock: Arc::new(SystemTime::now),
            changed: Arc::new(tokio::sync::Notify::new()),
        }
    }
}

/// The site's HTTP client, built by the first [`LazyClient::get`] and shared after that (one
/// client, so connections are pooled per server).
pub struct LazyClient {
    client: OnceLock<reqwest::Client>,
    federation: crate::config::FederationConfig,
    policy: PolicyHandle,
    user_agent: String,
}

impl LazyClient {
    fn new(config: &Config, policy: PolicyHandle) -> LazyClient {
        LazyClient {
            client: OnceLock::new(),
            federation: config.federation.clone(),
            policy,
            user_agent: federation::user_agent(&config.base_url),
        }
    }

    /// The client, built now if this is the first call.
    pub fn get(&self) -> Result<&reqwest::Client, FederationError> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let built =
            federation::http_client(&self.federation, self.policy.clone(), &self.user_agent)?;
        // Two first calls at once: one client is kept, the other dropped unused.
        Ok(self.client.get_or_init(|| built))
    }

    /// Uses `client` instead of building one (tests reach pretend servers through their own).
    pub fn set(&mut self, client: reqwest::Client) {
        self.client = OnceLock::from(client);
    }

    /// Whether a client was built (or set).
    pub fn is_built(&self) -> bool {
        self.client.get().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FederationMode;
    use crate::federation::Policy;

    #[test]
    fn the_client_is_built_on_first_use_and_then_shared() {
        let config = Config::parse(
            "domain = \"例え.example\"\nbase_url = \"https://例え.example\"\n[user]\nname = \"hana\"\n",
            std::path::Path::new("hortus.toml"),
        )
        .unwrap();
        let policy = PolicyHandle::new(Policy::from_patterns(
            FederationMode::Blocklist,
            None,
            &[],
            &[],
        ));
        let lazy = LazyClient::new(&config, policy);
        assert!(!lazy.is_built(), "nothing built before the first use");
        let first: *const reqwest::Client = lazy.get().unwrap();
        assert!(lazy.is_built());
        let second: *const reqwest::Client = lazy.get().unwrap();
        assert_eq!(first, second, "one client, so connections are pooled");
    }
}
