//! Why a model id cannot be routed, what the user can do about it, and the HTTP status `serve`
//! answers with.

use crate::ids::{Label, ProviderId};
use crate::variant::VariantError;

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
    /// The variant suffix cannot be parsed.
    #[error("`{requested}`: {error}")]
    BadVariant {
        /// The id as requested.
        requested: String,
        /// What is wrong with it.
        error: VariantError,
    },
    /// A variant suffix on a route name.
    #[error("`{requested}`: variants apply to models, and `{route}` is a route")]
    VariantOfRoute {
        /// The id as requested.
        requested: String,
        /// The route key it matched.
        route: String,
    },
    /// The model does not offer this variant (or the provider has no way to carry it).
    #[error("{model} does not offer {asked} ({offered})")]
    UnsupportedVariant {
        /// The model, as `provider:model`.
        model: String,
        /// What was asked for, e.g. "`+xhigh`" or "effort `xhigh`, pinned by route `x`".
        asked: String,
        /// What it offers instead.
        offered: String,
    },
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
            RouteError::BadVariant { .. } => {
                "write variants as `model+effort`, `model+fast` or `model+effort+fast`, e.g. `gpt-6.1-sol+high`"
                    .into()
            }
            RouteError::VariantOfRoute { route, .. } => format!(
                "pin `effort` or `service_tier` in the route: `{route}: {{to: …, effort: high}}`"
            ),
            RouteError::UnsupportedVariant { .. } => {
                "`bitrouter models` lists the variants each model offers".into()
            }
        }
    }

    /// The HTTP status the server answers with: 404 for ids that name nothing (an unknown
    /// provider, account or variant), 400 for malformed ones.
    #[must_use]
    pub fn http_status(&self) -> u16 {
        match self {
            RouteError::EmptyModel
            | RouteError::BadLabel(_)
            | RouteError::ConflictingAccounts { .. }
            | RouteError::Ambiguous { .. }
            | RouteError::BadVariant { .. }
            | RouteError::VariantOfRoute { .. } => 400,
            RouteError::NotLoggedIn { .. } => 401,
            RouteError::UnknownProvider { .. }
            | RouteError::UnknownAccount { .. }
            | RouteError::UnsupportedVariant { .. } => 404,
            RouteError::RouteLoop(_) => 500,
        }
    }
}
