//! Why Slack did not take a message, sorted by what to do about it (DESIGN "Slack": rate limits
//! and 5xx are retried, refusals are logged with pipeline and channel and not retried).

use thiserror::Error;

/// Why Slack did not take a message, sorted by what to do about it.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SlackError {
    #[error("Slack rate-limited {method}; it asks to wait {}s", retry_after.as_secs())]
    RateLimited {
        method: &'static str,
        retry_after: std::time::Duration,
    },
    #[error("Slack {method} failed and may succeed if retried: {detail}")]
    Unavailable {
        method: &'static str,
        detail: String,
    },
    #[error(
        "Slack refused {method} with `{code}`; retrying will not help ({})",
        slack_error_hint(code)
    )]
    Rejected { method: &'static str, code: String },
    #[error("Slack refused the bot token for {method} with `{code}`, also after re-reading it from Secrets Manager: store a valid bot token (xoxb-...) in the secret")]
    Unauthorized { method: &'static str, code: String },
    #[error("the Slack bot token could not be read: {detail}")]
    Token { detail: String, retryable: bool },
}

/// Slack error codes that mean the token itself is refused (re-reading the secret may help).
pub const SLACK_AUTH_ERRORS: &[&str] = &[
    "invalid_auth",
    "token_revoked",
    "token_expired",
    "not_authed",
    "account_inactive",
];

/// Slack error codes after which the same call can succeed later.
pub const SLACK_RETRYABLE_ERRORS: &[&str] = &[
    "ratelimited",
    "rate_limited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

fn slack_error_hint(code: &str) -> &'static str {
    match code {
        "channel_not_found" => "check the channel name in the pipeline's notifications targets",
        "not_in_channel" => "invite the bot to the channel, or grant chat:write.public",
        "is_archived" => "the channel is archived; choose another channel",
        "msg_too_long" | "invalid_blocks" | "invalid_blocks_format" => {
            "the message was refused as too long or malformed"
        }
        "missing_scope" => "add the chat:write scope to the Slack app and reinstall it",
        _ => "see Slack's documentation of this error code",
    }
}

impl SlackError {
    /// Sorts an HTTP answer that is not a success: 429 is a rate limit (Retry-After, else 1 s),
    /// 5xx may succeed if retried, any other status is a refusal named `http_<status>`. `None`
    /// for a 2xx, whose body says whether Slack took the call. `reason`: the status's canonical
    /// reason phrase, shown with it.
    pub fn from_http_status(
        method: &'static str,
        status: u16,
        reason: Option<&str>,
        retry_after: Option<std::time::Duration>,
    ) -> Option<SlackError> {
        match status {
            200..=299 => None,
            429 => Some(SlackError::RateLimited {
                method,
                retry_after: retry_after.unwrap_or(std::time::Duration::from_secs(1)),
            }),
            500..=599 => Some(SlackError::Unavailable {
                method,
                detail: format!(
                    "HTTP {status} {}",
                    reason.unwrap_or("<unknown status code>")
                ),
            }),
            _ => Some(SlackError::Rejected {
                method,
                code: format!("http_{status}"),
            }),
        }
    }

    /// Sorts an error code from a Slack API answer.
    pub fn from_code(
        method: &'static str,
        code: &str,
        retry_after: Option<std::time::Duration>,
    ) -> SlackError {
        if code == "ratelimited" || code == "rate_limited" {
            SlackError::RateLimited {
                method,
                retry_after: retry_after.unwrap_or(std::time::Duration::from_secs(1)),
            }
        } else if SLACK_RETRYABLE_ERRORS.contains(&code) {
            SlackError::Unavailable {
                method,
                detail: format!("Slack answered `{code}`"),
            }
        } else if SLACK_AUTH_ERRORS.contains(&code) {
            SlackError::Unauthorized {
                method,
                code: code.to_owned(),
            }
        } else {
            SlackError::Rejected {
                method,
                code: code.to_owned(),
            }
        }
    }

    /// Whether trying again later can help.
    pub fn is_retryable(&self) -> bool {
        match self {
            SlackError::RateLimited { .. } | SlackError::Unavailable { .. } => true,
            SlackError::Token { retryable, .. } => *retryable,
            SlackError::Rejected { .. } | SlackError::Unauthorized { .. } => false,
        }
    }

    /// How long Slack asked to wait, when it did.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            SlackError::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The Slack error code, when Slack answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            SlackError::Rejected { code, .. } | SlackError::Unauthorized { code, .. } => Some(code),
            SlackError::RateLimited { .. } => Some("ratelimited"),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn http_answers_are_sorted_by_what_a_retry_can_do() {
        let method = "chat.postMessage";
        assert_eq!(
            SlackError::from_http_status(method, 200, Some("OK"), None),
            None
        );
        let limited = SlackError::from_http_status(method, 429, None, None).unwrap();
        assert!(limited.is_retryable());
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(1)));
        let waited = SlackError::from_http_status(method, 429, None, Some(Duration::from_secs(7)));
        assert_eq!(waited.unwrap().retry_after(), Some(Duration::from_secs(7)));
        let down = SlackError::from_http_status(method, 503, Some("Service Unavailable"), None);
        assert_eq!(
            down.unwrap().to_string(),
            "Slack chat.postMessage failed and may succeed if retried: HTTP 503 Service Unavailable"
        );
        let refused = SlackError::from_http_status(method, 404, Some("Not Found"), None).unwrap();
        assert!(!refused.is_retryable());
        assert_eq!(refused.code(), Some("http_404"));
    }
}
