//! Reading configuration from the environment, once, at start-up. A missing or bad variable is an
//! error naming it; nothing falls back silently except where a default is documented.

use std::collections::HashMap;

use thiserror::Error;

/// A configuration problem, naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is `{value}`: {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// The variables a function was started with (or a map, in tests).
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    /// The process environment.
    pub fn from_process() -> Env {
        Env {
            vars: std::env::vars().collect(),
        }
    }

    /// Explicit variables, for tests and the demo.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Env {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    /// A required, non-empty variable.
    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        match self.vars.get(name).map(|v| v.trim()) {
            Some(v) if !v.is_empty() => Ok(v.to_owned()),
            _ => Err(ConfigError::Missing(name)),
        }
    }

    /// An optional variable (absent or empty is `None`).
    pub fn optional(&self, name: &str) -> Option<String> {
        self.vars
            .get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// An optional positive integer with a default.
    pub fn positive_or(&self, name: &'static str, default: u64) -> Result<u64, ConfigError> {
        match self.optional(name) {
            None => Ok(default),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(ConfigError::Invalid {
                    name,
                    value: v,
                    expected: "a positive whole number",
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_variable_at_fault() {
        let env = Env::from_pairs([("A", "x"), ("EMPTY", " "), ("N", "zero")]);
        assert_eq!(env.required("A").unwrap(), "x");
        assert_eq!(
            env.required("EMPTY").unwrap_err().to_string(),
            "environment variable EMPTY is not set"
        );
        assert_eq!(env.positive_or("MISSING", 7).unwrap(), 7);
        assert_eq!(
            env.positive_or("N", 7).unwrap_err().to_string(),
            "environment variable N is `zero`: a positive whole number"
        );
    }
}
