//! A local stand-in for the Lambda Runtime API (`AWS_LAMBDA_RUNTIME_API`): it hands queued events
//! to a function process through `GET /2018-06-01/runtime/invocation/next` and records, with the
//! instant it arrived, every answer posted to `.../{id}/response` or `.../{id}/error`.
//!
//! It listens on 127.0.0.1 on a free port and stops when dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tokio::sync::{mpsc, Mutex};

/// How a function answered one event.
#[derive(Clone, Debug)]
pub struct Answer {
    pub request_id: String,
    /// `true` for `/response`, `false` for `/error` (and for an init error).
    pub ok: bool,
    pub body: String,
    /// When the answer reached the stand-in.
    pub at: Instant,
}

struct Shared {
    events: Mutex<mpsc::UnboundedReceiver<Value>>,
    answers: mpsc::UnboundedSender<Answer>,
    next_id: AtomicU64,
    /// Set when the process first asks for an event, so a binary that never polls is told apart.
    polled: mpsc::UnboundedSender<Instant>,
}

/// A running stand-in.
pub struct RuntimeApi {
    address: String,
    events: mpsc::UnboundedSender<Value>,
    answers: mpsc::UnboundedReceiver<Answer>,
    polled: mpsc::UnboundedReceiver<Instant>,
    _server: baton_testbed::LoopbackServer,
}

/// What waiting for an answer found.
#[derive(Debug)]
pub enum Waited {
    Answered(Answer),
    /// The process ended first (a placeholder binary, or a crash at start-up).
    Exited(String),
    TimedOut,
}

impl RuntimeApi {
    pub async fn start() -> anyhow::Result<RuntimeApi> {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (answers_tx, answers_rx) = mpsc::unbounded_channel();
        let (polled_tx, polled_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            events: Mutex::new(events_rx),
            answers: answers_tx,
            next_id: AtomicU64::new(1),
            polled: polled_tx,
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared);
        let server = baton_testbed::serve_on_loopback(app).await?;
        Ok(RuntimeApi {
            address: server.address().to_string(),
            events: events_tx,
            answers: answers_rx,
            polled: polled_rx,
            _server: server,
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Queues an event for the next `GET .../next`.
    pub fn queue(&self, event: Value) {
        let _ = self.events.send(event);
    }

    /// Whether the process has asked for an event yet.
    pub fn has_polled(&mut self) -> bool {
        self.first_poll().is_some()
    }

    /// When the process first asked for an event (the end of its init phase), if it has.
    pub fn first_poll(&mut self) -> Option<Instant> {
        self.polled.try_recv().ok()
    }

    /// Waits for the next answer while watching `process`: an answer, the process's end, or
    /// `limit` passing, whichever comes first.
    pub async fn wait_answer(
        &mut self,
        process: &mut std::process::Child,
        limit: Duration,
    ) -> Waited {
        let deadline = Instant::now() + limit;
        loop {
            match tokio::time::timeout(Duration::from_millis(5), self.answers.recv()).await {
                Ok(Some(answer)) => return Waited::Answered(answer),
                Ok(None) => return Waited::TimedOut,
                Err(_) => {}
            }
            if let Ok(Some(status)) = process.try_wait() {
                // An answer may have raced the exit.
                if let Ok(answer) = self.answers.try_recv() {
                    return Waited::Answered(answer);
                }
                return Waited::Exited(status.to_string());
            }
            if Instant::now() > deadline {
                return Waited::TimedOut;
            }
        }
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let _ = shared.polled.send(Instant::now());
    let event = shared.events.lock().await.recv().await;
    let Some(event) = event else {
        return (StatusCode::GONE, HeaderMap::new(), String::new());
    };
    let id = format!(
        "bench-{:08}",
        shared.next_id.fetch_add(1, Ordering::Relaxed)
    );
    let deadline = baton_core::Timestamp::now()
        .plus(baton_core::Span::MINUTE)
        .0;
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    put("lambda-runtime-aws-request-id", id);
    put("lambda-runtime-deadline-ms", deadline.to_string());
    put(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:eu-west-1:123456789012:function:bench".to_owned(),
    );
    put(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned(),
    );
    put("content-type", "application/json".to_owned());
    (StatusCode::OK, headers, event.to_string())
}

fn record(shared: &Shared, request_id: String, ok: bool, body: Bytes) -> StatusCode {
    let _ = shared.answers.send(Answer {
        request_id,
        ok,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    });
    StatusCode::ACCEPTED
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    record(&shared, id, true, body)
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    record(&shared, id, false, body)
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    record(&shared, "init".to_owned(), false, body)
}
