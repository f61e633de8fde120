//! The one resolver: turns a requested model id into an ordered chain of targets (provider,
//! upstream model, accounts, reasoning effort, service tier). `bitrouter route`, `bitrouter
//! models` and `serve` all call [`Resolver::resolve`], so they cannot disagree.
//!
//! Grammar (contract, "Model ids"): `provider:model` and `provider/model` pin a provider,
//! `provider@label:model` also pins an account (as does the `x-bitrouter-account` header), a
//! `routes` key expands to its chain (exact names first, then the most specific glob, see
//! [`crate::config::Routes`]), and a bare model goes to the provider that declares it (config
//! `models`, then live catalogs), else to `default_provider`. Any model id may end in variant
//! words (`gpt-6.1-sol+high+fast`, see [`crate::variant`]); a route name may not.
//!
//! Effort and tier: a route's `effort`/`service_tier` is a *pin* (it replaces what the client
//! sends); a suffix is a *default* (the client's own parameter wins). When routes nest, the
//! outermost pin wins. Both are checked against the live catalog when bitrouter has it
//! ([`variants`]); the request path applies them with [`apply`].

pub mod apply;
mod error;
pub mod listing;
pub mod variants;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use error::RouteError;
pub use variants::Capabilities;

use crate::config::{AuthMode, Config, ProviderConfig, ProviderKind, Route};
use crate::ids::{Label, ProviderId};
use crate::variant::{self, ServiceTier};

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
    /// Models each provider's live catalog offers (as last fetched; shared, not copied, with
    /// every request's inventory).
    pub catalogs: BTreeMap<ProviderId, Arc<Vec<String>>>,
    /// What each catalog model says it supports (reasoning efforts, the fast tier), where the
    /// catalog says it (the Codex catalog does; OpenAI-style `/models` lists do not).
    pub capabilities: BTreeMap<ProviderId, Arc<BTreeMap<String, Capabilities>>>,
}

impl Inventory {
    /// What the catalog says `model` of `provider` supports, if it says.
    #[must_use]
    pub fn capabilities_of(&self, provider: &ProviderId, model: &str) -> Option<&Capabilities> {
        self.capabilities.get(provider)?.get(model)
    }
}

/// Where an effort or tier setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A variant suffix of the id (`+high`, `+fast`): a default the client's own parameter beats.
    Suffix,
    /// A route's `effort`/`service_tier` (the route key): a pin that beats the client.
    Route(String),
}

/// An effort or service tier for a target, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    /// The value.
    pub value: T,
    /// Who set it.
    pub origin: Origin,
}

impl<T> Setting<T> {
    /// Whether it replaces the client's own parameter (a route pin) rather than filling in.
    #[must_use]
    pub fn is_pinned(&self) -> bool {
        matches!(self.origin, Origin::Route(_))
    }
}

/// The pins of the routes being expanded (the outermost wins).
#[derive(Debug, Clone, Default)]
struct Pins {
    effort: Option<Setting<String>>,
    service_tier: Option<Setting<ServiceTier>>,
}

impl Pins {
    /// These pins, with `route`'s filling the gaps.
    fn within(&self, key: &str, route: &Route) -> Pins {
        fn pinned<T>(value: T, key: &str) -> Setting<T> {
            Setting {
                value,
                origin: Origin::Route(key.to_owned()),
            }
        }
        Pins {
            effort: self
                .effort
                .clone()
                .or_else(|| route.effort.clone().map(|e| pinned(e, key))),
            service_tier: self
                .service_tier
                .clone()
                .or_else(|| route.service_tier.map(|t| pinned(t, key))),
        }
    }
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
    pub model: Arc<str>,
    /// Credentials to try, in order.
    pub credentials: Vec<Credential>,
    /// Whether the account was pinned (by `@label` or the header): no failover to others.
    pub pinned: bool,
    /// The reasoning effort to apply, if a suffix or a route sets one.
    pub effort: Option<Setting<String>>,
    /// The service tier to apply, if a suffix or a route sets one.
    pub service_tier: Option<Setting<ServiceTier>>,
}

impl Target {
    /// The labels of the stored accounts among its credentials, in order.
    #[must_use]
    pub fn account_labels(&self) -> Vec<&Label> {
        self.credentials
            .iter()
            .filter_map(|c| match c {
                Credential::Account(label) => Some(label),
                Credential::ConfiguredKey | Credential::None => None,
            })
            .collect()
    }
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
    /// Whether the effort and tier were checked against the provider's live catalog (false
    /// when it has none, or it has not been fetched: the upstream then decides).
    pub catalog_checked: bool,
}

/// The resolved chain: the first target is tried first; the next is tried on 429, 5xx,
/// timeouts and connection errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The id the client asked for.
    pub requested: String,
    /// The `routes` key it matched (a name, or a glob such as `claude-*`), if any.
    pub route: Option<String>,
    /// The chain.
    pub steps: Vec<Step>,
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
        let (base, words) = variant::split(requested);
        let matched = is_route_name(base)
            .then(|| self.config.routes.lookup(base))
            .flatten();
        let route = match matched {
            Some((key, route)) => {
                if words.is_some() {
                    return Err(RouteError::VariantOfRoute {
                        requested: requested.to_owned(),
                        route: key.to_owned(),
                    });
                }
                self.expand(key, route, header.as_ref(), 0, &Pins::default(), &mut steps)?;
                Some(key.to_owned())
            }
            None => {
                steps.push(self.resolve_model(requested, header.as_ref(), &Pins::default())?);
                None
            }
        };
        Ok(Plan {
            requested: requested.to_owned(),
            route,
            steps,
        })
    }

    /// Expands a route's chain into steps: route names (exact) recursively, model ids directly.
    fn expand(
        &self,
        key: &str,
        route: &Route,
        header: Option<&Label>,
        depth: usize,
        outer: &Pins,
        steps: &mut Vec<Step>,
    ) -> Result<(), RouteError> {
        if depth >= MAX_ROUTE_DEPTH {
            return Err(RouteError::RouteLoop(key.to_owned()));
        }
        let pins = outer.within(key, route);
        for entry in &route.to {
            match self.config.routes.named(entry) {
                Some(inner) => self.expand(entry, inner, header, depth + 1, &pins, steps)?,
                None => steps.push(self.resolve_model(entry, header, &pins)?),
            }
        }
        Ok(())
    }

    /// Resolves one model id (maybe with variant words) under the routes' pins.
    fn resolve_model(
        &self,
        id: &str,
        header: Option<&Label>,
        pins: &Pins,
    ) -> Result<Step, RouteError> {
        let (base, suffix) = variant::parse(id).map_err(|error| RouteError::BadVariant {
            requested: id.to_owned(),
            error,
        })?;
        let mut step = self.resolve_one(id, base, header)?;
        let target = &mut step.target;
        target.effort = pins.effort.clone().or_else(|| {
            suffix.effort.map(|value| Setting {
                value,
                origin: Origin::Suffix,
            })
        });
        target.service_tier = pins.service_tier.clone().or_else(|| {
            suffix.fast.then_some(Setting {
                value: ServiceTier::Priority,
                origin: Origin::Suffix,
            })
        });
        step.catalog_checked = variants::check(self.config, self.inventory, &step.target)?;
        Ok(step)
    }

    /// Resolves `id`, the model id without its variant suffix, of `requested` (the whole id).
    fn resolve_one(
        &self,
        requested: &str,
        id: &str,
        header: Option<&Label>,
    ) -> Result<Step, RouteError> {
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
            requested: requested.to_owned(),
            target: Target {
                provider: provider.id.clone(),
                model: Arc::from(model),
                credentials,
                pinned: pin.is_some(),
                effort: None,
                service_tier: None,
            },
            reason,
            catalog_checked: false,
        })
    }

    fn known_provider(&self, name: &str) -> Option<&'a ProviderConfig> {
        self.config.provider(name)
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
        let mut ordered: Vec<Credential> = account_order(provider, stored)
            .into_iter()
            .map(Credential::Account)
            .collect();
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

/// A provider's stored accounts in the order to try them: its `accounts:` list (those of them
/// that are stored), else every stored label.
#[must_use]
pub fn account_order(provider: &ProviderConfig, stored: &[Label]) -> Vec<Label> {
    match &provider.accounts {
        Some(order) => order
            .iter()
            .filter(|l| stored.contains(l))
            .cloned()
            .collect(),
        None => stored.to_vec(),
    }
}

/// Whether an id could name a route: route names never hold model-id syntax.
fn is_route_name(id: &str) -> bool {
    !id.contains([':', '/', '@'])
}

fn parse_label(s: &str) -> Result<Label, RouteError> {
    s.parse().map_err(|_| RouteError::BadLabel(s.to_owned()))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod variant_tests;
