//! `GET /v1/models` and the live catalogs behind it: each provider's own model list, fetched
//! with its credentials (for `openai-codex`, `GET {base_url}/models?client_version=…` with the
//! first usable account, spec §6.4) and cached briefly. The resolver sees the cached catalogs so
//! a bare model name reaches the provider that offers it. Anthropic clients (the request carries
//! `anthropic-version`, as Claude Code's gateway model discovery and the Anthropic SDKs send) get
//! Anthropic's list shape, routes first, so Claude Code's `/model` picker shows the user's
//! `claude-*` routes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
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
    Some(Cached {
        at: Instant::now(),
        ok: true,
        ids,
        entries,
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

/// The `/v1/models` document: declared and catalog models of every provider (a bare id when one
/// provider offers it, `provider:model` when several do), plus the backend's own `models`
/// entries when the Codex CLI asks (`client_version` query).
#[must_use]
pub fn document(state: &AppState, config: &Config, codex_shape: bool) -> Value {
    let catalogs = state.models.catalogs();
    let mut offered: Vec<(String, &ProviderId)> = Vec::new();
    for provider in config.providers.values() {
        let mut names: Vec<String> = provider.models.clone();
        if let Some(catalog) = catalogs.get(&provider.id) {
            for m in catalog {
                if !names.contains(m) {
                    names.push(m.clone());
                }
            }
        }
        offered.extend(names.into_iter().map(|m| (m, &provider.id)));
    }
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (m, _) in &offered {
        *count.entry(m.as_str()).or_default() += 1;
    }
    let data: Vec<Value> = offered
        .iter()
        .map(|(model, provider)| {
            let id = if count.get(model.as_str()).copied().unwrap_or(0) > 1 {
                format!("{provider}:{model}")
            } else {
                model.clone()
            };
            json!({
                "id": id,
                "object": "model",
                "created": 0,
                "owned_by": provider.as_str(),
                "metadata": {"provider": {"id": provider.as_str()}},
            })
        })
        .collect();
    let mut doc = json!({"object": "list", "data": data});
    if codex_shape {
        doc["models"] = Value::Array(state.models.entries_of(&ProviderId::openai_codex()));
    }
    doc
}

/// The `/v1/models` document in Anthropic's shape (`data` of `{type, id, display_name,
/// description, created_at}`, `has_more`, `first_id`, `last_id`): the `routes` names (globs
/// cannot be listed) with what they reach, then the models of [`document`]. Claude Code keeps the
/// ids that contain `claude` or `anthropic`.
#[must_use]
pub fn anthropic_document(state: &AppState, config: &Config) -> Value {
    let mut data: Vec<Value> = config
        .routes
        .iter()
        .filter(|(name, _)| !name.contains('*'))
        .map(|(name, chain)| {
            anthropic_entry(
                name,
                &format!("bitrouter route to {}", chain.join(", then ")),
            )
        })
        .collect();
    let openai = document(state, config, false);
    for entry in openai["data"].as_array().into_iter().flatten() {
        let (Some(id), Some(provider)) = (entry["id"].as_str(), entry["owned_by"].as_str()) else {
            continue;
        };
        if config.routes.contains_key(id) {
            continue;
        }
        data.push(anthropic_entry(
            id,
            &format!("{provider} through bitrouter"),
        ));
    }
    let first = data.first().map(|e| e["id"].clone()).unwrap_or(Value::Null);
    let last = data.last().map(|e| e["id"].clone()).unwrap_or(Value::Null);
    json!({"data": data, "has_more": false, "first_id": first, "last_id": last})
}

fn anthropic_entry(id: &str, description: &str) -> Value {
    json!({
        "type": "model",
        "id": id,
        "display_name": id,
        "description": description,
        "created_at": "1970-01-01T00:00:00Z",
    })
}
