//! The command-line definition (clap derive). Pure data: doc comments are the help text, and the
//! man page and shell completions are generated from this one definition.

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
  bitrouter completions zsh > ~/.zfunc/_bitrouter
  bitrouter --config ./bitrouter.yaml completions bash

Configuration: $XDG_CONFIG_HOME/bitrouter/bitrouter.yaml, or --config / $BITROUTER_CONFIG.";

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the setup that points a client (Codex CLI, Claude Code, SDKs…) at bitrouter
    #[command(
        after_help = "Examples:\n  bitrouter connect codex\n  bitrouter connect claude --model openai-codex:gpt-6.1-sol"
    )]
    Connect(ConnectArgs),
    /// Print a shell completion script to stdout
    Completions(CompletionsArgs),
}

/// Arguments of `bitrouter connect`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The client to set up
    #[arg(value_enum)]
    pub client: Client,
    /// The model id the setup uses
    #[arg(long, default_value = "gpt-6.1-sol")]
    pub model: String,
    /// The address bitrouter serves on (default: server.listen from the config)
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<std::net::SocketAddr>,
}

/// Clients `bitrouter connect` knows how to set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Client {
    /// OpenAI's Codex CLI (Responses API)
    Codex,
    /// Anthropic's Claude Code (Messages API)
    Claude,
    /// opencode (OpenAI-compatible provider)
    Opencode,
    /// aider (OpenAI-compatible)
    Aider,
    /// The `openai` Python SDK
    OpenaiPython,
    /// The `openai` Node.js SDK
    OpenaiNode,
    /// The `anthropic` Python SDK
    AnthropicPython,
    /// curl
    Curl,
}

impl Client {
    /// Every client, in help order.
    pub const ALL: [Client; 8] = [
        Client::Codex,
        Client::Claude,
        Client::Opencode,
        Client::Aider,
        Client::OpenaiPython,
        Client::OpenaiNode,
        Client::AnthropicPython,
        Client::Curl,
    ];
}

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
