//! Every problem of a project at once, each with the file and the path inside it, the way
//! `baton validate` reports a definition.

use std::fmt;

use baton_core::definition::Problem;
use serde_json::Value;

/// Everything wrong with what synth was given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Problems {
    pub items: Vec<Located>,
}

/// One problem and the file it is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    pub file: String,
    pub problem: Problem,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.problem)
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.items.len();
        write!(f, "{n} problem{}", if n == 1 { "" } else { "s" })?;
        for p in &self.items {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

/// Collects problems of one file.
#[derive(Debug)]
pub struct Collector {
    file: String,
    pub(crate) items: Vec<Located>,
}

impl Collector {
    pub fn new(file: impl Into<String>) -> Collector {
        Collector {
            file: file.into(),
            items: Vec::new(),
        }
    }

    pub fn add(&mut self, path: &str, message: impl Into<String>) {
        self.items.push(Located {
            file: self.file.clone(),
            problem: Problem {
                path: path.to_owned(),
                message: message.into(),
            },
        });
    }

    /// Adds problems found by another validator (core's definition checks).
    pub fn extend(&mut self, problems: impl IntoIterator<Item = Problem>) {
        let file = self.file.clone();
        self.items
            .extend(problems.into_iter().map(|problem| Located {
                file: file.clone(),
                problem,
            }));
    }

    /// The paths of the problems found so far.
    pub fn paths(&self) -> Vec<String> {
        self.items.iter().map(|l| l.problem.path.clone()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// `Ok(value)` when nothing was found.
    pub fn finish<T>(self, value: T) -> Result<T, Problems> {
        if self.items.is_empty() {
            Ok(value)
        } else {
            Err(Problems { items: self.items })
        }
    }

    /// A required string field of a mapping; a problem naming it when absent or not text.
    pub fn text(
        &mut self,
        map: &serde_json::Map<String, Value>,
        path: &str,
        key: &str,
        what: &str,
    ) -> Option<String> {
        let full = join(path, key);
        match map.get(key) {
            None => {
                self.add(&full, format!("missing; give {what}"));
                None
            }
            Some(value) => self.scalar(&full, value, what),
        }
    }

    /// A scalar as text (YAML may give an unquoted account id as a number).
    pub fn scalar(&mut self, path: &str, value: &Value, what: &str) -> Option<String> {
        match value {
            Value::String(s) => Some(s.trim().to_owned()),
            Value::Number(n) => Some(n.to_string()),
            other => {
                self.add(path, format!("expected {what}, got {}", describe(other)));
                None
            }
        }
    }

    /// A mapping, or a problem saying what was found instead.
    pub fn mapping<'a>(
        &mut self,
        path: &str,
        value: &'a Value,
    ) -> Option<&'a serde_json::Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            other => {
                self.add(path, format!("expected a mapping, got {}", describe(other)));
                None
            }
        }
    }

    /// Refuses keys baton does not know, listing the ones it does.
    pub fn unknown_keys(
        &mut self,
        path: &str,
        map: &serde_json::Map<String, Value>,
        allowed: &[&str],
    ) {
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                self.add(
                    &join(path, key),
                    format!("unknown field; allowed here: {}", allowed.join(", ")),
                );
            }
        }
    }
}

/// `a.b`, or `b` at the top.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// A value named for a message.
pub fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("\"{s}\""),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

/// Parses YAML text into a JSON value, or one problem for the whole document.
pub fn parse_yaml(file: &str, text: &str) -> Result<Value, Problems> {
    serde_yaml_ng::from_str::<Value>(text).map_err(|e| {
        let mut c = Collector::new(file);
        c.add("(document)", format!("not valid YAML: {e}"));
        Problems { items: c.items }
    })
}
