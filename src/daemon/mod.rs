//! The background server's footprint in the state directory, and finding it from other
//! processes: the lock that makes one server per state directory ([`lock`]), the record that says
//! where it listens ([`record`]), its size-capped log ([`log`]), the `/health` probe ([`probe`]),
//! starting one detached from the terminal ([`detach`]) and the find-or-start step of `run`
//! ([`ensure`]).

pub mod detach;
pub mod ensure;
pub mod lock;
pub mod log;
pub mod probe;
pub mod record;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

pub use probe::{Health, Probe};
pub use record::ServerRecord;

/// The address a local client connects to for a listen address: a wildcard listen address
/// (`0.0.0.0`, `::`) is reached on the loopback address of its family.
#[must_use]
pub fn connect_addr(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// Seconds since the Unix epoch.
#[must_use]
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// What is known about the server of one state directory.
#[derive(Debug, Clone)]
pub enum ServerState {
    /// A server holds the lock; its record and whether it answered `/health`.
    Running {
        /// Where it listens, its pid and version.
        record: ServerRecord,
        /// Its `/health` answer, if it answered.
        health: Option<Health>,
    },
    /// No server holds the lock.
    Stopped,
}

impl ServerState {
    /// One line for `status` and `doctor`: `running, pid 7, http://…, version 0.1.0, up 5m 3s,
    /// log …`, or `not running`.
    #[must_use]
    pub fn text(&self, now: i64) -> String {
        match self {
            ServerState::Stopped => "not running".to_owned(),
            ServerState::Running { record, health } => {
                if record.pid == 0 {
                    return "starting (no record yet)".to_owned();
                }
                let mut out = format!(
                    "running, pid {}, http://{}, version {}, up {}",
                    record.pid,
                    connect_addr(record.listen),
                    record.version,
                    uptime_text(now - record.started_at)
                );
                if let Some(log) = &record.log {
                    out.push_str(&format!(", log {}", log.display()));
                }
                match health {
                    None => out.push_str(" (does not answer /health)"),
                    Some(h) => {
                        if let Some(reason) = staleness(h) {
                            out.push_str(&format!(
                                " (it {reason}: restart it with `bitrouter stop && bitrouter serve --detach`)"
                            ));
                        }
                    }
                }
                out
            }
        }
    }

    /// The same as JSON.
    #[must_use]
    pub fn json(&self, now: i64) -> serde_json::Value {
        match self {
            ServerState::Stopped => serde_json::json!({"running": false}),
            ServerState::Running { record, health } => serde_json::json!({
                "running": true,
                "pid": record.pid,
                "address": format!("http://{}", connect_addr(record.listen)),
                "version": record.version,
                "started_at": record.started_at,
                "uptime_seconds": (now - record.started_at).max(0),
                "log": record.log,
                "answers": health.is_some(),
            }),
        }
    }
}

/// Looks at the state directory: is a server holding the lock, where does it listen, does it
/// answer.
pub async fn server_state(state_dir: &Path) -> ServerState {
    if !lock::is_held(state_dir) {
        return ServerState::Stopped;
    }
    let Some(record) = record::read(state_dir) else {
        // The lock is held but the record is not written yet (a server starting up) or was
        // removed by hand.
        return ServerState::Running {
            record: ServerRecord::unknown(),
            health: None,
        };
    };
    let health = match probe::health(connect_addr(record.listen), probe::TIMEOUT).await {
        Probe::Bitrouter(h) => Some(h),
        Probe::Other(_) | Probe::Nothing => None,
    };
    ServerState::Running { record, health }
}

/// Why a running server is older than this binary, if it is: another version, or a binary file
/// replaced (an upgrade or a rebuild) after the server started.
#[must_use]
pub fn staleness(health: &Health) -> Option<String> {
    let ours = env!("CARGO_PKG_VERSION");
    if health.version != ours {
        return Some(format!(
            "is bitrouter {} and this is {ours}",
            health.version
        ));
    }
    let started = health.started_at?;
    let modified = std::env::current_exe()
        .and_then(std::fs::metadata)
        .and_then(|m| m.modified())
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()?;
    let modified = i64::try_from(modified.as_secs()).ok()?;
    (modified > started).then(|| "started before this bitrouter binary was installed".to_owned())
}

/// Human text for an uptime in seconds: `42s`, `5m 3s`, `2h 10m`, `3d 4h`.
#[must_use]
pub fn uptime_text(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {}s", secs / 60, secs % 60),
        3600..86_400 => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d {}h", secs / 86_400, secs % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listen_is_reached_on_loopback() {
        assert_eq!(
            connect_addr("0.0.0.0:4356".parse().unwrap()),
            "127.0.0.1:4356".parse().unwrap()
        );
        assert_eq!(
            connect_addr("[::]:1".parse().unwrap()),
            "[::1]:1".parse().unwrap()
        );
        assert_eq!(
            connect_addr("127.0.0.2:9".parse().unwrap()),
            "127.0.0.2:9".parse().unwrap()
        );
    }

    #[test]
    fn uptime_reads_naturally() {
        assert_eq!(uptime_text(42), "42s");
        assert_eq!(uptime_text(303), "5m 3s");
        assert_eq!(uptime_text(7800), "2h 10m");
        assert_eq!(uptime_text(273_600), "3d 4h");
    }
}
