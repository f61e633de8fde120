//! A recording pass-through proxy on 127.0.0.1:0 between a real client and `bitrouter serve`:
//! it keeps every request the client sent (method, path, query, headers, body) and the status
//! bitrouter answered, and forwards both unchanged, streaming the answer back chunk by chunk
//! (WebSockets too, see [`super::recorder_ws`]). What it keeps becomes the client's fixtures
//! (see [`super::fixtures`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::Response;
use serde_json::Value;

/// One request as the client sent it.
#[derive(Debug, Clone)]
pub struct Sent {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub headers: HeaderMap,
    /// The body as JSON (`null` when it is empty or not JSON).
    pub body: Value,
    /// The status bitrouter answered with (0 when it could not be reached).
    pub status: u16,
}

/// Headers that belong to one connection, not to the request.
const HOP_BY_HOP: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
];

struct Inner {
    target: String,
    http: reqwest::Client,
    sent: Arc<Mutex<Vec<Sent>>>,
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
    /// Starts a proxy forwarding to `target` (e.g. `http://127.0.0.1:PORT`).
    pub async fn start(target: &str) -> Recorder {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("build the proxy's client");
        let inner = Arc::new(Inner {
            target: target.trim_end_matches('/').to_owned(),
            http,
            sent: Arc::default(),
        });
        let app = Router::new().fallback(forward).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Recorder { addr, inner, task }
    }

    /// `http://127.0.0.1:PORT`: give the client this instead of bitrouter's address.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far, in the order bitrouter answered them.
    pub fn sent(&self) -> Vec<Sent> {
        self.inner.sent.lock().unwrap().clone()
    }
}

async fn forward(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    if super::recorder_ws::is_upgrade(req.headers()) {
        return super::recorder_ws::forward(&inner.target, inner.sent.clone(), req).await;
    }
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let mut record = Sent {
        method: parts.method.to_string(),
        path: path_and_query.clone(),
        headers: parts.headers.clone(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        status: 0,
    };
    let mut upstream = inner
        .http
        .request(parts.method, format!("{}{path_and_query}", inner.target))
        .body(body);
    for (name, value) in &parts.headers {
        if !is_hop_by_hop(name) {
            upstream = upstream.header(name, value);
        }
    }
    let answer = upstream.send().await;
    record.status = answer.as_ref().map_or(0, |a| a.status().as_u16());
    inner.sent.lock().unwrap().push(record);
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => {
            return Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Body::from(format!("recorder: bitrouter unreachable: {e}")))
                .unwrap();
        }
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        // The body passes unchanged, so its length still holds.
        if !is_hop_by_hop(name) || name == "content-length" {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from_stream(answer.bytes_stream()))
        .unwrap()
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}
