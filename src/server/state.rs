//! What every request shares: the current configuration (swapped whole on reload), the
//! credentials, the upstream clients, the account book, the model cache, the conversations'
//! sticky accounts, the retry policy and the address the server listens on.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use super::accounts::AccountBook;
use super::credentials::Credentials;
use super::models::ModelCache;
use super::upstream::Clients;
use crate::config::Config;
use crate::picker::StickyMap;
use crate::retry::RetryPolicy;
use crate::routing::Inventory;

/// The server's shared state.
pub struct AppState {
    config: RwLock<Arc<Config>>,
    /// Stored credentials.
    pub credentials: Arc<dyn Credentials>,
    /// Upstream HTTP clients.
    pub clients: Clients,
    /// Cooldowns and quota per account.
    pub book: Arc<AccountBook>,
    /// Live model catalogs.
    pub models: ModelCache,
    /// Which account each conversation runs on.
    pub sticky: StickyMap,
    /// How hard to retry an upstream hiccup before the answer begins.
    pub retry: RetryPolicy,
    /// The bound address (the `Host` check compares with it).
    pub local_addr: SocketAddr,
    /// When the server started (Unix seconds), for `/health`.
    pub started_at: i64,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State for a server bound to `local_addr`.
    #[must_use]
    pub fn new(
        config: Config,
        credentials: Arc<dyn Credentials>,
        book: Arc<AccountBook>,
        local_addr: SocketAddr,
    ) -> Self {
        AppState {
            config: RwLock::new(Arc::new(config)),
            credentials,
            clients: Clients::new(),
            book,
            models: ModelCache::new(),
            sticky: StickyMap::new(),
            retry: RetryPolicy::default(),
            local_addr,
            started_at: crate::daemon::unix_now(),
        }
    }

    /// The configuration in force now.
    #[must_use]
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the configuration; requests already running keep the one they started with.
    pub fn replace_config(&self, config: Config) {
        *self
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(config);
        self.models.clear();
    }

    /// What the resolver needs besides the config: stored labels and cached catalogs.
    #[must_use]
    pub fn inventory(&self, config: &Config) -> Inventory {
        let mut inventory = Inventory::default();
        for id in config.providers.keys() {
            match self.credentials.labels(id) {
                Ok(labels) if !labels.is_empty() => {
                    inventory.labels.insert(id.clone(), labels);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(provider = %id, "cannot list accounts: {e}"),
            }
        }
        inventory.catalogs = self.models.catalogs();
        inventory.capabilities = self.models.capabilities();
        inventory
    }
}
