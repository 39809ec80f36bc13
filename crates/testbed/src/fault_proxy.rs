//! Faults at the HTTP level: a pass-through proxy on 127.0.0.1 between the functions and the
//! emulator (or the Slack stand-in) that fails the requests a rule matches, so the real adapters
//! meet real error answers.
//!
//! A rule matches on the AWS operation (`dynamodb:UpdateItem`, `sns:Publish`, or an HTTP path for
//! non-AWS calls such as `/chat.postMessage`) and on strings the request body must contain. Its
//! fault is one of:
//! - [`Fault::Before`]: answered with a server error; the emulator never sees the request;
//! - [`Fault::After`]: forwarded and applied, then its answer is replaced by a server error (the
//!   response was lost: the caller cannot know the write happened);
//! - [`Fault::Throttle`]: answered as throttled (`ThrottlingException`, or HTTP 429 for Slack);
//! - [`Fault::Answer`]: answered with a chosen error (e.g. a cancelled transaction's reasons).
//!
//! A rule fires a given number of times or until cleared, and counts how often it fired, so a test
//! can check that the fault it is about really happened.

use std::sync::{Arc, Mutex};

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use axum::response::Response;
use axum::Router;

/// What a matching request meets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Failed before it reaches the emulator.
    Before,
    /// Applied by the emulator, then its response is lost.
    After,
    /// Refused as throttled.
    Throttle,
    /// Answered with this HTTP status and (AWS JSON) body instead of reaching the emulator, e.g.
    /// a `TransactionCanceledException` with chosen cancellation reasons.
    Answer { status: u16, body: &'static str },
}

/// How many times a rule fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Times {
    Exactly(u32),
    UntilCleared,
}

/// Which requests a rule fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// `service:Operation` (e.g. `dynamodb:TransactWriteItems`) or an HTTP path (`/chat.update`).
    pub operation: String,
    /// Strings the request body must all contain (e.g. a key like `post#RUNNING`).
    pub body_contains: Vec<String>,
    pub fault: Fault,
    pub times: Times,
}

impl Rule {
    /// A rule for `operation` whose body contains every string of `body_contains`.
    pub fn new(operation: &str, body_contains: &[&str], fault: Fault, times: Times) -> Rule {
        Rule {
            operation: operation.to_owned(),
            body_contains: body_contains.iter().map(|s| (*s).to_owned()).collect(),
            fault,
            times,
        }
    }

    fn matches(&self, operation: &str, body: &str) -> bool {
        self.operation == operation && self.body_contains.iter().all(|s| body.contains(s))
    }
}

/// A rule as installed: its handle for [`FaultProxy::fired`] and [`FaultProxy::clear`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleId(usize);

struct Installed {
    rule: Rule,
    fired: u32,
    cleared: bool,
}

impl Installed {
    fn armed(&self) -> bool {
        !self.cleared
            && match self.rule.times {
                Times::Exactly(n) => self.fired < n,
                Times::UntilCleared => true,
            }
    }
}

struct Shared {
    upstream: Upstream,
    rules: Mutex<Vec<Installed>>,
}

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    url: String,
    shared: Arc<Shared>,
    _server: crate::LoopbackServer,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port forwarding to `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> anyhow::Result<FaultProxy> {
        let shared = Arc::new(Shared {
            upstream: Upstream::new(upstream)?,
            rules: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .fallback(forward)
            .with_state(Arc::clone(&shared));
        let server = crate::serve_on_loopback(app).await?;
        Ok(FaultProxy {
            url: server.url(),
            shared,
            _server: server,
        })
    }

    /// `http://127.0.0.1:<port>`: the endpoint to give the functions' clients.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `config` with its endpoint moved to this proxy: clients built from it meet its faults.
    pub fn in_front_of(&self, config: &aws_config::SdkConfig) -> aws_config::SdkConfig {
        config.to_builder().endpoint_url(&self.url).build()
    }

    /// Installs `rule`; later rules are looked at after earlier ones.
    pub fn inject(&self, rule: Rule) -> RuleId {
        let mut rules = self.lock();
        rules.push(Installed {
            rule,
            fired: 0,
            cleared: false,
        });
        RuleId(rules.len() - 1)
    }

    /// How many requests the rule has failed.
    pub fn fired(&self, id: RuleId) -> u32 {
        self.lock().get(id.0).map(|r| r.fired).unwrap_or(0)
    }

    /// Disarms the rule.
    pub fn clear(&self, id: RuleId) {
        if let Some(r) = self.lock().get_mut(id.0) {
            r.cleared = true;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Installed>> {
        // A test that panicked while holding the lock has failed already; its rules still count.
        self.shared.rules.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `service:Operation` of an AWS request: JSON protocols name it in `X-Amz-Target`
/// (`DynamoDB_20120810.Query`), query protocols (SNS) in the form body's `Action`. `None` for a
/// request that is not an AWS call.
pub fn aws_operation(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    if !headers.contains_key("authorization") {
        return None;
    }
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let (prefix, op) = target.split_once('.')?;
        let service = match prefix {
            p if p.starts_with("DynamoDB") => "dynamodb",
            "AWSEvents" => "events",
            "secretsmanager" => "secretsmanager",
            "AWSStepFunctions" => "states",
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

/// Which installed rule (if any) fires for this request; counts the firing.
fn firing(shared: &Shared, operation: &str, body: &str) -> Option<Fault> {
    let mut rules = shared.rules.lock().unwrap_or_else(|e| e.into_inner());
    let rule = rules
        .iter_mut()
        .find(|r| r.armed() && r.rule.matches(operation, body))?;
    rule.fired += 1;
    Some(rule.rule.fault)
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, 64 * 1024 * 1024).await.unwrap_or_default();
    let is_aws = aws_operation(&parts.headers, &body);
    let operation = is_aws
        .clone()
        .unwrap_or_else(|| parts.uri.path().to_owned());
    let fault = firing(&shared, &operation, &String::from_utf8_lossy(&body));
    let aws = is_aws.is_some();
    match fault {
        Some(Fault::Before) => return server_error(aws),
        Some(Fault::Throttle) => return throttled(aws, operation.starts_with("sns:")),
        Some(Fault::Answer { status, body }) => {
            return Response::builder()
                .status(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST))
                .header("content-type", "application/x-amz-json-1.0")
                .body(Body::from(body))
                .unwrap_or_default()
        }
        Some(Fault::After) | None => {}
    }
    let answer = shared.upstream.pass(parts, body).await;
    if fault == Some(Fault::After) {
        return server_error(aws);
    }
    answer
}

/// Where a proxy forwards its requests: the upstream server and one HTTP client for it.
pub struct Upstream {
    base: String,
    client: reqwest::Client,
}

impl Upstream {
    /// `base`: `http://host:port` (a trailing slash is dropped).
    pub fn new(base: &str) -> anyhow::Result<Upstream> {
        Ok(Upstream {
            base: base.trim_end_matches('/').to_owned(),
            client: baton_adapters::http::client()?,
        })
    }

    /// Forwards a request (its method, path and query, headers and `body`) and returns the
    /// answer as it came (hop-by-hop headers left out), or HTTP 502 when the upstream cannot be
    /// reached.
    pub async fn pass(&self, parts: axum::http::request::Parts, body: Bytes) -> Response {
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        pass(
            &self.client,
            &self.base,
            parts.method,
            path,
            &parts.headers,
            body,
        )
        .await
    }
}

async fn pass(
    client: &reqwest::Client,
    upstream: &str,
    method: Method,
    path: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let mut upstream = client
        .request(method, format!("{upstream}{path}"))
        .body(body);
    for (name, value) in headers {
        if name != "host" && name != "content-length" {
            upstream = upstream.header(name, value);
        }
    }
    let answered = async {
        let answer = upstream.send().await?;
        let status = answer.status();
        let headers = answer.headers().clone();
        let bytes = answer.bytes().await?;
        Ok::<_, reqwest::Error>((status, headers, bytes))
    }
    .await;
    match answered {
        Ok((status, headers, bytes)) => {
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
            .body(Body::from(format!("upstream unreachable: {e}")))
            .unwrap_or_default(),
    }
}

/// An HTTP 500 as the service would send it (the AWS JSON error shape, which the query protocol
/// clients also read as a server error), or a bare 500 for Slack.
fn server_error(aws: bool) -> Response {
    let body = if aws {
        r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected by the fault proxy"}"#
    } else {
        "injected by the fault proxy"
    };
    Response::builder()
        .status(StatusCode::INTERNAL_SERVER_ERROR)
        .header("content-type", "application/x-amz-json-1.0")
        .body(Body::from(body))
        .unwrap_or_default()
}

/// A throttling answer in the protocol of the service: SNS's query protocol answers in XML, the
/// JSON protocols with `__type`, Slack with HTTP 429.
fn throttled(aws: bool, query_protocol: bool) -> Response {
    if aws && query_protocol {
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .header("content-type", "text/xml")
            .body(Body::from(
                r#"<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded (injected)</Message></Error><RequestId>injected</RequestId></ErrorResponse>"#,
            ))
            .unwrap_or_default();
    }
    if aws {
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .header("content-type", "application/x-amz-json-1.0")
            .body(Body::from(
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded (injected)"}"#,
            ))
            .unwrap_or_default();
    }
    Response::builder()
        .status(StatusCode::TOO_MANY_REQUESTS)
        .header("retry-after", "1")
        .body(Body::from(r#"{"ok":false,"error":"ratelimited"}"#))
        .unwrap_or_default()
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
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "AWS4-HMAC-SHA256 x".parse().unwrap());
        assert_eq!(
            aws_operation(&headers, b"Action=Publish&Version=2010-03-31").as_deref(),
            Some("sns:Publish")
        );
        headers.insert("x-amz-target", "DynamoDB_20120810.Query".parse().unwrap());
        assert_eq!(
            aws_operation(&headers, b"{}").as_deref(),
            Some("dynamodb:Query")
        );
        headers.insert("x-amz-target", "AWSEvents.PutEvents".parse().unwrap());
        assert_eq!(
            aws_operation(&headers, b"{}").as_deref(),
            Some("events:PutEvents")
        );
        assert_eq!(
            aws_operation(&HeaderMap::new(), b"{}"),
            None,
            "not signed: not AWS"
        );
    }

    #[test]
    fn a_rule_fires_its_count_then_stops() {
        let rule = Rule::new(
            "dynamodb:UpdateItem",
            &["post#RUNNING"],
            Fault::After,
            Times::Exactly(2),
        );
        let mut installed = Installed {
            rule,
            fired: 0,
            cleared: false,
        };
        assert!(installed
            .rule
            .matches("dynamodb:UpdateItem", "{\"sk\":\"post#RUNNING#c\"}"));
        assert!(!installed
            .rule
            .matches("dynamodb:UpdateItem", "{\"sk\":\"root#c\"}"));
        assert!(!installed.rule.matches("dynamodb:PutItem", "post#RUNNING"));
        installed.fired = 2;
        assert!(!installed.armed());
    }
}
