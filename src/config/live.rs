//! hortus.toml as a running server last read it. `hortus serve` reads the file once at start;
//! what apps change in it (the profile, `api::profile`) is read again and swapped in here, so
//! the actor, the pages and the API show it at once, without a restart. What only a restart
//! can change (the addresses, the federation settings) is still read from `Context::config`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use super::Config;

/// Clones share one snapshot, as `federation::PolicyHandle` does for the lists.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    inner: Arc<RwLock<Arc<Config>>>,
    /// Moves on every [`LiveConfig::replace`]: what was built from an older snapshot (the
    /// pages' layout) knows it is stale.
    version: Arc<AtomicU64>,
}

impl LiveConfig {
    pub fn new(config: Config) -> LiveConfig {
        LiveConfig {
            inner: Arc::new(RwLock::new(Arc::new(config))),
            version: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The current snapshot. A swap only replaces an `Arc`, so a poisoned lock still holds a
    /// whole config and is used as is.
    pub fn current(&self) -> Arc<Config> {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    pub fn replace(&self, config: Config) {
        *self.inner.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(config);
        self.version.fetch_add(1, Ordering::AcqRel);
    }
}
