//! `bitrouter serve`: resolve the listen address (`--listen` over `server.listen`), refuse a
//! non-loopback one without `server.api_key`, bind, print where to point clients, and serve until
//! Ctrl-C or SIGTERM; meanwhile reload the config on change and persist account usage.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::auth::Accounts;
use crate::cli::ServeArgs;
use crate::commands::Context;
use crate::config::{Config, ProviderKind};
use crate::error::{Failure, UsageError};
use crate::paths;
use crate::server::accounts::AccountBook;
use crate::server::credentials::Credentials;
use crate::server::reload::{self, ReloadSource};
use crate::server::{self, AppState, usage};
use crate::tls::LocalTls;

/// Runs the command with the credentials the binary uses: the account store, which refreshes
/// tokens when they are due and reads the store on every use (a `logout` applies at once).
pub async fn run(ctx: &Context, args: &ServeArgs) -> anyhow::Result<()> {
    let config = ctx.load_config()?;
    let store = super::open_store(ctx, &config)?;
    let accounts = Accounts::with_store(&config, store)?;
    let credentials: Arc<dyn Credentials> = Arc::new(accounts);
    run_with(ctx, args, credentials).await
}

/// Runs the command with these credentials.
pub async fn run_with(
    ctx: &Context,
    args: &ServeArgs,
    credentials: Arc<dyn Credentials>,
) -> anyhow::Result<()> {
    let config = ctx.load_config()?;
    let listen = args.listen.unwrap_or(config.server.listen);
    if !listen.ip().is_loopback() && config.server.api_key.is_none() {
        return Err(UsageError::new(
            format!("`{listen}` is reachable from other machines and server.api_key is not set"),
            "set server.api_key in bitrouter.yaml, or listen on 127.0.0.1",
        )
        .into());
    }
    let data_dir = paths::data_dir(&ctx.env);
    let book = match data_dir.as_deref().map(usage::load) {
        Some(Ok(file)) => AccountBook::from_usage(&file),
        Some(Err(e)) => {
            ctx.printer
                .warn(format!("{e}; starting without saved cooldowns"));
            AccountBook::new()
        }
        None => AccountBook::new(),
    };
    let book = Arc::new(book);

    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        Failure::new(
            format!("cannot listen on {listen}: {e}"),
            "is another bitrouter running? pick another address with --listen",
        )
    })?;
    let local_addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let tls = match data_dir
        .as_deref()
        .map(|d| LocalTls::load_or_create(&d.join("tls")))
    {
        Some(Ok(tls)) => Some(tls),
        Some(Err(e)) => {
            ctx.printer.warn(format!("{e}; serving plain HTTP only"));
            None
        }
        None => None,
    };
    ctx.printer.info(banner(
        &config,
        local_addr,
        credentials.as_ref(),
        tls.as_ref().map(LocalTls::ca_path),
    ));

    let store = config.store;
    let state = Arc::new(AppState::new(config, credentials, book.clone(), local_addr));
    let shutdown = CancellationToken::new();
    tokio::spawn(wait_for_signal(shutdown.clone()));
    tokio::spawn(reload::run(
        state.clone(),
        ReloadSource {
            location: ctx.config_location.clone(),
            env: ctx.env.clone(),
            store,
        },
        shutdown.clone(),
    ));
    let writer = data_dir.map(|dir| tokio::spawn(usage::run_writer(book, dir, shutdown.clone())));
    server::warm_catalogs(&state);

    let served = server::serve(listener, tls, state, shutdown.clone()).await;
    shutdown.cancel();
    if let Some(writer) = writer {
        let _ = writer.await;
    }
    served.context("the server stopped")?;
    ctx.printer.info("bitrouter stopped");
    Ok(())
}

/// Cancels `shutdown` on Ctrl-C or SIGTERM.
async fn wait_for_signal(shutdown: CancellationToken) {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
        () = shutdown.cancelled() => return,
    }
    tracing::info!(target: "bitrouter::serve", "shutting down; letting open streams finish");
    shutdown.cancel();
}

/// The start-up text: where it listens (first line, machine-readable), which accounts it will
/// use, and how to point the Codex CLI and the SDKs at it.
fn banner(
    config: &Config,
    addr: SocketAddr,
    credentials: &dyn Credentials,
    ca: Option<&std::path::Path>,
) -> String {
    let url = server::url_of(addr);
    let mut out = format!("listening on {url}\n");
    if let Some(ca) = ca {
        let _ = writeln!(
            out,
            "https on the same port too (local CA: {})",
            ca.display()
        );
    }
    let _ = writeln!(out, "config: {}", config.source_display());
    let _ = writeln!(out, "accounts:");
    for provider in config.providers.values() {
        let labels = credentials
            .labels(&provider.id)
            .map(|l| {
                l.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_else(|e| format!("unreadable ({e})"));
        let mut what = Vec::new();
        if !labels.is_empty() {
            what.push(labels);
        }
        if provider.api_key.is_some() {
            what.push("api_key from config".to_owned());
        }
        let mode = match provider.auth_mode {
            crate::config::AuthMode::Override => "",
            crate::config::AuthMode::Passthrough => " (passthrough: the client's own key first)",
            crate::config::AuthMode::None => " (no credentials)",
        };
        let list = if what.is_empty() {
            match (&provider.kind, provider.auth_mode) {
                (_, crate::config::AuthMode::None | crate::config::AuthMode::Passthrough) => {
                    "-".to_owned()
                }
                (ProviderKind::OpenaiCodex { .. }, _) => format!(
                    "none: run `bitrouter login {}` (requests fail until then)",
                    provider.id
                ),
                (ProviderKind::Generic { .. }, _) => "none: set api_key".to_owned(),
            }
        } else {
            what.join("; ")
        };
        let _ = writeln!(out, "  {}: {list}{mode}", provider.id);
    }
    let env_key = if config.server.api_key.is_some() {
        "env_key = \"BITROUTER_API_KEY\"   # the server.api_key, sent as a bearer\n  "
    } else {
        ""
    };
    let usage = ca.map_or_else(String::new, |ca| {
        let local = if addr.ip().is_unspecified() {
            SocketAddr::from(([127, 0, 0, 1], addr.port()))
        } else {
            addr
        };
        let https = format!("https://{local}");
        format!(
            "  # its /status usage (needs a Codex login of its own): add `requires_openai_auth = true`,\n  # chatgpt_base_url = \"{https}/backend-api/\", and run it with CODEX_CA_CERTIFICATE={}\n",
            ca.display()
        )
    });
    let _ = write!(
        out,
        "\nCodex CLI (~/.codex/config.toml):\n  model_provider = \"bitrouter\"\n  [model_providers.bitrouter]\n  name = \"bitrouter\"\n  base_url = \"{url}/v1\"\n  wire_api = \"responses\"\n  {env_key}# with auth_mode: passthrough, add `requires_openai_auth = true` to send the Codex CLI's own login\n{usage}\nOpenAI SDKs: OPENAI_BASE_URL={url}/v1    Anthropic SDKs: ANTHROPIC_BASE_URL={url}\nCtrl-C stops the server."
    );
    out
}
