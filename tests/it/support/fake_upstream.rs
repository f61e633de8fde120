//! A fake upstream (Codex backend and OpenAI/Anthropic-compatible APIs) on 127.0.0.1:0. It
//! records every request (method, path, query, headers, body), answers from a queue of scripted
//! replies (else a default answer for the path, the usage endpoint included), and can pace an
//! SSE stream ([`super::fake_replies`]): hold the next event until the test releases it, die
//! mid-stream, stall, or trickle keepalives. It counts streams whose connection went away (the body was dropped before it
//! finished). Chat Completions and Messages requests that ask for a stream get a streamed default
//! answer in that API's shape.
//!
//! Per account (`chatgpt-account-id`) its Codex answers can carry `x-codex-*` quota headers
//! ([`FakeUpstream::set_quota`]), and a repeated `prompt_cache_key` can report cached input
//! tokens ([`FakeUpstream::simulate_prompt_cache`]).
//!
//! Codex requests (`POST …/backend-api/codex/responses`) are checked first by
//! [`super::strict`], as strictly as the real backend checks them: a body it refuses gets the
//! backend's 400 (and is kept in [`FakeUpstream::rejections`]) before any scripted reply is used.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

pub use super::fake_events::*;
use super::fake_replies::{Pacing, json_response, respond};
pub use super::fake_replies::{Reply, Step};
use super::strict::{self, Rejection};

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("").to_owned())
    }
}

/// A catalog entry with the fields the Codex CLI's `ModelInfo` requires; `fast` lists the
/// priority tier in `service_tiers` (as the live catalog does for models that offer Fast).
fn codex_model(slug: &str, priority: i64, fast: bool) -> Value {
    let service_tiers = if fast {
        json!([{"id": "priority", "name": "Fast", "description": "faster answers, more quota"}])
    } else {
        json!([])
    };
    json!({
        "slug": slug, "display_name": slug, "description": "a test model",
        "default_reasoning_level": "medium",
        "supported_reasoning_levels": [{"effort": "low", "description": "fast"}, {"effort": "medium", "description": "balanced"}],
        "shell_type": "shell_command", "visibility": "list", "supported_in_api": true,
        "priority": priority, "upgrade": null, "base_instructions": "You are a test model.",
        "supports_reasoning_summaries": true, "support_verbosity": false, "default_verbosity": null,
        "apply_patch_tool_type": null, "truncation_policy": {"mode": "tokens", "limit": 10000},
        "supports_parallel_tool_calls": true, "context_window": 272000,
        "experimental_supported_tools": [], "input_modalities": ["text"],
        "service_tiers": service_tiers
    })
}

/// The model catalog the fake serves by default (`GET …/models?client_version=…`).
pub fn codex_catalog() -> Value {
    json!({"models": [codex_model("gpt-6-luna", 1, false), codex_model("gpt-6.1-sol", 2, true)]})
}

/// The default answer text.
pub const DEFAULT_TEXT: &str = "hi from the fake backend";

/// The default answer of `GET /backend-api/wham/usage`, shaped like a live one: 38% of the
/// 5-hour window and 20% of the weekly window used.
pub fn usage_body() -> Value {
    json!({
        "plan_type": "plus",
        "rate_limit": {
            "allowed": true,
            "limit_reached": false,
            "primary_window": {"used_percent": 38, "limit_window_seconds": 18000,
                "reset_after_seconds": 7200, "reset_at": 4_102_444_800_i64},
            "secondary_window": {"used_percent": 20, "limit_window_seconds": 604_800,
                "reset_after_seconds": 345_600, "reset_at": 4_102_444_900_i64}
        },
        "credits": {"has_credits": false, "unlimited": false, "balance": "0"},
        "rate_limit_reached_type": null,
        "promo": null
    })
}

/// Decides whether a scripted reply answers a request (by its JSON body).
pub type Matcher = Arc<dyn Fn(&Value) -> bool + Send + Sync>;
/// Decides the reply to a request from its content (see [`FakeUpstream::respond_with`]).
pub type Responder = Arc<dyn Fn(&Recorded) -> Option<Reply> + Send + Sync>;

struct Inner {
    requests: Mutex<Vec<Recorded>>,
    replies: Mutex<VecDeque<Reply>>,
    rules: Mutex<Vec<(Matcher, Reply)>>,
    responder: Mutex<Option<Responder>>,
    pacing: Arc<Pacing>,
    models: Mutex<Value>,
    rejections: Mutex<Vec<Rejected>>,
    /// `x-codex-*` headers per `chatgpt-account-id`, added to that account's Codex answers.
    quota: Mutex<HashMap<String, Vec<(String, String)>>>,
    /// Whether a repeated `prompt_cache_key` reports cached tokens.
    prompt_cache: std::sync::atomic::AtomicBool,
    /// Whether WebSocket handshakes are taken (else answered `426`).
    websocket: std::sync::atomic::AtomicBool,
    /// Whether each WebSocket closes after its first answer.
    websocket_once: Arc<std::sync::atomic::AtomicBool>,
    /// `http://127.0.0.1:PORT` (or `https://`), where the WebSocket transport posts its messages.
    url: String,
}

/// A request the strict Codex backend refused, and how.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub body: Value,
    pub rejection: Rejection,
}

/// The running fake.
pub struct FakeUpstream {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeUpstream {
    /// Starts a fake on 127.0.0.1:0 (inside the current tokio runtime).
    pub async fn start() -> FakeUpstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (addr, inner, app) = Self::app(&listener, "http");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeUpstream { addr, inner, task }
    }

    /// Starts a fake that speaks HTTPS on 127.0.0.1:0 (see [`super::fake_tls`]), offering the
    /// `alpn` protocols (`h2`, `http/1.1`); `https://…` is then its [`FakeUpstream::url`].
    pub async fn start_tls(tls: &super::fake_tls::FakeTls, alpn: &[&[u8]]) -> FakeUpstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (addr, inner, app) = Self::app(&listener, "https");
        let task = tokio::spawn(tls.serve(listener, alpn, app));
        FakeUpstream { addr, inner, task }
    }

    fn app(listener: &tokio::net::TcpListener, scheme: &str) -> (SocketAddr, Arc<Inner>, Router) {
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Inner {
            requests: Mutex::new(Vec::new()),
            replies: Mutex::new(VecDeque::new()),
            rules: Mutex::new(Vec::new()),
            responder: Mutex::new(None),
            pacing: Arc::new(Pacing::new()),
            models: Mutex::new(codex_catalog()),
            rejections: Mutex::new(Vec::new()),
            quota: Mutex::new(HashMap::new()),
            prompt_cache: std::sync::atomic::AtomicBool::new(false),
            websocket: std::sync::atomic::AtomicBool::new(false),
            websocket_once: Arc::default(),
            url: format!("{scheme}://{addr}"),
        });
        let app = Router::new().fallback(handle).with_state(inner.clone());
        (addr, inner, app)
    }

    /// `http://127.0.0.1:PORT` (`https://` when started with [`FakeUpstream::start_tls`]).
    pub fn url(&self) -> String {
        self.inner.url.clone()
    }

    /// The Codex base URL on this fake.
    pub fn codex_base(&self) -> String {
        format!("{}/backend-api/codex", self.url())
    }

    /// Queues a reply for the next request (other than a catalog `GET …/models`).
    pub fn push(&self, reply: Reply) {
        self.inner.replies.lock().unwrap().push_back(reply);
    }

    /// Answers the first request whose body `matches` with `reply` (once), before the queue:
    /// for clients that also make side requests, whose order a queue cannot know.
    pub fn when(&self, matches: impl Fn(&Value) -> bool + Send + Sync + 'static, reply: Reply) {
        self.inner
            .rules
            .lock()
            .unwrap()
            .push((Arc::new(matches), reply));
    }

    /// Answers each request the queue has no reply for by asking `responder` first (for
    /// clients whose requests depend on earlier answers, e.g. a tool loop); the default answer
    /// when it returns `None`.
    pub fn respond_with(&self, responder: Responder) {
        *self.inner.responder.lock().unwrap() = Some(responder);
    }

    /// Makes this account's Codex answers carry `x-codex-*` quota headers: `five_hour` and
    /// `weekly` percent used, resetting in an hour and in three days.
    pub fn set_quota(&self, account_id: &str, five_hour: f64, weekly: f64) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let headers = vec![
            (
                "x-codex-primary-used-percent".to_owned(),
                five_hour.to_string(),
            ),
            (
                "x-codex-primary-window-minutes".to_owned(),
                "300".to_owned(),
            ),
            (
                "x-codex-primary-reset-at".to_owned(),
                (now + 3600).to_string(),
            ),
            (
                "x-codex-secondary-used-percent".to_owned(),
                weekly.to_string(),
            ),
            (
                "x-codex-secondary-window-minutes".to_owned(),
                "10080".to_owned(),
            ),
            (
                "x-codex-secondary-reset-at".to_owned(),
                (now + 3 * 86_400).to_string(),
            ),
            ("x-codex-plan-type".to_owned(), "plus".to_owned()),
        ];
        self.inner
            .quota
            .lock()
            .unwrap()
            .insert(account_id.to_owned(), headers);
    }

    /// Takes WebSocket handshakes on `…/codex/responses` (see [`super::fake_ws`]); without this
    /// they are answered `426 Upgrade Required`.
    pub fn speak_websocket(&self) {
        self.inner.websocket.store(true, Ordering::SeqCst);
    }

    /// Each WebSocket closes after its first answer (as a backend that drops idle sockets).
    pub fn close_websockets_after_one_answer(&self) {
        self.inner.websocket_once.store(true, Ordering::SeqCst);
    }

    /// From now on the default Codex answer reports [`CACHED_TOKENS`] cached input tokens for a
    /// `prompt_cache_key` it has seen before (as the backend's prompt cache would).
    pub fn simulate_prompt_cache(&self) {
        self.inner.prompt_cache.store(true, Ordering::SeqCst);
    }

    /// Lets one held stream continue.
    pub fn release(&self) {
        self.inner.pacing.release.add_permits(1);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.requests.lock().unwrap().clone()
    }

    /// The Codex requests the strict backend refused, in order.
    pub fn rejections(&self) -> Vec<Rejected> {
        self.inner.rejections.lock().unwrap().clone()
    }

    /// POST requests so far.
    pub fn posts(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST")
            .collect()
    }

    /// The bearer tokens of the POST requests, in order.
    pub fn post_bearers(&self) -> Vec<String> {
        self.posts()
            .iter()
            .map(|r| {
                r.header("authorization")
                    .unwrap_or_default()
                    .trim_start_matches("Bearer ")
                    .to_owned()
            })
            .collect()
    }

    /// Waits until `n` streams were dropped before they finished.
    pub async fn wait_dropped(&self, n: usize, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.inner.pacing.dropped_notify.notified();
            if self.inner.pacing.dropped.load(Ordering::SeqCst) >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.inner.pacing.dropped.load(Ordering::SeqCst) >= n;
            }
        }
    }

    /// Waits until the fake has seen `n` POSTs.
    pub async fn wait_posts(&self, n: usize, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if self.posts().len() >= n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }
}

async fn handle(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    if super::fake_ws::is_upgrade(req.headers()) {
        inner.requests.lock().unwrap().push(Recorded {
            method: "GET".to_owned(),
            path: req.uri().path().to_owned(),
            query: req.uri().query().map(str::to_owned),
            headers: req.headers().clone(),
            body: Bytes::new(),
        });
        if inner.websocket.load(Ordering::SeqCst) {
            let once = inner.websocket_once.load(Ordering::SeqCst);
            return super::fake_ws::accept(inner.url.clone(), once, req);
        }
        return json_response(426, &[], &json!({"detail": "Upgrade Required"}));
    }
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let recorded = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers.clone(),
        body,
    };
    let seen_key = {
        let mut requests = inner.requests.lock().unwrap();
        let key = recorded.json()["prompt_cache_key"]
            .as_str()
            .map(str::to_owned);
        let seen = key.is_some_and(|k| {
            requests
                .iter()
                .any(|r| r.json()["prompt_cache_key"].as_str() == Some(k.as_str()))
        });
        requests.push(recorded.clone());
        seen
    };

    if recorded.method == "GET" && recorded.path.ends_with("/models") {
        let models = inner.models.lock().unwrap().clone();
        let doc = if recorded
            .query
            .as_deref()
            .unwrap_or("")
            .contains("client_version")
        {
            models
        } else {
            json!({"object": "list", "data": [{"id": "remote-model", "object": "model", "created": 0, "owned_by": "fake"}]})
        };
        return json_response(200, &[], &doc);
    }
    if recorded.method == "POST" && recorded.path.ends_with("/backend-api/codex/responses") {
        let body = recorded.json();
        let catalog = inner.models.lock().unwrap().clone();
        if let Err(rejection) = strict::check(&body, &catalog) {
            let answer = json_response(rejection.status, &[], &rejection.body);
            inner
                .rejections
                .lock()
                .unwrap()
                .push(Rejected { body, rejection });
            return answer;
        }
    }
    let ruled = {
        let body = recorded.json();
        let mut rules = inner.rules.lock().unwrap();
        let hit = rules.iter().position(|(matches, _)| matches(&body));
        hit.map(|i| rules.remove(i).1)
    };
    let reply = ruled.or_else(|| inner.replies.lock().unwrap().pop_front());
    let responder = inner.responder.lock().unwrap().clone();
    let cached = if seen_key && inner.prompt_cache.load(Ordering::SeqCst) {
        CACHED_TOKENS
    } else {
        0
    };
    let reply = reply
        .or_else(|| responder.and_then(|r| r(&recorded)))
        .unwrap_or_else(|| default_reply(&recorded, cached));
    let quota = recorded
        .path
        .ends_with("/backend-api/codex/responses")
        .then(|| recorded.header("chatgpt-account-id"))
        .flatten()
        .and_then(|account| inner.quota.lock().unwrap().get(&account).cloned());
    let mut response = respond(inner.pacing.clone(), reply).await;
    for (name, value) in quota.into_iter().flatten() {
        response.headers_mut().insert(
            axum::http::HeaderName::try_from(name).unwrap(),
            axum::http::HeaderValue::try_from(value).unwrap(),
        );
    }
    response
}

fn default_reply(req: &Recorded, cached: u64) -> Reply {
    let body = req.json();
    if req.method == "GET"
        && (req.path.ends_with("/wham/usage") || req.path.ends_with("/api/codex/usage"))
    {
        return Reply::json(200, usage_body());
    }
    if req.path.ends_with("/responses/compact") {
        return Reply::json(
            200,
            json!({"output": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "compacted summary"}]}]}),
        );
    }
    if req.path.ends_with("/responses") {
        return Reply::sse(answer_events_with_cache(DEFAULT_TEXT, cached));
    }
    let streamed = body["stream"] == true;
    if req.path.ends_with("/chat/completions") && streamed {
        return Reply::sse(chat_events(DEFAULT_TEXT));
    }
    if req.path.ends_with("/messages") && streamed {
        return Reply::sse(anthropic_events(DEFAULT_TEXT));
    }
    if req.path.ends_with("/chat/completions") {
        return Reply::json(
            200,
            json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": DEFAULT_TEXT}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}}),
        );
    }
    if req.path.ends_with("/messages") {
        return Reply::json(
            200,
            json!({"id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
                "content": [{"type": "text", "text": DEFAULT_TEXT}], "stop_reason": "end_turn",
                "usage": {"input_tokens": 3, "output_tokens": 5}}),
        );
    }
    Reply::json(404, json!({"detail": "Not Found"}))
}
