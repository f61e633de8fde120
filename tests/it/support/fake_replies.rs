//! The fake upstream's scripted replies ([`Reply`], SSE bodies as [`Step`]s) and how a reply
//! becomes a response: JSON at once, or an SSE body paced step by step (held until the test
//! releases it, dying, stalling or trickling keepalives), counting bodies dropped before they
//! finished ([`Pacing`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::Response;
use bitrouter::sse::format_event;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore};

/// What paces the fake's SSE bodies and counts the dropped ones.
pub struct Pacing {
    /// Permits for [`Step::Hold`]: one per `FakeUpstream::release`.
    pub release: Semaphore,
    /// Bodies dropped before they finished.
    pub dropped: AtomicUsize,
    /// Woken when one is.
    pub dropped_notify: Notify,
}

impl Pacing {
    /// Nothing released, nothing dropped.
    pub fn new() -> Pacing {
        Pacing {
            release: Semaphore::new(0),
            dropped: AtomicUsize::new(0),
            dropped_notify: Notify::new(),
        }
    }
}

/// One step of a scripted SSE body.
#[derive(Debug, Clone)]
pub enum Step {
    /// `event: <type>` + `data: <json>`.
    Event(Value),
    /// `data: <json>` with no event name (a Chat Completions chunk).
    Data(Value),
    /// Bytes sent as they are (e.g. `data: [DONE]\n\n`).
    Raw(&'static str),
    /// Wait until the test calls `FakeUpstream::release`.
    Hold,
    /// Drop the connection (the body errors).
    Die,
    /// Never send anything again.
    Stall,
    /// Send a keepalive comment every 50 ms, forever.
    Trickle,
}

/// A scripted reply.
#[derive(Clone)]
pub enum Reply {
    /// An SSE body.
    Sse {
        status: u16,
        headers: Vec<(String, String)>,
        steps: Vec<Step>,
        /// Send no `content-type` (the backend has been seen doing that).
        no_content_type: bool,
    },
    /// A JSON body.
    Json {
        status: u16,
        headers: Vec<(String, String)>,
        body: Value,
    },
    /// Never answer.
    Stall,
    /// Run a hook (e.g. rotate a token file), then reply.
    Hook(Arc<dyn Fn() + Send + Sync>, Box<Reply>),
}

impl Reply {
    /// A JSON error reply.
    pub fn json(status: u16, body: Value) -> Reply {
        Reply::Json {
            status,
            headers: Vec::new(),
            body,
        }
    }

    /// A 200 SSE reply.
    pub fn sse(steps: Vec<Step>) -> Reply {
        Reply::Sse {
            status: 200,
            headers: Vec::new(),
            steps,
            no_content_type: false,
        }
    }

    /// The backend's usage-limit answer.
    pub fn usage_limit(resets_at: i64) -> Reply {
        Reply::json(
            429,
            json!({"error": {
                "type": "usage_limit_reached",
                "message": "You've hit your usage limit.",
                "plan_type": "plus",
                "resets_at": resets_at,
                "resets_in_seconds": 60
            }}),
        )
    }
}

pub fn json_response(status: u16, headers: &[(String, String)], body: &Value) -> Response {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", "application/json");
    for (k, v) in headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder.body(Body::from(body.to_string())).unwrap()
}

/// Counts the stream as dropped unless it finished.
struct DropGuard {
    pacing: Arc<Pacing>,
    finished: bool,
}

impl DropGuard {
    fn mark_finished(&mut self) {
        self.finished = true;
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.pacing.dropped.fetch_add(1, Ordering::SeqCst);
            self.pacing.dropped_notify.notify_waiters();
        }
    }
}

/// The response a reply makes, its SSE steps paced by `pacing`.
pub fn respond(
    pacing: Arc<Pacing>,
    reply: Reply,
) -> std::pin::Pin<Box<dyn Future<Output = Response> + Send>> {
    Box::pin(async move {
        match reply {
            Reply::Hook(hook, reply) => {
                hook();
                respond(pacing, *reply).await
            }
            Reply::Stall => {
                std::future::pending::<()>().await;
                unreachable!()
            }
            Reply::Json {
                status,
                headers,
                body,
            } => json_response(status, &headers, &body),
            Reply::Sse {
                status,
                headers,
                steps,
                no_content_type,
            } => {
                let guard = DropGuard {
                    pacing: pacing.clone(),
                    finished: false,
                };
                let state = (VecDeque::from(steps), guard, false);
                let stream = futures_util::stream::unfold(
                    state,
                    |(mut steps, mut guard, trickling)| async move {
                        if trickling {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            return Some((
                                Ok::<_, std::io::Error>(Bytes::from_static(b": keepalive\n\n")),
                                (steps, guard, true),
                            ));
                        }
                        loop {
                            match steps.pop_front() {
                                None => {
                                    guard.mark_finished();
                                    return None;
                                }
                                Some(Step::Event(v)) => {
                                    let kind = v["type"].as_str().unwrap_or("message");
                                    let frame = format_event(Some(kind), &v.to_string());
                                    return Some((Ok(Bytes::from(frame)), (steps, guard, false)));
                                }
                                Some(Step::Data(v)) => {
                                    let frame = format_event(None, &v.to_string());
                                    return Some((Ok(Bytes::from(frame)), (steps, guard, false)));
                                }
                                Some(Step::Raw(raw)) => {
                                    return Some((
                                        Ok(Bytes::from_static(raw.as_bytes())),
                                        (steps, guard, false),
                                    ));
                                }
                                Some(Step::Hold) => {
                                    guard.pacing.release.acquire().await.unwrap().forget();
                                }
                                Some(Step::Die) => {
                                    // Let hyper flush what was sent before the connection dies.
                                    tokio::time::sleep(Duration::from_millis(100)).await;
                                    guard.mark_finished();
                                    return Some((
                                        Err(std::io::Error::other("scripted death")),
                                        (steps, guard, false),
                                    ));
                                }
                                Some(Step::Stall) => std::future::pending::<()>().await,
                                Some(Step::Trickle) => {
                                    return Some((
                                        Ok(Bytes::from_static(b": keepalive\n\n")),
                                        (steps, guard, true),
                                    ));
                                }
                            }
                        }
                    },
                );
                let mut builder = Response::builder().status(StatusCode::from_u16(status).unwrap());
                if !no_content_type {
                    builder = builder.header("content-type", "text/event-stream");
                }
                for (k, v) in &headers {
                    builder = builder.header(k.as_str(), v.as_str());
                }
                builder.body(Body::from_stream(stream.boxed())).unwrap()
            }
        }
    })
}
