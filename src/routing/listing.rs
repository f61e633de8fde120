//! What can be asked for by id, for `GET /v1/models` and `bitrouter models`: every provider's
//! declared and catalog models (bare when one provider offers the name, `provider:model` when
//! several do), each catalog model's variants (only those its live catalog lists), and the
//! routes with exact names. Glob routes are not ids a client could pick from a list, so they are
//! left out here; `bitrouter models` shows them as patterns.

use std::collections::HashMap;

use super::{Inventory, Resolver};
use crate::config::Config;
use crate::ids::ProviderId;
use crate::variant::{self, ServiceTier};

/// One listed id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The id a client sends.
    pub id: String,
    /// The provider it goes to (for a route: its first entry's), when known.
    pub provider: Option<ProviderId>,
    /// What it is.
    pub kind: Kind,
}

/// What a listed id is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A model as its provider names it.
    Model,
    /// A variant of a model.
    Variant {
        /// The model's own id as listed.
        model: String,
        /// The reasoning effort it sets.
        effort: Option<String>,
        /// Whether it asks for the fast (priority) tier.
        fast: bool,
    },
    /// A route with an exact name.
    Route {
        /// Its chain.
        to: Vec<String>,
        /// The effort it pins.
        effort: Option<String>,
        /// The tier it pins.
        service_tier: Option<ServiceTier>,
    },
}

/// Everything listable, providers in config order, each model followed by its variants, then
/// the routes by name.
#[must_use]
pub fn list(config: &Config, inventory: &Inventory) -> Vec<Listed> {
    let mut offered: Vec<(&str, &ProviderId)> = Vec::new();
    for provider in config.providers.values() {
        let catalog = inventory
            .catalogs
            .get(&provider.id)
            .map(|ids| ids.as_slice())
            .unwrap_or_default();
        let mut names: Vec<&str> = provider.models.iter().map(String::as_str).collect();
        for model in catalog {
            if !names.contains(&model.as_str()) {
                names.push(model);
            }
        }
        offered.extend(names.into_iter().map(|m| (m, &provider.id)));
    }
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (model, _) in &offered {
        *count.entry(model).or_default() += 1;
    }
    let mut out = Vec::new();
    for (model, provider) in offered {
        let id = if count.get(model).copied().unwrap_or(0) > 1 {
            format!("{provider}:{model}")
        } else {
            model.to_owned()
        };
        let variants = inventory
            .capabilities_of(provider, model)
            .map(super::Capabilities::variants)
            .unwrap_or_default();
        let listed_variants: Vec<Listed> = variants
            .into_iter()
            .map(|(effort, fast)| Listed {
                id: variant::variant_id(&id, effort, fast),
                provider: Some(provider.clone()),
                kind: Kind::Variant {
                    model: id.clone(),
                    effort: effort.map(str::to_owned),
                    fast,
                },
            })
            .collect();
        out.push(Listed {
            id,
            provider: Some(provider.clone()),
            kind: Kind::Model,
        });
        out.extend(listed_variants);
    }
    let resolver = Resolver::new(config, inventory);
    for (name, route, is_glob) in config.routes.iter() {
        if is_glob {
            continue;
        }
        let provider = resolver
            .resolve(name, None)
            .ok()
            .and_then(|plan| plan.steps.into_iter().next())
            .map(|step| step.target.provider);
        out.push(Listed {
            id: name.to_owned(),
            provider,
            kind: Kind::Route {
                to: route.to.clone(),
                effort: route.effort.clone(),
                service_tier: route.service_tier,
            },
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;
    use crate::env::Env;
    use crate::routing::Capabilities;

    #[test]
    fn models_then_their_catalog_variants_then_named_routes() {
        let config = Config::parse(
            "providers:\n  openai:\n    base_url: https://api.openai.com/v1\n    api_key: k\n    models: [gpt-4.1, gpt-6-luna]\nroutes:\n  sonnet: {to: gpt-6.1-sol, effort: high}\n  \"claude-*\": gpt-6-luna\n",
            &Env::default(),
        )
        .unwrap();
        let mut inv = Inventory::default();
        let codex = ProviderId::openai_codex();
        inv.labels
            .insert(codex.clone(), vec!["work".parse().unwrap()]);
        inv.catalogs.insert(
            codex.clone(),
            std::sync::Arc::new(vec!["gpt-6.1-sol".into(), "gpt-6-luna".into()]),
        );
        inv.capabilities.insert(
            codex.clone(),
            [
                (
                    "gpt-6.1-sol".to_owned(),
                    Capabilities {
                        efforts: vec!["low".into(), "high".into()],
                        fast: true,
                    },
                ),
                ("gpt-6-luna".to_owned(), Capabilities::default()),
            ]
            .into_iter()
            .collect::<std::collections::BTreeMap<_, _>>()
            .into(),
        );
        let ids: Vec<(String, Option<String>)> = list(&config, &inv)
            .into_iter()
            .map(|l| (l.id, l.provider.map(|p| p.to_string())))
            .collect();
        let at = |id: &str, p: Option<&str>| (id.to_owned(), p.map(str::to_owned));
        let codex = Some("openai-codex");
        assert_eq!(
            ids,
            vec![
                at("gpt-4.1", Some("openai")),
                // Two providers offer it, so both are named with their provider.
                at("openai:gpt-6-luna", Some("openai")),
                at("gpt-6.1-sol", codex),
                at("gpt-6.1-sol+low", codex),
                at("gpt-6.1-sol+high", codex),
                at("gpt-6.1-sol+fast", codex),
                at("gpt-6.1-sol+low+fast", codex),
                at("gpt-6.1-sol+high+fast", codex),
                at("openai-codex:gpt-6-luna", codex),
                at("sonnet", codex),
            ]
        );
    }
}
