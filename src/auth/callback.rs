//! The loopback listener of the browser login (spec §1.3): binds `127.0.0.1` on the configured
//! port (1455, falling back to 1457 like the Codex CLI; port 0 picks a free one), and the
//! redirect URI names the port actually bound with host `localhost`. Stray requests (favicon,
//! scanners, other paths: 404; a wrong or missing `state`: 400 `State mismatch`) do not end the
//! login. The final request gets a small HTML page and `Connection: close`, so no browser
//! keep-alive socket outlives the login. `/cancel` ends it; so does the timeout.

use std::collections::HashMap;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::{mpsc, oneshot};

use super::LoginError;

/// The callback path registered for the Codex CLI client.
pub const CALLBACK_PATH: &str = "/auth/callback";
/// The Codex CLI's fallback port when 1455 is taken.
pub const FALLBACK_PORT: u16 = 1457;
/// How long the browser has to complete the sign-in by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// What reached the listener.
enum Event {
    /// A callback with the right state and a code; answer with the outcome.
    Code(String, oneshot::Sender<Result<String, String>>),
    /// The issuer sent the user back with an error.
    Denied(String),
    /// The right state but no code.
    MissingCode,
    /// `GET /cancel`.
    Cancel,
}

struct Shared {
    state: String,
    events: mpsc::Sender<Event>,
}

/// A bound loopback listener, ready to serve one login.
#[derive(Debug)]
pub struct CallbackServer {
    listener: tokio::net::TcpListener,
    port: u16,
}

impl CallbackServer {
    /// Binds `127.0.0.1:port`, then `fallback` if the port is taken.
    pub async fn bind(port: u16, fallback: Option<u16>) -> Result<Self, LoginError> {
        let mut tried = vec![port];
        match try_bind(port).await {
            Ok(server) => return Ok(server),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {}
            Err(source) => return Err(LoginError::Bind { port, source }),
        }
        if let Some(fallback) = fallback.filter(|f| *f != port) {
            tried.push(fallback);
            match try_bind(fallback).await {
                Ok(server) => return Ok(server),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {}
                Err(source) => {
                    return Err(LoginError::Bind {
                        port: fallback,
                        source,
                    });
                }
            }
        }
        let ports = tried
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(" and ");
        Err(LoginError::PortInUse { ports })
    }

    /// The port actually bound.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://localhost:{port}/auth/callback`.
    #[must_use]
    pub fn redirect_uri(&self) -> String {
        format!("http://localhost:{}{CALLBACK_PATH}", self.port)
    }

    /// Serves until a code arrives (from the browser, or pasted: each line from `pasted` may be
    /// the redirect URL or the bare code), hands it to `on_code`, shows the browser the outcome
    /// and returns it. `on_code`'s `Ok` and `Err` texts become the page's message.
    pub async fn run<T, F, Fut>(
        self,
        state: String,
        mut pasted: Option<mpsc::Receiver<String>>,
        timeout: Duration,
        mut on_code: F,
    ) -> Result<T, LoginError>
    where
        F: FnMut(String) -> Fut,
        Fut: Future<Output = Result<(T, String), LoginError>>,
    {
        let (events_tx, mut events) = mpsc::channel(8);
        let shared = Arc::new(Shared {
            state: state.clone(),
            events: events_tx,
        });
        let app = Router::new()
            .route(CALLBACK_PATH, get(callback))
            .route("/cancel", get(cancel))
            .fallback(not_found)
            .with_state(shared);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(
            axum::serve(self.listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop_rx.await;
                })
                .into_future(),
        );

        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let result = loop {
            tokio::select! {
                () = &mut deadline => {
                    break Err(LoginError::Timeout { what: "browser sign-in", after: timeout });
                }
                event = events.recv() => match event {
                    Some(Event::Code(code, reply)) => {
                        let outcome = on_code(code).await;
                        let page = match &outcome {
                            Ok((_, message)) => Ok(message.clone()),
                            Err(e) => Err(format!("{e}")),
                        };
                        let _ = reply.send(page);
                        break outcome.map(|(value, _)| value);
                    }
                    Some(Event::Denied(why)) => break Err(LoginError::Denied(why)),
                    Some(Event::MissingCode) => break Err(LoginError::MissingCode),
                    Some(Event::Cancel) | None => break Err(LoginError::Cancelled),
                },
                line = recv_opt(&mut pasted) => match line {
                    Some(line) => {
                        if let Some(code) = pasted_code(&line, &state) {
                            break on_code(code).await.map(|(value, _)| value);
                        }
                    }
                    None => pasted = None,
                },
            }
        };
        let _ = stop_tx.send(());
        // Let the final page go out; a browser's idle keep-alive socket must not hold us.
        if tokio::time::timeout(Duration::from_secs(2), server)
            .await
            .is_err()
        {
            tracing::debug!("the callback listener did not stop in time");
        }
        result
    }
}

async fn try_bind(port: u16) -> std::io::Result<CallbackServer> {
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    let port = listener.local_addr()?.port();
    Ok(CallbackServer { listener, port })
}

async fn recv_opt(rx: &mut Option<mpsc::Receiver<String>>) -> Option<String> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The code in a pasted line: a redirect URL (whose `state` must match) or a bare code.
fn pasted_code(line: &str, state: &str) -> Option<String> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    if !line.contains("code=") {
        return (!line.contains(char::is_whitespace)).then(|| line.to_owned());
    }
    let query = line.split_once('?').map_or(line, |(_, q)| q);
    let query = query.split('#').next().unwrap_or(query);
    let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    if params.get("state").map(String::as_str) != Some(state) {
        tracing::warn!("the pasted URL belongs to another login attempt (state mismatch)");
        return None;
    }
    params.get("code").filter(|c| !c.is_empty()).cloned()
}

async fn callback(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if query.get("state") != Some(&shared.state) {
        return (StatusCode::BAD_REQUEST, "State mismatch").into_response();
    }
    if let Some(error) = query.get("error") {
        let description = query.get("error_description").cloned().unwrap_or_default();
        let why = if error == "access_denied" && description.contains("missing_codex_entitlement") {
            "Codex is not enabled for your workspace. Contact your workspace administrator to request access to Codex.".to_owned()
        } else if description.is_empty() {
            error.clone()
        } else {
            format!("{error}: {description}")
        };
        let _ = shared.events.send(Event::Denied(why.clone())).await;
        return page(false, &why);
    }
    let Some(code) = query.get("code").filter(|c| !c.is_empty()) else {
        let _ = shared.events.send(Event::MissingCode).await;
        return page(false, "The sign-in callback carried no authorization code.");
    };
    let (reply_tx, reply_rx) = oneshot::channel();
    if shared
        .events
        .send(Event::Code(code.clone(), reply_tx))
        .await
        .is_err()
    {
        return page(false, "This sign-in attempt has already ended.");
    }
    match reply_rx.await {
        Ok(Ok(message)) => page(true, &message),
        Ok(Err(message)) => page(false, &message),
        Err(_) => page(false, "This sign-in attempt has already ended."),
    }
}

async fn cancel(State(shared): State<Arc<Shared>>) -> Response {
    let _ = shared.events.send(Event::Cancel).await;
    ([(header::CONNECTION, "close")], "Login cancelled").into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "Not Found").into_response()
}

/// The final page: success or error, with `Connection: close`.
fn page(ok: bool, message: &str) -> Response {
    let (status, title) = if ok {
        (StatusCode::OK, "Signed in to bitrouter")
    } else {
        (StatusCode::BAD_REQUEST, "Sign-in failed")
    };
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body style=\"font-family:sans-serif;margin:4em auto;max-width:36em\">\
         <h1>{title}</h1><p>{}</p><p>You may now close this page.</p></body></html>",
        escape_html(message)
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONNECTION, "close"),
        ],
        body,
    )
        .into_response()
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasted_lines() {
        assert_eq!(pasted_code("  abc123 ", "s"), Some("abc123".into()));
        assert_eq!(
            pasted_code("http://localhost:1455/auth/callback?code=C1&state=s", "s"),
            Some("C1".into())
        );
        assert_eq!(
            pasted_code(
                "http://localhost:1455/auth/callback?code=C1&state=other",
                "s"
            ),
            None
        );
        assert_eq!(pasted_code("", "s"), None);
        assert_eq!(pasted_code("two words", "s"), None);
    }

    #[tokio::test]
    async fn busy_port_is_reported_with_both_ports() {
        let first = CallbackServer::bind(0, None).await.unwrap();
        let port = first.port();
        let err = CallbackServer::bind(port, Some(port)).await.unwrap_err();
        assert!(matches!(err, LoginError::PortInUse { .. }), "{err}");
        let taken = CallbackServer::bind(0, None).await.unwrap();
        let err = CallbackServer::bind(port, Some(taken.port()))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot listen for the sign-in callback: port {port} and {} on 127.0.0.1 is in use",
                taken.port()
            )
        );
    }

    #[tokio::test]
    async fn falls_back_when_the_port_is_taken() {
        let first = CallbackServer::bind(0, None).await.unwrap();
        let spare = CallbackServer::bind(0, None).await.unwrap();
        let spare_port = spare.port();
        drop(spare);
        let second = CallbackServer::bind(first.port(), Some(spare_port))
            .await
            .unwrap();
        assert_eq!(second.port(), spare_port);
        assert_eq!(
            second.redirect_uri(),
            format!("http://localhost:{spare_port}/auth/callback")
        );
    }
}
