//! The integration tests: one binary, one module per area, driving the real `bitrouter` binary
//! in isolated temporary directories.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    clippy::print_stdout,
    reason = "test code: a failed setup step should stop the test loudly"
)]

mod support;

/// Help text, completions and man page: the generated files match the CLI definition.
mod cli;
/// The config file through the binary: lookup order, expansion, errors.
mod config;

/// Sign-in, sign-out and status against a fake OAuth issuer; token refresh across tasks and
/// processes; the token file's safety rules.
mod login;

/// The real Claude Code driven through `bitrouter serve` against the strict fake backend.
mod claude_code;
/// Claude Code's recorded requests, translated and checked against the strict backend's rules.
mod claude_code_replay;
/// Every request real clients sent (`tests/fixtures/clients/`) replayed through the translators
/// and checked against the strict backend's rules.
mod client_fixtures;
/// Real clients (opencode, aider, `llm`, qwen-code, the Node SDKs, LangChain) through
/// `bitrouter serve`, and their recorded requests.
mod clients;
/// The real Codex CLI driven through `bitrouter serve`.
mod codex_cli;
/// `login --import`: linking the Codex CLI session (auth.json or keyring), reading its tokens on
/// every use and writing refreshed tokens back.
mod codex_import;
/// One Codex session shared by bitrouter and the real Codex CLI across refreshes, either way round.
mod codex_share;
/// The real Codex CLI's `/status` through bitrouter, in tmux: the serving account's quota.
mod codex_status;
/// The Codex CLI's Responses WebSocket transport through `bitrouter serve`.
mod codex_ws;
/// Real clients (the Codex CLI, Claude Code, the openai SDK) holding 5-turn conversations: one
/// cache key per conversation, cached tokens in their output.
mod conversations;
/// The dashboard over HTTP, `bitrouter dashboard`, and the page in headless Chromium.
mod dashboard;
/// Faults and load: failing, stalled and unreachable upstreams, disconnects, SIGKILL, bad input.
mod faults;
/// The request history: rows from `serve`, `usage`, quota snapshots, `history: off`.
mod history;
/// The history under faults: read-only, full disk, locked, damaged.
mod history_faults;
/// The source layout: no import circles between modules, no source file over 600 lines.
mod layout;
/// The listener under abuse: unfinished headers, idle connections, the connection cap, and the
/// upstream first-byte timeout.
mod listener;
/// `route` and `serve` agree (one resolver); account states in `route`, quota in `status`.
mod route;
/// `run`, the background server (`serve --detach`, `stop`, the lock), `doctor` and `service`;
/// the real clients under `run`.
mod run;
/// `bitrouter serve` end to end against a fake upstream: shaping, streaming, failover, security.
mod serve;
/// Anthropic Messages through `bitrouter serve` to the strict fake: error forms, token counts,
/// efforts.
mod serve_messages;
/// The `openai` Python SDK against `bitrouter serve`.
mod serve_sdk;
/// Translation to providers that speak another API: `openai_chat`-only and
/// `anthropic_messages`-only upstreams, and generic Responses upstreams without Codex shaping.
mod serve_translate;
/// The subscription used to the full: one cache key per conversation, cached tokens, the
/// account with the most quota left, retries before any output, quota in clients' conventions.
mod subscription;
/// HTTPS upstreams: HTTP/2 where ALPN offers it, HTTP/1.1 otherwise, connections kept alive.
mod upstream_tls;
/// `websocket: true`: Responses streams to the backend over its WebSocket transport.
mod upstream_ws;
/// `bitrouter usage` without a history or on a damaged file, and `history: off`.
mod usage;
/// Glob aliases, pinned efforts and tiers, and `+effort`/`+fast` variant ids through `serve`,
/// `route` and `models`.
mod variants;
