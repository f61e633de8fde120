//! `bitrouter logout <provider> [--label L | --all]`: removes exactly that label (or every
//! label of the provider) from the store, revokes our own sign-ins upstream (best effort), and
//! says what was removed and from where. A credential linked to the Codex CLI is only unlinked:
//! the Codex session itself is left alone.

use anyhow::Context as _;

use super::Context;
use super::open_store;
use crate::auth::http_client;
use crate::auth::oauth::OAuthClient;
use crate::cli::LogoutArgs;
use crate::error::Failure;
use crate::ids::Label;
use crate::store::{CredentialKind, Source};

/// Runs the command.
pub async fn run(ctx: &Context, args: &LogoutArgs) -> anyhow::Result<()> {
    let config = ctx.load_config()?;
    let store = open_store(ctx, &config)?;
    let stored: Vec<_> = store
        .list()?
        .into_iter()
        .filter(|s| s.credential.key.provider == args.provider)
        .collect();
    let label = args.label.clone().unwrap_or_else(Label::default_label);
    let targets: Vec<_> = stored
        .iter()
        .filter(|s| args.all || s.credential.key.label == label)
        .cloned()
        .collect();
    if targets.is_empty() {
        let have: Vec<String> = stored
            .iter()
            .map(|s| s.credential.key.label.to_string())
            .collect();
        let what = if args.all {
            format!("no stored credentials for {}", args.provider)
        } else {
            format!("not logged in to {} with label {label}", args.provider)
        };
        let hint = if have.is_empty() {
            "`bitrouter status` lists the stored accounts".to_owned()
        } else {
            format!("stored labels for {}: {}", args.provider, have.join(", "))
        };
        return Err(Failure::new(what, hint).into());
    }

    let lock = store.lock()?;
    let mut removed = Vec::new();
    for target in &targets {
        if let Some(from) = store.delete(&lock, &target.credential.key)? {
            removed.push((target.credential.clone(), from));
        }
    }
    drop(lock);

    let issuer = config
        .provider(&args.provider)
        .and_then(|p| p.oauth())
        .map(|o| o.issuer.clone());
    for (credential, from) in &removed {
        if credential.kind == CredentialKind::Oauth
            && credential.source == Source::Login
            && let Some(issuer) = &issuer
        {
            let client = OAuthClient::new(
                issuer.clone(),
                http_client().context("cannot create the HTTP client")?,
            );
            client.revoke(credential).await;
        }
        let note = if credential.source.is_codex_link() {
            " (unlinked; the Codex CLI session itself is untouched)"
        } else {
            ""
        };
        ctx.printer.info(format!(
            "Logged out of {} (label {}), removed from {}{note}",
            credential.key.provider,
            credential.key.label,
            store.describe(*from)
        ));
    }
    Ok(())
}
