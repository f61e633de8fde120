//! What every proxied request shares: the configuration in force (swapped whole on reload), the
//! credentials, the upstream client, the account book, the conversations' sticky accounts, the
//! retry policy and the model catalogs. One `Proxy` serves every serving thread: what it holds
//! behind locks (the book, the sticky map, the catalogs) is the same for all of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use crate::catalog::{ModelCache, Sources};
use crate::config::{Config, ProviderConfig};
use crate::ids::ProviderId;
use crate::picker::StickyMap;
use crate::quota::AccountBook;
use crate::retry::RetryPolicy;
use crate::routing::Inventory;
use crate::upstream::credentials::Credentials;
use crate::upstream::{Upstream, endpoint};

/// The request path's shared state.
pub struct Proxy {
    config: RwLock<Arc<Config>>,
    /// Stored credentials.
    pub credentials: Arc<dyn Credentials>,
    /// The upstream HTTP client.
    pub upstream: Upstream,
    /// Cooldowns and quota per account.
    pub book: Arc<AccountBook>,
    /// Which account each conversation runs on.
    pub sticky: StickyMap,
    /// How hard to retry an upstream hiccup before the answer begins.
    pub retry: RetryPolicy,
    /// Live model catalogs.
    pub catalogs: ModelCache,
    /// Upstream addresses already built, per provider and path (cleared on reload).
    endpoints: Mutex<HashMap<(ProviderId, &'static str), http::Uri>>,
    /// Providers with `websocket: true` that refused the upgrade: HTTP until the next reload.
    websocket_refused: Mutex<Vec<ProviderId>>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").finish_non_exhaustive()
    }
}

impl Proxy {
    /// State over this configuration, credentials and account book.
    #[must_use]
    pub fn new(config: Config, credentials: Arc<dyn Credentials>, book: Arc<AccountBook>) -> Self {
        Proxy {
            config: RwLock::new(Arc::new(config)),
            credentials,
            upstream: Upstream::new(),
            book,
            sticky: StickyMap::new(),
            retry: RetryPolicy::default(),
            catalogs: ModelCache::new(),
            endpoints: Mutex::default(),
            websocket_refused: Mutex::default(),
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
        self.catalogs.clear();
        self.endpoints
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        self.websocket_refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// Whether `provider` is to be asked over its WebSocket transport: it is configured so and
    /// has not refused the upgrade since the configuration was loaded.
    #[must_use]
    pub fn uses_websocket(&self, provider: &ProviderConfig) -> bool {
        provider.websocket
            && !self
                .websocket_refused
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .contains(&provider.id)
    }

    /// `provider` refused the WebSocket upgrade: it gets HTTP from now on.
    pub fn refuse_websocket(&self, provider: &ProviderId) {
        let mut refused = self
            .websocket_refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !refused.contains(provider) {
            refused.push(provider.clone());
        }
    }

    /// `{base_url}/{path}` of `provider`, built once per configuration.
    ///
    /// # Errors
    ///
    /// When the address is not a valid URI (a base URL the config accepted always is).
    pub fn endpoint(
        &self,
        provider: &ProviderConfig,
        path: &'static str,
    ) -> Result<http::Uri, http::uri::InvalidUri> {
        let mut endpoints = self
            .endpoints
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (provider.id.clone(), path);
        if let Some(uri) = endpoints.get(&key) {
            return Ok(uri.clone());
        }
        let uri: http::Uri = endpoint(&provider.base_url, path).as_str().parse()?;
        endpoints.insert(key, uri.clone());
        Ok(uri)
    }

    /// What fetching catalogs needs.
    #[must_use]
    pub fn sources(&self) -> Sources<'_> {
        Sources {
            credentials: self.credentials.as_ref(),
            book: &self.book,
            upstream: &self.upstream,
        }
    }

    /// What the resolver needs besides the config: stored labels and cached catalogs.
    #[must_use]
    pub fn inventory(&self, config: &Config) -> Inventory {
        crate::catalog::inventory(config, self.credentials.as_ref(), &self.catalogs)
    }
}
