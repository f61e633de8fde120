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
    /// The last inventory built, with what it was built from (see [`Proxy::inventory`]).
    inventory: Mutex<Option<(InventoryKey, Arc<Inventory>)>>,
}

/// What an inventory was built from: the configuration (held, so its address names it), the
/// credentials' version and the catalogs' version.
type InventoryKey = (Arc<Config>, crate::upstream::credentials::Version, u64);

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
            inventory: Mutex::default(),
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

    /// What the resolver needs besides the config: stored labels and cached catalogs. Built
    /// once and kept while the configuration in force, the credentials' version and the
    /// catalogs' version stay the same (every request asks, and rebuilding it listed every
    /// provider's accounts); built anew each time for a configuration not in force, or
    /// credentials that cannot tell their version.
    #[must_use]
    pub fn inventory(&self, config: &Config) -> Arc<Inventory> {
        // The versions are read before building: a change that lands meanwhile makes the
        // kept inventory look stale, never the other way round.
        let current = self.config();
        let key = std::ptr::eq(&*current, config)
            .then(|| {
                self.credentials
                    .version()
                    .map(|v| (current, v, self.catalogs.version()))
            })
            .flatten();
        if let Some((config, credentials, catalogs)) = &key
            && let Some(((c, v, k), inventory)) = self.kept_inventory().as_ref()
            && Arc::ptr_eq(config, c)
            && credentials == v
            && catalogs == k
        {
            return Arc::clone(inventory);
        }
        // Built outside the lock: listing the labels may wait on the OS keyring.
        let inventory = Arc::new(crate::catalog::inventory(
            config,
            self.credentials.as_ref(),
            &self.catalogs,
        ));
        if let Some(key) = key {
            *self.kept_inventory() = Some((key, Arc::clone(&inventory)));
        }
        inventory
    }

    fn kept_inventory(&self) -> std::sync::MutexGuard<'_, Option<(InventoryKey, Arc<Inventory>)>> {
        self.inventory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::auth::Accounts;
    use crate::store::tests::oauth;
    use crate::store::{CredentialStore, FileStore};

    /// Saves a credential and dates the file an hour back (the store re-reads a file changed
    /// in the last two seconds on every use), then waits out the store's one-millisecond trust.
    fn save(store: &FileStore, label: &str) {
        store
            .save(&store.lock().unwrap(), &oauth("openai-codex", label, "tok"))
            .unwrap();
        std::fs::File::options()
            .write(true)
            .open(store.path())
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }

    fn labels(inventory: &Inventory) -> Vec<String> {
        inventory
            .labels
            .values()
            .flatten()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn the_inventory_is_kept_until_what_it_is_built_from_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FileStore::new(dir.path().join("oauth-tokens.json")));
        save(&store, "work");
        let config = Config::default();
        let accounts = Accounts::with_store(&config, store.clone()).unwrap();
        let proxy = Proxy::new(config, Arc::new(accounts), Arc::new(AccountBook::default()));
        let config = proxy.config();

        let first = proxy.inventory(&config);
        assert_eq!(labels(&first), ["work"]);
        std::thread::sleep(Duration::from_millis(5));
        assert!(Arc::ptr_eq(&first, &proxy.inventory(&config)));

        // Another account stored (the file changed).
        save(&store, "home");
        let stored = proxy.inventory(&config);
        assert!(!Arc::ptr_eq(&first, &stored));
        assert_eq!(labels(&stored), ["home", "work"]);
        assert!(Arc::ptr_eq(&stored, &proxy.inventory(&config)));

        // The catalogs changed.
        proxy.catalogs.clear();
        let cleared = proxy.inventory(&config);
        assert!(!Arc::ptr_eq(&stored, &cleared));

        // A reloaded configuration.
        proxy.replace_config(Config::clone(&config));
        let reloaded = proxy.config();
        let after = proxy.inventory(&reloaded);
        assert!(!Arc::ptr_eq(&cleared, &after));
        assert!(Arc::ptr_eq(&after, &proxy.inventory(&reloaded)));

        // A configuration not in force is served, but not kept.
        let other = proxy.inventory(&config);
        assert_eq!(labels(&other), ["home", "work"]);
        assert!(!Arc::ptr_eq(&other, &proxy.inventory(&config)));
        assert!(Arc::ptr_eq(&after, &proxy.inventory(&reloaded)));
    }
}
