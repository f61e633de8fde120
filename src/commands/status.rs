//! `bitrouter status [--json] [--refresh]`: the stored accounts — provider, label, email, plan,
//! account id, expiry, source, store and whether a new sign-in is needed — as a table on stdout,
//! or one JSON document. Never a token. The quota column (remaining share of the 5-hour and
//! weekly windows, and any cooldown after a usage limit) comes from `usage.json`: the latest
//! `x-codex-*` headers a running `serve` saw, or, with `--refresh`, the backend's usage endpoint
//! asked just now (and saved there, and in the request history). A failed refresh is a warning,
//! and the saved quota stays. Below the table, each account's windows are drawn as bars of what
//! is left, with the time until they reset.

use std::collections::BTreeMap;

use super::Context;
use super::open_store;
use crate::auth::{AccountInfo, Accounts, AuthError, unix_now};
use crate::cli::StatusArgs;
use crate::config::{Config, ProviderKind, Strategy};
use crate::history::{self, QuotaRecord};
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
        let keys: Vec<(ProviderId, Label)> = fetched
            .iter()
            .map(|(provider, label, _)| (provider.clone(), label.clone()))
            .collect();
        for (provider, label, snapshot) in fetched {
            book.record_snapshot(&provider, &label, snapshot, QuotaSource::UsageEndpoint, now);
        }
        usage = book.to_usage();
        if let Some(dir) = data_dir.as_deref() {
            if let Err(e) = usage::save(dir, &usage) {
                ctx.printer
                    .warn(format!("{e:#}; the quota read now is not saved"));
            }
            if config.history.enabled {
                let records: Vec<QuotaRecord> = keys
                    .iter()
                    .filter_map(|(provider, label)| usage.get(provider, label))
                    .filter_map(AccountUsage::quota_record)
                    .collect();
                if let Err(e) = history::store::store_quotas(&history::path_in(dir), &records) {
                    ctx.printer
                        .warn(format!("{e:#}; the quota read now is not in the history"));
                }
            }
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
    let meters = bars(&list, &usage, now);
    if !meters.is_empty() {
        text.push_str("\n\n");
        text.push_str(&meters);
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

/// Cells in a quota bar.
const BAR_WIDTH: usize = 20;

/// Each account's quota windows as bars of what is left, with when they reset:
///
/// ```text
/// openai-codex:work (plus)
///   5h    ████████████░░░░░░░░  62% left  resets in 2h 10m
///   week  ████████████████░░░░  80% left  resets in 4d 3h
/// ```
fn bars(list: &[AccountInfo], usage: &UsageFile, now: i64) -> String {
    let mut blocks = Vec::new();
    for a in list {
        let Some(u) = usage.get(&a.provider, &a.label) else {
            continue;
        };
        let windows: Vec<(Option<f64>, Option<i64>, Option<i64>)> = [
            (
                u.primary_used_percent,
                u.primary_window_minutes,
                u.primary_reset_at,
            ),
            (
                u.secondary_used_percent,
                u.secondary_window_minutes,
                u.secondary_reset_at,
            ),
        ]
        .into_iter()
        .filter(|(used, _, _)| used.is_some())
        .collect();
        if windows.is_empty() && !u.is_cooling(now) {
            continue;
        }
        let plan = u
            .plan_type
            .as_deref()
            .map(|p| format!(" ({p})"))
            .unwrap_or_default();
        let mut lines = vec![format!("{}:{}{plan}", a.provider, a.label)];
        if let Some(until) = u.cooling_until.filter(|_| u.is_cooling(now)) {
            lines.push(format!(
                "  cooling down after a usage limit; usable again in {}",
                span(until - now)
            ));
        }
        for (used, minutes, reset_at) in windows {
            let left = left(used).unwrap_or(0.0);
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss,
                reason = "a share of 0..=100 scaled to a few cells"
            )]
            let filled = ((left / 100.0 * BAR_WIDTH as f64).round() as usize).min(BAR_WIDTH);
            let reset = reset_at
                .filter(|t| *t > now)
                .map(|t| format!("  resets in {}", span(t - now)))
                .unwrap_or_default();
            lines.push(format!(
                "  {:<5} {}{}  {left:>3.0}% left{reset}",
                window_name(minutes),
                "█".repeat(filled),
                "░".repeat(BAR_WIDTH - filled),
            ));
        }
        blocks.push(lines.join("\n"));
    }
    blocks.join("\n")
}

/// A duration in its two largest units: `4d 3h`, `2h 10m`, `12m`, `40s`.
fn span(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// `5h`, `week`, `2h`, `90m`.
fn window_name(minutes: Option<i64>) -> String {
    match minutes {
        Some(300) => "5h".to_owned(),
        Some(10_080) => "week".to_owned(),
        Some(m) if m % 60 == 0 => format!("{}h", m / 60),
        Some(m) => format!("{m}m"),
        None => "window".to_owned(),
    }
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
    let window = window_name;
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

    #[test]
    fn spans_show_two_units() {
        assert_eq!(span(4 * 86_400 + 3 * 3_600 + 59), "4d 3h");
        assert_eq!(span(2 * 3_600 + 10 * 60 + 5), "2h 10m");
        assert_eq!(span(3_600), "1h");
        assert_eq!(span(12 * 60), "12m");
        assert_eq!(span(40), "40s");
        assert_eq!(span(-5), "0s");
    }

    #[test]
    fn bars_show_what_is_left_and_the_reset() {
        let info = AccountInfo {
            provider: ProviderId::openai_codex(),
            label: "work".parse().unwrap(),
            kind: "oauth",
            email: None,
            plan: None,
            account_id: None,
            expires_at: None,
            source: "login",
            store: crate::store::StoreName::File,
            needs_login: None,
        };
        let usage = UsageFile {
            version: usage::VERSION,
            accounts: vec![AccountUsage {
                provider: ProviderId::openai_codex(),
                label: "work".parse().unwrap(),
                cooling_until: None,
                primary_used_percent: Some(38.0),
                primary_window_minutes: Some(300),
                primary_reset_at: Some(1_000 + 2 * 3_600 + 600),
                secondary_used_percent: Some(100.0),
                secondary_window_minutes: Some(10_080),
                secondary_reset_at: None,
                plan_type: Some("plus".into()),
                quota_source: None,
                quota_checked_at: None,
                updated_at: 0,
            }],
        };
        assert_eq!(
            bars(&[info], &usage, 1_000),
            "openai-codex:work (plus)\n  5h    ████████████░░░░░░░░   62% left  resets in 2h 10m\n  week  ░░░░░░░░░░░░░░░░░░░░    0% left"
        );
    }
}
