//! The live model catalogs: each provider's own model list, fetched with its credentials (for
//! `openai-codex`, `GET {base_url}/models?client_version=…` with the first usable account, spec
//! §6.4) and cached briefly, and the `/v1/models` document built from them and the config. The
//! resolver sees the cached catalogs so a bare model name reaches the provider that offers it;
//! `serve`, `route` and `models` share this one cache type.
//! Anthropic clients (the request carries `anthropic-version`, as Claude Code's gateway model
//! discovery and the Anthropic SDKs send) get Anthropic's list shape, routes first, so Claude
//! Code's `/model` picker shows the user's `claude-*` routes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, header};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::clock::unix_now;
use crate::config::{Api, AuthMode, Config, ProviderConfig, ProviderKind};
use crate::ids::ProviderId;
use crate::quota::AccountBook;
use crate::routing::listing::{self, Kind, Listed};
use crate::routing::{Capabilities, Inventory};
use crate::upstream::attach::{attach_access, attach_secret, style_of};
use crate::upstream::credentials::Credentials;
use crate::upstream::headers::{ORIGINATOR, forwardable_request_headers};
use crate::upstream::{CODEX_CLIENT_VERSION, Upstream, endpoint, user_agent};

/// How long a fetched catalog is used.
const TTL: Duration = Duration::from_secs(300);
/// How long a failed fetch is remembered before trying again.
const FAILURE_TTL: Duration = Duration::from_secs(30);
/// The longest a catalog fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
struct Cached {
    at: Instant,
    ok: bool,
    ids: Arc<Vec<String>>,
    /// The backend's own entries (Codex shape), for the Codex CLI.
    entries: Vec<Value>,
    /// What each model supports, read from `entries` once when fetched (shared, not copied,
    /// with every request's inventory).
    capabilities: Arc<BTreeMap<String, Capabilities>>,
}

/// Live catalogs per provider.
#[derive(Debug, Default)]
pub struct ModelCache {
    entries: Mutex<HashMap<ProviderId, Cached>>,
    /// How many times `entries` changed.
    changes: std::sync::atomic::AtomicU64,
}

impl ModelCache {
    /// An empty cache.
    #[must_use]
    pub fn new() -> Self {
        ModelCache::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ProviderId, Cached>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Forgets everything (after a config reload).
    pub fn clear(&self) {
        self.lock().clear();
        self.changed();
    }

    /// A number that changes whenever the catalogs do.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.changes.load(std::sync::atomic::Ordering::Acquire)
    }

    fn changed(&self) {
        self.changes
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// The model ids each provider's catalog offers, as last fetched.
    #[must_use]
    pub fn catalogs(&self) -> BTreeMap<ProviderId, Arc<Vec<String>>> {
        self.lock()
            .iter()
            .filter(|(_, c)| c.ok)
            .map(|(id, c)| (id.clone(), c.ids.clone()))
            .collect()
    }

    /// The reasoning efforts a model supports, from its catalog entry
    /// (`supported_reasoning_levels`); `None` when the catalog has no entry for it.
    #[must_use]
    pub fn efforts(&self, id: &ProviderId, model: &str) -> Option<Vec<String>> {
        self.lock()
            .get(id)
            .and_then(|c| c.capabilities.get(model))
            .map(|caps| caps.efforts.clone())
    }

    /// What each catalog model supports, where the catalog says (the Codex catalog's entries).
    #[must_use]
    pub fn capabilities(&self) -> BTreeMap<ProviderId, Arc<BTreeMap<String, Capabilities>>> {
        self.lock()
            .iter()
            .filter(|(_, c)| c.ok && !c.capabilities.is_empty())
            .map(|(id, c)| (id.clone(), c.capabilities.clone()))
            .collect()
    }

    fn is_fresh(&self, id: &ProviderId) -> bool {
        self.lock().get(id).is_some_and(|c| {
            let ttl = if c.ok { TTL } else { FAILURE_TTL };
            c.at.elapsed() < ttl
        })
    }

    fn entries_of(&self, id: &ProviderId) -> Vec<Value> {
        self.lock()
            .get(id)
            .map(|c| c.entries.clone())
            .unwrap_or_default()
    }

    fn store(&self, id: ProviderId, cached: Cached) {
        self.lock().insert(id, cached);
        self.changed();
    }
}

/// What fetching catalogs needs: the credentials to ask with, the account book (cooling
/// accounts are not used), the HTTP client, and the local key (never forwarded).
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    /// Stored credentials.
    pub credentials: &'a dyn Credentials,
    /// Cooldowns.
    pub book: &'a AccountBook,
    /// The upstream client.
    pub upstream: &'a Upstream,
}

impl ModelCache {
    /// Fetches every stale catalog (concurrently). `client` is the asking client's headers, used
    /// for a passthrough provider when nothing is stored.
    pub async fn refresh(&self, config: &Config, sources: Sources<'_>, client: Option<&HeaderMap>) {
        let stale: Vec<&ProviderConfig> = config
            .providers
            .values()
            .filter(|p| !self.is_fresh(&p.id))
            .collect();
        let local_key = config.server.api_key.as_ref();
        let fetches = stale.into_iter().map(|p| async move {
            let fetched =
                tokio::time::timeout(FETCH_TIMEOUT, fetch(sources, p, client, local_key)).await;
            match fetched {
                Ok(Some(cached)) => self.store(p.id.clone(), cached),
                Ok(None) => {}
                Err(_) => {
                    tracing::debug!(provider = %p.id, "model catalog fetch timed out");
                    self.store(p.id.clone(), failed());
                }
            }
        });
        futures_util::future::join_all(fetches).await;
    }
}

fn failed() -> Cached {
    Cached {
        at: Instant::now(),
        ok: false,
        ids: Arc::default(),
        entries: Vec::new(),
        capabilities: Arc::default(),
    }
}

/// The most of a catalog answer that is read.
const MAX_CATALOG_BYTES: usize = 16 * 1024 * 1024;

/// Fetches one catalog; `None` when there is no credential to ask with.
async fn fetch(
    sources: Sources<'_>,
    provider: &ProviderConfig,
    client: Option<&HeaderMap>,
    local_key: Option<&SecretString>,
) -> Option<Cached> {
    let mut headers = auth_headers(sources, provider, client, local_key).await?;
    let is_codex = matches!(provider.kind, ProviderKind::OpenaiCodex { .. });
    let mut url = endpoint(&provider.base_url, "models");
    if is_codex {
        url.query_pairs_mut()
            .append_pair("client_version", CODEX_CLIENT_VERSION);
    }
    for (name, value) in &provider.headers {
        headers.insert(name.clone(), value.clone());
    }
    let answer = match sources
        .upstream
        .send(provider.timeouts, Method::GET, &url, headers, Bytes::new())
        .await
    {
        Ok(r) if r.status.is_success() => r,
        Ok(r) => {
            tracing::debug!(provider = %provider.id, status = r.status.as_u16(), "model catalog fetch refused");
            return Some(failed());
        }
        Err(e) => {
            tracing::debug!(provider = %provider.id, "model catalog fetch failed: {e}");
            return Some(failed());
        }
    };
    let Ok(body) = serde_json::from_slice::<Value>(&answer.read_to(MAX_CATALOG_BYTES).await) else {
        return Some(failed());
    };
    let (ids, entries) = if is_codex {
        let entries: Vec<Value> = body
            .get("models")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let ids = entries
            .iter()
            .filter_map(|m| {
                m.get("slug")
                    .or_else(|| m.get("id"))
                    .and_then(Value::as_str)
            })
            .map(str::to_owned)
            .collect();
        (ids, entries)
    } else {
        let ids = body
            .get("data")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|m| m.get("id").and_then(Value::as_str))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        (ids, Vec::new())
    };
    let capabilities = Arc::new(
        entries
            .iter()
            .filter_map(Capabilities::from_codex_entry)
            .collect(),
    );
    Some(Cached {
        at: Instant::now(),
        ok: true,
        ids: Arc::new(ids),
        entries,
        capabilities,
    })
}

/// The headers to list a provider's models with, or `None` when there is no credential.
async fn auth_headers(
    sources: Sources<'_>,
    provider: &ProviderConfig,
    client: Option<&HeaderMap>,
    local_key: Option<&SecretString>,
) -> Option<HeaderMap> {
    let mut headers = HeaderMap::new();
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    let anthropic = match &provider.kind {
        ProviderKind::OpenaiCodex { .. } => {
            headers.insert(ORIGINATOR, HeaderValue::from_static("bitrouter"));
            if let Ok(ua) = HeaderValue::try_from(user_agent()) {
                headers.insert(header::USER_AGENT, ua);
            }
            false
        }
        ProviderKind::Generic { apis, .. } => apis.first() == Some(&Api::AnthropicMessages),
    };
    if anthropic {
        headers.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
    }
    if provider.auth_mode == AuthMode::None {
        return Some(headers);
    }
    let style = style_of(provider);
    let now = unix_now();
    let labels = sources.credentials.labels(&provider.id).unwrap_or_default();
    for label in labels {
        if sources
            .book
            .cooling_until(&provider.id, &label, now)
            .is_some()
        {
            continue;
        }
        if let Ok(access) = sources.credentials.access(&provider.id, &label).await {
            attach_access(&mut headers, style, &access);
            return Some(headers);
        }
    }
    if let Some(key) = &provider.api_key {
        attach_secret(&mut headers, style, key.expose_secret());
        return Some(headers);
    }
    if provider.auth_mode == AuthMode::Passthrough
        && let Some(client) = client
    {
        let forwarded = forwardable_request_headers(client, true, local_key);
        let mut any = false;
        for name in ["authorization", "x-api-key", "chatgpt-account-id"] {
            if let Some(v) = forwarded.get(name) {
                any |= name != "chatgpt-account-id";
                headers.insert(name, v.clone());
            }
        }
        if any {
            return Some(headers);
        }
    }
    None
}

impl ModelCache {
    /// The `/v1/models` document: what [`listing::list`] offers (models, their catalog
    /// variants, named routes), each entry with `owned_by` and `metadata.provider.id`, plus the
    /// backend's own `models` entries when the Codex CLI asks (`client_version` query).
    #[must_use]
    pub fn document(&self, config: &Config, inventory: &Inventory, codex_shape: bool) -> Value {
        let data: Vec<Value> = listing::list(config, inventory).iter().map(entry).collect();
        let mut doc = json!({"object": "list", "data": data});
        if codex_shape {
            doc["models"] = Value::Array(self.entries_of(&ProviderId::openai_codex()));
        }
        doc
    }
}

/// One `/v1/models` entry. A route whose first entry cannot be resolved now is owned by
/// `bitrouter`.
fn entry(listed: &Listed) -> Value {
    let owner = listed
        .provider
        .as_ref()
        .map_or("bitrouter", ProviderId::as_str);
    let mut metadata = json!({"provider": {"id": owner}});
    match &listed.kind {
        Kind::Model => {}
        Kind::Variant {
            model,
            effort,
            fast,
        } => {
            metadata["variant"] = json!({
                "model": model,
                "effort": effort,
                "service_tier": fast.then_some("priority"),
            });
        }
        Kind::Route {
            to,
            effort,
            service_tier,
        } => {
            metadata["route"] = json!({"to": to, "effort": effort, "service_tier": service_tier});
        }
    }
    json!({
        "id": listed.id,
        "object": "model",
        "created": 0,
        "owned_by": owner,
        "metadata": metadata,
    })
}

/// What the resolver needs besides the config: the labels stored for each provider and the
/// cached catalogs.
#[must_use]
pub fn inventory(
    config: &Config,
    credentials: &dyn Credentials,
    catalogs: &ModelCache,
) -> Inventory {
    let mut inventory = Inventory::default();
    for id in config.providers.keys() {
        match credentials.labels(id) {
            Ok(labels) if !labels.is_empty() => {
                inventory.labels.insert(id.clone(), labels);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(provider = %id, "cannot list accounts: {e}"),
        }
    }
    inventory.catalogs = catalogs.catalogs();
    inventory.capabilities = catalogs.capabilities();
    inventory
}

/// The `/v1/models` document in Anthropic's shape (`data` of `{type, id, display_name,
/// description, created_at}`, `has_more`, `first_id`, `last_id`): the same ids as [`ModelCache::document`],
/// the routes first, each saying what it reaches. Claude Code keeps the ids that contain
/// `claude` or `anthropic`.
#[must_use]
pub fn anthropic_document(config: &Config, inventory: &Inventory) -> Value {
    let listed = listing::list(config, inventory);
    let routes = listed
        .iter()
        .filter(|l| matches!(l.kind, Kind::Route { .. }));
    let others = listed
        .iter()
        .filter(|l| !matches!(l.kind, Kind::Route { .. }));
    let data: Vec<Value> = routes.chain(others).map(anthropic_entry).collect();
    let first = data.first().map_or(Value::Null, |e| e["id"].clone());
    let last = data.last().map_or(Value::Null, |e| e["id"].clone());
    json!({"data": data, "has_more": false, "first_id": first, "last_id": last})
}

/// One entry of the Anthropic-shaped list.
fn anthropic_entry(listed: &Listed) -> Value {
    let owner = listed
        .provider
        .as_ref()
        .map_or("bitrouter", ProviderId::as_str);
    let description = match &listed.kind {
        Kind::Model => format!("{owner} through bitrouter"),
        Kind::Variant {
            model,
            effort,
            fast,
        } => {
            let mut what = vec![model.clone()];
            what.extend(effort.as_ref().map(|e| format!("effort {e}")));
            if *fast {
                what.push("fast".to_owned());
            }
            format!("{} through bitrouter", what.join(", "))
        }
        Kind::Route { to, .. } => format!("bitrouter route to {}", to.join(", then ")),
    };
    json!({
        "type": "model",
        "id": listed.id,
        "display_name": listed.id,
        "description": description,
        "created_at": "1970-01-01T00:00:00Z",
    })
}
