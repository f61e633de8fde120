//! `bitrouter run <client> [args...]` and `bitrouter run -- <command> [args...]`: find the local
//! server or start one in the background, then replace this process with the client, set up for
//! that one process only (environment variables, or the Codex CLI's `-c` overrides; no client
//! file and no shell is changed). Replacing the process (exec) gives the client the terminal,
//! Ctrl-C and the exit status as if it had been started directly, at no cost while it runs.

use std::ffi::OsString;

use secrecy::ExposeSecret;

use crate::cli::{Client, RunArgs};
use crate::commands::Context;
use crate::commands::connect::models_of;
use crate::config::{AuthMode, Config};
use crate::daemon::detach::StartOptions;
use crate::daemon::ensure::{self, Found};
use crate::error::{Failure, UsageError};
use crate::paths;
use crate::setup::{self, Setup, Target, Value};

/// Runs the command. On success it does not return: the process becomes the client.
pub async fn run(ctx: &Context, args: &RunArgs) -> anyhow::Result<()> {
    let config = ctx.load_config()?;
    let (setup, program, client_args, what) = plan(args)?;
    let found = find_or_start(ctx, &config).await?;
    let target = Target {
        addr: found.addr,
        needs_key: config.server.api_key.is_some(),
    };
    let setup = match setup {
        Planned::Client(client) => setup::describe(client, &target, &models_of(&args.models)),
        Planned::Generic => setup::generic(&target),
    };
    let mut command = std::process::Command::new(&program);
    command.args(&setup.args).args(client_args);
    apply_env(&mut command, &setup, &config);
    Err(exec(command, &program, what))
}

/// What `run` was asked to start.
enum Planned {
    Client(Client),
    Generic,
}

/// The client (or command), its program and its arguments. A first word that names a client
/// is that client; anything else is a command run with the generic setup.
fn plan(args: &RunArgs) -> anyhow::Result<(Planned, OsString, &[OsString], What)> {
    let Some((first, rest)) = args.argv.split_first() else {
        return Err(UsageError::new(
            "name a client or a command",
            "`bitrouter run claude`, or `bitrouter run -- <command> [args...]`",
        )
        .into());
    };
    let client = first
        .to_str()
        .and_then(|name| <Client as clap::ValueEnum>::from_str(name, false).ok());
    if let Some(client) = client {
        let info = setup::info(client);
        return Ok((
            Planned::Client(client),
            info.program.into(),
            rest,
            What::Client(info),
        ));
    }
    Ok((Planned::Generic, first.clone(), rest, What::Command))
}

/// For the not-installed message.
enum What {
    Client(setup::ClientInfo),
    Command,
}

/// The running server, or a new one in the background (said on stderr).
async fn find_or_start(ctx: &Context, config: &Config) -> anyhow::Result<Found> {
    let state_dir = paths::state_dir(&ctx.env).ok_or_else(|| {
        UsageError::new(
            "no state directory for the background server",
            "set XDG_STATE_HOME or HOME",
        )
    })?;
    let options = StartOptions {
        state_dir: state_dir.clone(),
        config: ctx
            .config_location
            .is_explicit()
            .then(|| ctx.config_location.path().cloned())
            .flatten(),
        listen: None,
        exe: None,
    };
    if let Some(found) = ensure::find(&state_dir, config.server.listen).await? {
        warn_if_stale(ctx, &found);
        return Ok(found);
    }
    // Only a new server needs a signed-in account to be worth starting.
    check_signed_in(ctx, config)?;
    let found = ensure::find_or_start(config.server.listen, &options).await?;
    if found.started {
        ctx.printer.info(format!(
            "bitrouter: started the server in the background (pid {}, http://{}); `bitrouter stop` stops it",
            found.health.pid.unwrap_or(0),
            found.addr
        ));
    } else {
        warn_if_stale(ctx, &found);
    }
    Ok(found)
}

/// Warns when the running server is older than this binary (an upgrade since it started).
fn warn_if_stale(ctx: &Context, found: &Found) {
    if let Some(reason) = crate::daemon::staleness(&found.health) {
        ctx.printer.warn(format!(
            "the running server {reason}; restart it to use this version: `bitrouter stop && bitrouter serve --detach`"
        ));
    }
}

/// Fails when no provider could serve a request: nothing signed in, no key configured.
fn check_signed_in(ctx: &Context, config: &Config) -> anyhow::Result<()> {
    let needs_credential = config
        .providers
        .values()
        .all(|p| p.auth_mode == AuthMode::Override && p.api_key.is_none());
    if !needs_credential {
        return Ok(());
    }
    let store = super::open_store(ctx, config)?;
    let usable = store.list()?.iter().any(|s| {
        s.credential.needs_login.is_none()
            && config.providers.contains_key(&s.credential.key.provider)
    });
    if usable {
        return Ok(());
    }
    Err(Failure::new(
        "no account is signed in, so the server could not answer any request",
        "sign in first: `bitrouter login openai-codex` (or `--import` to share the Codex CLI's session)",
    )
    .into())
}

/// Sets the setup's environment on the child, with the local key where the setup asks for it.
fn apply_env(command: &mut std::process::Command, setup: &Setup, config: &Config) {
    for name in &setup.unset {
        command.env_remove(name);
    }
    for (name, value) in &setup.env {
        match value {
            Value::Text(text) => {
                command.env(name, text);
            }
            Value::LocalKey => {
                if let Some(key) = &config.server.api_key {
                    command.env(name, key.expose_secret());
                }
            }
        }
    }
}

/// Replaces this process with `command`; returns only on failure.
fn exec(mut command: std::process::Command, program: &OsString, what: What) -> anyhow::Error {
    #[cfg(unix)]
    let error = {
        use std::os::unix::process::CommandExt as _;
        command.exec()
    };
    #[cfg(not(unix))]
    let error = match command.status() {
        Ok(status) => std::process::exit(status.code().unwrap_or(1)),
        Err(e) => e,
    };
    let name = program.to_string_lossy();
    if error.kind() == std::io::ErrorKind::NotFound {
        return match what {
            What::Client(info) => Failure::new(
                format!("{} (`{name}`) is not installed, or not on PATH", info.name),
                format!("install it: {}", info.install),
            ),
            What::Command => Failure::new(
                format!("`{name}` was not found on PATH"),
                "check the command's name, or give its full path",
            ),
        }
        .into();
    }
    Failure::new(
        format!("cannot start `{name}`: {error}"),
        "check that it is an executable program",
    )
    .into()
}
