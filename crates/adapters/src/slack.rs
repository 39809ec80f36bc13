//! [`SlackApi`] over Slack's Web API (`chat.postMessage`, `chat.update`) with reqwest.
//!
//! Each call is made once and its outcome sorted ([`SlackError`]): HTTP 429 and `ratelimited`
//! carry Retry-After, 5xx and timeouts are retryable, everything else Slack answers is terminal.
//! Retrying is the caller's decision (it knows the Lambda deadline). The one retry made here: when
//! Slack refuses the token (`invalid_auth`, `token_revoked`...), the token is re-read once from
//! its source and the call repeated.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use baton_core::slack::error::SlackError;
use baton_core::slack::message::SlackMessage;
use baton_core::slack::{Posted, SlackApi};
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use serde_json::Value;

use crate::secrets::{SecretError, TokenSource};

/// Slack's Web API, unless configured otherwise.
pub const SLACK_API_URL: &str = "https://slack.com/api";

/// How long one call may take before it counts as a (retryable) timeout.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The Slack Web API at `base_url`, authenticated with the token from `tokens`.
pub struct SlackWebApi<T> {
    http: reqwest::Client,
    base_url: String,
    tokens: T,
    /// Whether [`SlackApi::prepare`] has run.
    prepared: AtomicBool,
}

impl<T> fmt::Debug for SlackWebApi<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackWebApi")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Why the HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("building the HTTP client for Slack failed: {0}")]
pub struct ClientError(#[from] reqwest::Error);

impl<T: TokenSource + Sync> SlackWebApi<T> {
    pub fn new(base_url: &str, tokens: T) -> Result<SlackWebApi<T>, ClientError> {
        let http = crate::http::build(
            reqwest::Client::builder()
                .timeout(CALL_TIMEOUT)
                .connect_timeout(Duration::from_secs(3)),
        )?;
        Ok(SlackWebApi {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            tokens,
            prepared: AtomicBool::new(false),
        })
    }

    /// One call, re-read the token and repeat once if Slack refuses it.
    async fn call(&self, method: &'static str, body: &Value) -> Result<Value, SlackError> {
        let token = self.tokens.token().await.map_err(|e| token_error(&e))?;
        match self.call_once(method, token.expose(), body).await {
            Err(SlackError::Unauthorized { code, .. }) => {
                tracing::warn!(method, error = %code, "Slack refused the cached bot token; reading it again");
                let token = self.tokens.refresh().await.map_err(|e| token_error(&e))?;
                self.call_once(method, token.expose(), body).await
            }
            other => other,
        }
    }

    async fn call_once(
        &self,
        method: &'static str,
        token: &str,
        body: &Value,
    ) -> Result<Value, SlackError> {
        let url = format!("{}/{method}", self.base_url);
        let response = self
            .http
            .post(&url)
            // bearer_auth marks the header sensitive, so no Debug output of the request shows it.
            .bearer_auth(token)
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| SlackError::Unavailable {
                method,
                // reqwest's error names the URL, never the headers: no token here.
                detail: e.to_string(),
            })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        if let Some(refused) = SlackError::from_http_status(
            method,
            status.as_u16(),
            status.canonical_reason(),
            retry_after,
        ) {
            return Err(refused);
        }
        let answer: Value = response.json().await.map_err(|e| SlackError::Unavailable {
            method,
            detail: format!("unreadable answer: {e}"),
        })?;
        if answer.get("ok").and_then(Value::as_bool) == Some(true) {
            return Ok(answer);
        }
        let code = answer
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown_error");
        Err(SlackError::from_code(method, code, retry_after))
    }
}

fn token_error(e: &SecretError) -> SlackError {
    SlackError::Token {
        detail: e.to_string(),
        retryable: e.is_retryable(),
    }
}

impl<T: TokenSource + Sync + Send> SlackApi for SlackWebApi<T> {
    async fn post(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        message: &SlackMessage,
    ) -> Result<Posted, SlackError> {
        const METHOD: &str = "chat.postMessage";
        let answer = self
            .call(METHOD, &message.post_body(channel, thread_ts))
            .await?;
        let field = |name: &str| answer.get(name).and_then(Value::as_str).map(str::to_owned);
        match (field("channel"), field("ts")) {
            (Some(channel_id), Some(ts)) => Ok(Posted { channel_id, ts }),
            // Posted, but not where we can find it again: repeating would post twice.
            _ => Err(SlackError::Rejected {
                method: METHOD,
                code: "answer_without_channel_and_ts".into(),
            }),
        }
    }

    async fn update(
        &self,
        channel_id: &str,
        ts: &str,
        message: &SlackMessage,
    ) -> Result<(), SlackError> {
        self.call("chat.update", &message.update_body(channel_id, ts))
            .await
            .map(|_| ())
    }

    /// Reads the token once per process, on the first call: a read that fails is not cached and
    /// is made again (and reported) by the first post, so a deployment whose secret is broken
    /// but which posts nothing pays one failed read, not one per event.
    async fn prepare(&self) {
        if !self.prepared.swap(true, Ordering::Relaxed) {
            if let Err(e) = self.tokens.token().await {
                tracing::debug!(error = %e, "reading the Slack bot token ahead of the first post failed; the post reads it again");
            }
        }
    }
}
