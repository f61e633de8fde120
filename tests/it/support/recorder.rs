//! A recording pass-through proxy on 127.0.0.1:0 between a real client and `bitrouter serve`:
//! it keeps every request the client sent (method, path, query, headers, body) and the status
//! bitrouter answered, and forwards both unchanged, streaming the answer back chunk by chunk. What it keeps becomes the client's
//! fixtures (see [`super::fixtures`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::Response;

/// One request as the client sent it.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The status bitrouter answered with (502 when it could not be reached).
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
    seen: Mutex<Vec<Inbound>>,
}

/// The running proxy.
pub struct Recorder {
    addr: SocketAddr,
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
            seen: Mutex::new(Vec::new()),
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
    pub fn requests(&self) -> Vec<Inbound> {
        self.inner.seen.lock().unwrap().clone()
    }
}

async fn forward(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let mut inbound = Inbound {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers.clone(),
        body: body.clone(),
        status: 502,
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
    inbound.status = answer.as_ref().map_or(502, |a| a.status().as_u16());
    inner.seen.lock().unwrap().push(inbound);
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
