//! A local stand-in for Slack's Web API (`chat.postMessage`, `chat.update`) on 127.0.0.1, port 0.
//!
//! It behaves like Slack where baton relies on it: checks the bearer token (`invalid_auth`,
//! `not_authed`), answers with the channel's id and a fresh `ts`, keeps threads (`thread_ts` must
//! name a message of that channel), requires a channel id and an existing `ts` for `chat.update`.
//! It records every call, and can be told to fail: HTTP 429 with Retry-After, HTTP 500, or an
//! error code, for the next N calls or for one channel. It stops when dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// A way to fail a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 429 with `Retry-After: <secs>` and `{"ok":false,"error":"ratelimited"}`.
    RateLimited { retry_after_secs: u64 },
    /// HTTP 500.
    ServerError,
    /// HTTP 200 with `{"ok":false,"error":<code>}`.
    Error(String),
}

/// One call as the stand-in received it.
#[derive(Clone, Debug)]
pub struct Call {
    /// `chat.postMessage` or `chat.update`.
    pub method: String,
    /// The bearer token sent, if any.
    pub token: Option<String>,
    pub body: Value,
    /// The HTTP status answered.
    pub http_status: u16,
    /// The Slack error answered, if any.
    pub error: Option<String>,
}

/// A message as it now stands in a channel.
#[derive(Clone, Debug)]
pub struct Message {
    pub channel_id: String,
    pub ts: String,
    /// The root's `ts` when this is a reply.
    pub thread_ts: Option<String>,
    pub text: String,
    pub blocks: Value,
    /// How many times `chat.update` changed it.
    pub edits: usize,
    pub unfurl_links: Option<bool>,
}

#[derive(Default)]
struct Inner {
    token: String,
    calls: Vec<Call>,
    messages: Vec<Message>,
    channel_ids: HashMap<String, String>,
    next_ts: u64,
    next_faults: VecDeque<Fault>,
    channel_faults: HashMap<String, Fault>,
}

type Shared = Arc<Mutex<Inner>>;

fn lock(state: &Shared) -> MutexGuard<'_, Inner> {
    match state.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The running stand-in.
pub struct SlackStandIn {
    base_url: String,
    state: Shared,
    stop: Option<oneshot::Sender<()>>,
}

impl SlackStandIn {
    /// Starts a stand-in that accepts the bot token `token`.
    pub async fn start(token: &str) -> std::io::Result<SlackStandIn> {
        let state: Shared = Arc::new(Mutex::new(Inner {
            token: token.to_owned(),
            next_ts: 1,
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/api/chat.postMessage", post(post_message))
            .route("/api/chat.update", post(update))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(SlackStandIn {
            base_url: format!("http://{addr}/api"),
            state,
            stop: Some(stop),
        })
    }

    /// The Web API base URL, e.g. `http://127.0.0.1:PORT/api` (for `BATON_SLACK_API_URL`).
    pub fn url(&self) -> &str {
        &self.base_url
    }

    /// From now on only `token` is accepted (a rotated token).
    pub fn set_token(&self, token: &str) {
        lock(&self.state).token = token.to_owned();
    }

    /// The next `n` calls fail with `fault` (after those already queued).
    pub fn fail_next(&self, n: usize, fault: Fault) {
        let mut inner = lock(&self.state);
        for _ in 0..n {
            inner.next_faults.push_back(fault.clone());
        }
    }

    /// Every call for `channel` (name or id) fails with `fault`.
    pub fn fail_channel(&self, channel: &str, fault: Fault) {
        lock(&self.state)
            .channel_faults
            .insert(channel.trim_start_matches('#').to_owned(), fault);
    }

    /// Takes back every fault set (the next calls succeed).
    pub fn clear_faults(&self) {
        let mut inner = lock(&self.state);
        inner.next_faults.clear();
        inner.channel_faults.clear();
    }

    /// Every call received, in order.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.state).calls.clone()
    }

    /// The messages now in `channel` (name or id), in posting order.
    pub fn messages(&self, channel: &str) -> Vec<Message> {
        let inner = lock(&self.state);
        let name = channel.trim_start_matches('#');
        let id = inner
            .channel_ids
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_owned());
        inner
            .messages
            .iter()
            .filter(|m| m.channel_id == id)
            .cloned()
            .collect()
    }

    /// The channel's id, once something was posted to it.
    pub fn channel_id(&self, channel: &str) -> Option<String> {
        lock(&self.state)
            .channel_ids
            .get(channel.trim_start_matches('#'))
            .cloned()
    }
}

impl Drop for SlackStandIn {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
}

/// Records the call and decides whether it fails; `Some` is the failing answer.
fn admit(inner: &mut Inner, method: &str, headers: &HeaderMap, body: &Value) -> Option<Response> {
    let token = bearer(headers);
    let channel = body
        .get("channel")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim_start_matches('#')
        .to_owned();
    let channel_name = inner
        .channel_ids
        .iter()
        .find(|(_, id)| **id == channel)
        .map(|(name, _)| name.clone())
        .unwrap_or_else(|| channel.clone());
    let fault = if token.is_none() {
        Some(Fault::Error("not_authed".into()))
    } else if token.as_deref() != Some(inner.token.as_str()) {
        Some(Fault::Error("invalid_auth".into()))
    } else if let Some(f) = inner.next_faults.pop_front() {
        Some(f)
    } else {
        inner.channel_faults.get(&channel_name).cloned()
    };
    let (http_status, error, response) = match fault {
        None => (200, None, None),
        Some(Fault::RateLimited { retry_after_secs }) => (
            429,
            Some("ratelimited".to_owned()),
            Some(
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", retry_after_secs.to_string())],
                    Json(json!({"ok": false, "error": "ratelimited"})),
                )
                    .into_response(),
            ),
        ),
        Some(Fault::ServerError) => (
            500,
            None,
            Some(answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"ok": false, "error": "internal_error"}),
            )),
        ),
        Some(Fault::Error(code)) => (
            200,
            Some(code.clone()),
            Some(answer(StatusCode::OK, json!({"ok": false, "error": code}))),
        ),
    };
    inner.calls.push(Call {
        method: method.to_owned(),
        token,
        body: body.clone(),
        http_status,
        error,
    });
    response
}

/// Marks the last recorded call as answered with `error`.
fn refuse(inner: &mut Inner, error: &str) -> Response {
    if let Some(call) = inner.calls.last_mut() {
        call.error = Some(error.to_owned());
    }
    answer(StatusCode::OK, json!({"ok": false, "error": error}))
}

async fn post_message(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut inner = lock(&state);
    if let Some(r) = admit(&mut inner, "chat.postMessage", &headers, &body) {
        return r;
    }
    let Some(channel) = body.get("channel").and_then(Value::as_str) else {
        return refuse(&mut inner, "channel_not_found");
    };
    let name = channel.trim_start_matches('#').to_owned();
    let known_id = inner.channel_ids.values().any(|id| *id == name);
    let channel_id = if known_id {
        name
    } else {
        let next = inner.channel_ids.len() + 1;
        inner
            .channel_ids
            .entry(name)
            .or_insert_with(|| format!("C{next:08}"))
            .clone()
    };
    let text = body.get("text").and_then(Value::as_str).unwrap_or_default();
    let blocks = body.get("blocks").cloned().unwrap_or(Value::Null);
    if text.is_empty() && blocks.is_null() {
        return refuse(&mut inner, "no_text");
    }
    if text.chars().count() > 40_000 {
        return refuse(&mut inner, "msg_too_long");
    }
    let thread_ts = body
        .get("thread_ts")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(root) = &thread_ts {
        let exists = inner
            .messages
            .iter()
            .any(|m| m.channel_id == channel_id && &m.ts == root && m.thread_ts.is_none());
        if !exists {
            return refuse(&mut inner, "thread_not_found");
        }
    }
    let ts = format!("1700000000.{:06}", inner.next_ts);
    inner.next_ts += 1;
    inner.messages.push(Message {
        channel_id: channel_id.clone(),
        ts: ts.clone(),
        thread_ts,
        text: text.to_owned(),
        blocks,
        edits: 0,
        unfurl_links: body.get("unfurl_links").and_then(Value::as_bool),
    });
    answer(
        StatusCode::OK,
        json!({"ok": true, "channel": channel_id, "ts": ts}),
    )
}

async fn update(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut inner = lock(&state);
    if let Some(r) = admit(&mut inner, "chat.update", &headers, &body) {
        return r;
    }
    let channel = body
        .get("channel")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let ts = body
        .get("ts")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    // Like Slack, chat.update takes a channel id, not a name.
    if !inner.channel_ids.values().any(|id| *id == channel) {
        return refuse(&mut inner, "channel_not_found");
    }
    let text = body
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let blocks = body.get("blocks").cloned().unwrap_or(Value::Null);
    let Some(message) = inner
        .messages
        .iter_mut()
        .find(|m| m.channel_id == channel && m.ts == ts)
    else {
        return refuse(&mut inner, "message_not_found");
    };
    message.text = text;
    message.blocks = blocks;
    message.edits += 1;
    answer(
        StatusCode::OK,
        json!({"ok": true, "channel": channel, "ts": ts}),
    )
}
