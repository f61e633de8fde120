//! Open sockets to the backend kept between the requests of one conversation, as the Codex CLI
//! keeps one socket for a whole run: a socket whose response ended is parked under its
//! handshake (address and headers, per-request headers left out) and the next request with the
//! same handshake, on the same serving thread, takes it instead of opening one. A socket parked
//! longer than [`PARKED_FOR`] is closed; at most [`MAX_PARKED`] wait.

use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use http::HeaderMap;

use super::Socket;

/// How long a parked socket is kept.
pub const PARKED_FOR: Duration = Duration::from_secs(60);
/// The most sockets parked at once (the oldest goes first).
pub const MAX_PARKED: usize = 64;

/// Request headers that change from one request of a conversation to the next; they do not
/// decide which socket a request may use (on the Codex CLI's own socket they travel in the
/// body's `client_metadata` after the first request too).
const PER_REQUEST: [&str; 6] = [
    "x-codex-turn-metadata",
    "x-codex-window-id",
    "x-client-request-id",
    "x-request-id",
    "traceparent",
    "tracestate",
];

/// What a socket was opened with: the address and the handshake's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    url: String,
    headers: Vec<(String, Vec<u8>)>,
}

impl Key {
    /// The key of a handshake to `url` with `headers`.
    #[must_use]
    pub fn new(url: &http::Uri, headers: &HeaderMap) -> Self {
        let mut list: Vec<(String, Vec<u8>)> = headers
            .iter()
            .filter(|(name, _)| !PER_REQUEST.contains(&name.as_str()))
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect();
        list.sort();
        Key {
            url: url.to_string(),
            headers: list,
        }
    }
}

struct Parked {
    key: Key,
    thread: ThreadId,
    since: Instant,
    socket: Socket,
    /// The handshake answer's headers, for the answers the socket gives later.
    headers: HeaderMap,
}

/// The parked sockets.
#[derive(Default)]
pub struct Pool {
    parked: Mutex<Vec<Parked>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").finish_non_exhaustive()
    }
}

impl Pool {
    /// A parked socket for `key` on this thread, if one is fresh enough, and its handshake
    /// answer's headers.
    pub(super) fn take(&self, key: &Key) -> Option<(Socket, HeaderMap)> {
        let mut parked = self
            .parked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        parked.retain(|p| p.since.elapsed() < PARKED_FOR);
        let thread = std::thread::current().id();
        let at = parked
            .iter()
            .rposition(|p| p.thread == thread && p.key == *key)?;
        let taken = parked.swap_remove(at);
        Some((taken.socket, taken.headers))
    }

    /// Parks `socket`, opened with `key`, on this thread; it is closed after [`PARKED_FOR`]
    /// unless a request takes it first.
    pub(super) fn park(self: &Arc<Self>, key: Key, socket: Socket, headers: HeaderMap) {
        {
            let mut parked = self
                .parked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            parked.retain(|p| p.since.elapsed() < PARKED_FOR);
            if parked.len() >= MAX_PARKED {
                parked.remove(0);
            }
            parked.push(Parked {
                key,
                thread: std::thread::current().id(),
                since: Instant::now(),
                socket,
                headers,
            });
        }
        let pool = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(PARKED_FOR).await;
            if let Some(pool) = pool.upgrade() {
                pool.parked
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .retain(|p| p.since.elapsed() < PARKED_FOR);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn per_request_headers_do_not_change_the_key() {
        let url: http::Uri = "https://chatgpt.com/backend-api/codex/responses"
            .parse()
            .unwrap();
        let mut a = HeaderMap::new();
        a.insert("authorization", HeaderValue::from_static("Bearer t"));
        a.insert("session-id", HeaderValue::from_static("s1"));
        a.insert(
            "x-codex-turn-metadata",
            HeaderValue::from_static("{\"turn\":1}"),
        );
        let mut b = a.clone();
        b.insert(
            "x-codex-turn-metadata",
            HeaderValue::from_static("{\"turn\":2}"),
        );
        assert_eq!(Key::new(&url, &a), Key::new(&url, &b));
        b.insert("session-id", HeaderValue::from_static("s2"));
        assert_ne!(Key::new(&url, &a), Key::new(&url, &b));
        let mut c = a.clone();
        c.insert("authorization", HeaderValue::from_static("Bearer other"));
        assert_ne!(Key::new(&url, &a), Key::new(&url, &c));
    }
}
