//! `bitrouter service install|uninstall|status`: write, enable and remove the service definition
//! that starts `bitrouter serve` at login (a systemd user unit on Linux, a launchd agent on
//! macOS), through the service manager's own command (`systemctl --user`, `launchctl`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cli::ServiceAction;
use crate::commands::Context;
use crate::error::{Failure, UsageError};
use crate::paths;
use crate::service::{ServiceSpec, launchd, systemd};

/// Which service manager this platform has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Manager {
    Systemd,
    Launchd,
}

impl Manager {
    fn of_platform() -> anyhow::Result<Manager> {
        if cfg!(target_os = "macos") {
            Ok(Manager::Launchd)
        } else if cfg!(target_os = "linux") {
            Ok(Manager::Systemd)
        } else {
            Err(UsageError::new(
                "`bitrouter service` supports systemd (Linux) and launchd (macOS) only",
                "start `bitrouter serve --detach` from your login scripts instead",
            )
            .into())
        }
    }

    fn path(self, ctx: &Context) -> anyhow::Result<PathBuf> {
        let path = match self {
            Manager::Systemd => systemd::unit_path(&ctx.env),
            Manager::Launchd => launchd::plist_path(&ctx.env),
        };
        path.ok_or_else(|| UsageError::new("cannot find the home directory", "set HOME").into())
    }
}

/// Runs the command.
pub async fn run(ctx: &Context, action: ServiceAction) -> anyhow::Result<()> {
    let manager = Manager::of_platform()?;
    let path = manager.path(ctx)?;
    match action {
        ServiceAction::Install => install(ctx, manager, &path).await,
        ServiceAction::Uninstall => uninstall(ctx, manager, &path),
        ServiceAction::Status => status(ctx, manager, &path),
    }
}

async fn install(ctx: &Context, manager: Manager, path: &Path) -> anyhow::Result<()> {
    // Validate the config now: a service that fails at every start helps no one.
    ctx.load_config()?;
    let exe = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .map_err(|e| {
            Failure::new(
                format!("cannot find this program's path: {e}"),
                "run bitrouter by its full path",
            )
        })?;
    let config = if ctx.config_location.is_explicit() {
        ctx.config_location
            .path()
            .map(std::path::absolute)
            .transpose()?
    } else {
        None
    };
    let state_dir = paths::state_dir(&ctx.env);
    let log = state_dir.as_deref().map(crate::daemon::log::path_in);
    let spec = ServiceSpec::new(&exe, config.as_deref(), &ctx.env, log);
    let text = match manager {
        Manager::Systemd => systemd::unit(&spec),
        Manager::Launchd => launchd::plist(&spec),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            Failure::new(
                format!("cannot create {}: {e}", dir.display()),
                "check its permissions",
            )
        })?;
    }
    if let Some(dir) = &state_dir {
        crate::daemon::lock::ensure_dir(dir)?;
    }
    std::fs::write(path, text).map_err(|e| {
        Failure::new(
            format!("cannot write {}: {e}", path.display()),
            "check its permissions",
        )
    })?;
    ctx.printer.info(format!("wrote {}", path.display()));
    // The service's server needs the state directory's lock: hand over from a background one.
    if let Some(dir) = &state_dir
        && let Some(pid) = super::stop::stop(dir).await?
    {
        ctx.printer.info(format!(
            "stopped the background server (pid {pid}); the service takes over"
        ));
    }
    match manager {
        Manager::Systemd => {
            manage(ctx, "systemctl", &["--user", "daemon-reload"], path)?;
            manage(
                ctx,
                "systemctl",
                &["--user", "enable", "--now", systemd::UNIT],
                path,
            )?;
            ctx.printer.info(format!(
                "enabled and started {}: bitrouter serve now starts at login and restarts when it fails\n(`systemctl --user status {}`, `journalctl --user -u {}`)",
                systemd::UNIT,
                systemd::UNIT,
                systemd::UNIT
            ));
        }
        Manager::Launchd => {
            let path_text = path.display().to_string();
            manage(
                ctx,
                "launchctl",
                &["bootstrap", &gui_domain(), &path_text],
                path,
            )?;
            ctx.printer.info(format!(
                "loaded {}: bitrouter serve now starts at login and restarts when it fails",
                launchd::LABEL
            ));
        }
    }
    Ok(())
}

fn uninstall(ctx: &Context, manager: Manager, path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        ctx.printer
            .info(format!("not installed ({} does not exist)", path.display()));
        return Ok(());
    }
    match manager {
        Manager::Systemd => {
            manage(
                ctx,
                "systemctl",
                &["--user", "disable", "--now", systemd::UNIT],
                path,
            )?;
        }
        Manager::Launchd => {
            let target = format!("{}/{}", gui_domain(), launchd::LABEL);
            manage(ctx, "launchctl", &["bootout", &target], path)?;
        }
    }
    std::fs::remove_file(path).map_err(|e| {
        Failure::new(
            format!("cannot remove {}: {e}", path.display()),
            "remove it by hand",
        )
    })?;
    if manager == Manager::Systemd {
        manage(ctx, "systemctl", &["--user", "daemon-reload"], path)?;
    }
    ctx.printer.info(format!(
        "stopped the service and removed {}",
        path.display()
    ));
    Ok(())
}

fn status(ctx: &Context, manager: Manager, path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        ctx.printer.data(&format!(
            "service: not installed (`bitrouter service install` writes {})\n",
            path.display()
        ))?;
        return Ok(());
    }
    let state = match manager {
        Manager::Systemd => {
            let enabled = query("systemctl", &["--user", "is-enabled", systemd::UNIT]);
            let active = query("systemctl", &["--user", "is-active", systemd::UNIT]);
            format!("{enabled}, {active}")
        }
        Manager::Launchd => {
            let target = format!("{}/{}", gui_domain(), launchd::LABEL);
            match Command::new("launchctl").args(["print", &target]).output() {
                Ok(out) if out.status.success() => "loaded".to_owned(),
                Ok(_) => "not loaded".to_owned(),
                Err(e) => format!("unknown (launchctl: {e})"),
            }
        }
    };
    ctx.printer.data(&format!(
        "service: installed ({}): {state}\n",
        path.display()
    ))?;
    Ok(())
}

/// Runs a service-manager command; a failure names the file that was written.
fn manage(ctx: &Context, program: &str, args: &[&str], path: &Path) -> anyhow::Result<()> {
    let shown = format!("{program} {}", args.join(" "));
    ctx.printer.info(format!("running `{shown}`"));
    let out = Command::new(program).args(args).output();
    match out {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(Failure::new(
            format!(
                "`{shown}` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            format!(
                "{} is in place; once the service manager runs for your user (a login session), run `{shown}`",
                path.display()
            ),
        )
        .into()),
        Err(e) => Err(Failure::new(
            format!("cannot run `{program}`: {e}"),
            format!(
                "{} is in place, but this system has no `{program}`: start `bitrouter serve --detach` from your login scripts instead",
                path.display()
            ),
        )
        .into()),
    }
}

/// A one-word answer from the service manager (`enabled`, `active`, …).
fn query(program: &str, args: &[&str]) -> String {
    match Command::new(program).args(args).output() {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if text.is_empty() {
                "unknown".to_owned()
            } else {
                text
            }
        }
        Err(e) => format!("unknown ({program}: {e})"),
    }
}

/// `gui/<uid>`: the launchd domain of the logged-in user.
fn gui_domain() -> String {
    #[cfg(unix)]
    let uid = rustix::process::getuid().as_raw();
    #[cfg(not(unix))]
    let uid = 0;
    format!("gui/{uid}")
}
