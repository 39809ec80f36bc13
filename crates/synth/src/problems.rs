//! Every problem of a project at once, each with the file and the path inside it, the way
//! `baton validate` reports a definition.

use std::fmt;

pub use baton_core::definition::describe;
use baton_core::definition::{Problem, Validator};
use serde_json::{Map, Value};

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

/// Collects problems of one file with core's [`Validator`], so every document reports alike.
#[derive(Debug)]
pub struct Collector {
    file: String,
    checks: Validator,
}

impl Collector {
    pub fn new(file: impl Into<String>) -> Collector {
        Collector {
            file: file.into(),
            checks: Validator::default(),
        }
    }

    pub fn add(&mut self, path: &str, message: impl Into<String>) {
        self.checks.problem(path, message);
    }

    /// Adds problems found by another validator (core's definition checks).
    pub fn extend(&mut self, problems: impl IntoIterator<Item = Problem>) {
        self.checks.problems.extend(problems);
    }

    /// The paths of the problems found so far.
    pub fn paths(&self) -> Vec<String> {
        self.checks
            .problems
            .iter()
            .map(|p| p.path.clone())
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.checks.problems.is_empty()
    }

    /// The problems found, each with the file.
    pub fn into_problems(self) -> Problems {
        let file = self.file;
        Problems {
            items: self
                .checks
                .problems
                .into_iter()
                .map(|problem| Located {
                    file: file.clone(),
                    problem,
                })
                .collect(),
        }
    }

    /// `Ok(value)` when nothing was found.
    pub fn finish<T>(self, value: T) -> Result<T, Problems> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self.into_problems())
        }
    }

    /// A required string field of a mapping; a problem naming it when absent or not text.
    pub fn text(
        &mut self,
        map: &Map<String, Value>,
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

    /// A required string field that `check` accepts; its refusal is the problem.
    pub fn checked<E: std::fmt::Display>(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
        what: &str,
        check: impl Fn(&str) -> Result<(), E>,
    ) -> Option<String> {
        let value = self.text(map, path, key, what)?;
        match check(&value) {
            Ok(()) => Some(value),
            Err(e) => {
                self.add(&join(path, key), e.to_string());
                None
            }
        }
    }

    /// A scalar as text (YAML may give an unquoted account id as a number).
    pub fn scalar(&mut self, path: &str, value: &Value, what: &str) -> Option<String> {
        self.checks.scalar(path, value, what)
    }

    /// A mapping, or a problem saying what was found instead.
    pub fn mapping<'a>(&mut self, path: &str, value: &'a Value) -> Option<&'a Map<String, Value>> {
        self.checks.object(path, value)
    }

    /// Refuses keys baton does not know, listing the ones it does.
    pub fn unknown_keys(&mut self, path: &str, map: &Map<String, Value>, allowed: &[&str]) {
        self.checks.unknown_keys(path, map, allowed);
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

/// Parses YAML text into a JSON value, or one problem for the whole document.
pub fn parse_yaml(file: &str, text: &str) -> Result<Value, Problems> {
    serde_yaml_ng::from_str::<Value>(text).map_err(|e| {
        let mut c = Collector::new(file);
        c.add("(document)", format!("not valid YAML: {e}"));
        c.into_problems()
    })
}
