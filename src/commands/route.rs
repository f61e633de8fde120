//! `bitrouter route <model>`: how a model id resolves, by the same resolver `serve` uses, with
//! each account's state (ready, needs login, cooling down until T); and when it cannot route,
//! why and what to do. No network unless `--check`, which sends a tiny request through the chain
//! with the server's own request path.

use std::sync::Arc;

use anyhow::Context as _;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::Context;
use crate::auth::{AccountInfo, Accounts};
use crate::catalog::{self, ModelCache, Sources};
use crate::cli::RouteArgs;
use crate::clock::unix_now;
use crate::config::{AuthMode, Config, Strategy};
use crate::error::{Failure, UsageError};
use crate::ids::{Label, ProviderId};
use crate::paths;
use crate::picker::{self, Headroom};
use crate::proxy::Proxy;
use crate::quota::{self, AccountBook, AccountUsage, UsageFile};
use crate::routing::{Credential, Origin, Plan, Resolver, RouteError, Setting, Step, Target};
use crate::server::{self, AppState};
use crate::upstream::Upstream;

/// Everything the route and models commands need, without a server: the config, the accounts,
/// the saved cooldowns and the model catalogs with what fetching them takes.
pub(crate) struct Local {
    pub config: Config,
    pub accounts: Accounts,
    pub usage: UsageFile,
    pub book: AccountBook,
    pub catalogs: ModelCache,
    pub upstream: Upstream,
}

impl Local {
    /// Opens the store and reads the saved usage file; no network.
    pub(crate) fn open(ctx: &Context) -> anyhow::Result<Local> {
        let config = ctx.load_config()?;
        let store = super::open_store(ctx, &config)?;
        let accounts = Accounts::with_store(&config, store)?;
        let usage = match paths::data_dir(&ctx.env).as_deref().map(quota::file::load) {
            Some(Ok(file)) => file,
            Some(Err(e)) => {
                ctx.printer.warn(format!("{e}; cooldowns unknown"));
                UsageFile::default()
            }
            None => UsageFile::default(),
        };
        let book = AccountBook::from_usage(&usage);
        Ok(Local {
            config,
            accounts,
            usage,
            book,
            catalogs: ModelCache::new(),
            upstream: Upstream::new(),
        })
    }

    /// What fetching catalogs needs.
    pub(crate) fn sources(&self) -> Sources<'_> {
        Sources {
            credentials: &self.accounts,
            book: &self.book,
            upstream: &self.upstream,
        }
    }

    /// Fetches the live catalogs as `serve` does.
    pub(crate) async fn refresh_catalogs(&self) {
        self.catalogs
            .refresh(&self.config, self.sources(), None)
            .await;
    }
}

/// Runs the command.
pub async fn run(ctx: &Context, args: &RouteArgs) -> anyhow::Result<()> {
    let local = Local::open(ctx)?;
    if args.check {
        local.refresh_catalogs().await;
    }
    let inventory = catalog::inventory(&local.config, &local.accounts, &local.catalogs);
    let resolved =
        Resolver::new(&local.config, &inventory).resolve(&args.model, args.account.as_deref());
    let plan = match resolved {
        Ok(plan) => plan,
        Err(e) => return Err(route_failure(&e, &args.model)),
    };
    let infos = local.accounts.list()?;
    let now = unix_now();
    let doc = describe(&local.config, &plan, &infos, &local.usage, now);
    let check = if args.check {
        Some(check(&local, &args.model, args.account.as_deref()).await?)
    } else {
        None
    };
    if args.json {
        let mut doc = doc;
        if let Some(c) = &check {
            doc["check"] = c.clone();
        }
        ctx.printer.json(&doc)?;
    } else {
        ctx.printer.data(&human(&doc))?;
        if let Some(c) = &check {
            ctx.printer.data(&format!(
                "check: HTTP {} from {} ({}){}",
                c["status"],
                c["provider"].as_str().unwrap_or("-"),
                c["account"].as_str().unwrap_or("-"),
                c["error"]
                    .as_str()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ))?;
        }
    }
    match check.as_ref().and_then(|c| c["status"].as_u64()) {
        Some(status) if !(200..300).contains(&status) => Err(Failure::new(
            format!(
                "the check request through `{}` failed with HTTP {status}",
                args.model
            ),
            "see the message above; `bitrouter status` shows account states",
        )
        .into()),
        _ => Ok(()),
    }
}

/// A resolver error as a command error: the user's to fix (exit 2), except "not logged in".
fn route_failure(e: &RouteError, model: &str) -> anyhow::Error {
    let message = format!("cannot route `{model}`: {e}");
    if e.http_status() == 401 {
        Failure::new(message, e.hint()).into()
    } else {
        UsageError::new(message, e.hint()).into()
    }
}

/// The plan as a JSON document: the chain with each account's state.
#[must_use]
pub fn describe(
    config: &Config,
    plan: &Plan,
    infos: &[AccountInfo],
    usage: &UsageFile,
    now: i64,
) -> Value {
    let steps: Vec<Value> = plan
        .steps
        .iter()
        .map(|step| describe_step(config, step, infos, usage, now))
        .collect();
    json!({
        "requested": plan.requested,
        "route": plan.route,
        "steps": steps,
    })
}

fn describe_step(
    config: &Config,
    step: &Step,
    infos: &[AccountInfo],
    usage: &UsageFile,
    now: i64,
) -> Value {
    let target = &step.target;
    let provider = config.provider(&target.provider);
    let accounts: Vec<Value> = target
        .credentials
        .iter()
        .map(|c| match c {
            Credential::Account(label) => {
                let info = infos
                    .iter()
                    .find(|i| i.provider == target.provider && &i.label == label);
                let cooling = usage
                    .get(&target.provider, label)
                    .filter(|u| u.is_cooling(now))
                    .and_then(|u| u.cooling_until);
                let (state, detail) = match (info.and_then(|i| i.needs_login.clone()), cooling) {
                    (Some(reason), _) => ("needs-login", Some(reason)),
                    (None, Some(until)) => (
                        "cooling-down",
                        Some(format!("until {}", crate::auth::codex::rfc3339(until))),
                    ),
                    (None, None) => ("ready", None),
                };
                let quota = Headroom::of(
                    usage
                        .get(&target.provider, label)
                        .and_then(AccountUsage::snapshot)
                        .as_ref(),
                    now,
                );
                json!({
                    "label": label,
                    "state": state,
                    "detail": detail,
                    "cooling_until": cooling,
                    "email": info.and_then(|i| i.email.clone()),
                    "quota": quota.known.then(|| quota.describe()),
                })
            }
            Credential::ConfiguredKey => {
                json!({"label": null, "credential": "api_key from the config", "state": "ready"})
            }
            Credential::None => json!({
                "label": null,
                "credential": match provider.map(|p| p.auth_mode) {
                    Some(AuthMode::None) => "none (credentials stripped)",
                    _ => "the client's own (passthrough)",
                },
                "state": "ready",
            }),
        })
        .collect();
    json!({
        "requested": step.requested,
        "provider": target.provider,
        "model": &*target.model,
        "effort": setting(target.effort.as_ref(), String::as_str),
        "service_tier": setting(target.service_tier.as_ref(), |t| t.as_str()),
        "catalog_checked": step.catalog_checked,
        "reason": step.reason,
        "base_url": provider.map(|p| p.base_url.to_string()),
        "api": provider.map(|p| p.apis().iter().map(|a| a.as_str()).collect::<Vec<_>>()),
        "auth_mode": provider.map(|p| p.auth_mode),
        "pinned_account": target.pinned,
        "strategy": provider.map(|p| p.strategy.as_str()),
        "accounts": accounts,
        "pick": pick(config, target, infos, usage, now),
    })
}

/// Which account `serve` would start a new conversation on now, and why (see [`pick_among`]).
fn pick(
    config: &Config,
    target: &Target,
    infos: &[AccountInfo],
    usage: &UsageFile,
    now: i64,
) -> Value {
    let labels = target.account_labels();
    if target.pinned {
        return labels.first().map_or(Value::Null, |first| {
            json!({"account": first, "why": "pinned",
                "because": "the request names it (@label or x-bitrouter-account)"})
        });
    }
    let strategy = config
        .provider(&target.provider)
        .map(|p| p.strategy)
        .unwrap_or_default();
    pick_among(strategy, &target.provider, &labels, infos, usage, now)
}

/// The picker's first choice among `labels` (in the configured order) for a new conversation
/// at `now`, from the saved quota and cooldowns, leaving out accounts that need a new login:
/// `{account, why, because, quota, order}`, or `null` without a usable account.
pub(crate) fn pick_among(
    strategy: Strategy,
    provider: &ProviderId,
    labels: &[&Label],
    infos: &[AccountInfo],
    usage: &UsageFile,
    now: i64,
) -> Value {
    let usable: Vec<&Label> = labels
        .iter()
        .copied()
        .filter(|label| {
            !infos
                .iter()
                .any(|i| &i.provider == provider && &i.label == *label && i.needs_login.is_some())
        })
        .collect();
    let saved: Vec<_> = usable.iter().map(|l| usage.get(provider, l)).collect();
    let snapshots: Vec<_> = saved
        .iter()
        .map(|u| u.and_then(AccountUsage::snapshot))
        .collect();
    let accounts: Vec<picker::Account<'_>> = usable
        .iter()
        .zip(saved.iter().zip(&snapshots))
        .map(|(label, (saved, snapshot))| picker::Account {
            label,
            snapshot: snapshot.as_ref(),
            cooling_until: saved.and_then(|u| u.cooling_until),
        })
        .collect();
    let pick = picker::order(strategy, &accounts, None, 0, now);
    let (Some(account), Some(why)) = (pick.order.first(), pick.why) else {
        return Value::Null;
    };
    let snapshot = accounts
        .iter()
        .find(|a| a.label == account)
        .and_then(|a| a.snapshot);
    let headroom = Headroom::of(snapshot, now);
    json!({
        "account": account,
        "why": why,
        "because": why.describe(),
        "quota": headroom.describe(),
        "order": pick.order,
    })
}

/// An effort or tier as JSON: its value, whether it is pinned, and by what.
fn setting<T>(setting: Option<&Setting<T>>, value: impl Fn(&T) -> &str) -> Value {
    let Some(setting) = setting else {
        return Value::Null;
    };
    match &setting.origin {
        Origin::Suffix => {
            json!({"value": value(&setting.value), "pinned": false, "from": "suffix"})
        }
        Origin::Route(key) => {
            json!({"value": value(&setting.value), "pinned": true, "from": "route", "route": key})
        }
    }
}

/// The human line for a step's effort and tier, if it has either.
fn variant_line(step: &Value) -> Option<String> {
    let mut parts = Vec::new();
    for (key, name) in [("effort", "effort"), ("service_tier", "service tier")] {
        let s = &step[key];
        let Some(value) = s["value"].as_str() else {
            continue;
        };
        let how = match s["route"].as_str() {
            Some(route) => format!("pinned by route {route}: it replaces the client's own"),
            None => format!(
                "from the +{} suffix: the client's own wins",
                match value {
                    "priority" => crate::variant::FAST,
                    other => other,
                }
            ),
        };
        parts.push(format!("{name} {value} ({how})"));
    }
    if parts.is_empty() {
        return None;
    }
    let checked = if step["catalog_checked"] == true {
        "offered by the live catalog"
    } else {
        "not checked against a live catalog (`--check` fetches it; without one the upstream decides)"
    };
    Some(format!("   {}; {checked}", parts.join(", ")))
}

/// The human rendering of [`describe`].
fn human(doc: &Value) -> String {
    let mut out = Vec::new();
    match doc["route"].as_str() {
        Some(route) if route.contains('*') => out.push(format!(
            "{} matches route {route}:",
            doc["requested"].as_str().unwrap_or_default()
        )),
        Some(route) => out.push(format!("{route} is a route:")),
        None => {}
    }
    let steps = doc["steps"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, step) in steps.iter().enumerate() {
        let prefix = if steps.len() > 1 {
            format!("{}. ", i + 1)
        } else {
            String::new()
        };
        out.push(format!(
            "{prefix}{} -> {} model {} ({})",
            step["requested"].as_str().unwrap_or_default(),
            step["provider"].as_str().unwrap_or_default(),
            step["model"].as_str().unwrap_or_default(),
            match step["reason"].as_str() {
                Some("pinned") => "provider named in the id",
                Some("declared") => "declared in the provider's models",
                Some("catalog") => "offered by the provider's live catalog",
                _ => "default_provider",
            }
        ));
        out.push(format!(
            "   {} via {}",
            step["base_url"].as_str().unwrap_or("-"),
            step["api"]
                .as_array()
                .map(|a| a
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default()
        ));
        out.extend(variant_line(step));
        for account in step["accounts"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let who = account["label"]
                .as_str()
                .map(|l| format!("account {l}"))
                .or_else(|| account["credential"].as_str().map(str::to_owned))
                .unwrap_or_default();
            let detail = account["detail"]
                .as_str()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            let quota = account["quota"]
                .as_str()
                .map(|q| format!(", {q}"))
                .unwrap_or_default();
            out.push(format!(
                "   - {who}: {}{detail}{quota}",
                account["state"].as_str().unwrap_or_default()
            ));
        }
        let pick = &step["pick"];
        if let (Some(account), Some(because)) = (pick["account"].as_str(), pick["because"].as_str())
        {
            let quota = pick["quota"]
                .as_str()
                .map(|q| format!(" ({q})"))
                .unwrap_or_default();
            let strategy = step["strategy"]
                .as_str()
                .map(|s| format!(" [strategy: {s}]"))
                .unwrap_or_default();
            out.push(format!(
                "   would pick {account} now: {because}{quota}{strategy}"
            ));
        }
    }
    out.join("\n")
}

/// Sends `{"model": model, "input": "ping"}` through the server's own request path (bound on a
/// loopback port for the duration) and reports what answered.
async fn check(local: &Local, model: &str, account: Option<&str>) -> anyhow::Result<Value> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot bind a loopback port for the check")?;
    let addr = listener.local_addr()?;
    let state = Arc::new(AppState::new(
        Proxy::new(
            local.config.clone(),
            Arc::new(local.accounts.clone()),
            Arc::new(AccountBook::from_usage(&local.usage)),
        ),
        addr,
        None,
    ));
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(server::serve(listener, state, shutdown.clone()));
    let client = reqwest::Client::new();
    let mut request = client
        .post(format!("http://{addr}/v1/responses"))
        .json(&json!({"model": model, "input": "Reply with the word ok.", "stream": false}));
    if let Some(label) = account {
        request = request.header("x-bitrouter-account", label);
    }
    let local_key = local.config.server.api_key.as_ref().map(|k| {
        use secrecy::ExposeSecret;
        k.expose_secret().to_owned()
    });
    if let Some(key) = local_key {
        request = request.header("x-bitrouter-key", key);
    }
    let result = request.send().await;
    shutdown.cancel();
    let _ = server.await;
    let resp = result.context("the check request failed")?;
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (provider, account, upstream_model) = (
        header("x-bitrouter-provider"),
        header("x-bitrouter-account"),
        header("x-bitrouter-model"),
    );
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    Ok(json!({
        "status": status,
        "provider": provider,
        "account": account,
        "model": upstream_model,
        "error": body["error"]["message"],
    }))
}
