//! `bitrouter doctor`: one report a user can paste into a bug report: version and platform, the
//! config file and its problems, each account's state, the background server and whether it
//! answers, the listen port, each known command-line client on PATH with its version, and what to
//! do about each problem found. No secret appears in it (it shows no token, no key, no email
//! beyond what `status` shows). Exit status 0 when all is well, 1 otherwise.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::auth::{Accounts, unix_now};
use crate::cli::Client;
use crate::commands::Context;
use crate::config::Config;
use crate::daemon::{self, Probe, ServerState};
use crate::error::Failure;
use crate::paths;
use crate::quota::file as usage;
use crate::setup;

/// How long one client's `--version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// One problem and what to do about it.
struct Problem {
    what: String,
    fix: String,
}

/// Runs the command.
pub async fn run(ctx: &Context) -> anyhow::Result<()> {
    let mut out = String::new();
    let mut problems: Vec<Problem> = Vec::new();
    let now = unix_now();
    let _ = writeln!(
        out,
        "bitrouter {} ({} {})",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH
    );

    let config = config_section(ctx, &mut out, &mut problems);
    if let Some(config) = &config {
        accounts_section(ctx, config, now, &mut out, &mut problems);
    }
    server_section(ctx, config.as_ref(), now, &mut out, &mut problems).await;
    clients_section(ctx, &mut out).await;

    out.push('\n');
    if problems.is_empty() {
        out.push_str("no problems found\n");
    } else {
        let _ = writeln!(out, "problems:");
        for p in &problems {
            let _ = writeln!(out, "  - {}\n    fix: {}", p.what, p.fix);
        }
    }
    ctx.printer.data(&out)?;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(
            format!("doctor found {} problem(s)", problems.len()),
            "each problem above says what to do",
        )
        .into())
    }
}

fn config_section(ctx: &Context, out: &mut String, problems: &mut Vec<Problem>) -> Option<Config> {
    let shown = ctx.config_location.path().map_or_else(
        || "(no location: HOME is unset)".to_owned(),
        |p| p.display().to_string(),
    );
    match ctx.load_config() {
        Ok(config) => {
            let state = if config.source.is_some() {
                "ok"
            } else {
                "not present: built-in defaults"
            };
            let _ = writeln!(out, "config: {shown} ({state})");
            Some(config)
        }
        Err(e) => {
            let _ = writeln!(out, "config: {shown} (invalid)");
            problems.push(Problem {
                what: format!("the config does not load: {e}"),
                fix: "fix the key named above (`bitrouter serve` and `run` refuse to start until then); the README lists every key".to_owned(),
            });
            None
        }
    }
}

fn accounts_section(
    ctx: &Context,
    config: &Config,
    now: i64,
    out: &mut String,
    problems: &mut Vec<Problem>,
) {
    let _ = writeln!(out, "accounts:");
    let list = crate::store::open(config.store, &ctx.env)
        .map_err(anyhow::Error::from)
        .and_then(|store| Ok(Accounts::with_store(config, store)?.list()?));
    let list = match list {
        Ok(list) => list,
        Err(e) => {
            let _ = writeln!(out, "  unreadable: {e:#}");
            problems.push(Problem {
                what: format!("the credential store cannot be read: {e:#}"),
                fix: crate::error::classify(&e)
                    .hint
                    .unwrap_or_else(|| "check `store:` in the config".to_owned()),
            });
            return;
        }
    };
    let usage = paths::data_dir(&ctx.env)
        .and_then(|dir| usage::load(&dir).ok())
        .unwrap_or_default();
    let mut usable = 0;
    for a in &list {
        let state = if let Some(reason) = &a.needs_login {
            problems.push(Problem {
                what: format!("{}@{} needs a new sign-in: {reason}", a.provider, a.label),
                fix: format!("`bitrouter login {} --label {}`", a.provider, a.label),
            });
            "needs login".to_owned()
        } else if let Some(until) = usage
            .get(&a.provider, &a.label)
            .and_then(|u| u.cooling_until.filter(|_| u.is_cooling(now)))
        {
            usable += 1;
            format!(
                "cooling down after a usage limit, resets {}",
                super::status::relative(until, now)
            )
        } else {
            usable += 1;
            let expires = a.expires_at.map_or_else(String::new, |t| {
                if t > now {
                    format!(", token expires {}", super::status::relative(t, now))
                } else {
                    format!(
                        ", token {} (refreshed when next used)",
                        super::status::relative(t, now)
                    )
                }
            });
            format!(
                "signed in ({}, plan {}){expires}",
                a.source,
                a.plan.as_deref().unwrap_or("-")
            )
        };
        let _ = writeln!(out, "  {}@{}: {state}", a.provider, a.label);
    }
    let keyed = config
        .providers
        .values()
        .any(|p| p.api_key.is_some() || p.auth_mode != crate::config::AuthMode::Override);
    if list.is_empty() {
        let _ = writeln!(out, "  none signed in");
    }
    if usable == 0 && !keyed {
        problems.push(Problem {
            what: "no account is signed in: every request will fail".to_owned(),
            fix: "`bitrouter login openai-codex` (or `bitrouter login openai-codex --import` to share the Codex CLI's session)".to_owned(),
        });
    }
}

async fn server_section(
    ctx: &Context,
    config: Option<&Config>,
    now: i64,
    out: &mut String,
    problems: &mut Vec<Problem>,
) {
    let Some(state_dir) = paths::state_dir(&ctx.env) else {
        let _ = writeln!(out, "server: unknown (no state directory)");
        problems.push(Problem {
            what: "no state directory for the background server".to_owned(),
            fix: "set XDG_STATE_HOME or HOME".to_owned(),
        });
        return;
    };
    let state = daemon::server_state(&state_dir).await;
    let _ = writeln!(out, "server: {}", state.text(now));
    let _ = writeln!(out, "state directory: {}", state_dir.display());
    match &state {
        ServerState::Running { health: None, record } => problems.push(Problem {
            what: format!("the server (pid {}) holds its lock but does not answer", record.pid),
            fix: format!(
                "restart it: `bitrouter stop && bitrouter serve --detach`; its log is {}",
                daemon::log::path_in(&state_dir).display()
            ),
        }),
        ServerState::Running { health: Some(h), .. } => {
            if let Some(reason) = daemon::staleness(h) {
                problems.push(Problem {
                    what: format!("the running server {reason}"),
                    fix: "restart it: `bitrouter stop && bitrouter serve --detach`".to_owned(),
                });
            }
        }
        ServerState::Stopped => problems.push(Problem {
            what: "no server runs: clients set up with `bitrouter connect` cannot reach bitrouter".to_owned(),
            fix: "`bitrouter serve --detach` (or `bitrouter service install` to start it at login); `bitrouter run <client>` starts one on demand".to_owned(),
        }),
    }
    let Some(config) = config else { return };
    let listen = config.server.listen;
    let own = matches!(&state, ServerState::Running { record, .. } if record.listen == listen);
    if listen.port() == 0 || own {
        return;
    }
    let answer = daemon::probe::health(daemon::connect_addr(listen), daemon::probe::TIMEOUT).await;
    let port = match answer {
        Probe::Nothing => "free".to_owned(),
        Probe::Bitrouter(h) => format!(
            "served by another bitrouter (pid {}, version {})",
            h.pid.map_or_else(|| "?".to_owned(), |p| p.to_string()),
            h.version
        ),
        Probe::Other(what) => {
            problems.push(Problem {
                what: format!("{listen} is held by a program that is not bitrouter ({what})"),
                fix: "stop that program, or set another port in bitrouter.yaml (server.listen)"
                    .to_owned(),
            });
            format!("held by another program ({what})")
        }
    };
    let _ = writeln!(out, "port {listen}: {port}");
}

async fn clients_section(ctx: &Context, out: &mut String) {
    let _ = writeln!(out, "clients:");
    let found: Vec<(Client, Option<PathBuf>)> = Client::ALL
        .iter()
        .filter(|c| setup::info(**c).is_cli)
        .map(|c| (*c, find_on_path(ctx, setup::info(*c).program)))
        .collect();
    let versions = futures_util::future::join_all(found.iter().map(|(_, path)| async move {
        match path {
            Some(path) => version_of(path).await,
            None => None,
        }
    }))
    .await;
    for ((client, path), version) in found.iter().zip(versions) {
        let info = setup::info(*client);
        let line = match path {
            Some(path) => format!(
                "{} ({})",
                path.display(),
                version.unwrap_or_else(|| "version unknown".to_owned())
            ),
            None => format!("not found (install: {})", info.install),
        };
        let _ = writeln!(out, "  {:<9} {line}", info.program);
    }
}

/// The first executable file named `program` on PATH.
fn find_on_path(ctx: &Context, program: &str) -> Option<PathBuf> {
    let path = ctx.env.get(crate::env::PATH)?;
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &std::path::Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

/// The first line a program prints for `--version`, within a time limit.
async fn version_of(path: &std::path::Path) -> Option<String> {
    let child = tokio::process::Command::new(path)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(VERSION_TIMEOUT, child)
        .await
        .ok()?
        .ok()?;
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| l.chars().take(80).collect())
}
