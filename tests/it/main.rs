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
/// The real Codex CLI driven through `bitrouter serve`.
mod codex_cli;
/// `bitrouter serve` end to end against a fake upstream: shaping, streaming, failover, security.
mod serve;
/// The `openai` Python SDK against `bitrouter serve`.
mod serve_sdk;
