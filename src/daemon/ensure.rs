//! The find-or-start step of `bitrouter run`: use the server of this state directory (its lock is
//! held and it answers at the address in its record), else one answering as bitrouter at the
//! configured listen address, else start one in the background. Starts are serialised by the
//! start lock and the search is repeated under it, so two `run`s started at once share one
//! server. A program that is not bitrouter on the configured port is an error, not a guess.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use super::detach::{self, StartOptions};
use super::probe::{self, Health, Probe};
use super::{connect_addr, lock, record};
use crate::error::Failure;

/// How long to wait for another process that is starting a server.
const START_LOCK_WAIT: Duration = Duration::from_secs(30);
/// How long a server that holds the lock may take to answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(20);

/// A server that answers.
#[derive(Debug, Clone)]
pub struct Found {
    /// Where clients reach it.
    pub addr: SocketAddr,
    /// Its `/health` answer.
    pub health: Health,
    /// Whether this call started it.
    pub started: bool,
}

/// Finds the running server, or starts one.
///
/// # Errors
///
/// When the configured port is held by another program, a locked server does not answer, or a
/// start fails.
pub async fn find_or_start(listen: SocketAddr, options: &StartOptions) -> anyhow::Result<Found> {
    if let Some(found) = find(&options.state_dir, listen).await? {
        return Ok(found);
    }
    let _starting = lock::acquire_start(&options.state_dir, START_LOCK_WAIT).await?;
    if let Some(found) = find(&options.state_dir, listen).await? {
        return Ok(found);
    }
    let record = detach::start(options).await?;
    let addr = connect_addr(record.listen);
    Ok(Found {
        addr,
        health: Health {
            version: record.version,
            pid: Some(record.pid),
            started_at: Some(record.started_at),
        },
        started: true,
    })
}

/// Finds a running server without starting one.
///
/// # Errors
///
/// When the configured port is held by another program, or a server holds the lock and does not
/// answer.
pub async fn find(state_dir: &Path, listen: SocketAddr) -> anyhow::Result<Option<Found>> {
    if lock::is_held(state_dir)
        && let Some(found) = own_server(state_dir).await?
    {
        return Ok(Some(found));
    }
    if listen.port() == 0 {
        return Ok(None);
    }
    let addr = connect_addr(listen);
    match probe::health(addr, probe::TIMEOUT).await {
        Probe::Bitrouter(health) => Ok(Some(Found {
            addr,
            health,
            started: false,
        })),
        Probe::Nothing => Ok(None),
        Probe::Other(what) => Err(port_held(listen, &what).into()),
    }
}

/// The error for a listen address another program holds.
#[must_use]
pub fn port_held(listen: SocketAddr, what: &str) -> Failure {
    Failure::new(
        format!("{listen} is held by a program that is not bitrouter (it answered: {what})"),
        "stop that program, or set another port in bitrouter.yaml (server.listen)",
    )
}

/// The server holding this state directory's lock, once it answers (`None` when it let go of
/// the lock meanwhile).
async fn own_server(state_dir: &Path) -> anyhow::Result<Option<Found>> {
    let deadline = Instant::now() + ANSWER_WITHIN;
    loop {
        if let Some(record) = record::read(state_dir) {
            let addr = connect_addr(record.listen);
            if let Probe::Bitrouter(health) = probe::health(addr, probe::TIMEOUT).await {
                return Ok(Some(Found {
                    addr,
                    health,
                    started: false,
                }));
            }
        }
        if !lock::is_held(state_dir) {
            return Ok(None);
        }
        if Instant::now() > deadline {
            let pid = record::read(state_dir).map_or_else(|| "?".to_owned(), |r| r.pid.to_string());
            return Err(Failure::new(
                format!(
                    "a bitrouter server (pid {pid}) holds {} but does not answer",
                    state_dir.join(lock::SERVE_LOCK).display()
                ),
                format!(
                    "stop it with `bitrouter stop` and try again; its log is {}",
                    super::log::path_in(state_dir).display()
                ),
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
