//! The validator every document goes through, the problems it reports, and the readers of a
//! whole definition (YAML, JSON, CloudFormation properties) built on it.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use super::PipelineDefinition;
use crate::run_key::RunKeyPath;

/// One thing wrong with a definition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Where, e.g. `trigger.executions.allOf[1].status[0]`.
    pub path: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in a definition.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub struct ValidationError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "{n} problem{} in the pipeline definition",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl ValidationError {
    fn single(path: &str, message: impl Into<String>) -> ValidationError {
        ValidationError {
            problems: vec![Problem {
                path: path.to_owned(),
                message: message.into(),
            }],
        }
    }
}

impl PipelineDefinition {
    /// Reads a `pipeline.yaml`-style document (other top-level keys, such as steps, are ignored).
    pub fn from_yaml(text: &str) -> Result<PipelineDefinition, ValidationError> {
        let value: Value = serde_yaml_ng::from_str(text)
            .map_err(|e| ValidationError::single("(document)", format!("not valid YAML: {e}")))?;
        Self::from_document(&value)
    }

    /// Reads the same document as JSON.
    pub fn from_json(text: &str) -> Result<PipelineDefinition, ValidationError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ValidationError::single("(document)", format!("not valid JSON: {e}")))?;
        Self::from_document(&value)
    }

    /// Reads a parsed document whose `trigger` and `notifications` keys hold the blocks.
    pub fn from_document(doc: &Value) -> Result<PipelineDefinition, ValidationError> {
        if !doc.is_object() {
            return Err(ValidationError::single(
                "(document)",
                format!(
                    "expected a mapping with `trigger` and/or `notifications`, got {}",
                    describe(doc)
                ),
            ));
        }
        let blocks = Self::from_blocks(
            doc.get("trigger").map(|v| ("trigger", v)),
            doc.get("notifications").map(|v| ("notifications", v)),
        );
        with_deadlines(blocks, doc.get("deadlines").map(|v| ("deadlines", v)))
            .and_run_key(doc.get("runKey").map(|v| ("runKey", v)))
    }

    /// Reads CloudFormation custom-resource properties: `Trigger` and `Notifications` hold the
    /// blocks, every scalar possibly a string. Paths in problems start with the property name.
    pub fn from_cfn_properties(properties: &Value) -> Result<PipelineDefinition, ValidationError> {
        let blocks = Self::from_blocks(
            properties.get("Trigger").map(|v| ("Trigger", v)),
            properties
                .get("Notifications")
                .map(|v| ("Notifications", v)),
        );
        with_deadlines(
            blocks,
            properties.get("Deadlines").map(|v| ("Deadlines", v)),
        )
        .and_run_key(properties.get("RunKey").map(|v| ("RunKey", v)))
    }

    /// Reads a `runKey` path (with the path its problem is reported under).
    pub fn run_key_path(
        run_key: Option<(&str, &Value)>,
    ) -> Result<Option<RunKeyPath>, ValidationError> {
        let Some((path, value)) = run_key.filter(|(_, v)| !v.is_null()) else {
            return Ok(None);
        };
        let mut v = Validator::default();
        match v.scalar(path, value, "a JSON path such as $.date") {
            Some(text) => RunKeyPath::parse(&text)
                .map(Some)
                .map_err(|e| ValidationError::single(path, e.to_string())),
            None => Err(ValidationError {
                problems: v.problems,
            }),
        }
    }

    /// Reads the two blocks, each with the path its problems are reported under.
    pub fn from_blocks(
        trigger: Option<(&str, &Value)>,
        notifications: Option<(&str, &Value)>,
    ) -> Result<PipelineDefinition, ValidationError> {
        let mut v = Validator::default();
        let trigger = match trigger {
            Some((path, value)) if !value.is_null() => v.trigger(path, value),
            _ => None,
        };
        let notifications = match notifications {
            Some((path, value)) if !value.is_null() => v.notifications(path, value),
            _ => None,
        };
        if v.problems.is_empty() {
            Ok(PipelineDefinition {
                run_key: None,
                trigger,
                notifications,
                deadlines: None,
            })
        } else {
            Err(ValidationError {
                problems: v.problems,
            })
        }
    }
}

/// Adds the `runKey` to a definition read from its blocks, reporting the problems of both.
trait AndRunKey {
    fn and_run_key(
        self,
        run_key: Option<(&str, &Value)>,
    ) -> Result<PipelineDefinition, ValidationError>;
}

impl AndRunKey for Result<PipelineDefinition, ValidationError> {
    fn and_run_key(
        self,
        run_key: Option<(&str, &Value)>,
    ) -> Result<PipelineDefinition, ValidationError> {
        match (PipelineDefinition::run_key_path(run_key), self) {
            (Ok(run_key), Ok(definition)) => Ok(PipelineDefinition {
                run_key,
                ..definition
            }),
            (Err(mut first), Err(rest)) => {
                first.problems.extend(rest.problems);
                Err(first)
            }
            (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
        }
    }
}

/// Adds the `deadlines` block (read by [`crate::deadlines::read`]) to the other blocks, with
/// every problem of both reported together.
fn with_deadlines(
    blocks: Result<PipelineDefinition, ValidationError>,
    deadlines: Option<(&str, &Value)>,
) -> Result<PipelineDefinition, ValidationError> {
    let deadlines = match deadlines {
        Some((path, value)) if !value.is_null() => crate::deadlines::read(path, value).map(Some),
        _ => Ok(None),
    };
    match (blocks, deadlines) {
        (Ok(definition), Ok(deadlines)) => Ok(PipelineDefinition {
            deadlines,
            ..definition
        }),
        (Ok(_), Err(problems)) => Err(ValidationError { problems }),
        (Err(e), Ok(_)) => Err(e),
        (Err(mut e), Err(problems)) => {
            e.problems.extend(problems);
            Err(e)
        }
    }
}

/// Walks a JSON value, collecting problems instead of stopping at the first. Public so that other
/// documents baton reads (pipeline.yaml, baton.yaml in `baton-synth`) report problems alike.
#[derive(Debug, Default)]
pub struct Validator {
    pub problems: Vec<Problem>,
}

/// A value as a problem names it: `"text"` (shortened), `the number 3`, `a list`...
pub fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("\"{}\"", shorten(s, 80)),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

pub(super) use crate::text::shorten;

impl Validator {
    pub fn problem(&mut self, path: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.to_owned(),
            message: message.into(),
        });
    }

    pub fn object<'a>(
        &mut self,
        path: &str,
        value: &'a Value,
    ) -> Option<&'a serde_json::Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            other => {
                self.problem(path, format!("expected a mapping, got {}", describe(other)));
                None
            }
        }
    }

    pub fn unknown_keys(
        &mut self,
        path: &str,
        map: &serde_json::Map<String, Value>,
        allowed: &[&str],
    ) {
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                // At the top of a document (an empty path) the key alone is the path.
                let at = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                self.problem(
                    &at,
                    format!("unknown field; allowed here: {}", allowed.join(", ")),
                );
            }
        }
    }

    /// A scalar as text: strings as they are, numbers in decimal (CloudFormation sends strings,
    /// YAML may send an unquoted account id as a number).
    pub fn scalar(&mut self, path: &str, value: &Value, what: &str) -> Option<String> {
        match value {
            Value::String(s) => Some(s.trim().to_owned()),
            Value::Number(n) => Some(n.to_string()),
            other => {
                self.problem(path, format!("expected {what}, got {}", describe(other)));
                None
            }
        }
    }

    /// A list, or a single scalar taken as a one-element list.
    pub(super) fn list<'a>(&mut self, path: &str, value: &'a Value) -> Option<Vec<&'a Value>> {
        match value {
            Value::Array(items) if items.is_empty() => {
                self.problem(path, "must not be empty");
                None
            }
            Value::Array(items) => Some(items.iter().collect()),
            Value::String(_) => Some(vec![value]),
            other => {
                self.problem(path, format!("expected a list, got {}", describe(other)));
                None
            }
        }
    }
}
