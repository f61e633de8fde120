//! `bitrouter serve`: resolve the listen address (`--listen` over `server.listen`), refuse a
//! non-loopback one without `server.api_key`, take the state directory's serve lock (one server
//! per state directory), bind, record where it listens, print where to point clients, and serve
//! until Ctrl-C or SIGTERM; meanwhile reload the config on change, persist account usage and
//! record the request history.
//! `--detach` starts the same thing in the background instead.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::auth::Accounts;
use crate::cli::ServeArgs;
use crate::commands::Context;
use crate::config::{Config, ProviderKind};
use crate::daemon::detach::{self, StartOptions};
use crate::daemon::record::{self, ServerRecord};
use crate::daemon::{self, lock};
use crate::error::{Failure, UsageError};
use crate::history;
use crate::paths;
use crate::proxy::Proxy;
use crate::quota::{self, AccountBook};
use crate::server::reload::{self, ReloadSource};
use crate::server::{self, AppState};
use crate::tls::LocalTls;
use crate::upstream::credentials::Credentials;

/// How long a stopping server waits for the history writer to store what is queued.
const HISTORY_STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs the command with the credentials the binary uses: the account store, which refreshes
/// tokens when they are due and reads the store on every use (a `logout` applies at once).
pub async fn run(ctx: &Context, args: &ServeArgs) -> anyhow::Result<()> {
    if args.detach {
        return detach(ctx, args).await;
    }
    if args.detached_child {
        detach::become_daemon();
    }
    let config = ctx.load_config()?;
    let store = super::open_store(ctx, &config)?;
    let accounts = Accounts::with_store(&config, store)?;
    let credentials: Arc<dyn Credentials> = Arc::new(accounts);
    run_with(ctx, args, config, credentials).await
}

/// Runs the command with this configuration (loaded once, by the caller) and these credentials.
pub async fn run_with(
    ctx: &Context,
    args: &ServeArgs,
    config: Config,
    credentials: Arc<dyn Credentials>,
) -> anyhow::Result<()> {
    let listen = args.listen.unwrap_or(config.server.listen);
    if !listen.ip().is_loopback() && config.server.api_key.is_none() {
        return Err(UsageError::new(
            format!("`{listen}` is reachable from other machines and server.api_key is not set"),
            "set server.api_key in bitrouter.yaml, or listen on 127.0.0.1",
        )
        .into());
    }
    let state_dir = paths::state_dir(&ctx.env);
    let _serving = match &state_dir {
        Some(dir) => Some(lock::acquire_serve(dir).map_err(|e| lock_error(dir, e))?),
        None => {
            ctx.printer.warn(
                "no state directory (set XDG_STATE_HOME or HOME): `run`, `stop` and `status` will not find this server",
            );
            None
        }
    };
    let data_dir = paths::data_dir(&ctx.env);
    let book = match data_dir.as_deref().map(quota::file::load) {
        Some(Ok(file)) => AccountBook::from_usage(&file),
        Some(Err(e)) => {
            ctx.printer
                .warn(format!("{e}; starting without saved cooldowns"));
            AccountBook::new()
        }
        None => AccountBook::new(),
    };
    let book = Arc::new(book);

    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(e) => return Err(bind_error(listen, e).await),
    };
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
    let log = args
        .detached_child
        .then(|| state_dir.as_deref().map(daemon::log::path_in))
        .flatten();
    if let Some(dir) = &state_dir
        && let Err(e) = record::write(dir, &ServerRecord::of_this_process(local_addr, log.clone()))
    {
        ctx.printer.warn(format!(
            "cannot write {}: {e}; `run`, `stop` and `status` will not find this server",
            dir.join(record::RECORD_FILE).display()
        ));
    }
    // Printed once the signal handlers are in place: a client (or a test) that acts on the
    // banner may signal the server at once.
    let banner = banner(
        &config,
        local_addr,
        credentials.as_ref(),
        tls.as_ref().map(LocalTls::ca_path),
    );

    let store = config.store;
    let (history, history_writer) = history::start(data_dir.as_deref(), &config.history);
    let state = Arc::new(
        AppState::new(
            Proxy::new(config, credentials, book.clone()),
            local_addr,
            tls,
        )
        .with_history(history.clone()),
    );
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
    let writer = data_dir.map(|dir| {
        tokio::spawn(quota::writer::run_writer(
            book,
            dir,
            history,
            shutdown.clone(),
        ))
    });
    if let Some(log) = log {
        tokio::spawn(daemon::log::keep_capped(
            log,
            daemon::log::CAP,
            shutdown.clone(),
        ));
    }
    server::warm_catalogs(&state);
    ctx.printer.info(banner);

    let served = server::serve(listener, state, shutdown.clone()).await;
    shutdown.cancel();
    if let Some(writer) = writer {
        let _ = writer.await;
    }
    if let Some(writer) = history_writer {
        // Off the runtime: a locked database may hold the writer for a while.
        let _ = tokio::task::spawn_blocking(move || writer.stop(HISTORY_STOP_WAIT)).await;
    }
    if let Some(dir) = &state_dir {
        record::remove_own(dir);
    }
    served.context("the server stopped")?;
    ctx.printer.info("bitrouter stopped");
    Ok(())
}

/// `serve --detach`: start the server in the background (unless one runs) and say where.
async fn detach(ctx: &Context, args: &ServeArgs) -> anyhow::Result<()> {
    let config = ctx.load_config()?;
    let state_dir = paths::state_dir(&ctx.env).ok_or_else(|| {
        UsageError::new(
            "no state directory for the background server",
            "set XDG_STATE_HOME or HOME",
        )
    })?;
    let listen = args.listen.unwrap_or(config.server.listen);
    if let Some(found) = daemon::ensure::find(&state_dir, listen).await? {
        ctx.printer.info(format!(
            "bitrouter already runs (pid {}) on http://{}",
            found
                .health
                .pid
                .map_or_else(|| "?".to_owned(), |p| p.to_string()),
            found.addr
        ));
        return Ok(());
    }
    let options = StartOptions {
        state_dir,
        config: ctx
            .config_location
            .is_explicit()
            .then(|| ctx.config_location.path().cloned())
            .flatten(),
        listen: args.listen,
        exe: None,
    };
    let record = detach::start(&options).await?;
    ctx.printer.info(format!(
        "bitrouter runs in the background (pid {}) on {}\nlog: {}\nstop it with `bitrouter stop`",
        record.pid,
        server::url_of(daemon::connect_addr(record.listen)),
        record
            .log
            .as_deref()
            .map_or_else(|| "-".to_owned(), |p| p.display().to_string()),
    ));
    Ok(())
}

/// The error for a serve lock that cannot be taken.
fn lock_error(dir: &std::path::Path, e: lock::LockError) -> anyhow::Error {
    match e {
        lock::LockError::Held { .. } => {
            let running = record::read(dir).map_or_else(String::new, |r| {
                format!(
                    " (pid {}, http://{})",
                    r.pid,
                    daemon::connect_addr(r.listen)
                )
            });
            Failure::new(
                format!("a bitrouter server already runs for this state directory{running}"),
                "use it, or stop it first with `bitrouter stop`",
            )
            .into()
        }
        lock::LockError::Io { .. } => anyhow::Error::new(e).context("cannot start the server"),
    }
}

/// The error for an address that cannot be bound: another bitrouter, another program, or why.
async fn bind_error(listen: SocketAddr, e: std::io::Error) -> anyhow::Error {
    if e.kind() != std::io::ErrorKind::AddrInUse {
        return Failure::new(
            format!("cannot listen on {listen}: {e}"),
            "pick another address with --listen or server.listen",
        )
        .into();
    }
    match daemon::probe::health(daemon::connect_addr(listen), daemon::probe::TIMEOUT).await {
        daemon::Probe::Bitrouter(h) => Failure::new(
            format!(
                "another bitrouter server (pid {}) already listens on {listen}",
                h.pid.map_or_else(|| "?".to_owned(), |p| p.to_string())
            ),
            "use it, stop it (`bitrouter stop` with its XDG_STATE_HOME), or pick another address with --listen",
        )
        .into(),
        daemon::Probe::Other(what) => daemon::ensure::port_held(listen, &what).into(),
        daemon::Probe::Nothing => Failure::new(
            format!("cannot listen on {listen}: {e}"),
            "pick another address with --listen or server.listen",
        )
        .into(),
    }
}

/// Cancels `shutdown` on Ctrl-C or SIGTERM. On Unix the handlers are in place when this returns,
/// before the future first runs: a signal that comes as soon as the server answers stops it
/// gracefully instead of ending it the signal's default way.
fn wait_for_signal(shutdown: CancellationToken) -> impl Future<Output = ()> {
    #[cfg(unix)]
    let (mut interrupt, mut terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        let stop = async {
            tokio::select! {
                () = next_signal(&mut interrupt) => {}
                () = next_signal(&mut terminate) => {}
            }
        };
        #[cfg(not(unix))]
        let stop = async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = stop => {}
            () = shutdown.cancelled() => return,
        }
        tracing::info!(target: "bitrouter::serve", "shutting down; letting open streams finish");
        shutdown.cancel();
    }
}

/// The next delivery of `signal` (never, if it could not be set up).
#[cfg(unix)]
async fn next_signal(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
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
    let _ = writeln!(out, "dashboard: {url}/");
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
