//! The `trigger` block of a definition: `executions` and its groups (`allOf`, `anyOf`,
//! `operator`, `atLeast`/`of`, `within` in any group, `alignOn` in the top one) and their leaves,
//! read by the same validator as the rest of the definition.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

use super::validate::shorten;
use super::{describe, Validator};
use crate::condition::{AlignOn, AtLeast, Condition, Group, Leaf, Operator, Trigger};
use crate::pipeline::{check_account, check_name, check_region};
use crate::status::RunStatus;
use crate::time::Span;

impl Validator {
    pub(super) fn trigger(&mut self, path: &str, value: &Value) -> Option<Trigger> {
        let map = self.object(path, value)?;
        // `schedule` belongs to the pipeline's own stack (an EventBridge schedule rule); baton
        // accepts it so a whole Scout24-style `trigger` block can be passed through unchanged.
        self.unknown_keys(path, map, &["executions", "within", "schedule"]);
        if map.contains_key("within") {
            // DESIGN puts `within` in a group; the old place is refused, not silently moved, so
            // nobody wonders which of two bounds applies.
            self.problem(
                &format!("{path}.within"),
                "`within` now goes inside `executions` (or any group beneath it), where it bounds the runs of the leaves under that group: write `executions: {allOf: [...], within: 20h}`",
            );
        }
        let trigger = match map.get("executions") {
            Some(e) => self.top_group(&format!("{path}.executions"), e),
            None => {
                if !map.contains_key("schedule") {
                    self.problem(
                        &format!("{path}.executions"),
                        "missing; a trigger needs an `executions` block (allOf/anyOf)",
                    );
                }
                None
            }
        }?;
        (!map.contains_key("within")).then_some(trigger)
    }

    /// The `executions` group, which alone may say `alignOn`.
    fn top_group(&mut self, path: &str, value: &Value) -> Option<Trigger> {
        let align_on = match value.get("alignOn") {
            None => Some(None),
            Some(a) => {
                let p = format!("{path}.alignOn");
                let text = self.scalar(&p, a, "runKey")?;
                if text == "runKey" {
                    Some(Some(AlignOn::RunKey))
                } else {
                    self.problem(
                        &p,
                        format!(
                            "\"{}\" is not something runs align on; allowed: runKey",
                            shorten(&text, 80)
                        ),
                    );
                    None
                }
            }
        };
        let executions = self.group_with(path, value, &["alignOn"]);
        Some(Trigger {
            executions: executions?,
            align_on: align_on?,
        })
    }

    fn group(&mut self, path: &str, value: &Value) -> Option<Group> {
        if value.get("alignOn").is_some() {
            self.problem(
                &format!("{path}.alignOn"),
                "only the top group, `executions`, can say `alignOn`: a condition is aligned as a whole",
            );
        }
        self.group_with(path, value, &[])
    }

    fn group_with(&mut self, path: &str, value: &Value, extra: &[&str]) -> Option<Group> {
        let map = self.object(path, value)?;
        let mut allowed = vec!["allOf", "anyOf", "operator", "atLeast", "of", "within"];
        allowed.extend_from_slice(extra);
        for key in map.keys() {
            // A nested `alignOn` has its own problem (see `group`).
            if !allowed.contains(&key.as_str()) && key != "alignOn" {
                self.problem(
                    &format!("{path}.{key}"),
                    format!("unknown field; allowed here: {}", allowed.join(", ")),
                );
            }
        }
        let within = self.within(path, map);
        let operator = match map.get("operator") {
            None => Some(Operator::And),
            Some(op) => {
                let p = format!("{path}.operator");
                let text = self.scalar(&p, op, "AND or OR")?;
                match text.to_ascii_uppercase().as_str() {
                    "AND" => Some(Operator::And),
                    "OR" => Some(Operator::Or),
                    _ => {
                        self.problem(
                            &p,
                            format!(
                                "\"{}\" is not an operator; allowed: AND, OR",
                                shorten(&text, 80)
                            ),
                        );
                        None
                    }
                }
            }
        };
        let all_of = self.entries(path, "allOf", map.get("allOf"));
        let any_of = self.entries(path, "anyOf", map.get("anyOf"));
        let blocks = map.contains_key("allOf") || map.contains_key("anyOf");
        let at_least = self.at_least(path, map, blocks);
        if !blocks && !map.contains_key("atLeast") {
            self.problem(
                path,
                "a group needs `allOf` or `anyOf` (or both, combined by `operator`), or `atLeast` with `of`",
            );
            return None;
        }
        Some(Group {
            all_of: all_of?,
            any_of: any_of?,
            operator: operator?,
            at_least: at_least?,
            within: within?,
        })
    }

    /// `within` of a group: `Some(None)` when absent, `None` after a problem.
    fn within(&mut self, path: &str, map: &serde_json::Map<String, Value>) -> Option<Option<Span>> {
        let Some(w) = map.get("within") else {
            return Some(None);
        };
        let p = format!("{path}.within");
        let text = self.scalar(&p, w, "a duration such as 20h")?;
        let span = Span::parse(&text);
        if span.is_none() {
            self.problem(
                &p,
                format!(
                    "\"{}\" is not a duration; write it like 20h, 90m, 1d or 1h30m",
                    shorten(&text, 80)
                ),
            );
        }
        span.map(Some)
    }

    /// `atLeast: K` with `of: [...]`: `Some(None)` when absent, `None` after a problem.
    fn at_least(
        &mut self,
        path: &str,
        map: &serde_json::Map<String, Value>,
        blocks: bool,
    ) -> Option<Option<AtLeast>> {
        let (count, of) = match (map.get("atLeast"), map.get("of")) {
            (None, None) => return Some(None),
            (Some(_), None) => {
                self.problem(
                    &format!("{path}.of"),
                    "missing; `atLeast: K` counts the entries listed in `of`",
                );
                return None;
            }
            (None, Some(_)) => {
                self.problem(
                    &format!("{path}.atLeast"),
                    "missing; `of` lists the entries `atLeast: K` counts",
                );
                return None;
            }
            (Some(count), Some(_)) => (count, self.entries(path, "of", map.get("of"))),
        };
        if blocks {
            self.problem(
                &format!("{path}.atLeast"),
                "`atLeast` with `of` is a group of its own; nest it in `allOf` or `anyOf` to combine it with other entries",
            );
            return None;
        }
        let p = format!("{path}.atLeast");
        let text = self.scalar(&p, count, "a number of entries")?;
        let of = of?;
        match text.parse::<usize>() {
            Ok(k) if (1..=of.len()).contains(&k) => Some(Some(AtLeast { count: k, of })),
            _ => {
                self.problem(
                    &p,
                    format!(
                        "\"{}\" is not a count of entries; allowed: 1 to {} (the entries in `of`)",
                        shorten(&text, 80),
                        of.len()
                    ),
                );
                None
            }
        }
    }

    fn entries(&mut self, path: &str, key: &str, value: Option<&Value>) -> Option<Vec<Condition>> {
        let Some(value) = value else {
            return Some(Vec::new());
        };
        let p = format!("{path}.{key}");
        let items = match value {
            Value::Array(items) if items.is_empty() => {
                self.problem(&p, "must not be empty");
                return None;
            }
            Value::Array(items) => items,
            other => {
                self.problem(
                    &p,
                    format!("expected a list of conditions, got {}", describe(other)),
                );
                return None;
            }
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.condition(&format!("{p}[{i}]"), item) {
                Some(c) => out.push(c),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn condition(&mut self, path: &str, value: &Value) -> Option<Condition> {
        let map = self.object(path, value)?;
        let is_group = ["allOf", "anyOf", "operator", "atLeast", "of", "within"]
            .iter()
            .any(|k| map.contains_key(*k));
        if is_group {
            if map.contains_key("name") {
                self.problem(path, "an entry is either a pipeline (name, account, status) or a group (allOf/anyOf/operator), not both");
                return None;
            }
            return self.group(path, value).map(Condition::Group);
        }
        self.leaf(path, map).map(Condition::Leaf)
    }

    fn leaf(&mut self, path: &str, map: &serde_json::Map<String, Value>) -> Option<Leaf> {
        self.unknown_keys(path, map, &["name", "account", "region", "status"]);
        let name = match map.get("name") {
            None => {
                self.problem(
                    &format!("{path}.name"),
                    "missing; name the parent pipeline (its state machine name)",
                );
                None
            }
            Some(n) => {
                let p = format!("{path}.name");
                self.scalar(&p, n, "a state machine name")
                    .and_then(|n| match check_name(&n) {
                        Ok(()) => Some(n),
                        Err(e) => {
                            self.problem(&p, e.to_string());
                            None
                        }
                    })
            }
        };
        let account =
            self.optional_checked(path, map, "account", "a 12-digit account id", check_account);
        let region = self.optional_checked(path, map, "region", "a region name", check_region);
        let status = match map.get("status") {
            None => {
                self.problem(
                    &format!("{path}.status"),
                    format!(
                        "missing; list the statuses wanted: {}",
                        RunStatus::ACCEPTED_WORDS
                    ),
                );
                None
            }
            Some(s) => self.statuses(&format!("{path}.status"), s),
        };
        Some(Leaf {
            name: name?,
            account: account?,
            region: region?,
            status: status?,
        })
    }

    /// `Some(None)` when absent, `Some(Some(v))` when valid, `None` after a problem.
    fn optional_checked<E: fmt::Display>(
        &mut self,
        path: &str,
        map: &serde_json::Map<String, Value>,
        key: &str,
        what: &str,
        check: impl Fn(&str) -> Result<(), E>,
    ) -> Option<Option<String>> {
        let Some(value) = map.get(key) else {
            return Some(None);
        };
        let p = format!("{path}.{key}");
        let text = self.scalar(&p, value, what)?;
        match check(&text) {
            Ok(()) => Some(Some(text)),
            Err(e) => {
                self.problem(&p, e.to_string());
                None
            }
        }
    }

    fn statuses(
        &mut self,
        path: &str,
        value: &Value,
    ) -> Option<std::collections::BTreeSet<RunStatus>> {
        let items = self.list(path, value)?;
        let mut out = BTreeSet::new();
        let mut ok = true;
        for (i, item) in items.into_iter().enumerate() {
            let p = if value.is_array() {
                format!("{path}[{i}]")
            } else {
                path.to_owned()
            };
            match self.scalar(&p, item, "a status") {
                Some(word) => match RunStatus::parse(&word) {
                    Some(s) => {
                        out.insert(s);
                    }
                    None => {
                        self.problem(
                            &p,
                            format!(
                                "\"{}\" is not a status; allowed: {}",
                                shorten(&word, 80),
                                RunStatus::ACCEPTED_WORDS
                            ),
                        );
                        ok = false;
                    }
                },
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}
