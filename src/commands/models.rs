//! `bitrouter models [--provider P]`: what can be routed: every provider's declared models and
//! live catalog (fetched as `serve` fetches them for `/v1/models`) with the variants each catalog
//! model offers, and the `routes` (named ones as `/v1/models` lists them, globs as patterns).

use serde_json::{Value, json};

use super::Context;
use super::route::Local;
use crate::catalog;
use crate::cli::ModelsArgs;
use crate::config::Route;
use crate::error::UsageError;
use crate::variant;

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
    let inventory = catalog::inventory(&local.config, &local.accounts, &local.catalogs);
    let doc = local.catalogs.document(&local.config, &inventory, false);
    let mut entries: Vec<Value> = doc["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| match &args.provider {
            Some(p) => m["owned_by"] == p.as_str() && m["metadata"]["route"].is_null(),
            None => true,
        })
        .collect();
    if args.provider.is_none() {
        for (key, route, is_glob) in local.config.routes.iter() {
            if is_glob {
                entries.push(json!({
                    "id": key, "object": "route_pattern", "owned_by": "bitrouter",
                    "metadata": {"route": route_json(route)},
                }));
            }
        }
    }
    if args.json {
        ctx.printer
            .json(&json!({"object": "list", "data": entries}))?;
        return Ok(());
    }
    if entries.is_empty() {
        ctx.printer.info(
            "No models known: declare them under `providers.<id>.models`, or sign in so live catalogs can be fetched.",
        );
        return Ok(());
    }
    ctx.printer.data(&human(&entries))?;
    Ok(())
}

fn route_json(route: &Route) -> Value {
    json!({"to": route.to, "effort": route.effort, "service_tier": route.service_tier})
}

/// Two tables: models with the variant words each offers, then routes with their chains and pins.
fn human(entries: &[Value]) -> String {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let mut models: Vec<(String, String, Vec<String>)> = Vec::new();
    let mut routes: Vec<(String, String)> = Vec::new();
    let mut combined = None;
    for entry in entries {
        let meta = &entry["metadata"];
        if let Some(base) = meta["variant"]["model"].as_str() {
            let effort = meta["variant"]["effort"].as_str();
            let fast = !meta["variant"]["service_tier"].is_null();
            if effort.is_some() && fast {
                combined.get_or_insert_with(|| text(&entry["id"]));
                continue;
            }
            if let Some(row) = models.iter_mut().find(|(id, _, _)| id == base) {
                row.2.push(format!(
                    "{}{}",
                    variant::SEPARATOR,
                    effort.unwrap_or(variant::FAST)
                ));
            }
        } else if meta["route"].is_object() {
            let route = &meta["route"];
            let chain: Vec<String> = route["to"]
                .as_array()
                .map(|a| a.iter().map(text).collect())
                .unwrap_or_default();
            let mut pins = Vec::new();
            if let Some(effort) = route["effort"].as_str() {
                pins.push(format!("effort {effort}"));
            }
            if let Some(tier) = route["service_tier"].as_str() {
                pins.push(format!("service_tier {tier}"));
            }
            let pins = if pins.is_empty() {
                String::new()
            } else {
                format!("  (pins {})", pins.join(", "))
            };
            routes.push((text(&entry["id"]), format!("{}{pins}", chain.join(" -> "))));
        } else {
            models.push((text(&entry["id"]), text(&entry["owned_by"]), Vec::new()));
        }
    }
    let mut out = Vec::new();
    if !models.is_empty() {
        let w = column_width(models.iter().map(|m| m.0.as_str()), "MODEL");
        let pw = column_width(models.iter().map(|m| m.1.as_str()), "PROVIDER");
        out.push(format!("{:<w$}  {:<pw$}  VARIANTS", "MODEL", "PROVIDER"));
        for (id, provider, words) in &models {
            out.push(
                format!("{id:<w$}  {provider:<pw$}  {}", words.join(" "))
                    .trim_end()
                    .to_owned(),
            );
        }
    }
    if let Some(example) = combined {
        out.push(format!(
            "Variants combine an effort with fast, e.g. `{example}`."
        ));
    }
    if !routes.is_empty() {
        if !out.is_empty() {
            out.push(String::new());
        }
        let w = column_width(routes.iter().map(|r| r.0.as_str()), "ROUTE");
        out.push(format!("{:<w$}  TO", "ROUTE"));
        for (id, to) in &routes {
            out.push(format!("{id:<w$}  {to}"));
        }
    }
    out.join("\n")
}

fn column_width<'a>(values: impl Iterator<Item = &'a str>, header: &str) -> usize {
    values.map(str::len).max().unwrap_or(0).max(header.len())
}
