//! slack-notifier's configuration, read from the environment once at start-up.

use baton_adapters::{ConfigError, Env, TableNames, SLACK_API_URL};
use baton_core::Span;

/// Everything the function is configured with. Holds the secret's id, never the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `BATON_REGISTRY_TABLE`, `BATON_SLACK_THREADS_TABLE` (and the other tables' names).
    pub tables: TableNames,
    /// `BATON_SLACK_TOKEN_SECRET_ID`: the Secrets Manager secret (name or ARN) holding the bot token.
    pub token_secret_id: String,
    /// `BATON_SLACK_API_URL` (default `https://slack.com/api`).
    pub slack_api_url: String,
    /// `BATON_RUN_RETENTION_DAYS` (default 90): how long thread records are kept.
    pub retention: Span,
    /// `BATON_ENVIRONMENT`: the environment named in every message (dev, prod...).
    pub environment: Option<String>,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        let slack_api_url = env
            .optional("BATON_SLACK_API_URL")
            .unwrap_or_else(|| SLACK_API_URL.to_owned());
        if !(slack_api_url.starts_with("https://") || slack_api_url.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                name: "BATON_SLACK_API_URL",
                value: slack_api_url,
                expected: "an http(s) URL such as https://slack.com/api",
            });
        }
        let days = env.positive_or("BATON_RUN_RETENTION_DAYS", 90)?;
        Ok(Config {
            tables: TableNames::from_env(env)?,
            token_secret_id: env.required("BATON_SLACK_TOKEN_SECRET_ID")?,
            slack_api_url,
            retention: Span::days(days),
            environment: env.optional("BATON_ENVIRONMENT"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLES: [(&str, &str); 4] = [
        ("BATON_RUNS_TABLE", "runs"),
        ("BATON_REGISTRY_TABLE", "registry"),
        ("BATON_LEDGER_TABLE", "ledger"),
        ("BATON_SLACK_THREADS_TABLE", "threads"),
    ];

    #[test]
    fn names_the_missing_secret_id_and_defaults_the_api_url() {
        let err = Config::from_env(&Env::from_pairs(TABLES)).unwrap_err();
        assert_eq!(err, ConfigError::Missing("BATON_SLACK_TOKEN_SECRET_ID"));
        let mut pairs = TABLES.to_vec();
        pairs.push(("BATON_SLACK_TOKEN_SECRET_ID", "baton/slack"));
        let config = Config::from_env(&Env::from_pairs(pairs.clone())).unwrap();
        assert_eq!(config.slack_api_url, "https://slack.com/api");
        pairs.push(("BATON_SLACK_API_URL", "slack.com"));
        let err = Config::from_env(&Env::from_pairs(pairs)).unwrap_err();
        assert!(err.to_string().contains("BATON_SLACK_API_URL"), "{err}");
    }
}
