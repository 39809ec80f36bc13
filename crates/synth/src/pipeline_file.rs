//! `pipeline.yaml`: one pipeline as its team writes it (name, state machine, trigger,
//! notifications), read and checked for one environment. The `trigger` and `notifications` blocks
//! are checked by the same validator cfn-responder runs, so what synth accepts registers.

use baton_core::definition::PipelineDefinition;
use baton_core::pipeline::{check_account, check_name};
use serde_json::{Map, Value};

use crate::problems::{join, parse_yaml, Collector, Problems};
use crate::project::Environment;
use crate::schedule::Schedule;

/// The state machine definition synth points `DefinitionUri` at when pipeline.yaml names none.
pub const DEFAULT_DEFINITION: &str = "statemachine.asl.json";

/// A checked pipeline.yaml, its account aliases resolved for one environment.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineFile {
    pub name: String,
    pub description: Option<String>,
    /// The ASL file, relative to pipeline.yaml.
    pub definition_file: String,
    /// Passed to `AWS::Serverless::StateMachine` as they are (SAM policy templates, ARNs, statements).
    pub policies: Option<Value>,
    pub schedule: Option<Schedule>,
    /// The `Trigger` property of the custom resource: the trigger block without its schedule,
    /// aliases replaced by account ids. Absent when the pipeline only runs on its schedule.
    pub trigger: Option<Value>,
    /// The `Notifications` property.
    pub notifications: Option<Value>,
    /// The `RunKey` property: where a run's key is in its execution input (docs/trigger-semantics.md).
    pub run_key: Option<Value>,
    /// The `Deadlines` property (`docs/watchdog.md`).
    pub deadlines: Option<Value>,
    /// The definition as cfn-responder will see it.
    pub definition: PipelineDefinition,
}

impl PipelineFile {
    /// Reads `text` (named `file` in problems) for environment `env`, resolving account aliases
    /// from `aliases` (alias -> environment -> account).
    pub fn parse(
        file: &str,
        text: &str,
        env: &Environment,
        aliases: &std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
    ) -> Result<PipelineFile, Problems> {
        let doc = parse_yaml(file, text)?;
        let mut c = Collector::new(file);
        let Some(map) = c.mapping("(document)", &doc) else {
            return Err(c.into_problems());
        };
        c.unknown_keys(
            "",
            map,
            &[
                "name",
                "description",
                "runKey",
                "stateMachine",
                "trigger",
                "notifications",
                "deadlines",
            ],
        );
        let name = c.checked(
            map,
            "",
            "name",
            "the pipeline's name (its state machine's name)",
            check_name,
        );
        let description = map
            .get("description")
            .and_then(|d| c.scalar("description", d, "a sentence"));
        let (definition_file, policies) = match map.get("stateMachine") {
            None => (Some(DEFAULT_DEFINITION.to_owned()), None),
            Some(v) => state_machine(&mut c, v),
        };
        let (schedule, trigger) = match map.get("trigger") {
            None => (None, None),
            Some(t) => trigger(&mut c, t, env, aliases),
        };
        let notifications = map.get("notifications").cloned();
        let run_key = map.get("runKey").cloned();
        let deadlines = map.get("deadlines").cloned();
        let definition = checked_definition(
            &mut c,
            trigger.as_ref(),
            notifications.as_ref(),
            run_key.as_ref(),
            deadlines.as_ref(),
        );
        if c.is_empty() {
            if let (Some(name), Some(definition_file), Some(definition)) =
                (name, definition_file, definition)
            {
                return Ok(PipelineFile {
                    name,
                    description,
                    definition_file,
                    policies,
                    schedule,
                    trigger,
                    notifications,
                    run_key,
                    deadlines,
                    definition,
                });
            }
        }
        Err(c.into_problems())
    }

    /// The e-mail addresses of its EMAIL targets, without duplicates, in definition order.
    pub fn email_addresses(&self) -> Vec<String> {
        self.definition
            .notifications
            .as_ref()
            .map(|n| n.email_addresses().into_iter().map(str::to_owned).collect())
            .unwrap_or_default()
    }
}

/// The definition as cfn-responder will see it, checked by core's validator, its problems
/// added to `c` (`None` when there are any).
fn checked_definition(
    c: &mut Collector,
    trigger: Option<&Value>,
    notifications: Option<&Value>,
    run_key: Option<&Value>,
    deadlines: Option<&Value>,
) -> Option<PipelineDefinition> {
    let checked = PipelineDefinition::from_blocks(
        trigger.map(|t| ("trigger", t)),
        notifications.map(|n| ("notifications", n)),
    );
    let key_path = PipelineDefinition::run_key_path(run_key.map(|k| ("runKey", k)));
    let checked = match (checked, key_path) {
        (Ok(d), Ok(path)) => Ok(PipelineDefinition { run_key: path, ..d }),
        (Err(mut e), Err(more)) => {
            e.problems.extend(more.problems);
            Err(e)
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    // The deadlines block, checked by the same validator as cfn-responder's.
    let checked = match (checked, deadlines) {
        (Ok(mut d), Some(block)) => match baton_core::deadlines::read("deadlines", block) {
            Ok(read) => {
                d.deadlines = Some(read);
                Ok(d)
            }
            Err(problems) => Err(baton_core::ValidationError { problems }),
        },
        (checked, _) => checked,
    };
    match checked {
        Ok(d) => Some(d),
        Err(e) => {
            // An alias that did not resolve is reported once, by the alias check.
            let known: Vec<String> = c.paths();
            c.extend(e.problems.into_iter().filter(|p| !known.contains(&p.path)));
            None
        }
    }
}

fn state_machine(c: &mut Collector, value: &Value) -> (Option<String>, Option<Value>) {
    let Some(map) = c.mapping("stateMachine", value) else {
        return (None, None);
    };
    c.unknown_keys("stateMachine", map, &["definition", "policies", "type"]);
    if let Some(t) = map.get("type") {
        if let Some(t) = c.scalar("stateMachine.type", t, "STANDARD") {
            if !t.eq_ignore_ascii_case("STANDARD") {
                c.add(
                    "stateMachine.type",
                    format!("\"{t}\" is not supported; baton starts STANDARD workflows only (their execution names make a trigger delivered twice start one run)"),
                );
            }
        }
    }
    let definition = match map.get("definition") {
        None => Some(DEFAULT_DEFINITION.to_owned()),
        Some(d) => c
            .scalar(
                "stateMachine.definition",
                d,
                "the path of the state machine's ASL file",
            )
            .filter(|p| {
                let ok = !p.is_empty()
                    && !p.starts_with('/')
                    && !p.split(['/', '\\']).any(|s| s == "..");
                if !ok {
                    c.add(
                        "stateMachine.definition",
                        "a path inside the pipeline's folder, relative to pipeline.yaml",
                    );
                }
                ok
            }),
    };
    let policies = map.get("policies").cloned().filter(|p| {
        let ok = matches!(p, Value::Array(_) | Value::String(_));
        if !ok {
            c.add(
                "stateMachine.policies",
                "expected a list of SAM policy templates, policy ARNs or statements",
            );
        }
        ok
    });
    (definition, policies)
}

/// Splits the schedule off the trigger block and resolves account aliases in what is left.
fn trigger(
    c: &mut Collector,
    value: &Value,
    env: &Environment,
    aliases: &std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
) -> (Option<Schedule>, Option<Value>) {
    let Some(map) = c.mapping("trigger", value) else {
        return (None, None);
    };
    let schedule = map
        .get("schedule")
        .and_then(|s| Schedule::parse(c, "trigger.schedule", s));
    let mut rest: Map<String, Value> = map.clone();
    rest.remove("schedule");
    if rest.is_empty() {
        if !map.contains_key("schedule") {
            c.add("trigger", "give `schedule` or `executions` (or both)");
        }
        return (schedule, None);
    }
    let mut rest = Value::Object(rest);
    resolve_aliases(c, "trigger", &mut rest, env, aliases);
    (schedule, Some(rest))
}

/// Replaces every `account` that is not an account id by the alias's account in `env`.
fn resolve_aliases(
    c: &mut Collector,
    path: &str,
    value: &mut Value,
    env: &Environment,
    aliases: &std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let p = join(path, key);
                if key == "account" {
                    if let Value::String(alias) = v {
                        if check_account(alias.trim()).is_err() {
                            if let Some(account) = resolve(c, &p, alias, env, aliases) {
                                *v = Value::String(account);
                            }
                        }
                    }
                } else {
                    resolve_aliases(c, &p, v, env, aliases);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                resolve_aliases(c, &format!("{path}[{i}]"), item, env, aliases);
            }
        }
        _ => {}
    }
}

fn resolve(
    c: &mut Collector,
    path: &str,
    alias: &str,
    env: &Environment,
    aliases: &std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
) -> Option<String> {
    let Some(per_env) = aliases.get(alias.trim()) else {
        let known: Vec<&str> = aliases.keys().map(String::as_str).collect();
        c.add(
            path,
            format!(
                "\"{alias}\" is neither a 12-digit account id nor an alias of baton.yaml's `accounts` (aliases: {})",
                if known.is_empty() { "none".to_owned() } else { known.join(", ") }
            ),
        );
        return None;
    };
    match per_env.get(&env.name) {
        Some(account) => Some(account.clone()),
        None => {
            c.add(
                path,
                format!(
                    "alias \"{alias}\" has no account for environment `{}`; add `{}: \"<account id>\"` under accounts.{alias} in baton.yaml",
                    env.name, env.name
                ),
            );
            None
        }
    }
}
