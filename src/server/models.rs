//! `GET /v1/models` and the live catalogs behind it: each provider's own model list, fetched
//! with its credentials (for `openai-codex`, `GET {base_url}/models?client_version=…` with the
//! first usable account, spec §6.4) and cached briefly. The resolver sees the cached catalogs so
//! a bare model name reaches the provider that offers it. Anthropic clients (the request carries
//! `anthropic-version`, as Claude Code's gateway model discovery and the Anthropic SDKs send) get
//! Anthropic's list shape, routes first, so Claude Code's `/model` picker shows the user's
//! `claude-*` routes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, header};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::codex;
use super::security;
use super::state::AppState;
use super::upstream::endpoint;
use crate::config::{Api, AuthMode, Authorization, Config, ProviderConfig, ProviderKind};
use crate::ids::ProviderId;
use crate::routing::Capabilities;
use crate::routing::listing::{self, Kind, Listed};

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
    ids: Vec<String>,
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
    }

    /// The model ids each provider's catalog offers, as last fetched.
    #[must_use]
    pub fn catalogs(&self) -> BTreeMap<ProviderId, Vec<String>> {
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
    }
}

/// Fetches every stale catalog (concurrently). `client` is the asking client's headers, used
/// for a passthrough provider when nothing is stored.
pub async fn refresh(state: &AppState, config: &Config, client: Option<&HeaderMap>) {
    let stale: Vec<&ProviderConfig> = config
        .providers
        .values()
        .filter(|p| !state.models.is_fresh(&p.id))
        .collect();
    let fetches = stale.into_iter().map(|p| async move {
        let fetched = tokio::time::timeout(FETCH_TIMEOUT, fetch(state, p, client)).await;
        match fetched {
            Ok(Some(cached)) => state.models.store(p.id.clone(), cached),
            Ok(None) => {}
            Err(_) => {
                tracing::debug!(provider = %p.id, "model catalog fetch timed out");
                state.models.store(p.id.clone(), failed());
            }
        }
    });
    futures_util::future::join_all(fetches).await;
}

fn failed() -> Cached {
    Cached {
        at: Instant::now(),
        ok: false,
        ids: Vec::new(),
        entries: Vec::new(),
        capabilities: Arc::default(),
    }
}

/// Fetches one catalog; `None` when there is no credential to ask with.
async fn fetch(
    state: &AppState,
    provider: &ProviderConfig,
    client: Option<&HeaderMap>,
) -> Option<Cached> {
    let headers = auth_headers(state, provider, client).await?;
    let http = state.clients.get(provider.timeouts).ok()?;
    let is_codex = matches!(provider.kind, ProviderKind::OpenaiCodex { .. });
    let mut url = endpoint(&provider.base_url, "models");
    if is_codex {
        url.query_pairs_mut()
            .append_pair("client_version", codex::CLIENT_VERSION);
    }
    let mut request = http.get(url).headers(headers);
    for (name, value) in &provider.headers {
        request = request.header(name, value);
    }
    let answer = match request.send().await {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => {
            tracing::debug!(provider = %provider.id, status = r.status().as_u16(), "model catalog fetch refused");
            return Some(failed());
        }
        Err(e) => {
            tracing::debug!(provider = %provider.id, "model catalog fetch failed: {}", super::upstream::transport_error(provider.id.as_str(), &e));
            return Some(failed());
        }
    };
    let Ok(body) = answer.json::<Value>().await else {
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
        ids,
        entries,
        capabilities,
    })
}

/// The headers to list a provider's models with, or `None` when there is no credential.
async fn auth_headers(
    state: &AppState,
    provider: &ProviderConfig,
    client: Option<&HeaderMap>,
) -> Option<HeaderMap> {
    let mut headers = HeaderMap::new();
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    let (style, anthropic) = match &provider.kind {
        ProviderKind::OpenaiCodex { .. } => {
            headers.insert("originator", HeaderValue::from_static("bitrouter"));
            if let Ok(ua) = HeaderValue::try_from(codex::user_agent()) {
                headers.insert(header::USER_AGENT, ua);
            }
            (Authorization::Bearer, false)
        }
        ProviderKind::Generic {
            apis,
            authorization,
        } => (
            *authorization,
            apis.first() == Some(&Api::AnthropicMessages),
        ),
    };
    if anthropic {
        headers.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
    }
    if provider.auth_mode == AuthMode::None {
        return Some(headers);
    }
    let now = super::accounts::unix_now();
    let labels = state.credentials.labels(&provider.id).unwrap_or_default();
    for label in labels {
        if state
            .book
            .cooling_until(&provider.id, &label, now)
            .is_some()
        {
            continue;
        }
        if let Ok(access) = state.credentials.access(&provider.id, &label).await {
            let mut value = match style {
                Authorization::Bearer => {
                    HeaderValue::try_from(format!("Bearer {}", access.token.expose_secret()))
                        .ok()?
                }
                Authorization::XApiKey => {
                    HeaderValue::try_from(access.token.expose_secret()).ok()?
                }
            };
            value.set_sensitive(true);
            let name = match style {
                Authorization::Bearer => header::AUTHORIZATION,
                Authorization::XApiKey => header::HeaderName::from_static("x-api-key"),
            };
            headers.insert(name, value);
            if let Some(id) = access
                .account_id
                .and_then(|a| HeaderValue::try_from(a).ok())
            {
                headers.insert("chatgpt-account-id", id);
            }
            return Some(headers);
        }
    }
    if let Some(key) = &provider.api_key {
        let mut value = match style {
            Authorization::Bearer => {
                HeaderValue::try_from(format!("Bearer {}", key.expose_secret())).ok()?
            }
            Authorization::XApiKey => HeaderValue::try_from(key.expose_secret()).ok()?,
        };
        value.set_sensitive(true);
        let name = match style {
            Authorization::Bearer => header::AUTHORIZATION,
            Authorization::XApiKey => header::HeaderName::from_static("x-api-key"),
        };
        headers.insert(name, value);
        return Some(headers);
    }
    if provider.auth_mode == AuthMode::Passthrough
        && let Some(client) = client
    {
        let forwarded = security::forwardable_request_headers(
            client,
            true,
            state.config().server.api_key.as_ref(),
        );
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

/// The `/v1/models` document: what [`listing::list`] offers (models, their catalog variants,
/// named routes), each entry with `owned_by` and `metadata.provider.id`, plus the backend's own
/// `models` entries when the Codex CLI asks (`client_version` query).
#[must_use]
pub fn document(state: &AppState, config: &Config, codex_shape: bool) -> Value {
    let inventory = state.inventory(config);
    let data: Vec<Value> = listing::list(config, &inventory)
        .iter()
        .map(entry)
        .collect();
    let mut doc = json!({"object": "list", "data": data});
    if codex_shape {
        doc["models"] = Value::Array(state.models.entries_of(&ProviderId::openai_codex()));
    }
    doc
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

/// The `/v1/models` document in Anthropic's shape (`data` of `{type, id, display_name,
/// description, created_at}`, `has_more`, `first_id`, `last_id`): the same ids as [`document`],
/// the routes first, each saying what it reaches. Claude Code keeps the ids that contain
/// `claude` or `anthropic`.
#[must_use]
pub fn anthropic_document(state: &AppState, config: &Config) -> Value {
    let inventory = state.inventory(config);
    let listed = listing::list(config, &inventory);
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
