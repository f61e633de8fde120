//! The HTTP client side: one reqwest client per timeout setting (connect timeout plus an idle
//! read timeout, never a total one, so long streams are not cut), `TCP_NODELAY` on, redirects
//! off, and transport errors turned into honest 502/504 errors.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use url::Url;

use super::error::ApiError;
use crate::config::Timeouts;

/// Upstream clients keyed by (connect, idle) timeouts; connections are pooled per client.
#[derive(Debug, Default)]
pub struct Clients {
    clients: Mutex<HashMap<(Duration, Duration), reqwest::Client>>,
}

impl Clients {
    /// An empty cache.
    #[must_use]
    pub fn new() -> Self {
        Clients::default()
    }

    /// The client for these timeouts.
    ///
    /// # Errors
    ///
    /// A 502 when the TLS stack cannot be initialised.
    pub fn get(&self, timeouts: Timeouts) -> Result<reqwest::Client, ApiError> {
        let key = (timeouts.connect, timeouts.idle);
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let client = build_client(timeouts).map_err(|e| {
            ApiError::bad_gateway(
                "client_setup_failed",
                format!("cannot set up the upstream HTTP client: {e}"),
            )
        })?;
        clients.insert(key, client.clone());
        Ok(client)
    }
}

/// Builds a client with these timeouts.
///
/// # Errors
///
/// When reqwest cannot build it.
pub fn build_client(timeouts: Timeouts) -> Result<reqwest::Client, reqwest::Error> {
    // reqwest is built without a default crypto provider; install ring once (an error only
    // means it is already installed).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .read_timeout(timeouts.idle)
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(90))
        .build()
}

/// `{base_url}/{path}` (the base's own path kept, one slash between).
#[must_use]
pub fn endpoint(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!(
        "{}/{}",
        base.path().trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    url.set_path(&joined);
    url
}

/// A transport failure as the client sees it: 504 for a timeout, 502 otherwise. The message
/// names the provider, not the URL's query or any header.
#[must_use]
pub fn transport_error(provider: &str, err: &reqwest::Error) -> ApiError {
    let cause = root_cause(err);
    if err.is_timeout() {
        ApiError::gateway_timeout(format!("{provider} did not answer in time ({cause})"))
    } else if err.is_connect() {
        ApiError::bad_gateway(
            "upstream_unreachable",
            format!("cannot connect to {provider}: {cause}"),
        )
    } else {
        ApiError::bad_gateway(
            "upstream_failed",
            format!("the request to {provider} failed: {cause}"),
        )
    }
}

/// The innermost error message (reqwest's own Display repeats the URL).
pub(super) fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_appends_to_the_base_path() {
        let base = Url::parse("https://chatgpt.com/backend-api/codex").unwrap();
        assert_eq!(
            endpoint(&base, "responses").as_str(),
            "https://chatgpt.com/backend-api/codex/responses"
        );
        let base = Url::parse("http://127.0.0.1:9/v1/").unwrap();
        assert_eq!(
            endpoint(&base, "/chat/completions").as_str(),
            "http://127.0.0.1:9/v1/chat/completions"
        );
    }

    #[tokio::test]
    async fn connection_refused_is_a_502_naming_the_provider() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let client = Clients::new().get(Timeouts::default()).unwrap();
        let err = client
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap_err();
        let api = transport_error("local", &err);
        assert_eq!(api.status, 502);
        assert!(
            api.message.starts_with("cannot connect to local"),
            "{}",
            api.message
        );
    }
}
