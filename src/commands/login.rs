//! `bitrouter login <provider>`: the browser (PKCE + loopback) or device-code sign-in for
//! `openai-codex`, an API key from stdin for configured key providers; the credential is saved
//! under its label and the one success line says who signed in and where it was stored.

use super::open_store;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use secrecy::SecretString;
use tokio::sync::mpsc;

use super::Context;
use crate::auth::browser;
use crate::auth::callback::{self, CallbackServer, FALLBACK_PORT};
use crate::auth::codex::{self, CodexHome};
use crate::auth::oauth::{self, OAuthClient};
use crate::auth::pkce::Pkce;
use crate::auth::{LoginError, device, http_client, unix_now};
use crate::cli::LoginArgs;
use crate::config::{CODEX_CALLBACK_PORT, Config, ProviderConfig};
use crate::env::{self, Env};
use crate::error::UsageError;
use crate::ids::ProviderId;
use crate::store::{self, Credential, CredentialKey, CredentialKind, CredentialStore, Source};

/// Runs the command.
pub async fn run(ctx: &Context, args: &LoginArgs) -> anyhow::Result<()> {
    let config = ctx.load_config()?;
    let provider = provider_config(&config, &args.provider)?;
    let key = CredentialKey::new(args.provider.clone(), args.label.clone());
    if args.api_key_stdin {
        return api_key_login(ctx, &config, provider, key);
    }
    let Some(oauth_config) = provider.oauth() else {
        return Err(UsageError::new(
            format!("`{}` signs in with an API key, not a browser", args.provider),
            format!(
                "pipe the key in: `printf %s \"$KEY\" | bitrouter login {} --api-key-stdin`, or set `api_key` in the config",
                args.provider
            ),
        )
        .into());
    };
    let store = open_store(ctx, &config)?;
    let http = http_client().context("cannot create the HTTP client")?;
    let client = OAuthClient::new(oauth_config.issuer.clone(), http.clone());

    let method = if args.import {
        Method::Import
    } else if args.device_auth {
        Method::Device
    } else if args.no_browser {
        Method::Browser
    } else {
        choose_method(&ctx.env)
    };
    if method == Method::Import {
        let home = CodexHome::from_env(&ctx.env)?;
        let session = home.find()?;
        let credential = codex::linked_credential(key, &home, &session);
        let credential = save_login(store.as_ref(), &client, credential).await?;
        return report_login(ctx, store.as_ref(), &credential);
    }

    let credential = if method == Method::Device {
        let timeout = login_timeout(&ctx.env, device::DEFAULT_TIMEOUT)?;
        let code = device::request_code(&client, &http).await?;
        say(&device::instructions(&code, timeout));
        let tokens = device::complete(&client, &http, &code, timeout).await?;
        let credential = oauth::credential_from_tokens(key, tokens, Source::Login, unix_now());
        save_login(store.as_ref(), &client, credential).await?
    } else {
        let timeout = login_timeout(&ctx.env, callback::DEFAULT_TIMEOUT)?;
        let fallback = (oauth_config.callback_port == CODEX_CALLBACK_PORT).then_some(FALLBACK_PORT);
        let server = CallbackServer::bind(oauth_config.callback_port, fallback).await?;
        let pkce = Pkce::generate();
        let redirect_uri = server.redirect_uri();
        let url = client.authorize_url(&redirect_uri, &pkce.challenge, &pkce.state);
        say(&format!(
            "Sign in to {} in your browser:\n  {url}",
            args.provider
        ));
        let opened = !args.no_browser && browser::open(&url, &ctx.env);
        if args.no_browser {
            say("(Waiting for the browser to come back to this machine.)");
        } else if !opened {
            say(&format!(
                "No browser could be opened here: open the URL above in one, or sign in with a code from any device instead: bitrouter login {} --device-auth",
                args.provider
            ));
        }
        let pasted = (!opened && std::io::stdin().is_terminal()).then(|| {
            say("If the browser cannot reach this machine, paste the URL it ends on (or the code) here:");
            read_lines_from_stdin()
        });
        let verifier = pkce.verifier;
        let store = Arc::clone(&store);
        server
            .run(pkce.state, pasted, timeout, |code| {
                let (client, store, key, redirect_uri, verifier) = (
                    client.clone(),
                    Arc::clone(&store),
                    key.clone(),
                    redirect_uri.clone(),
                    verifier.clone(),
                );
                async move {
                    let tokens = client
                        .exchange_code(&code, &redirect_uri, &verifier)
                        .await
                        .map_err(LoginError::Exchange)?;
                    let credential =
                        oauth::credential_from_tokens(key, tokens, Source::Login, unix_now());
                    let saved = save_login(store.as_ref(), &client, credential).await?;
                    let message = match &saved.email {
                        Some(email) => format!("Signed in as {email}."),
                        None => "Signed in.".to_owned(),
                    };
                    Ok((saved, message))
                }
            })
            .await?
    };
    report_login(ctx, store.as_ref(), &credential)
}

/// How to sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Browser,
    Import,
    Device,
}

/// Without flags, on a terminal, with a Codex CLI session present: ask. Otherwise the browser.
fn choose_method(env: &Env) -> Method {
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Method::Browser;
    }
    let Ok(home) = CodexHome::from_env(env) else {
        return Method::Browser;
    };
    let Ok(session) = home.find() else {
        return Method::Browser;
    };
    let who = session
        .id_claims()
        .email
        .unwrap_or_else(|| "a ChatGPT account".to_owned());
    say(&format!(
        "The Codex CLI is signed in as {who} ({}). How do you want to sign in?\n  \
         1) sign in with the browser (a separate session for bitrouter)\n  \
         2) share the Codex CLI session\n  \
         3) sign in with a device code\nChoice [1]: ",
        session.location.describe()
    ));
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return Method::Browser;
    }
    match line.trim() {
        "2" => Method::Import,
        "3" => Method::Device,
        _ => Method::Browser,
    }
}

/// Saves a fresh login under its label; when it replaces an older sign-in of ours with another
/// refresh token, that one is revoked (best effort), as the Codex CLI does.
async fn save_login(
    store: &dyn CredentialStore,
    client: &OAuthClient,
    credential: Credential,
) -> Result<Credential, LoginError> {
    let previous = (|| {
        let lock = store.lock()?;
        let previous = store.load(&credential.key)?;
        store.save(&lock, &credential)?;
        Ok::<_, store::StoreError>(previous)
    })()
    .map_err(LoginError::Save)?;
    if let Some(previous) = previous.map(|s| s.credential)
        && previous.source == Source::Login
        && previous.kind == CredentialKind::Oauth
        && !previous.same_tokens(&credential)
    {
        client.revoke(&previous).await;
    }
    Ok(credential)
}

fn report_login(
    ctx: &Context,
    store: &dyn CredentialStore,
    credential: &Credential,
) -> anyhow::Result<()> {
    let where_ = store
        .load(&credential.key)?
        .map_or_else(String::new, |s| store.describe(s.store));
    let who = credential
        .email
        .clone()
        .or_else(|| credential.account_id.clone())
        .unwrap_or_else(|| "an unnamed account".to_owned());
    let plan = credential
        .plan
        .as_ref()
        .map_or_else(String::new, |p| format!(", plan {p}"));
    let linked = match (&credential.codex_home, credential.source.is_codex_link()) {
        (Some(dir), true) => format!(
            ", linked to the Codex CLI session in {}",
            CodexHome::at(dir.clone())
                .location(credential.source)
                .describe()
        ),
        _ => String::new(),
    };
    ctx.printer.info(format!(
        "Logged in to {} as {who} (label {}{plan}){linked}, stored in {where_}",
        credential.key.provider, credential.key.label
    ));
    Ok(())
}

fn api_key_login(
    ctx: &Context,
    config: &Config,
    provider: &ProviderConfig,
    key: CredentialKey,
) -> anyhow::Result<()> {
    if provider.oauth().is_some() {
        return Err(UsageError::new(
            format!("`{}` signs in with OAuth, not an API key", key.provider),
            format!("run `bitrouter login {}`", key.provider),
        )
        .into());
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the API key from standard input")?;
    let api_key = line.trim();
    if api_key.is_empty() {
        return Err(UsageError::new(
            "no API key on standard input",
            format!(
                "pipe the key in: `printf %s \"$KEY\" | bitrouter login {} --api-key-stdin`",
                key.provider
            ),
        )
        .into());
    }
    let store = open_store(ctx, config)?;
    let credential = Credential {
        key,
        kind: CredentialKind::ApiKey,
        access_token: Arc::new(SecretString::from(api_key.to_owned())),
        refresh_token: None,
        id_token: None,
        expires_at: None,
        account_id: None,
        email: None,
        plan: None,
        last_refresh: Some(unix_now()),
        source: Source::ApiKey,
        needs_login: None,
        codex_home: None,
    };
    let lock = store.lock()?;
    let saved = store.save(&lock, &credential)?;
    drop(lock);
    ctx.printer.info(format!(
        "Stored an API key for {} (label {}) in {}",
        credential.key.provider,
        credential.key.label,
        store.describe(saved)
    ));
    Ok(())
}

/// The configured provider, or a usage error listing the known ones.
pub(crate) fn provider_config<'c>(
    config: &'c Config,
    id: &ProviderId,
) -> Result<&'c ProviderConfig, UsageError> {
    config.provider(id).ok_or_else(|| {
        UsageError::new(
            format!("unknown provider `{id}`"),
            format!(
                "known providers: {} (add others under `providers:` in {})",
                config.provider_names(),
                config.source_display()
            ),
        )
    })
}

/// `$BITROUTER_LOGIN_TIMEOUT` seconds, else `default`.
fn login_timeout(env: &Env, default: Duration) -> Result<Duration, UsageError> {
    let Some(value) = env
        .get(env::BITROUTER_LOGIN_TIMEOUT)
        .filter(|v| !v.is_empty())
    else {
        return Ok(default);
    };
    value
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            UsageError::new(
                format!(
                    "{} is not a positive number of seconds: `{value}`",
                    env::BITROUTER_LOGIN_TIMEOUT
                ),
                format!(
                    "unset {} or give it seconds, e.g. 300",
                    env::BITROUTER_LOGIN_TIMEOUT
                ),
            )
        })
}

/// Lines typed on the terminal, read on a plain thread (a blocked read must not keep the async
/// runtime from shutting down when the browser completes the login first).
fn read_lines_from_stdin() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(4);
    let spawned = std::thread::Builder::new()
        .name("bitrouter-paste".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
    if let Err(e) = spawned {
        tracing::debug!(error = %e, "cannot read pasted input");
    }
    rx
}

/// A line the user must see even with `--quiet` (URLs, codes, the outcome).
fn say(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}
