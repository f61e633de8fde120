//! `bitrouter status [--json]`: the stored accounts — provider, label, email, plan, account id,
//! expiry, source, store and whether a new sign-in is needed — as a table on stdout, or one
//! JSON document. Never a token.

use super::Context;
use super::open_store;
use crate::auth::{AccountInfo, Accounts, AuthError, unix_now};
use crate::cli::StatusArgs;
use crate::store::CredentialKey;

/// Runs the command.
pub async fn run(ctx: &Context, args: &StatusArgs) -> anyhow::Result<()> {
    let config = ctx.load_config()?;
    let store = open_store(ctx, &config)?;
    let accounts = Accounts::with_store(&config, store)?;
    if args.refresh {
        for info in accounts.list()? {
            let key = CredentialKey::new(info.provider.clone(), info.label.clone());
            match accounts.access(&key).await {
                Ok(_) | Err(AuthError::NeedsLogin { .. }) => {}
                Err(e) => ctx.printer.warn(format!("{e:#}")),
            }
        }
    }
    let list = accounts.list()?;
    if args.json {
        ctx.printer.json(&serde_json::json!({ "accounts": list }))?;
        return Ok(());
    }
    if list.is_empty() {
        ctx.printer
            .info("No stored accounts. Sign in with `bitrouter login openai-codex`.");
        return Ok(());
    }
    ctx.printer.data(&table(&list, unix_now()))?;
    Ok(())
}

/// The human table.
fn table(list: &[AccountInfo], now: i64) -> String {
    let header = [
        "PROVIDER", "LABEL", "EMAIL", "PLAN", "ACCOUNT", "EXPIRES", "SOURCE", "STORE", "STATUS",
    ];
    let dash = || "-".to_owned();
    let rows: Vec<[String; 9]> = list
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
fn relative(at: i64, now: i64) -> String {
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
