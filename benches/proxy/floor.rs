//! The Rust floor of a proxy hop: the minimal reverse proxy issue 17 measured against (hyper 1
//! server, hyper-util's pooled client, `TCP_NODELAY`, the JSON body parsed with `model` and
//! `store` rewritten and written out again, a bearer token attached, the SSE answer streamed back
//! frame by frame), run as this program re-executed with `--hyper-proxy <upstream>`. It does none
//! of bitrouter's work beyond that (no Host check, routing, accounts, history or access log), so
//! the distance between its row and bitrouter's is what bitrouter's own code costs, and the
//! distance between its row and nginx's is what the Rust stack costs.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

type Upstream = Client<HttpConnector, Full<Bytes>>;
type Answer = Response<BoxBody<Bytes, hyper::Error>>;

/// Serves until SIGTERM; prints the listening address on the first line of stdout.
pub(crate) fn hyper_proxy_main(upstream: &str) {
    let upstream: SocketAddr = upstream.parse().expect("--hyper-proxy <host:port>");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client: Upstream = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1024)
            .build(connector);
        let url: hyper::Uri = format!("http://{upstream}/codex/responses")
            .parse()
            .unwrap();
        serve_until_terminated(move |stream| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req| forward(client.clone(), url.clone(), req));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        })
        .await;
    });
}

/// Listens on 127.0.0.1:0, prints the address on the first line of stdout, and hands each
/// accepted connection (`TCP_NODELAY` set) to `serve`, until SIGTERM.
pub(crate) async fn serve_until_terminated(mut serve: impl FnMut(tokio::net::TcpStream)) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("{}", listener.local_addr().unwrap());
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = terminate.recv() => return,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        serve(stream);
    }
}

async fn forward(
    client: Upstream,
    url: hyper::Uri,
    req: Request<Incoming>,
) -> Result<Answer, Infallible> {
    let Ok(body) = req.into_body().collect().await else {
        return Ok(status(StatusCode::BAD_REQUEST));
    };
    let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(&body.to_bytes()) else {
        return Ok(status(StatusCode::BAD_REQUEST));
    };
    let model = json["model"].as_str().unwrap_or_default();
    let model = model.rsplit(':').next().unwrap_or_default().to_owned();
    json["model"] = model.into();
    json["store"] = false.into();
    let outbound = Request::post(url)
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .header("authorization", "Bearer floor-proxy-token")
        .body(Full::new(Bytes::from(serde_json::to_vec(&json).unwrap())))
        .unwrap();
    match client.request(outbound).await {
        Ok(answer) => {
            let (parts, body) = answer.into_parts();
            Ok(Response::from_parts(parts, body.boxed()))
        }
        Err(_) => Ok(status(StatusCode::BAD_GATEWAY)),
    }
}

fn status(code: StatusCode) -> Answer {
    let mut answer = Response::new(
        Full::new(Bytes::new())
            .map_err(|never| match never {})
            .boxed(),
    );
    *answer.status_mut() = code;
    answer
}
