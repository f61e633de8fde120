//! bitrouter: use the AI subscriptions and keys you already have from any tool on your machine.
//!
//! The binary is a thin shell around [`run`]; everything is in this library so that tests and
//! benchmarks can drive it directly.

// Module overviews name their private parts on purpose: the library exists for the binary, its
// tests and benchmarks, and its documentation is read with `--document-private-items`.
#![allow(rustdoc::private_intra_doc_links)]

pub mod affinity;
pub mod auth;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod env;
pub mod error;
pub mod ids;
pub mod jsonscan;
pub mod output;
pub mod paths;
pub mod picker;
pub mod proxy;
pub mod quota;
pub mod retry;
pub mod routing;
pub mod server;
pub mod service;
pub mod setup;
pub mod sse;
pub mod store;
pub mod tls;
pub mod translate;
pub mod unique;
pub mod upstream;
pub mod variant;

use cli::{Cli, Command};
use commands::Context;
use env::Env;
use output::{Printer, Verbosity};

/// Runs one parsed command line with the given environment.
pub async fn run(cli: Cli, env: Env) -> anyhow::Result<()> {
    let verbosity = if cli.quiet {
        Verbosity::Quiet
    } else if cli.verbose > 0 {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let ctx = Context {
        config_location: paths::config_location(cli.config.clone(), &env),
        env,
        printer: Printer::new(verbosity),
    };
    match cli.command {
        Command::Route(args) => commands::route::run(&ctx, &args).await,
        Command::Models(args) => commands::models::run(&ctx, &args).await,
        Command::Connect(args) => commands::connect::run(&ctx, &args),
        Command::Login(args) => commands::login::run(&ctx, &args).await,
        Command::Logout(args) => commands::logout::run(&ctx, &args).await,
        Command::Status(args) => commands::status::run(&ctx, &args).await,
        Command::Serve(args) => commands::serve::run(&ctx, &args).await,
        Command::Stop => commands::stop::run(&ctx).await,
        Command::Run(args) => commands::run::run(&ctx, &args).await,
        Command::Service(args) => commands::service::run(&ctx, args.action).await,
        Command::Doctor => commands::doctor::run(&ctx).await,
        Command::Completions(args) => commands::completions::run(&args),
    }
}
