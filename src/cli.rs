//! The command-line definition (clap derive). Pure data: doc comments are the help text, and the
//! man page and shell completions are generated from this one definition.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::ids::Label;

/// Use the AI subscriptions and keys you already have from any tool on your machine.
#[derive(Debug, Parser)]
#[command(
    name = "bitrouter",
    version,
    about = "Use the AI subscriptions and keys you already have from any tool on your machine",
    long_about = None,
    propagate_version = true,
    after_help = EXAMPLES,
)]
pub struct Cli {
    /// Read the configuration from this file instead of the default location
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Show more detail (repeat for more: -vv)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Print only errors
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// What to do
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "\
Examples:
  bitrouter serve
  bitrouter serve --listen 127.0.0.1:8080
  bitrouter completions zsh > ~/.zfunc/_bitrouter
  bitrouter --config ./bitrouter.yaml completions bash

Configuration: $XDG_CONFIG_HOME/bitrouter/bitrouter.yaml, or --config / $BITROUTER_CONFIG.";

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the local server that routes requests to your accounts and providers
    Serve(ServeArgs),
    /// Print a shell completion script to stdout
    Completions(CompletionsArgs),
}

/// Arguments of `bitrouter serve`.
#[derive(Debug, Args)]
#[command(after_help = SERVE_EXAMPLES)]
pub struct ServeArgs {
    /// Listen on this address instead of server.listen (default 127.0.0.1:4356); a non-loopback
    /// address needs server.api_key
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
}

const SERVE_EXAMPLES: &str = "\
Examples:
  bitrouter serve                            # http://127.0.0.1:4356/v1
  bitrouter serve --listen 127.0.0.1:8080
  OPENAI_BASE_URL=http://127.0.0.1:4356/v1 OPENAI_API_KEY=unused aider

Reloads the configuration on SIGHUP and when the file changes; stops on Ctrl-C or SIGTERM,
letting open streams finish (up to 30 s).";

/// Arguments of `bitrouter completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Shells that completions can be generated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// Bourne Again SHell
    Bash,
    /// Z shell
    Zsh,
    /// Friendly interactive shell
    Fish,
    /// Elvish
    Elvish,
    /// PowerShell
    Powershell,
}

impl Shell {
    /// Every supported shell, in the order the generated files are listed.
    pub const ALL: [Shell; 5] = [
        Shell::Bash,
        Shell::Zsh,
        Shell::Fish,
        Shell::Elvish,
        Shell::Powershell,
    ];

    /// The file name clap_complete conventionally uses for this shell's script.
    #[must_use]
    pub fn file_name(self) -> &'static str {
        match self {
            Shell::Bash => "bitrouter.bash",
            Shell::Zsh => "_bitrouter",
            Shell::Fish => "bitrouter.fish",
            Shell::Elvish => "bitrouter.elv",
            Shell::Powershell => "_bitrouter.ps1",
        }
    }
}

/// Parses a `--label` value, refusing anything outside `[a-z0-9_-]{1,32}`.
pub fn parse_label(s: &str) -> Result<Label, String> {
    s.parse().map_err(|e: crate::ids::IdError| e.to_string())
}
