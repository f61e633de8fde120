//! The one resolver: turns a requested model id into an ordered chain of targets (provider,
//! upstream model, accounts). `bitrouter route`, `bitrouter models` and `serve` all call
//! [`Resolver::resolve`], so they cannot disagree.
//!
//! Grammar (contract, "Model ids"): `provider:model` and `provider/model` pin a provider,
//! `provider@label:model` also pins an account (as does the `x-bitrouter-account` header), a
//! `routes` name expands to its chain, and a bare model goes to the provider that declares it
//! (config `models`, then live catalogs), else to `default_provider`. Names match exactly.

use std::collections::BTreeMap;

use crate::config::{AuthMode, Config, ProviderConfig, ProviderKind};
use crate::ids::{Label, ProviderId};

/// How deep `routes` may refer to other routes before it is called a loop.
const MAX_ROUTE_DEPTH: usize = 8;

/// A model id as written, split into its parts (no lookups yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef<'a> {
    /// The provider prefix, if the id has one (`openai-codex` in `openai-codex:gpt-6`).
    pub provider: Option<&'a str>,
    /// The account pinned with `@label`.
    pub label: Option<&'a str>,
    /// The model part.
    pub model: &'a str,
}

/// Splits `provider@label:model`, `provider:model` and `provider/model`; anything else is bare.
/// Whether the prefix really names a provider is for the resolver to decide.
#[must_use]
pub fn parse_model_id(id: &str) -> ModelRef<'_> {
    let bare = ModelRef {
        provider: None,
        label: None,
        model: id,
    };
    let Some(sep) = id.find([':', '/']) else {
        return bare;
    };
    let (prefix, model) = (&id[..sep], &id[sep + 1..]);
    match prefix.split_once('@') {
        Some((provider, label)) => ModelRef {
            provider: Some(provider),
            label: Some(label),
            model,
        },
        None => ModelRef {
            provider: Some(prefix),
            label: None,
            model,
        },
    }
}

/// What the resolver knows besides the config: stored account labels and live model catalogs.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Stored labels per provider, in storage order.
    pub labels: BTreeMap<ProviderId, Vec<Label>>,
    /// Models each provider's live catalog offers (as last fetched).
    pub catalogs: BTreeMap<ProviderId, Vec<String>>,
}

/// Which credential a target uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A stored account (OAuth sign-in or stored API key) under this label.
    Account(Label),
    /// The `api_key` from the config file.
    ConfiguredKey,
    /// The client's own credential (passthrough with nothing stored) or none at all.
    None,
}

/// One place a request can go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The provider.
    pub provider: ProviderId,
    /// The model id sent upstream.
    pub model: String,
    /// Credentials to try, in order.
    pub credentials: Vec<Credential>,
    /// Whether the account was pinned (by `@label` or the header): no failover to others.
    pub pinned: bool,
}

/// Why this provider was chosen, for `route` to explain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// The id named the provider.
    Pinned,
    /// The provider's `models:` list declares the model.
    Declared,
    /// The provider's live catalog offers the model.
    Catalog,
    /// Nothing claimed the model, so `default_provider` gets it.
    Default,
}

/// One resolved chain entry with the reason it went there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The model id of this entry as written (in the route, or as requested).
    pub requested: String,
    /// Where it goes.
    pub target: Target,
    /// Why.
    pub reason: Reason,
}

/// The resolved chain: the first target is tried first; the next is tried on 429, 5xx,
/// timeouts and connection errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The id the client asked for.
    pub requested: String,
    /// The `routes` name it expanded, if any.
    pub route: Option<String>,
    /// The chain.
    pub steps: Vec<Step>,
}

/// Why a model id cannot be routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// No model was given.
    #[error("no model given")]
    EmptyModel,
    /// The id names a provider that is not configured.
    #[error("unknown provider `{provider}` in `{requested}` (known: {known})")]
    UnknownProvider {
        /// The id as requested.
        requested: String,
        /// The provider named.
        provider: String,
        /// Configured providers.
        known: String,
    },
    /// `@label` or the header named an invalid label.
    #[error("invalid account label `{0}`: labels are 1 to 32 characters of a-z, 0-9, `_` and `-`")]
    BadLabel(String),
    /// The pinned account is not stored for the provider.
    #[error("no account `{label}` for {provider}")]
    UnknownAccount {
        /// The provider.
        provider: ProviderId,
        /// The label asked for.
        label: Label,
    },
    /// The provider needs a credential and none is stored or configured.
    #[error("{provider} has no account: not logged in")]
    NotLoggedIn {
        /// The provider.
        provider: ProviderId,
    },
    /// Both the model id and the header pin an account, and they disagree.
    #[error("the model id pins account `{in_id}` but x-bitrouter-account says `{in_header}`")]
    ConflictingAccounts {
        /// From `provider@label:model`.
        in_id: Label,
        /// From the header.
        in_header: Label,
    },
    /// Two providers declare the same bare model name.
    #[error(
        "model `{model}` is offered by several providers ({providers}); pick one with `provider:{model}`"
    )]
    Ambiguous {
        /// The bare name.
        model: String,
        /// The providers that declare it.
        providers: String,
    },
    /// `routes` refer to each other in a cycle (or too deeply).
    #[error("route `{0}` refers back to itself (or nests more than 8 deep)")]
    RouteLoop(String),
}

impl RouteError {
    /// What the user can do about it.
    #[must_use]
    pub fn hint(&self) -> String {
        match self {
            RouteError::EmptyModel => "name a model, e.g. `openai-codex:gpt-6.1-sol`".into(),
            RouteError::UnknownProvider { .. } => {
                "add the provider under `providers:` in bitrouter.yaml, or fix its name".into()
            }
            RouteError::BadLabel(_) => "use a label such as `work` or `personal`".into(),
            RouteError::UnknownAccount { provider, label } => {
                format!("run `bitrouter login {provider} --label {label}`")
            }
            RouteError::NotLoggedIn { provider } if provider.is_openai_codex() => {
                format!("run `bitrouter login {provider}`")
            }
            RouteError::NotLoggedIn { provider } => format!(
                "set `api_key` for {provider} in bitrouter.yaml, or run `bitrouter login {provider} --api-key-stdin`"
            ),
            RouteError::ConflictingAccounts { .. } => "pin the account in one place only".into(),
            RouteError::Ambiguous { .. } => "prefix the model with its provider".into(),
            RouteError::RouteLoop(_) => "make each route list model ids, not itself".into(),
        }
    }

    /// The HTTP status the server answers with.
    #[must_use]
    pub fn http_status(&self) -> u16 {
        match self {
            RouteError::EmptyModel
            | RouteError::BadLabel(_)
            | RouteError::ConflictingAccounts { .. }
            | RouteError::Ambiguous { .. } => 400,
            RouteError::NotLoggedIn { .. } => 401,
            RouteError::UnknownProvider { .. } | RouteError::UnknownAccount { .. } => 404,
            RouteError::RouteLoop(_) => 500,
        }
    }
}

/// Resolves model ids against a config and an inventory.
#[derive(Debug, Clone, Copy)]
pub struct Resolver<'a> {
    config: &'a Config,
    inventory: &'a Inventory,
}

impl<'a> Resolver<'a> {
    /// A resolver over this config and inventory.
    #[must_use]
    pub fn new(config: &'a Config, inventory: &'a Inventory) -> Self {
        Resolver { config, inventory }
    }

    /// Resolves `requested`, with an account pinned by the `x-bitrouter-account` header if any.
    pub fn resolve(
        &self,
        requested: &str,
        header_account: Option<&str>,
    ) -> Result<Plan, RouteError> {
        let requested = requested.trim();
        if requested.is_empty() {
            return Err(RouteError::EmptyModel);
        }
        let header = header_account.map(parse_label).transpose()?;
        let mut steps = Vec::new();
        let route = self
            .config
            .routes
            .contains_key(requested)
            .then(|| requested.to_owned());
        self.expand(requested, header.as_ref(), 0, &mut steps)?;
        Ok(Plan {
            requested: requested.to_owned(),
            route,
            steps,
        })
    }

    fn expand(
        &self,
        id: &str,
        header: Option<&Label>,
        depth: usize,
        steps: &mut Vec<Step>,
    ) -> Result<(), RouteError> {
        if let Some(chain) = self.config.routes.get(id) {
            if depth >= MAX_ROUTE_DEPTH {
                return Err(RouteError::RouteLoop(id.to_owned()));
            }
            for entry in chain {
                self.expand(entry, header, depth + 1, steps)?;
            }
            return Ok(());
        }
        steps.push(self.resolve_one(id, header)?);
        Ok(())
    }

    fn resolve_one(&self, id: &str, header: Option<&Label>) -> Result<Step, RouteError> {
        let parsed = parse_model_id(id);
        let (provider, model, label_in_id, reason) = match parsed.provider {
            Some(prefix) => match self.known_provider(prefix) {
                Some(provider) => (provider, parsed.model, parsed.label, Reason::Pinned),
                // A whole id that a provider declares (`llama3:8b`) is a bare name; otherwise
                // a prefix nobody knows is most likely a typo in a provider name.
                None if parsed.label.is_none() && self.claimed_by(id).is_some() => {
                    let (provider, reason) = self.bare_provider(id)?;
                    (provider, id, None, reason)
                }
                None => {
                    return Err(RouteError::UnknownProvider {
                        requested: id.to_owned(),
                        provider: prefix.to_owned(),
                        known: self.config.provider_names(),
                    });
                }
            },
            None => {
                let (provider, reason) = self.bare_provider(id)?;
                (provider, id, None, reason)
            }
        };
        if model.is_empty() {
            return Err(RouteError::EmptyModel);
        }
        let label_in_id = label_in_id.map(parse_label).transpose()?;
        let pin = match (label_in_id, header) {
            (Some(a), Some(b)) if &a != b => {
                return Err(RouteError::ConflictingAccounts {
                    in_id: a,
                    in_header: b.clone(),
                });
            }
            (Some(a), _) => Some(a),
            (None, b) => b.cloned(),
        };
        let credentials = self.credentials(provider, pin.as_ref())?;
        Ok(Step {
            requested: id.to_owned(),
            target: Target {
                provider: provider.id.clone(),
                model: model.to_owned(),
                credentials,
                pinned: pin.is_some(),
            },
            reason,
        })
    }

    fn known_provider(&self, name: &str) -> Option<&'a ProviderConfig> {
        let id = name.parse::<ProviderId>().ok()?;
        self.config.provider(&id)
    }

    /// The providers that declare `model`, and through which tier.
    fn claimed_by(&self, model: &str) -> Option<(Vec<&'a ProviderConfig>, Reason)> {
        let declared: Vec<_> = self
            .config
            .providers
            .values()
            .filter(|p| p.models.iter().any(|m| m == model))
            .collect();
        if !declared.is_empty() {
            return Some((declared, Reason::Declared));
        }
        let in_catalog: Vec<_> = self
            .config
            .providers
            .values()
            .filter(|p| {
                self.inventory
                    .catalogs
                    .get(&p.id)
                    .is_some_and(|c| c.iter().any(|m| m == model))
            })
            .collect();
        (!in_catalog.is_empty()).then_some((in_catalog, Reason::Catalog))
    }

    fn bare_provider(&self, model: &str) -> Result<(&'a ProviderConfig, Reason), RouteError> {
        match self.claimed_by(model) {
            Some((providers, reason)) => match providers.as_slice() {
                [one] => Ok((one, reason)),
                many => Err(RouteError::Ambiguous {
                    model: model.to_owned(),
                    providers: many
                        .iter()
                        .map(|p| p.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                }),
            },
            None => {
                let id = &self.config.default_provider;
                let provider =
                    self.config
                        .provider(id)
                        .ok_or_else(|| RouteError::UnknownProvider {
                            requested: model.to_owned(),
                            provider: id.to_string(),
                            known: self.config.provider_names(),
                        })?;
                Ok((provider, Reason::Default))
            }
        }
    }

    /// The credentials to try for `provider`, in order.
    fn credentials(
        &self,
        provider: &ProviderConfig,
        pin: Option<&Label>,
    ) -> Result<Vec<Credential>, RouteError> {
        let stored = self
            .inventory
            .labels
            .get(&provider.id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if let Some(label) = pin {
            if stored.contains(label) {
                return Ok(vec![Credential::Account(label.clone())]);
            }
            return Err(RouteError::UnknownAccount {
                provider: provider.id.clone(),
                label: label.clone(),
            });
        }
        let mut ordered: Vec<Credential> = match &provider.accounts {
            Some(order) => order
                .iter()
                .filter(|l| stored.contains(l))
                .cloned()
                .map(Credential::Account)
                .collect(),
            None => stored.iter().cloned().map(Credential::Account).collect(),
        };
        let is_codex = matches!(provider.kind, ProviderKind::OpenaiCodex { .. });
        if !is_codex && provider.api_key.is_some() {
            ordered.push(Credential::ConfiguredKey);
        }
        if ordered.is_empty() {
            return match provider.auth_mode {
                AuthMode::Override => Err(RouteError::NotLoggedIn {
                    provider: provider.id.clone(),
                }),
                AuthMode::Passthrough | AuthMode::None => Ok(vec![Credential::None]),
            };
        }
        if provider.auth_mode == AuthMode::None {
            return Ok(vec![Credential::None]);
        }
        Ok(ordered)
    }
}

fn parse_label(s: &str) -> Result<Label, RouteError> {
    s.parse().map_err(|_| RouteError::BadLabel(s.to_owned()))
}

#[cfg(test)]
mod tests;
