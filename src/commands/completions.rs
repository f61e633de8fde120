//! `bitrouter completions <shell>`: shell completion scripts, generated from the CLI definition.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, Shell};

/// The completion script for `shell`, as the bytes written to stdout.
#[must_use]
pub fn script(shell: Shell) -> Vec<u8> {
    let mut command = Cli::command();
    let mut out = Vec::new();
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
        Shell::Elvish => clap_complete::Shell::Elvish,
        Shell::Powershell => clap_complete::Shell::PowerShell,
    };
    clap_complete::generate(generator, &mut command, "bitrouter", &mut out);
    out
}

/// Runs the command.
pub fn run(args: &CompletionsArgs) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&script(args.shell))?;
    stdout.flush()?;
    Ok(())
}
