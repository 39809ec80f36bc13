//! Run keys: a run's logical key (e.g. its business date), read from the execution input at the
//! JSON path its pipeline declares (`runKey: $.date`). Aligned triggers decide per key.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

/// A run key: 1 to [`RunKey::MAX_CHARS`] characters, no control characters. It becomes part of
/// DynamoDB keys (`docs/tables.md`), hence the bound.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunKey(pub String);

impl RunKey {
    /// Longest key kept; a longer value gives the run no key.
    pub const MAX_CHARS: usize = 128;

    /// A key from text, if it is one.
    pub fn new(text: &str) -> Result<RunKey, NoRunKey> {
        if text.is_empty() {
            return Err(NoRunKey::Empty);
        }
        if text.chars().count() > Self::MAX_CHARS {
            return Err(NoRunKey::TooLong);
        }
        if text.chars().any(char::is_control) {
            return Err(NoRunKey::ControlCharacter);
        }
        Ok(RunKey(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a run has no key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum NoRunKey {
    #[error("Step Functions did not include the execution input in the event (`inputDetails.included` is false: the input is over 248 KB)")]
    InputNotIncluded,
    #[error("the execution input is not JSON")]
    InputNotJson,
    #[error("the run key path finds nothing in the execution input")]
    NotInInput,
    #[error("the value at the run key path is not a string or a number")]
    NotAScalar,
    #[error("the value at the run key path is empty")]
    Empty,
    #[error("the value at the run key path is longer than 128 characters")]
    TooLong,
    #[error("the value at the run key path contains a control character")]
    ControlCharacter,
}

/// Where a pipeline's run key is in its execution input: `$` then one or more `.field` steps.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunKeyPath {
    fields: Vec<String>,
}

/// A run key path that is not one.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("\"{text}\" is not a run key path; write `$.field` or `$.field.inner` (letters, digits, _ and -)")]
pub struct BadRunKeyPath {
    pub text: String,
}

impl RunKeyPath {
    /// Parses `$.date`, `$.run.date`.
    pub fn parse(text: &str) -> Result<RunKeyPath, BadRunKeyPath> {
        let bad = || BadRunKeyPath {
            text: text.chars().take(80).collect(),
        };
        let rest = text.trim().strip_prefix("$.").ok_or_else(bad)?;
        let fields: Vec<String> = rest.split('.').map(str::to_owned).collect();
        let ok = fields.len() <= 8
            && fields.iter().all(|f| {
                !f.is_empty()
                    && f.len() <= 64
                    && f.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            });
        if ok {
            Ok(RunKeyPath { fields })
        } else {
            Err(bad())
        }
    }

    /// The key of an execution whose input is `input` (JSON text).
    pub fn read(&self, input: &str) -> Result<RunKey, NoRunKey> {
        let value: Value = serde_json::from_str(input).map_err(|_| NoRunKey::InputNotJson)?;
        let mut at = &value;
        for field in &self.fields {
            at = at.get(field).ok_or(NoRunKey::NotInInput)?;
        }
        match at {
            Value::String(s) => RunKey::new(s),
            Value::Number(n) => RunKey::new(&n.to_string()),
            Value::Null => Err(NoRunKey::NotInInput),
            _ => Err(NoRunKey::NotAScalar),
        }
    }
}

impl fmt::Display for RunKeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "$.{}", self.fields.join("."))
    }
}

impl TryFrom<String> for RunKeyPath {
    type Error = BadRunKeyPath;
    fn try_from(text: String) -> Result<RunKeyPath, BadRunKeyPath> {
        RunKeyPath::parse(&text)
    }
}

impl From<RunKeyPath> for String {
    fn from(path: RunKeyPath) -> String {
        path.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_strings_and_numbers_at_the_path() {
        let path = RunKeyPath::parse("$.run.date").unwrap();
        assert_eq!(path.to_string(), "$.run.date");
        assert_eq!(
            path.read(r#"{"run": {"date": "2026-11-24"}}"#),
            Ok(RunKey("2026-11-24".into()))
        );
        assert_eq!(
            path.read(r#"{"run": {"date": 20261124}}"#),
            Ok(RunKey("20261124".into()))
        );
        assert_eq!(path.read(r#"{"run": {}}"#), Err(NoRunKey::NotInInput));
        assert_eq!(
            path.read(r#"{"run": {"date": [1]}}"#),
            Err(NoRunKey::NotAScalar)
        );
        assert_eq!(path.read("not json"), Err(NoRunKey::InputNotJson));
        let long = format!(r#"{{"run": {{"date": "{}"}}}}"#, "x".repeat(129));
        assert_eq!(path.read(&long), Err(NoRunKey::TooLong));
    }

    #[test]
    fn refuses_what_is_not_a_path() {
        for bad in ["date", "$", "$.", "$.a..b", "$.a[0]", "$.a b"] {
            assert!(RunKeyPath::parse(bad).is_err(), "{bad}");
        }
    }
}
