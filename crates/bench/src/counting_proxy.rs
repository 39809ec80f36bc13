//! Counts the AWS requests a function process makes: a pass-through HTTP proxy on 127.0.0.1 in
//! front of the emulator (the process's `AWS_ENDPOINT_URL`), tallying each request by service and
//! operation (`dynamodb:Query`, `sns:Publish`, `events:PutEvents`...). Counting on the emulator
//! side measures the release binary exactly as built, with no interceptor compiled in.
//!
//! Also answers, on any other path, what the Slack Web API and a CloudFormation response URL
//! would (`{"ok":true,...}`), so slack-notifier and cfn-responder have somewhere to post.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Router;
use baton_testbed::fault_proxy::{aws_operation, Upstream};

/// Request tallies by `service:Operation`.
pub type Tally = BTreeMap<String, u64>;

struct Shared {
    upstream: Upstream,
    tally: Mutex<Tally>,
    busy: Mutex<Busy>,
}

/// How long the emulator has been answering: the union of the intervals during which at least
/// one forwarded AWS request was in flight (overlapping requests count once), and the most
/// requests ever in flight together.
#[derive(Debug, Default)]
struct Busy {
    in_flight: u32,
    since: Option<Instant>,
    total: Duration,
    peak: u32,
    /// How many times the emulator went from idle to busy: requests that overlap count once, so
    /// this is the number of round trips on the caller's critical path.
    episodes: u64,
}

impl Busy {
    fn enter(&mut self, at: Instant) {
        if self.in_flight == 0 {
            self.since = Some(at);
            self.episodes += 1;
        }
        self.in_flight += 1;
        self.peak = self.peak.max(self.in_flight);
    }

    fn leave(&mut self, at: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if self.in_flight == 0 {
            if let Some(since) = self.since.take() {
                self.total += at.saturating_duration_since(since);
            }
        }
    }

    /// The total at `at`, including a busy interval still open.
    fn at(&self, at: Instant) -> Duration {
        self.total
            + self
                .since
                .map(|s| at.saturating_duration_since(s))
                .unwrap_or_default()
    }
}

/// Leaves the busy interval when dropped, also when the forwarding future is cancelled.
struct InFlight<'a>(&'a Mutex<Busy>);

impl<'a> InFlight<'a> {
    fn enter(busy: &'a Mutex<Busy>) -> InFlight<'a> {
        if let Ok(mut b) = busy.lock() {
            b.enter(Instant::now());
        }
        InFlight(busy)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Ok(mut b) = self.0.lock() {
            b.leave(Instant::now());
        }
    }
}

/// A running proxy.
pub struct CountingProxy {
    endpoint: String,
    shared: Arc<Shared>,
    _server: baton_testbed::LoopbackServer,
}

impl CountingProxy {
    /// Starts a proxy forwarding to `upstream` (`http://127.0.0.1:<moto port>`).
    pub async fn start(upstream: &str) -> anyhow::Result<CountingProxy> {
        let shared = Arc::new(Shared {
            upstream: Upstream::new(upstream)?,
            tally: Mutex::new(Tally::new()),
            busy: Mutex::new(Busy::default()),
        });
        let app = Router::new()
            .fallback(forward)
            .with_state(Arc::clone(&shared));
        let server = baton_testbed::serve_on_loopback(app).await?;
        Ok(CountingProxy {
            endpoint: server.url(),
            shared,
            _server: server,
        })
    }

    /// `http://127.0.0.1:<port>`
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The tallies so far.
    pub fn tally(&self) -> Tally {
        self.shared
            .tally
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    /// How long the emulator has spent answering AWS requests so far (overlaps counted once).
    pub fn emulator_time(&self) -> Duration {
        self.shared
            .busy
            .lock()
            .map(|b| b.at(Instant::now()))
            .unwrap_or_default()
    }

    /// Round trips so far: busy intervals of the emulator (overlapping requests count once).
    pub fn round_trips(&self) -> u64 {
        self.shared
            .busy
            .lock()
            .map(|b| b.episodes)
            .unwrap_or_default()
    }

    /// The most AWS requests in flight together since [`CountingProxy::reset_peak`].
    pub fn peak_in_flight(&self) -> u32 {
        self.shared.busy.lock().map(|b| b.peak).unwrap_or_default()
    }

    /// Starts a new peak measurement.
    pub fn reset_peak(&self) {
        if let Ok(mut b) = self.shared.busy.lock() {
            b.peak = b.in_flight;
        }
    }

    /// Requests to one service (`dynamodb`, `sns`, `events`, `secretsmanager`) since `before`.
    pub fn since(&self, before: &Tally, service: &str) -> u64 {
        let prefix = format!("{service}:");
        self.tally()
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(k, v)| v - before.get(k).copied().unwrap_or(0))
            .sum()
    }
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, 64 * 1024 * 1024).await.unwrap_or_default();
    let Some(op) = aws_operation(&parts.headers, &body) else {
        // Not an AWS call: the Slack Web API or a CloudFormation response URL.
        if let Ok(mut tally) = shared.tally.lock() {
            *tally.entry("http:stand-in".to_owned()).or_default() += 1;
        }
        return Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .body(Body::from(
                r#"{"ok":true,"channel":"C0BENCH","ts":"1700000000.000100"}"#,
            ))
            .unwrap_or_default();
    };
    if let Ok(mut tally) = shared.tally.lock() {
        *tally.entry(op).or_default() += 1;
    }
    let in_flight = InFlight::enter(&shared.busy);
    let answer = shared.upstream.pass(parts, body).await;
    drop(in_flight);
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_time_counts_overlapping_requests_once_and_keeps_the_peak() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut busy = Busy::default();
        // Two requests overlapping over 0..30 ms, then idle, then one over 50..60 ms.
        busy.enter(ms(0));
        busy.enter(ms(10));
        busy.leave(ms(20));
        assert_eq!(busy.at(ms(25)), Duration::from_millis(25), "still busy");
        busy.leave(ms(30));
        assert_eq!(
            busy.at(ms(45)),
            Duration::from_millis(30),
            "idle time is not counted"
        );
        busy.enter(ms(50));
        busy.leave(ms(60));
        assert_eq!(busy.at(ms(100)), Duration::from_millis(40));
        assert_eq!(busy.peak, 2);
        assert_eq!(busy.in_flight, 0);
        assert_eq!(busy.episodes, 2, "three requests, two round trips");
    }
}
