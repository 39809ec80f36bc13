//! The Slack bot token, read from Secrets Manager and cached for the life of the process (so
//! across Lambda invocations). The token never appears in logs or `Debug` output.

use std::fmt;
use std::future::Future;

use aws_sdk_secretsmanager::Client;
use thiserror::Error;
use tokio::sync::RwLock;

use crate::aws_error::{self, Failure};

/// A bot token. Its `Debug` is redacted and it has no `Display`: use [`SlackToken::expose`] only
/// to build the `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub struct SlackToken(String);

impl SlackToken {
    pub fn new(token: impl Into<String>) -> SlackToken {
        SlackToken(token.into())
    }

    /// The token itself, for the `Authorization` header and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SlackToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SlackToken(<redacted>)")
    }
}

/// Why the token could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SecretError {
    #[error("reading secret `{secret_id}` from Secrets Manager failed and may succeed if retried: {message}")]
    Unavailable { secret_id: String, message: String },
    #[error("reading secret `{secret_id}` from Secrets Manager was refused (check the secret id and the function's secretsmanager:GetSecretValue permission): {message}")]
    Rejected { secret_id: String, message: String },
    #[error("secret `{secret_id}` holds no Slack bot token: store the token itself (xoxb-...) or JSON with a `token` field")]
    NoToken { secret_id: String },
}

impl SecretError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, SecretError::Unavailable { .. })
    }
}

/// Where the bot token comes from.
pub trait TokenSource {
    /// The token, from the cache when there is one.
    fn token(&self) -> impl Future<Output = Result<SlackToken, SecretError>> + Send;
    /// Reads the token again (after Slack refused the cached one) and caches it.
    fn refresh(&self) -> impl Future<Output = Result<SlackToken, SecretError>> + Send;
}

/// A fixed token (the demo, and tests that are not about Secrets Manager).
impl TokenSource for SlackToken {
    async fn token(&self) -> Result<SlackToken, SecretError> {
        Ok(self.clone())
    }
    async fn refresh(&self) -> Result<SlackToken, SecretError> {
        Ok(self.clone())
    }
}

/// The token in a Secrets Manager secret, cached after the first read.
pub struct SecretsManagerToken {
    client: Client,
    secret_id: String,
    cached: RwLock<Option<SlackToken>>,
}

impl fmt::Debug for SecretsManagerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsManagerToken")
            .field("secret_id", &self.secret_id)
            .finish_non_exhaustive()
    }
}

impl SecretsManagerToken {
    pub fn new(client: Client, secret_id: impl Into<String>) -> SecretsManagerToken {
        SecretsManagerToken {
            client,
            secret_id: secret_id.into(),
            cached: RwLock::new(None),
        }
    }

    async fn read(&self) -> Result<SlackToken, SecretError> {
        let got = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| {
                // The message of a GetSecretValue error never carries the secret's value.
                let Failure { retryable, message } = aws_error::sort(&e);
                let secret_id = self.secret_id.clone();
                if retryable {
                    SecretError::Unavailable { secret_id, message }
                } else {
                    SecretError::Rejected { secret_id, message }
                }
            })?;
        token_from_secret(got.secret_string().unwrap_or_default()).ok_or_else(|| {
            SecretError::NoToken {
                secret_id: self.secret_id.clone(),
            }
        })
    }
}

/// The token in a secret's string: the token itself, or JSON with `token` (or `botToken`,
/// `bot_token`, `SLACK_BOT_TOKEN`).
fn token_from_secret(secret: &str) -> Option<SlackToken> {
    let secret = secret.trim();
    if secret.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(secret).ok()?;
        ["token", "botToken", "bot_token", "SLACK_BOT_TOKEN"]
            .iter()
            .find_map(|k| value.get(*k).and_then(|v| v.as_str()))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(SlackToken::new)
    } else if secret.is_empty() {
        None
    } else {
        Some(SlackToken::new(secret))
    }
}

impl TokenSource for SecretsManagerToken {
    async fn token(&self) -> Result<SlackToken, SecretError> {
        if let Some(token) = self.cached.read().await.as_ref() {
            return Ok(token.clone());
        }
        self.refresh().await
    }

    async fn refresh(&self) -> Result<SlackToken, SecretError> {
        let token = self.read().await?;
        *self.cached.write().await = Some(token.clone());
        tracing::info!(secret_id = %self.secret_id, "read the Slack bot token from Secrets Manager");
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_plain_or_json_secret_and_never_shows_it() {
        assert_eq!(
            token_from_secret(" xoxb-1 \n").map(|t| t.expose().to_owned()),
            Some("xoxb-1".into())
        );
        assert_eq!(
            token_from_secret(r#"{"token":"xoxb-2"}"#).map(|t| t.expose().to_owned()),
            Some("xoxb-2".into())
        );
        assert_eq!(token_from_secret(r#"{"other":"x"}"#), None);
        assert_eq!(token_from_secret(""), None);
        let shown = format!("{:?}", SlackToken::new("xoxb-secret"));
        assert!(!shown.contains("xoxb-secret"), "{shown}");
    }
}
