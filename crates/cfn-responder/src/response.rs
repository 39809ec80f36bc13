//! The answer CloudFormation reads from the ResponseURL, and sending it.
//!
//! Our own type rather than `aws_lambda_events`' response, which serializes a `null` Reason: here
//! every field is a string, a bool or a map of strings, so the body never holds a JSON null.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use baton_core::text::prefix_within;
use reqwest::header::CONTENT_TYPE;
use serde::Serialize;
use thiserror::Error;

/// CloudFormation refuses a response body larger than this.
pub const MAX_BODY_BYTES: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Success,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "SUCCESS",
            Status::Failed => "FAILED",
        }
    }
}

/// The response document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CfnResponse {
    pub status: Status,
    /// Always present and non-empty: the stack's events show it.
    pub reason: String,
    /// Never empty.
    pub physical_resource_id: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    pub no_echo: bool,
    /// Values readable with `Fn::GetAtt`.
    pub data: BTreeMap<String, String>,
}

const SHORTENED: &str = "… (shortened; the full reason is in the cfn-responder log)";

impl CfnResponse {
    /// The JSON body, at most [`MAX_BODY_BYTES`]: the Reason is shortened first, and only if that is
    /// not enough the Data is dropped.
    pub fn body(&self) -> Vec<u8> {
        let mut response = self.clone();
        let mut body = to_json(&response);
        if body.len() <= MAX_BODY_BYTES {
            return body;
        }
        // The longest prefix of the reason that fits. JSON escaping makes the serialized reason
        // up to six times longer than its text, so search rather than subtract.
        let (mut fits, mut over) = (0, self.reason.len());
        while fits + 1 < over {
            let mid = (fits + over) / 2;
            response.reason = shorten_to(&self.reason, mid);
            if to_json(&response).len() <= MAX_BODY_BYTES {
                fits = mid;
            } else {
                over = mid;
            }
        }
        response.reason = shorten_to(&self.reason, fits);
        body = to_json(&response);
        if body.len() > MAX_BODY_BYTES {
            response.data.clear();
            body = to_json(&response);
        }
        body
    }
}

fn to_json(response: &CfnResponse) -> Vec<u8> {
    // Serializing strings, a bool and a map of strings cannot fail.
    serde_json::to_vec(response).unwrap_or_default()
}

/// The first `max_bytes` of `text` (at a character boundary) followed by a note that it was cut.
fn shorten_to(text: &str, max_bytes: usize) -> String {
    format!("{}{SHORTENED}", prefix_within(text, max_bytes))
}

/// Why an answer could not be delivered.
#[derive(Debug, Error)]
pub enum DeliveryError {
    #[error("the response URL answered HTTP {status} to each of {attempts} attempts; CloudFormation has no answer")]
    Refused { status: u16, attempts: u32 },
    #[error("the response URL could not be reached in {attempts} attempts ({message}); CloudFormation has no answer")]
    Unreachable { message: String, attempts: u32 },
}

impl DeliveryError {
    pub fn attempts(&self) -> u32 {
        match self {
            DeliveryError::Refused { attempts, .. }
            | DeliveryError::Unreachable { attempts, .. } => *attempts,
        }
    }
}

/// Sends answers: PUT with an empty Content-Type (what the pre-signed URL was signed for), 2xx
/// checked, retried with doubling backoff until the attempts or the time run out.
#[derive(Clone, Debug)]
pub struct ResponseSender {
    http: reqwest::Client,
    first_backoff: Duration,
    max_attempts: u32,
}

/// A PUT never waits longer than this for its answer.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

impl ResponseSender {
    pub fn new(http: reqwest::Client) -> ResponseSender {
        ResponseSender {
            http,
            first_backoff: Duration::from_millis(200),
            max_attempts: 6,
        }
    }

    /// PUTs `body` to `url`, retrying until a 2xx or until `until`. Returns the attempts made.
    /// Errors never contain the URL (it is a credential).
    pub async fn send(
        &self,
        url: &str,
        body: Vec<u8>,
        until: Instant,
    ) -> Result<u32, DeliveryError> {
        let mut backoff = self.first_backoff;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let left = until.saturating_duration_since(Instant::now());
            let outcome = self
                .http
                .put(url)
                .header(CONTENT_TYPE, "")
                .body(body.clone())
                .timeout(left.min(ATTEMPT_TIMEOUT).max(Duration::from_millis(50)))
                .send()
                .await;
            let error = match outcome {
                Ok(r) if r.status().is_success() => return Ok(attempts),
                Ok(r) => DeliveryError::Refused {
                    status: r.status().as_u16(),
                    attempts,
                },
                Err(e) => DeliveryError::Unreachable {
                    message: e.without_url().to_string(),
                    attempts,
                },
            };
            let next = Instant::now() + backoff;
            if attempts >= self.max_attempts || next >= until {
                return Err(error);
            }
            tracing::warn!(attempt = attempts, error = %error, "answer not accepted; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(reason: String) -> CfnResponse {
        CfnResponse {
            status: Status::Failed,
            reason,
            physical_resource_id: "baton:pipeline:123456789012:eu-west-1:x".into(),
            stack_id: "arn:aws:cloudformation:eu-west-1:123456789012:stack/x/1".into(),
            request_id: "r".into(),
            logical_resource_id: "Pipeline".into(),
            no_echo: false,
            data: BTreeMap::from([("PipelineId".into(), "123456789012:eu-west-1:x".into())]),
        }
    }

    #[test]
    fn a_long_reason_is_shortened_to_fit_and_the_rest_is_kept() {
        for unit in ["x", "é", "\"", "\n", "🦀", "\u{1}", "ab\"\\"] {
            let r = response(unit.repeat(10_000));
            let body = r.body();
            assert!(body.len() <= MAX_BODY_BYTES, "{unit}: {}", body.len());
            assert!(body.len() > MAX_BODY_BYTES - 200, "{unit}: cut too much");
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert!(v["Reason"].as_str().unwrap().ends_with(SHORTENED));
            assert_eq!(v["Data"]["PipelineId"], "123456789012:eu-west-1:x");
            assert_eq!(v["Status"], "FAILED");
        }
    }

    #[test]
    fn a_short_body_is_unchanged_and_has_no_nulls() {
        let body = response("bad".into()).body();
        let text = String::from_utf8(body).unwrap();
        assert!(!text.contains("null"));
        assert!(text.contains(r#""Reason":"bad""#));
        assert!(text.contains(r#""NoEcho":false"#));
    }
}
