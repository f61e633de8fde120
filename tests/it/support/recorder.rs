//! A recording pass-through proxy on 127.0.0.1:0, put between a real client and `bitrouter
//! serve` to keep the requests the client itself sent (for fixtures under
//! `tests/fixtures/clients/`). Answers stream back chunk by chunk as they arrive.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::StreamExt;
use serde_json::Value;

/// One request the client sent.
#[derive(Debug, Clone)]
pub struct Sent {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
    /// The status bitrouter answered with (0 when it could not be reached).
    pub status: u16,
}

struct Inner {
    target: String,
    sent: Mutex<Vec<Sent>>,
    http: reqwest::Client,
}

/// The running proxy.
pub struct Recorder {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Recorder {
    /// Starts a proxy to `target` (`http://127.0.0.1:PORT`).
    pub async fn start(target: &str) -> Recorder {
        let inner = Arc::new(Inner {
            target: target.trim_end_matches('/').to_owned(),
            sent: Mutex::new(Vec::new()),
            http: super::serve::http_client(),
        });
        let app = Router::new().fallback(forward).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Recorder { addr, inner, task }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything the client sent, in order.
    pub fn sent(&self) -> Vec<Sent> {
        self.inner.sent.lock().unwrap().clone()
    }
}

async fn forward(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    let mut record = Sent {
        method: parts.method.to_string(),
        path: path.clone(),
        headers: parts.headers.clone(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        status: 0,
    };
    let mut headers = parts.headers.clone();
    headers.remove("host");
    headers.remove("content-length");
    let sent = inner
        .http
        .request(parts.method.clone(), format!("{}{path}", inner.target))
        .headers(headers)
        .body(bytes)
        .send()
        .await;
    record.status = sent.as_ref().map_or(0, |r| r.status().as_u16());
    inner.sent.lock().unwrap().push(record);
    let upstream = match sent {
        Ok(upstream) => upstream,
        Err(e) => {
            return Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Body::from(format!("recorder: {e}")))
                .unwrap();
        }
    };
    let mut builder = Response::builder().status(upstream.status());
    for (name, value) in upstream.headers() {
        if name != "content-length" && name != "transfer-encoding" {
            builder = builder.header(name, value);
        }
    }
    builder
        .body(Body::from_stream(upstream.bytes_stream().boxed()))
        .unwrap()
}
