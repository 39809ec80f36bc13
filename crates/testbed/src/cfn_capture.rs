//! A stand-in for the pre-signed S3 URL CloudFormation gives a custom resource: it records every
//! PUT (path with query, Content-Type, body) and answers 200, or 500 for the next `n` PUTs when
//! told to. It listens on 127.0.0.1 on a free port and stops when dropped.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::Router;
use tokio::sync::Notify;

/// One PUT as received.
#[derive(Clone, Debug)]
pub struct CapturedPut {
    /// Path and query, as sent (the query carries the pre-signed URL's signature).
    pub path_and_query: String,
    /// `None` when the header was absent; `Some("")` when present and empty.
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// What the stand-in answered.
    pub answered: u16,
    pub received_at: Instant,
}

impl CapturedPut {
    /// The body as JSON (`Value::Null` if it is not JSON, which no valid answer is).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Default)]
struct State {
    puts: Vec<CapturedPut>,
    fail_next: usize,
}

/// The running stand-in.
pub struct CfnCapture {
    base_url: String,
    state: Arc<Mutex<State>>,
    arrived: Arc<Notify>,
    _server: crate::LoopbackServer,
}

impl CfnCapture {
    /// Starts listening on 127.0.0.1 on a free port.
    pub async fn start() -> anyhow::Result<CfnCapture> {
        let state = Arc::new(Mutex::new(State::default()));
        let arrived = Arc::new(Notify::new());
        let (s, a) = (state.clone(), arrived.clone());
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (state, arrived) = (s.clone(), a.clone());
                async move {
                    if method != Method::PUT {
                        return StatusCode::METHOD_NOT_ALLOWED;
                    }
                    let status = {
                        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                        let status = if st.fail_next > 0 {
                            st.fail_next -= 1;
                            StatusCode::INTERNAL_SERVER_ERROR
                        } else {
                            StatusCode::OK
                        };
                        st.puts.push(CapturedPut {
                            path_and_query: uri
                                .path_and_query()
                                .map(|p| p.as_str().to_owned())
                                .unwrap_or_default(),
                            content_type: headers
                                .get(header::CONTENT_TYPE)
                                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
                            body: body.to_vec(),
                            answered: status.as_u16(),
                            received_at: Instant::now(),
                        });
                        status
                    };
                    arrived.notify_waiters();
                    status
                }
            },
        );
        let server = crate::serve_on_loopback(app).await?;
        Ok(CfnCapture {
            base_url: server.url(),
            state,
            arrived,
            _server: server,
        })
    }

    /// `http://127.0.0.1:<port>`; any path and query are accepted.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Answers the next `n` PUTs with HTTP 500.
    pub fn fail_next(&self, n: usize) {
        self.lock().fail_next = n;
    }

    /// Every PUT received so far, including those answered 500.
    pub fn puts(&self) -> Vec<CapturedPut> {
        self.lock().puts.clone()
    }

    /// The PUTs that were accepted (answered 200): what CloudFormation would have read.
    pub fn accepted(&self) -> Vec<CapturedPut> {
        self.puts()
            .into_iter()
            .filter(|p| p.answered == 200)
            .collect()
    }

    /// Waits until at least `n` PUTs were accepted, or `timeout` passes; returns the accepted PUTs.
    pub async fn wait_for_accepted(&self, n: usize, timeout: Duration) -> Vec<CapturedPut> {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.arrived.notified();
            let accepted = self.accepted();
            if accepted.len() >= n {
                return accepted;
            }
            if tokio::time::timeout_at(until, notified).await.is_err() {
                return self.accepted();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
