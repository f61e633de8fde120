//! Asks an address whether a bitrouter server answers there: one `GET /health` over a plain
//! HTTP/1.1 connection, bounded in time. Written by hand (a few lines over a TCP stream) because
//! `run` pays for it before every client start, and it talks only to our own server.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a probe may take in all.
pub const TIMEOUT: Duration = Duration::from_secs(2);
/// The most of an answer a probe reads.
const MAX_ANSWER: u64 = 64 * 1024;

/// A bitrouter server's `/health` answer (the fields other commands use).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Health {
    /// Its version.
    pub version: String,
    /// Its process id (servers before 0.2 did not say).
    #[serde(default)]
    pub pid: Option<u32>,
    /// When it started, Unix seconds (servers before 0.2 did not say).
    #[serde(default)]
    pub started_at: Option<i64>,
}

/// What answered at an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A bitrouter server.
    Bitrouter(Health),
    /// Something else accepted the connection; what it said, in short.
    Other(String),
    /// Nothing listens there (or it did not answer in time).
    Nothing,
}

/// Probes `addr` with `GET /health`.
pub async fn health(addr: SocketAddr, within: Duration) -> Probe {
    match tokio::time::timeout(within, ask(addr)).await {
        Ok(probe) => probe,
        Err(_) => Probe::Other("no answer to GET /health in time".to_owned()),
    }
}

async fn ask(addr: SocketAddr) -> Probe {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return Probe::Nothing;
    };
    let request = format!(
        "GET /health HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    if let Err(e) = stream.write_all(request.as_bytes()).await {
        return Probe::Other(format!("the connection failed: {e}"));
    }
    let mut answer = Vec::new();
    if let Err(e) = (&mut stream)
        .take(MAX_ANSWER)
        .read_to_end(&mut answer)
        .await
    {
        return Probe::Other(format!("the connection failed: {e}"));
    }
    classify(&answer)
}

/// Reads an HTTP answer to `GET /health`.
fn classify(answer: &[u8]) -> Probe {
    let text = String::from_utf8_lossy(answer);
    let status_line = text.lines().next().unwrap_or("").trim().to_owned();
    if status_line.is_empty() {
        return Probe::Other("an empty answer".to_owned());
    }
    let is_ok = status_line.starts_with("HTTP/1.") && status_line.split(' ').nth(1) == Some("200");
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let parsed: Option<serde_json::Value> = serde_json::from_str(body.trim()).ok();
    let is_bitrouter = parsed.as_ref().is_some_and(|v| {
        v.get("name").and_then(serde_json::Value::as_str) == Some("bitrouter")
            // Servers from before the `name` field: the same status document.
            || (v.get("status").and_then(serde_json::Value::as_str) == Some("ok")
                && v.get("providers").is_some_and(serde_json::Value::is_array))
    });
    if is_ok
        && is_bitrouter
        && let Some(health) = parsed.and_then(|v| serde_json::from_value::<Health>(v).ok())
    {
        return Probe::Bitrouter(health);
    }
    Probe::Other(status_line.chars().take(80).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bitrouter_health_answer_is_recognised() {
        let answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{\"name\":\"bitrouter\",\"status\":\"ok\",\"version\":\"0.1.0\",\"pid\":7,\"started_at\":5,\"providers\":[]}";
        assert_eq!(
            classify(answer),
            Probe::Bitrouter(Health {
                version: "0.1.0".into(),
                pid: Some(7),
                started_at: Some(5)
            })
        );
    }

    #[test]
    fn other_programs_are_not_bitrouter() {
        assert_eq!(
            classify(b"HTTP/1.1 404 Not Found\r\n\r\nnope"),
            Probe::Other("HTTP/1.1 404 Not Found".into())
        );
        assert_eq!(
            classify(b"HTTP/1.1 200 OK\r\n\r\n{\"status\":\"ok\"}"),
            Probe::Other("HTTP/1.1 200 OK".into())
        );
        assert_eq!(
            classify(b"SSH-2.0-OpenSSH_9.2\r\n"),
            Probe::Other("SSH-2.0-OpenSSH_9.2".into())
        );
    }

    #[tokio::test]
    async fn nothing_listening_is_nothing() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        assert_eq!(health(addr, TIMEOUT).await, Probe::Nothing);
    }
}
