//! `bitrouter status [--json] [--refresh]`: the stored accounts — provider, label, email, plan,
//! account id, expiry, source, store and whether a new sign-in is needed — as a table on stdout,
//! or one JSON document. Never a token. The quota column (remaining share of the 5-hour and
//! weekly windows, and any cooldown after a usage limit) comes from `usage.json`: the latest
//! `x-codex-*` headers a running `serve` saw, or, with `--refresh`, the backend's usage endpoint
//! asked just now (and saved there). A failed refresh is a warning, and the saved quota stays.

use std::collections::BTreeMap;

use super::Context;
use super::open_store;
use crate::auth::{AccountInfo, Accounts, AuthError, unix_now};
use crate::cli::StatusArgs;
use crate::config::{Config, ProviderKind, Strategy};
use crate::ids::{Label, ProviderId};
use crate::paths;
use crate::quota::endpoint::UsageEndpoint;
use crate::quota::file as usage;
use crate::quota::{AccountBook, AccountUsage, QuotaSource, Snapshot, UsageFile};
use crate::store::{CredentialKey, CredentialKind};

/// Runs the command.
pub async fn run(ctx: &Context, args: &StatusArgs) -> anyhow::Result<()> {
    let config = ctx.load_config()?;
    let store = open_store(ctx, &config)?;
    let accounts = Accounts::with_store(&config, store)?;
    let fetched = if args.refresh {
        refresh(ctx, &config, &accounts).await?
    } else {
        Vec::new()
    };
    let list = accounts.list()?;
    let data_dir = paths::data_dir(&ctx.env);
    let mut usage = match data_dir.as_deref().map(usage::load) {
        Some(Ok(file)) => file,
        Some(Err(e)) => {
            ctx.printer.warn(format!("{e}; quota unknown"));
            UsageFile::default()
        }
        None => UsageFile::default(),
    };
    let now = unix_now();
    if !fetched.is_empty() {
        let book = AccountBook::from_usage(&usage);
        for (provider, label, snapshot) in fetched {
            book.record_snapshot(&provider, &label, snapshot, QuotaSource::UsageEndpoint, now);
        }
        usage = book.to_usage();
        if let Some(dir) = data_dir.as_deref()
            && let Err(e) = usage::save(dir, &usage)
        {
            ctx.printer
                .warn(format!("{e:#}; the quota read now is not saved"));
        }
    }
    let server = match paths::state_dir(&ctx.env) {
        Some(dir) => Some(crate::daemon::server_state(&dir).await),
        None => None,
    };
    let server_line = format!(
        "server: {}",
        server.as_ref().map_or_else(
            || "unknown (no state directory)".to_owned(),
            |s| s.text(now)
        )
    );
    if args.json {
        let accounts: Vec<serde_json::Value> = list
            .iter()
            .map(|a| {
                let mut v = serde_json::to_value(a).unwrap_or_default();
                v["quota"] = usage
                    .get(&a.provider, &a.label)
                    .map(|u| quota_json(u, now))
                    .unwrap_or_default();
                v
            })
            .collect();
        let picks: Vec<serde_json::Value> = picks(&config, &list, &usage, now)
            .into_iter()
            .map(|(provider, strategy, pick)| {
                serde_json::json!({"provider": provider, "strategy": strategy.as_str(), "pick": pick})
            })
            .collect();
        let server = server.as_ref().map(|s| s.json(now));
        ctx.printer
            .json(&serde_json::json!({ "accounts": accounts, "picks": picks, "server": server }))?;
        return Ok(());
    }
    if list.is_empty() {
        ctx.printer
            .info("No stored accounts. Sign in with `bitrouter login openai-codex`.");
        ctx.printer.data(&format!("{server_line}\n"))?;
        return Ok(());
    }
    let mut text = table(&list, &usage, now);
    for (provider, strategy, pick) in picks(&config, &list, &usage, now) {
        if let (Some(account), Some(because)) = (pick["account"].as_str(), pick["because"].as_str())
        {
            text.push_str(&format!(
                "\n{provider}: a new conversation goes to {account} ({because}; strategy {})",
                strategy.as_str()
            ));
        }
    }
    ctx.printer.data(&format!("{text}\n\n{server_line}\n"))?;
    Ok(())
}

/// For each provider with more than one stored account: its strategy and the account a new
/// conversation would start on now (see [`super::route::pick_among`]).
fn picks(
    config: &Config,
    list: &[AccountInfo],
    usage: &UsageFile,
    now: i64,
) -> Vec<(ProviderId, Strategy, serde_json::Value)> {
    config
        .providers
        .values()
        .filter_map(|provider| {
            let stored: Vec<Label> = list
                .iter()
                .filter(|a| a.provider == provider.id)
                .map(|a| a.label.clone())
                .collect();
            let order = crate::routing::account_order(provider, &stored);
            let labels: Vec<&Label> = order.iter().collect();
            (labels.len() > 1).then(|| {
                let pick = super::route::pick_among(
                    provider.strategy,
                    &provider.id,
                    &labels,
                    list,
                    usage,
                    now,
                );
                (provider.id.clone(), provider.strategy, pick)
            })
        })
        .collect()
}

/// `--refresh`: refreshes every token that is due, then asks the usage endpoint of each Codex
/// OAuth account that does not need a new sign-in. Failures are warnings naming the account.
async fn refresh(
    ctx: &Context,
    config: &Config,
    accounts: &Accounts,
) -> anyhow::Result<Vec<(ProviderId, Label, Snapshot)>> {
    let mut endpoints: BTreeMap<ProviderId, Option<UsageEndpoint>> = BTreeMap::new();
    let mut fetched = Vec::new();
    for info in accounts.list()? {
        let key = CredentialKey::new(info.provider.clone(), info.label.clone());
        let access = match accounts.access(&key).await {
            Ok(access) => access,
            Err(AuthError::NeedsLogin { .. }) => continue,
            Err(e) => {
                ctx.printer.warn(format!("{e:#}"));
                continue;
            }
        };
        let Some(provider) = config
            .providers
            .get(&info.provider)
            .filter(|p| matches!(p.kind, ProviderKind::OpenaiCodex { .. }))
        else {
            continue;
        };
        if info.kind != CredentialKind::Oauth.as_str() {
            continue;
        }
        let endpoint = endpoints.entry(provider.id.clone()).or_insert_with(|| {
            match UsageEndpoint::new(provider) {
                Ok(endpoint) => Some(endpoint),
                Err(e) => {
                    ctx.printer
                        .warn(format!("cannot ask {} for quota: {e}", provider.id));
                    None
                }
            }
        });
        let Some(endpoint) = endpoint.as_ref() else {
            continue;
        };
        match endpoint.fetch(&access, unix_now()).await {
            Ok(snapshot) => fetched.push((info.provider, info.label, snapshot)),
            Err(e) => ctx.printer.warn(format!(
                "cannot refresh the quota of {}:{}: {e}; showing the last saved quota",
                info.provider, info.label
            )),
        }
    }
    Ok(fetched)
}

/// The human table.
fn table(list: &[AccountInfo], usage: &UsageFile, now: i64) -> String {
    let header = [
        "PROVIDER", "LABEL", "EMAIL", "PLAN", "ACCOUNT", "EXPIRES", "SOURCE", "STORE", "STATUS",
        "QUOTA",
    ];
    let dash = || "-".to_owned();
    let rows: Vec<[String; 10]> = list
        .iter()
        .map(|a| {
            [
                a.provider.to_string(),
                a.label.to_string(),
                a.email.clone().unwrap_or_else(dash),
                a.plan.clone().unwrap_or_else(dash),
                a.account_id.clone().unwrap_or_else(dash),
                a.expires_at.map_or_else(dash, |t| relative(t, now)),
                a.source.to_owned(),
                a.store.to_string(),
                if a.needs_login.is_some() {
                    "needs login".to_owned()
                } else {
                    "ok".to_owned()
                },
                usage
                    .get(&a.provider, &a.label)
                    .map_or_else(dash, |u| quota_text(u, now)),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = vec![line(header.to_vec())];
    for row in &rows {
        out.push(line(row.iter().map(String::as_str).collect()));
    }
    let reasons: Vec<String> = list
        .iter()
        .filter_map(|a| {
            a.needs_login.as_ref().map(|r| {
                format!(
                    "{}:{} needs `bitrouter login {} --label {}`: {r}",
                    a.provider, a.label, a.provider, a.label
                )
            })
        })
        .collect();
    if !reasons.is_empty() {
        out.push(String::new());
        out.extend(reasons);
    }
    out.join("\n")
}

/// `in 9d`, `in 3h`, `in 12m`, `expired 2h ago`.
pub(crate) fn relative(at: i64, now: i64) -> String {
    let delta = at - now;
    let span = |s: i64| {
        let s = s.abs();
        if s >= 86_400 {
            format!("{}d", s / 86_400)
        } else if s >= 3_600 {
            format!("{}h", s / 3_600)
        } else if s >= 60 {
            format!("{}m", s / 60)
        } else {
            format!("{s}s")
        }
    };
    if delta >= 0 {
        format!("in {}", span(delta))
    } else {
        format!("expired {} ago", span(delta))
    }
}

/// Percent left of a window, from the percent used.
fn left(used: Option<f64>) -> Option<f64> {
    used.map(|u| (100.0 - u).clamp(0.0, 100.0))
}

/// The quota as JSON: remaining shares, resets and any cooldown.
fn quota_json(u: &AccountUsage, now: i64) -> serde_json::Value {
    serde_json::json!({
        "primary_left_percent": left(u.primary_used_percent),
        "primary_window_minutes": u.primary_window_minutes,
        "primary_reset_at": u.primary_reset_at,
        "secondary_left_percent": left(u.secondary_used_percent),
        "secondary_window_minutes": u.secondary_window_minutes,
        "secondary_reset_at": u.secondary_reset_at,
        "cooling_until": u.cooling_until.filter(|_| u.is_cooling(now)),
        "source": u.quota_source,
        "checked_at": u.quota_checked_at,
        "updated_at": u.updated_at,
    })
}

/// `5h 62% left, week 80% left`, or `cooling down, resets in 2h`.
fn quota_text(u: &AccountUsage, now: i64) -> String {
    if let Some(until) = u.cooling_until.filter(|_| u.is_cooling(now)) {
        return format!("cooling down, resets {}", relative(until, now));
    }
    let window = |minutes: Option<i64>| match minutes {
        Some(300) => "5h".to_owned(),
        Some(10_080) => "week".to_owned(),
        Some(m) if m % 60 == 0 => format!("{}h", m / 60),
        Some(m) => format!("{m}m"),
        None => "window".to_owned(),
    };
    let parts: Vec<String> = [
        (u.primary_used_percent, u.primary_window_minutes),
        (u.secondary_used_percent, u.secondary_window_minutes),
    ]
    .into_iter()
    .filter_map(|(used, minutes)| left(used).map(|l| format!("{} {l:.0}% left", window(minutes))))
    .collect();
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times() {
        assert_eq!(relative(100 + 9 * 86_400 + 5, 100), "in 9d");
        assert_eq!(relative(100 + 3 * 3_600, 100), "in 3h");
        assert_eq!(relative(100 - 7_200, 100), "expired 2h ago");
        assert_eq!(relative(100, 100), "in 0s");
    }
}
