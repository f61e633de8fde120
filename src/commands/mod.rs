//! The commands: each turns parsed arguments and the loaded settings into work and output.

pub mod completions;
pub mod connect;
pub mod doctor;
pub mod login;
pub mod logout;
pub mod models;
pub mod route;
pub mod run;
pub mod serve;
pub mod service;
pub mod status;
pub mod stop;

use std::sync::Arc;

use crate::config::Config;
use crate::env::Env;
use crate::output::Printer;
use crate::paths;
use crate::store::{self, CredentialStore};

/// What every command gets: the environment snapshot, the printer and the config location.
#[derive(Debug)]
pub struct Context {
    /// The environment, read once at start-up.
    pub env: Env,
    /// Where user-facing text goes.
    pub printer: Printer,
    /// Where the config file is looked for.
    pub config_location: paths::ConfigLocation,
}

impl Context {
    /// Loads and validates the configuration.
    pub fn load_config(&self) -> Result<Config, crate::config::ConfigError> {
        Config::load(&self.config_location, &self.env)
    }
}

/// Opens the configured store, printing the `auto` fallback notice once.
pub(crate) fn open_store(
    ctx: &Context,
    config: &Config,
) -> anyhow::Result<Arc<dyn CredentialStore>> {
    let store = store::open(config.store, &ctx.env)?;
    if let Some(notice) = store.notice() {
        ctx.printer.warn(notice);
    }
    Ok(store)
}
