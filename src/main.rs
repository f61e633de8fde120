//! The `bitrouter` binary: parse the command line, set up diagnostics, run, and turn any error
//! into one `error:` line, an optional `hint:` line and an exit status.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use bitrouter::cli::Cli;
use bitrouter::env::{self, Env};

/// mimalloc instead of the system allocator: the request path allocates a few dozen small
/// buffers per request, and glibc's malloc and free were about a fifth of its instructions.
/// Built without transparent huge pages (`no_thp`): with them its arenas took whole 2 MiB pages,
/// and 1,000 open streams held 85 MB resident instead of 58 MB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = Env::from_process();
    init_tracing(&cli, &env);

    // One thread here: bitrouter is a local proxy for one user. Measured with the proxy
    // benchmark (64 clients, 2 cores shared with the client and the upstream), tokio's
    // multi-threaded scheduler spent about twice the CPU per request (237 us against 127 us)
    // for less throughput (about 5,300 against 7,800 req/s). `serve` adds one such
    // single-threaded runtime per core for its connections (`server::serve`). Slow calls (the
    // OS keyring) run on the blocking pool, never on these threads.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return report(&anyhow::Error::new(e).context("cannot start the async runtime")),
    };
    match runtime.block_on(bitrouter::run(cli, env)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(&err),
    }
}

fn report(err: &anyhow::Error) -> ExitCode {
    let report = bitrouter::error::classify(err);
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {err:#}");
    if let Some(hint) = &report.hint {
        let _ = writeln!(stderr, "hint: {hint}");
    }
    report.exit_code()
}

fn init_tracing(cli: &Cli, env: &Env) {
    let serving = matches!(cli.command, bitrouter::cli::Command::Serve(_));
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        // A server shows one line per request and its lifecycle by default.
        (false, 0) if serving => "warn,bitrouter::access=info,bitrouter::serve=info",
        (false, 0) => "warn",
        (false, 1) => "info,bitrouter=debug",
        (false, _) => "debug,bitrouter=trace",
    };
    let filter = env
        .get(env::RUST_LOG)
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // No colour codes in logs piped to a file (a server's stderr often is).
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
