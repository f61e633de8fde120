//! `bitrouter connect <client>`: prints the setup that points a client at this bitrouter (the
//! one-run `bitrouter run` command, the same setup as shell lines, and a permanent form or code
//! sample where the client has one), from the one description `run` uses too. It never edits
//! the client's files, and never prints a secret: a configured `server.api_key` is referred to by
//! the variable that holds it.

use crate::cli::{ConnectArgs, ModelArgs};
use crate::commands::Context;
use crate::setup::{self, KEY_VAR, Models, Target};

/// The models a `--model`/`--opus`/… set of flags names.
#[must_use]
pub fn models_of(args: &ModelArgs) -> Models {
    Models {
        main: args.model.clone(),
        opus: args.opus.clone(),
        sonnet: args.sonnet.clone(),
        haiku: args.haiku.clone(),
        subagent: args.subagent.clone(),
    }
}

/// The model flags as they would be passed to `bitrouter run` (empty for the defaults).
fn run_flags(args: &ModelArgs) -> String {
    let mut out = String::new();
    if args.model != setup::DEFAULT_MODEL {
        out.push_str(&format!(
            " --model {}",
            setup::render::shell_quote(&args.model)
        ));
    }
    for (flag, value) in [
        ("opus", &args.opus),
        ("sonnet", &args.sonnet),
        ("haiku", &args.haiku),
        ("subagent", &args.subagent),
    ] {
        if let Some(v) = value {
            out.push_str(&format!(" --{flag} {}", setup::render::shell_quote(v)));
        }
    }
    out
}

/// Runs the command.
pub fn run(ctx: &Context, args: &ConnectArgs) -> anyhow::Result<()> {
    let config = ctx.load_config()?;
    // The running server's address when one runs (it may have been given port 0), else the
    // configured one.
    let running = crate::paths::state_dir(&ctx.env)
        .filter(|dir| crate::daemon::lock::is_held(dir))
        .and_then(|dir| crate::daemon::record::read(&dir))
        .map(|r| r.listen);
    let listen = args.listen.or(running).unwrap_or(config.server.listen);
    let target = Target {
        addr: crate::daemon::connect_addr(listen),
        needs_key: config.server.api_key.is_some(),
    };
    let text = setup::render::connect_text(
        args.client,
        &target,
        &models_of(&args.models),
        &run_flags(&args.models),
    );
    ctx.printer.data(&text)?;
    if target.needs_key {
        ctx.printer.info(format!(
            "note: in the shell form, set {KEY_VAR} to your server.api_key (`bitrouter run` does it for you)"
        ));
    }
    Ok(())
}
