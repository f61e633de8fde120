//! Configuration reload without a restart: on SIGHUP and when the file changes (its modification
//! time and size, polled every second), the file is loaded again and swapped in whole. An invalid
//! edit keeps the configuration in force and says why (warn). The credentials take the new
//! provider settings too (the OAuth issuer of the next refresh, the account order); a changed
//! `server.listen`, `store` or `history` needs a restart and says so.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::state::AppState;
use crate::config::{Config, StoreKind};
use crate::env::Env;
use crate::paths::ConfigLocation;

/// How often the file is checked.
const POLL: Duration = Duration::from_secs(1);

/// Where the configuration came from, to load it again.
#[derive(Debug, Clone)]
pub struct ReloadSource {
    /// The file location.
    pub location: ConfigLocation,
    /// The environment for `${VAR}` expansion (the one the server started with).
    pub env: Env,
    /// The credential store the server opened at start (a changed `store:` needs a restart).
    pub store: StoreKind,
}

type Fingerprint = Option<(SystemTime, u64)>;

fn fingerprint(location: &ConfigLocation) -> Fingerprint {
    let meta = std::fs::metadata(location.path()?).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Loads the configuration again and swaps it in if it is valid.
pub fn reload(state: &AppState, source: &ReloadSource, why: &str) {
    match Config::load(&source.location, &source.env) {
        Ok(config) => {
            let old = state.proxy.config();
            if old.server.listen != config.server.listen {
                tracing::warn!(
                    "server.listen changed to {}; restart bitrouter serve to listen there (still on {})",
                    config.server.listen,
                    state.local_addr
                );
            }
            if config.store != source.store {
                tracing::warn!(
                    "store is now {}; restart bitrouter serve to use it (still using {})",
                    config.store.as_str(),
                    source.store.as_str()
                );
            }
            if old.history != config.history {
                tracing::warn!("history settings changed; restart bitrouter serve to apply them");
            }
            state.proxy.credentials.reconfigure(&config);
            state.proxy.replace_config(config);
            tracing::info!(target: "bitrouter::serve", "configuration reloaded ({why})");
        }
        Err(err) => {
            let detail = std::error::Error::source(&err)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            tracing::warn!("configuration not reloaded, keeping the previous one: {err}{detail}");
        }
    }
}

/// Watches for SIGHUP and file changes until `shutdown`. The SIGHUP handler is in place when
/// this returns, before the future first runs: a SIGHUP that comes as soon as the server
/// answers reloads it instead of ending it (the default action of the signal).
pub fn run(
    state: Arc<AppState>,
    source: ReloadSource,
    shutdown: CancellationToken,
) -> impl Future<Output = ()> {
    let hangup = hangup_signal();
    watch(state, source, shutdown, hangup)
}

async fn watch(
    state: Arc<AppState>,
    source: ReloadSource,
    shutdown: CancellationToken,
    mut hangup: Hangup,
) {
    let mut last = fingerprint(&source.location);
    let mut interval = tokio::time::interval(POLL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = next_hangup(&mut hangup) => {
                last = fingerprint(&source.location);
                reload(&state, &source, "SIGHUP");
            }
            _ = interval.tick() => {
                let now = fingerprint(&source.location);
                if now != last {
                    last = now;
                    reload(&state, &source, "the file changed");
                }
            }
        }
    }
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = ();

#[cfg(unix)]
fn hangup_signal() -> Hangup {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}

#[cfg(not(unix))]
fn hangup_signal() -> Hangup {}

#[cfg(unix)]
async fn next_hangup(signal: &mut Hangup) {
    match signal {
        Some(s) => {
            if s.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

#[cfg(not(unix))]
async fn next_hangup(_signal: &mut Hangup) {
    std::future::pending::<()>().await;
}
