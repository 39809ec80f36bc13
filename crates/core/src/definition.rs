//! Reading a pipeline definition's `trigger` and `notifications` blocks from YAML, from JSON, and
//! from CloudFormation custom-resource properties (where every scalar arrives as a string).
//!
//! All three go through one validator over a JSON value, so they accept the same things and
//! report problems the same way: every problem at once, each with its path, the bad value and what
//! is allowed.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::condition::Trigger;
use crate::deadlines::Deadlines;
use crate::run_key::RunKeyPath;
use crate::status::RunStatus;

mod trigger;

/// A pipeline's definition as baton sees it: when it starts and who hears about its runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PipelineDefinition {
    /// `runKey`: where a run's logical key is in its execution input (run-log-writer reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_key: Option<RunKeyPath>,
    /// Absent for pipelines started otherwise (a schedule, by hand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<Notifications>,
    /// By when it must start and finish each day, and how long a run may take (the watchdog).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadlines: Option<Deadlines>,
}

/// Which status changes are announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NotificationType {
    /// Every status change.
    #[default]
    FullExecution,
    /// Final statuses only.
    Terminal,
    /// FAILED, TIMED_OUT and ABORTED only.
    Failures,
}

impl NotificationType {
    /// Whether a run reaching `status` is announced.
    pub fn announces(self, status: RunStatus) -> bool {
        match self {
            NotificationType::FullExecution => true,
            NotificationType::Terminal => status.is_final(),
            NotificationType::Failures => status.is_failure(),
        }
    }
}

/// Where notifications go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Channel {
    Slack,
    Email,
}

/// One target: a channel kind and its addresses (Slack channel names or ids, email addresses).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub channel: Channel,
    pub addresses: Vec<String>,
}

/// The `notifications` block, validated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notifications {
    #[serde(rename = "type", default)]
    pub kind: NotificationType,
    pub targets: Vec<Target>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mention_on_failure: Option<String>,
    /// The pipeline's SNS topic that EMAIL targets' messages are published to (its e-mail
    /// subscriptions deliver them): the registration's `NotificationTopicArn`, checked by
    /// [`crate::email::check_topic`]. Not part of pipeline.yaml, whose stack creates the topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_topic_arn: Option<String>,
}

impl Notifications {
    /// The e-mail addresses of its EMAIL targets, in definition order, without duplicates.
    pub fn email_addresses(&self) -> Vec<&str> {
        self.addresses(Channel::Email)
    }

    /// The Slack channels, in definition order, without duplicates.
    pub fn slack_channels(&self) -> Vec<&str> {
        self.addresses(Channel::Slack)
    }

    fn addresses(&self, channel: Channel) -> Vec<&str> {
        let mut seen = BTreeSet::new();
        self.targets
            .iter()
            .filter(|t| t.channel == channel)
            .flat_map(|t| t.addresses.iter())
            .filter(|a| seen.insert(a.as_str()))
            .map(String::as_str)
            .collect()
    }
}

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

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}

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
    fn list<'a>(&mut self, path: &str, value: &'a Value) -> Option<Vec<&'a Value>> {
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

    fn notifications(&mut self, path: &str, value: &Value) -> Option<Notifications> {
        let map = self.object(path, value)?;
        self.unknown_keys(path, map, &["type", "targets", "mentionOnFailure"]);
        let kind = match map.get("type") {
            None => Some(NotificationType::default()),
            Some(t) => {
                let p = format!("{path}.type");
                self.scalar(&p, t, "a notification type").and_then(|word| match word.as_str() {
                    "FULL_EXECUTION" => Some(NotificationType::FullExecution),
                    "TERMINAL" => Some(NotificationType::Terminal),
                    "FAILURES" => Some(NotificationType::Failures),
                    _ => {
                        self.problem(&p, format!("\"{}\" is not a notification type; allowed: FULL_EXECUTION, TERMINAL, FAILURES", shorten(&word, 80)));
                        None
                    }
                })
            }
        };
        let targets = match map.get("targets") {
            None => {
                self.problem(&format!("{path}.targets"), "missing; list at least one target such as {channel: SLACK, addresses: [my-channel]}");
                None
            }
            Some(t) => self.targets(&format!("{path}.targets"), t),
        };
        let mention_on_failure = match map.get("mentionOnFailure") {
            None => Some(None),
            Some(m) => self
                .scalar(
                    &format!("{path}.mentionOnFailure"),
                    m,
                    "a Slack mention such as <!subteam^S0123> or <@U0123>",
                )
                .map(|m| Some(m).filter(|m| !m.is_empty())),
        };
        Some(Notifications {
            kind: kind?,
            targets: targets?,
            mention_on_failure: mention_on_failure?,
            email_topic_arn: None,
        })
    }

    fn targets(&mut self, path: &str, value: &Value) -> Option<Vec<Target>> {
        let Value::Array(items) = value else {
            self.problem(
                path,
                format!("expected a list of targets, got {}", describe(value)),
            );
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.target(&format!("{path}[{i}]"), item) {
                Some(t) => out.push(t),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn target(&mut self, path: &str, value: &Value) -> Option<Target> {
        let map = self.object(path, value)?;
        self.unknown_keys(path, map, &["channel", "addresses"]);
        let channel = match map.get("channel") {
            None => {
                self.problem(&format!("{path}.channel"), "missing; allowed: SLACK, EMAIL");
                None
            }
            Some(c) => {
                let p = format!("{path}.channel");
                self.scalar(&p, c, "SLACK or EMAIL").and_then(|word| {
                    match word.to_ascii_uppercase().as_str() {
                        "SLACK" => Some(Channel::Slack),
                        "EMAIL" => Some(Channel::Email),
                        _ => {
                            self.problem(
                                &p,
                                format!(
                                    "\"{}\" is not a channel; allowed: SLACK, EMAIL",
                                    shorten(&word, 80)
                                ),
                            );
                            None
                        }
                    }
                })
            }
        };
        let addresses = match map.get("addresses") {
            None => {
                self.problem(
                    &format!("{path}.addresses"),
                    "missing; list the Slack channels or email addresses",
                );
                None
            }
            Some(a) => {
                let p = format!("{path}.addresses");
                let items = self.list(&p, a);
                items.and_then(|items| {
                    let mut out = Vec::new();
                    let mut ok = true;
                    for (i, item) in items.into_iter().enumerate() {
                        let ip = if a.is_array() {
                            format!("{p}[{i}]")
                        } else {
                            p.clone()
                        };
                        match self.scalar(&ip, item, "an address") {
                            Some(addr) => match self.address(&ip, channel, addr) {
                                Some(addr) => out.push(addr),
                                None => ok = false,
                            },
                            None => ok = false,
                        }
                    }
                    ok.then_some(out)
                })
            }
        };
        Some(Target {
            channel: channel?,
            addresses: addresses?,
        })
    }

    fn address(&mut self, path: &str, channel: Option<Channel>, addr: String) -> Option<String> {
        match channel {
            // Slack accepts a channel id (C0123...) or name; `#name` is how people write names.
            Some(Channel::Slack) => {
                let name = addr.trim_start_matches('#').to_owned();
                let ok = !name.is_empty()
                    && name.len() <= 80
                    && name
                        .chars()
                        .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
                if !ok {
                    self.problem(path, format!("\"{}\" is not a Slack channel name or id (letters, digits, - _ .; at most 80)", shorten(&addr, 80)));
                    return None;
                }
                Some(name)
            }
            Some(Channel::Email) => {
                let ok = addr.split_once('@').is_some_and(|(user, domain)| {
                    !user.is_empty() && domain.contains('.') && !addr.contains(char::is_whitespace)
                });
                if !ok {
                    self.problem(
                        path,
                        format!("\"{}\" is not an email address", shorten(&addr, 80)),
                    );
                    return None;
                }
                Some(addr)
            }
            None => Some(addr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::condition::{Condition, Operator};
    use crate::time::Span;
    use serde_json::json;

    const SCOUT24: &str = r##"
name: pipeline-x
trigger:
  executions:
    allOf:
      - name: listings
        account: 111111111111
        status: [SUCCESS]
      - {name: searches, account: "222222222222", status: [SUCCEEDED]}
    within: 20h
notifications:
  type: FAILURES
  targets:
    - {channel: SLACK, addresses: ["#data-pipeline-alerts"]}
    - {channel: EMAIL, addresses: [team@example.com]}
  mentionOnFailure: "<!subteam^S0123>"
"##;

    #[test]
    fn yaml_json_and_cfn_properties_read_the_same() {
        let from_yaml = PipelineDefinition::from_yaml(SCOUT24).unwrap();
        let trigger = from_yaml.trigger.as_ref().unwrap();
        assert_eq!(trigger.executions.within, Some(Span::hours(20)));
        assert_eq!(trigger.executions.all_of.len(), 2);
        let Condition::Leaf(first) = &trigger.executions.all_of[0] else {
            panic!("leaf expected")
        };
        assert_eq!(first.account.as_deref(), Some("111111111111"));
        assert!(first.status.contains(&RunStatus::Succeeded));
        let n = from_yaml.notifications.as_ref().unwrap();
        assert_eq!(n.slack_channels(), vec!["data-pipeline-alerts"]);
        assert_eq!(n.kind, NotificationType::Failures);

        let doc: Value = serde_yaml_ng::from_str(SCOUT24).unwrap();
        let from_json = PipelineDefinition::from_json(&doc.to_string()).unwrap();
        assert_eq!(from_json, from_yaml);

        let props = json!({
            "ServiceToken": "arn:aws:lambda:eu-west-1:999999999999:function:cfn-responder",
            "PipelineName": "pipeline-x",
            "Trigger": {"executions": {"allOf": [
                {"name": "listings", "account": "111111111111", "status": ["SUCCESS"]},
                {"name": "searches", "account": "222222222222", "status": ["SUCCEEDED"]}
            ], "within": "20h"}},
            "Notifications": {"type": "FAILURES", "mentionOnFailure": "<!subteam^S0123>", "targets": [
                {"channel": "SLACK", "addresses": ["#data-pipeline-alerts"]},
                {"channel": "EMAIL", "addresses": ["team@example.com"]}
            ]}
        });
        assert_eq!(
            PipelineDefinition::from_cfn_properties(&props).unwrap(),
            from_yaml
        );
    }

    #[test]
    fn reports_every_problem_with_its_path() {
        let err = PipelineDefinition::from_yaml(
            r#"
trigger:
  executions:
    allOf:
      - {name: listings, account: "1111", status: [SUCCESS]}
      - {name: searches, account: "222222222222", status: [SUCCESS, DONE]}
    operator: XOR
    within: soon
notifications:
  type: SOMETIMES
  targets: [{channel: PIGEON, addresses: [roof]}]
"#,
        )
        .unwrap_err();
        let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "trigger.executions.within",
                "trigger.executions.operator",
                "trigger.executions.allOf[0].account",
                "trigger.executions.allOf[1].status[1]",
                "notifications.type",
                "notifications.targets[0].channel",
            ]
        );
        let status = &err.problems[3];
        assert!(
            status.message.contains("\"DONE\"")
                && status.message.contains("SUCCEEDED (alias SUCCESS)"),
            "{status}"
        );
        assert!(err
            .to_string()
            .starts_with("6 problems in the pipeline definition"));
    }

    #[test]
    fn nested_groups_and_defaults() {
        let def = PipelineDefinition::from_json(
            r#"{"trigger": {"executions": {"operator": "OR",
                "allOf": [{"name": "a", "status": "SUCCEEDED"}, {"anyOf": [{"name": "b", "status": ["FAILED"]}, {"name": "c", "status": ["TIMED_OUT"]}]}],
                "anyOf": [{"name": "d", "account": "444444444444", "region": "us-east-1", "status": ["SUCCESS"]}]}},
              "notifications": {"targets": [{"channel": "slack", "addresses": "alerts"}]}}"#,
        )
        .unwrap();
        let t = def.trigger.unwrap();
        assert_eq!(t.executions.operator, Operator::Or);
        assert_eq!(t.executions.leaves().len(), 4);
        assert!(matches!(&t.executions.all_of[1], Condition::Group(g) if g.any_of.len() == 2));
        assert_eq!(
            def.notifications.unwrap().kind,
            NotificationType::FullExecution
        );
    }

    #[test]
    fn unknown_and_missing_fields_are_named() {
        let err = PipelineDefinition::from_json(
            r#"{"trigger": {"executions": {"allof": [{"name": "a"}]}}}"#,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(
                "trigger.executions.allof: unknown field; allowed here: allOf, anyOf, operator"
            ),
            "{text}"
        );
        assert!(
            text.contains("trigger.executions: a group needs `allOf` or `anyOf`"),
            "{text}"
        );

        let err = PipelineDefinition::from_json(r#"{"trigger": {"executions": {"allOf": [{"account": "111111111111"}, {"name": "x", "allOf": []}]}}}"#).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("allOf[0].name: missing"), "{text}");
        assert!(text.contains("allOf[0].status: missing"), "{text}");
        assert!(
            text.contains("allOf[1]: an entry is either a pipeline"),
            "{text}"
        );
    }

    #[test]
    fn not_a_document() {
        assert!(PipelineDefinition::from_yaml("trigger: [")
            .unwrap_err()
            .to_string()
            .contains("not valid YAML"));
        assert!(PipelineDefinition::from_json("[]")
            .unwrap_err()
            .to_string()
            .contains("expected a mapping"));
        assert_eq!(
            PipelineDefinition::from_yaml("name: listings\ntrigger: {schedule: {hour: 3}}")
                .unwrap(),
            PipelineDefinition::default()
        );
    }
}
