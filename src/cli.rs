//! The command-line definition (clap derive). Pure data: doc comments are the help text, and the
//! man page and shell completions are generated from this one definition.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::ids::{Label, ProviderId};

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
  bitrouter login openai-codex --label work
  bitrouter run claude                   # Claude Code on your subscription
  bitrouter run codex exec \"fix the test\"
  bitrouter status
  bitrouter serve --detach
  bitrouter serve --listen 127.0.0.1:8080
  bitrouter completions zsh > ~/.zfunc/_bitrouter
  bitrouter --config ./bitrouter.yaml completions bash

Configuration: $XDG_CONFIG_HOME/bitrouter/bitrouter.yaml, or --config / $BITROUTER_CONFIG.";

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sign in to a provider and store the credential under a label
    #[command(after_help = LOGIN_EXAMPLES)]
    Login(LoginArgs),
    /// Remove a stored credential (and revoke it upstream, best effort)
    #[command(after_help = LOGOUT_EXAMPLES)]
    Logout(LogoutArgs),
    /// Show the stored accounts: provider, label, email, plan, expiry, source, store and quota
    #[command(after_help = STATUS_EXAMPLES)]
    Status(StatusArgs),
    /// Run the local server that routes requests to your accounts and providers
    Serve(ServeArgs),
    /// Stop the background server (open streams finish first)
    Stop,
    /// Run a client (or any command) through the local server, started on demand
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Start the server at login: a systemd user unit (Linux) or a launchd agent (macOS)
    #[command(after_help = SERVICE_EXAMPLES)]
    Service(ServiceArgs),
    /// One paste-able report: config, accounts, server, clients found; no secrets
    Doctor,
    /// Show how a model id resolves (provider, upstream model, accounts) and why not when it can't
    #[command(after_help = ROUTE_EXAMPLES)]
    Route(RouteArgs),
    /// List what can be routed: declared models, live catalogs and routes
    #[command(
        after_help = "Examples:\n  bitrouter models\n  bitrouter models --provider openai-codex --json"
    )]
    Models(ModelsArgs),
    /// Print the setup that points a client (Codex CLI, Claude Code, SDKs…) at bitrouter
    #[command(
        after_help = "Examples:\n  bitrouter connect codex\n  bitrouter connect claude --model openai-codex:gpt-6.1-sol --haiku gpt-6-luna"
    )]
    Connect(ConnectArgs),
    /// Print a shell completion script to stdout
    Completions(CompletionsArgs),
}

const ROUTE_EXAMPLES: &str = "\
Examples:
  bitrouter route openai-codex:gpt-6.1-sol
  bitrouter route openai-codex@work:gpt-6.1-sol --json
  bitrouter route gpt-6.1-sol+high+fast   # a variant: effort high, the fast (priority) tier
  bitrouter route claude-sonnet-4-5       # which `routes` key matches it, and what it pins
  bitrouter route fast --check            # also send a tiny request through the chain

Variants: `model+effort`, `model+fast` or `model+effort+fast`, offered where the model's live
catalog lists them (`bitrouter models` shows them). A variant is a default: a request's own
reasoning effort or service_tier wins over it. A route's `effort:` or `service_tier:` is a pin:
it wins over the request.

Why `+`: real model ids never contain it, and it passes unquoted through shells, URL paths,
config files, environment variables and clients' model fields. `#` starts a URL fragment, `(`
needs shell quoting, Claude Code strips `[...]` from model names, and `-high` could be part of
a real id.

Routes: a key without `*` matches exactly; with `*`, the matching glob with the most literal
(non-`*`) characters wins, and two equally specific globs that can match one id are a config
error.";

/// Arguments of `bitrouter route`.
#[derive(Debug, Args)]
pub struct RouteArgs {
    /// The model id: `model`, `provider:model`, `provider/model`, `provider@label:model` or a
    /// route; a model may end in variants such as `+high`, `+fast` or `+high+fast`
    pub model: String,
    /// Pin an account, as the `x-bitrouter-account` header does
    #[arg(long, value_name = "LABEL")]
    pub account: Option<String>,
    /// Also send a tiny request through the chain (uses the network and a little quota)
    #[arg(long)]
    pub check: bool,
    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `bitrouter models`.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Only this provider's models
    #[arg(long, value_name = "P")]
    pub provider: Option<ProviderId>,
    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `bitrouter connect`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The client to set up
    #[arg(value_enum)]
    pub client: Client,
    /// The models the setup names
    #[command(flatten)]
    pub models: ModelArgs,
    /// The address bitrouter serves on (default: server.listen from the config)
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<std::net::SocketAddr>,
}

/// The models a client setup names (`connect` and `run`).
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// The model id the client uses
    #[arg(long, value_name = "MODEL", default_value = "gpt-6.1-sol")]
    pub model: String,
    /// Claude Code's opus tier [default: --model]
    #[arg(long, value_name = "MODEL")]
    pub opus: Option<String>,
    /// Claude Code's sonnet tier [default: --model]
    #[arg(long, value_name = "MODEL")]
    pub sonnet: Option<String>,
    /// Claude Code's haiku tier, its small fast model (and aider's weak model) [default: --model]
    #[arg(long, value_name = "MODEL")]
    pub haiku: Option<String>,
    /// The model of Claude Code's subagents [default: --model]
    #[arg(long, value_name = "MODEL")]
    pub subagent: Option<String>,
}

/// Arguments of `bitrouter run`.
#[derive(Debug, Args)]
#[command(arg_required_else_help = true)]
pub struct RunArgs {
    /// The models the client's setup names
    #[command(flatten)]
    pub models: ModelArgs,
    /// The client and its own arguments, passed on verbatim (clients: codex, claude, opencode,
    /// aider, llm, qwen, openai-python, openai-node, anthropic-python, vercel-ai, langchain,
    /// curl); or, after `--`, any command, run with OPENAI_BASE_URL, OPENAI_API_BASE,
    /// ANTHROPIC_BASE_URL and keys set
    #[arg(
        value_name = "CLIENT [ARGS]... | -- COMMAND",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub argv: Vec<std::ffi::OsString>,
}

const RUN_EXAMPLES: &str = "\
Examples:
  bitrouter run claude                          # Claude Code, interactive
  bitrouter run claude -p \"explain this repo\"
  bitrouter run --model gpt-6-luna codex exec \"fix the failing test\"
  bitrouter run --haiku gpt-6-luna claude
  bitrouter run -- python app.py                # any program, with the base URLs set

Starts `bitrouter serve` in the background when none runs. Sets the client's environment (or the
Codex CLI's -c overrides) for that one process: no config file and no shell is changed. Exits with
the client's exit status.";

/// Arguments of `bitrouter service`.
#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// What to do
    #[command(subcommand)]
    pub action: ServiceAction,
}

/// `bitrouter service` actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum ServiceAction {
    /// Write and enable the unit (or agent), and start the server now
    Install,
    /// Stop the server, disable and remove the unit (or agent)
    Uninstall,
    /// Say whether the unit (or agent) is installed, enabled and running
    Status,
}

const SERVICE_EXAMPLES: &str = "\
Examples:
  bitrouter service install      # ~/.config/systemd/user/bitrouter.service, or a launchd agent
  bitrouter service status
  bitrouter service uninstall";

/// Clients `bitrouter connect` and `bitrouter run` know how to set up.
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
    /// Simon Willison's llm (OpenAI-compatible)
    Llm,
    /// Qwen Code (OpenAI-compatible)
    #[value(alias = "qwen-code")]
    Qwen,
    /// The `openai` Python SDK
    OpenaiPython,
    /// The `openai` Node.js SDK
    OpenaiNode,
    /// The `anthropic` Python SDK
    AnthropicPython,
    /// The Vercel AI SDK (`ai`, `@ai-sdk/openai`, `@ai-sdk/anthropic`)
    VercelAi,
    /// LangChain (`langchain-openai`, `langchain-anthropic`)
    Langchain,
    /// curl
    Curl,
}

impl Client {
    /// Every client, in help order.
    pub const ALL: [Client; 12] = [
        Client::Codex,
        Client::Claude,
        Client::Opencode,
        Client::Aider,
        Client::Llm,
        Client::Qwen,
        Client::OpenaiPython,
        Client::OpenaiNode,
        Client::AnthropicPython,
        Client::VercelAi,
        Client::Langchain,
        Client::Curl,
    ];
}

const LOGIN_EXAMPLES: &str = "\
Examples:
  bitrouter login openai-codex                     # sign in with the browser
  bitrouter login openai-codex --label work        # a second account beside `default`
  bitrouter login openai-codex --no-browser        # print the URL; paste the redirect URL if needed
  bitrouter login openai-codex --device-auth       # on a machine without a browser
  bitrouter login openai-codex --import            # share the Codex CLI's session
  echo \"$OPENAI_API_KEY\" | bitrouter login openai --api-key-stdin";

const LOGOUT_EXAMPLES: &str = "\
Examples:
  bitrouter logout openai-codex                    # the `default` label
  bitrouter logout openai-codex --label work
  bitrouter logout openai-codex --all";

const STATUS_EXAMPLES: &str = "\
Examples:
  bitrouter status
  bitrouter status --refresh                       # ask the backend for the current quota
  bitrouter status --json | jq '.accounts[] | select(.needs_login != null)'";

/// Arguments of `bitrouter login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The provider to sign in to, e.g. openai-codex
    pub provider: ProviderId,

    /// The account label to store the credential under
    #[arg(long, value_name = "L", default_value = Label::DEFAULT, value_parser = parse_label)]
    pub label: Label,

    /// Print the sign-in URL instead of opening a browser (and accept a pasted redirect URL)
    #[arg(long, conflicts_with_all = ["device_auth", "import", "api_key_stdin"])]
    pub no_browser: bool,

    /// Sign in with a device code (for machines without a browser)
    #[arg(long, conflicts_with_all = ["import", "api_key_stdin"])]
    pub device_auth: bool,

    /// Use the Codex CLI's existing session ($CODEX_HOME) instead of signing in again
    #[arg(long, conflicts_with = "api_key_stdin")]
    pub import: bool,

    /// Read an API key from standard input (one line) for a configured API-key provider
    #[arg(long)]
    pub api_key_stdin: bool,
}

/// Arguments of `bitrouter logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The provider to sign out of
    pub provider: ProviderId,

    /// The account label to remove [default: default]
    #[arg(long, value_name = "L", value_parser = parse_label, conflicts_with = "all")]
    pub label: Option<Label>,

    /// Remove every label of the provider
    #[arg(long)]
    pub all: bool,
}

/// Arguments of `bitrouter status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,

    /// Refresh tokens that are due, and ask the backend for each account's current quota
    /// (instead of showing the last one a running `serve` saw)
    #[arg(long)]
    pub refresh: bool,
}
/// Arguments of `bitrouter serve`.
#[derive(Debug, Args)]
#[command(after_help = SERVE_EXAMPLES)]
pub struct ServeArgs {
    /// Listen on this address instead of server.listen (default 127.0.0.1:4356); a non-loopback
    /// address needs server.api_key
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,

    /// Run in the background, detached from the terminal, logging to serve.log in the state
    /// directory ($XDG_STATE_HOME/bitrouter); `bitrouter stop` stops it
    #[arg(long)]
    pub detach: bool,

    /// (internal) this process is the background server `--detach` started
    #[arg(long = "detached-child", hide = true)]
    pub detached_child: bool,
}

const SERVE_EXAMPLES: &str = "\
Examples:
  bitrouter serve                            # http://127.0.0.1:4356/v1
  bitrouter serve --listen 127.0.0.1:8080
  bitrouter serve --detach                   # in the background; `bitrouter stop` ends it
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
