//! `bitrouter models [--provider P]`: what can be routed: every provider's declared models and
//! live catalog (fetched as `serve` fetches them for `/v1/models`), and the `routes` aliases.

use serde_json::{Value, json};

use super::Context;
use super::route::Local;
use crate::cli::ModelsArgs;
use crate::error::UsageError;

/// Runs the command.
pub async fn run(ctx: &Context, args: &ModelsArgs) -> anyhow::Result<()> {
    let local = Local::open(ctx)?;
    if let Some(p) = &args.provider
        && local.config.provider(p).is_none()
    {
        return Err(UsageError::new(
            format!("unknown provider `{p}`"),
            format!("known providers: {}", local.config.provider_names()),
        )
        .into());
    }
    local.refresh_catalogs().await;
    let doc = local.catalogs.document(&local.config, false);
    let mut models: Vec<Value> = doc["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| {
            args.provider
                .as_ref()
                .is_none_or(|p| m["owned_by"].as_str() == Some(p.as_str()))
        })
        .collect();
    if args.provider.is_none() {
        for (name, chain) in &local.config.routes {
            models
                .push(json!({"id": name, "object": "route", "owned_by": "routes", "chain": chain}));
        }
    }
    if args.json {
        ctx.printer
            .json(&json!({"object": "list", "data": models}))?;
        return Ok(());
    }
    if models.is_empty() {
        ctx.printer.info(
            "No models known: declare them under `providers.<id>.models`, or sign in so live catalogs can be fetched.",
        );
        return Ok(());
    }
    let width = models
        .iter()
        .filter_map(|m| m["id"].as_str())
        .map(str::len)
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = vec![format!("{:<width$}  PROVIDER", "MODEL")];
    for m in &models {
        let id = m["id"].as_str().unwrap_or_default();
        let owner = match m["chain"].as_array() {
            Some(chain) => format!(
                "route: {}",
                chain
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" -> ")
            ),
            None => m["owned_by"].as_str().unwrap_or_default().to_owned(),
        };
        out.push(format!("{id:<width$}  {owner}"));
    }
    ctx.printer.data(&out.join("\n"))?;
    Ok(())
}
