//! Counts the AWS requests a function process makes: a pass-through HTTP proxy on 127.0.0.1 in
//! front of the emulator (the process's `AWS_ENDPOINT_URL`), tallying each request by service and
//! operation (`dynamodb:Query`, `sns:Publish`, `events:PutEvents`...). Counting on the emulator
//! side measures the release binary exactly as built, with no interceptor compiled in.
//!
//! Also answers, on any other path, what the Slack Web API and a CloudFormation response URL
//! would (`{"ok":true,...}`), so slack-notifier and cfn-responder have somewhere to post.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::Response;
use axum::Router;

/// Request tallies by `service:Operation`.
pub type Tally = BTreeMap<String, u64>;

struct Shared {
    upstream: String,
    client: reqwest::Client,
    tally: Mutex<Tally>,
}

/// A running proxy.
pub struct CountingProxy {
    endpoint: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl CountingProxy {
    /// Starts a proxy forwarding to `upstream` (`http://127.0.0.1:<moto port>`).
    pub async fn start(upstream: &str) -> anyhow::Result<CountingProxy> {
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder().build()?,
            tally: Mutex::new(Tally::new()),
        });
        let app = Router::new()
            .fallback(forward)
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(CountingProxy {
            endpoint,
            shared,
            server,
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

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// `service:Operation` of an AWS request: JSON protocols name it in `X-Amz-Target`
/// (`DynamoDB_20120810.Query`), query protocols (SNS) in the form body's `Action`.
fn operation(target: Option<&str>, body: &[u8]) -> Option<String> {
    if let Some(target) = target {
        let (prefix, op) = target.split_once('.')?;
        let service = match prefix {
            p if p.starts_with("DynamoDB") => "dynamodb",
            "AWSEvents" => "events",
            "secretsmanager" => "secretsmanager",
            other => other,
        };
        return Some(format!("{service}:{op}"));
    }
    let text = std::str::from_utf8(body).ok()?;
    let action = text
        .split('&')
        .find_map(|pair| pair.strip_prefix("Action="))?;
    Some(format!("sns:{action}"))
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, 64 * 1024 * 1024).await.unwrap_or_default();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    let is_aws = parts.headers.contains_key("authorization");
    let Some(op) = operation(target, &body).filter(|_| is_aws) else {
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
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut upstream = shared
        .client
        .request(parts.method.clone(), format!("{}{path}", shared.upstream))
        .body(body);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            upstream = upstream.header(name, value);
        }
    }
    match upstream.send().await {
        Ok(answer) => {
            let status = answer.status();
            let headers = answer.headers().clone();
            let bytes = answer.bytes().await.unwrap_or_default();
            let mut builder = Response::builder().status(status);
            for (name, value) in &headers {
                if !hop_by_hop(name) {
                    builder = builder.header(name, value);
                }
            }
            builder.body(Body::from(bytes)).unwrap_or_default()
        }
        Err(e) => Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(Body::from(format!("emulator unreachable: {e}")))
            .unwrap_or_default(),
    }
}

fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "content-length" | "transfer-encoding" | "connection" | "keep-alive"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_operations_of_json_and_query_protocols() {
        assert_eq!(
            operation(Some("DynamoDB_20120810.Query"), b"{}").as_deref(),
            Some("dynamodb:Query")
        );
        assert_eq!(
            operation(Some("AWSEvents.PutEvents"), b"{}").as_deref(),
            Some("events:PutEvents")
        );
        assert_eq!(
            operation(None, b"Action=Publish&Version=2010-03-31").as_deref(),
            Some("sns:Publish")
        );
        assert_eq!(operation(None, b"{\"channel\":\"x\"}"), None);
    }
}
