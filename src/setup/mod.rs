//! How each client is pointed at bitrouter: one description per client (the program, the
//! environment variables it reads, the Codex CLI's one-shot `-c` overrides, the models each
//! reads) that both `connect` (which prints it) and `run` (which starts the client with it) use.
//! A description never holds the local key itself: it says where the key goes, and the caller
//! renders it as the key (`run`, in the child's environment only) or as a reference to
//! `$BITROUTER_API_KEY` (`connect`).

mod clients;
pub mod render;

use std::net::SocketAddr;

pub use clients::{describe, generic, info};

use crate::cli::Client;

/// The variable a printed setup reads the local key from, and that config-shaped setups (the
/// Codex CLI's provider, opencode's config) name.
pub const KEY_VAR: &str = "BITROUTER_API_KEY";
/// What clients send as their key when the server needs none.
pub const PLACEHOLDER_KEY: &str = "bitrouter";
/// The model a setup uses when none is given.
pub const DEFAULT_MODEL: &str = "gpt-6.1-sol";

/// Where the server is, and whether clients must present `server.api_key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The address clients connect to.
    pub addr: SocketAddr,
    /// Whether `server.api_key` is set.
    pub needs_key: bool,
}

impl Target {
    /// `http://ADDR` (what Anthropic clients take as their base URL).
    #[must_use]
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://ADDR/v1` (what OpenAI clients take as their base URL).
    #[must_use]
    pub fn v1(&self) -> String {
        format!("{}/v1", self.origin())
    }

    /// The value a plain key variable gets.
    fn key(&self) -> Value {
        if self.needs_key {
            Value::LocalKey
        } else {
            Value::text(PLACEHOLDER_KEY)
        }
    }
}

/// The models a setup names: the main one, and Claude Code's tiers when they differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Models {
    /// The main model.
    pub main: String,
    /// Claude Code's opus tier (default: the main model).
    pub opus: Option<String>,
    /// Claude Code's sonnet tier (default: the main model).
    pub sonnet: Option<String>,
    /// Claude Code's haiku tier, the small fast model (default: the main model).
    pub haiku: Option<String>,
    /// Claude Code's subagents (default: the main model).
    pub subagent: Option<String>,
}

impl Models {
    /// One model for everything.
    #[must_use]
    pub fn one(main: impl Into<String>) -> Self {
        Models {
            main: main.into(),
            opus: None,
            sonnet: None,
            haiku: None,
            subagent: None,
        }
    }

    fn or_main<'a>(&'a self, tier: Option<&'a String>) -> &'a str {
        tier.unwrap_or(&self.main)
    }
}

/// One value in a setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Literal text.
    Text(String),
    /// The local key (`server.api_key`).
    LocalKey,
}

impl Value {
    fn text(s: impl Into<String>) -> Self {
        Value::Text(s.into())
    }
}

/// A client's setup: run `program` with `args` before the user's own arguments, `env` set and
/// `unset` removed, for that one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    /// The program (looked up on PATH); `None` for `run -- <command>`.
    pub program: Option<&'static str>,
    /// Arguments that go before the user's (the Codex CLI's `-c` overrides).
    pub args: Vec<String>,
    /// Environment variables to set.
    pub env: Vec<(&'static str, Value)>,
    /// Environment variables to remove (ones that would override the setup).
    pub unset: Vec<&'static str>,
}

impl Setup {
    /// The value of an environment variable of the setup.
    #[must_use]
    pub fn var(&self, name: &str) -> Option<&Value> {
        self.env.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

/// What a client is, for messages: its name, and how to install it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientInfo {
    /// Its name for people.
    pub name: &'static str,
    /// The program `run` starts.
    pub program: &'static str,
    /// How to install it.
    pub install: &'static str,
    /// Whether it is a command-line client (`doctor` looks for these on PATH).
    pub is_cli: bool,
}

/// Every client, for `doctor` and tests.
#[must_use]
pub fn all_clients() -> &'static [Client] {
    &Client::ALL
}
