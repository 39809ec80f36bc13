//! The `Custom::BatonPipeline` resource: its properties, the stack that owns it, and its physical id.

use baton_core::pipeline::{check_account, check_region};
use baton_core::text::shorten;
use baton_core::{PipelineDefinition, PipelineId, Problem, ValidationError};
use serde_json::Value;

/// The properties the resource accepts (`ServiceToken` is CloudFormation's own).
pub const PROPERTIES: &[&str] = &[
    "ServiceToken",
    "PipelineName",
    "StateMachineArn",
    "PipelineBusArn",
    "RunKey",
    "Trigger",
    "Notifications",
    "Deadlines",
    "NotificationTopicArn",
    "Environment",
];

const PHYSICAL_ID_PREFIX: &str = "baton:pipeline:";
const UNREGISTERED_PREFIX: &str = "baton:unregistered:";

/// The account and region of the stack that sent the request: the only account whose pipelines it
/// may register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackOwner {
    pub account: String,
    pub region: String,
}

impl StackOwner {
    /// Reads `arn:aws:cloudformation:<region>:<account>:stack/<name>/<id>`.
    pub fn from_stack_id(stack_id: &str) -> Result<StackOwner, Problem> {
        let parts: Vec<&str> = stack_id.splitn(6, ':').collect();
        match parts.as_slice() {
            ["arn", _, "cloudformation", region, account, stack]
                if stack.starts_with("stack/")
                    && check_account(account).is_ok()
                    && check_region(region).is_ok() =>
            {
                Ok(StackOwner {
                    account: (*account).to_owned(),
                    region: (*region).to_owned(),
                })
            }
            _ => Err(Problem {
                path: "StackId".into(),
                message: format!(
                    "`{}` is not a CloudFormation stack ARN (arn:aws:cloudformation:<region>:<account>:stack/<name>/<id>)",
                    shorten(stack_id, 200)
                ),
            }),
        }
    }
}

/// A pipeline as the resource declares it, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineResource {
    pub pipeline: PipelineId,
    pub definition: PipelineDefinition,
    /// `PipelineBusArn` when given; otherwise triggers go to the default bus in the pipeline's account.
    pub bus_arn: Option<String>,
    /// The baton environment the stack was synthesized for (`Environment`), when it says.
    pub environment: Option<String>,
}

/// Invalid properties: every problem, and the pipeline when at least its identity could be read
/// (so a failed Create still answers with the pipeline's stable physical id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidResource {
    pub pipeline: Option<PipelineId>,
    pub error: ValidationError,
}

impl PipelineResource {
    /// Reads the properties of a resource in a stack of `owner`, reporting every problem at once.
    pub fn read(
        properties: &Value,
        owner: &StackOwner,
    ) -> Result<PipelineResource, InvalidResource> {
        let mut problems = Vec::new();
        let Some(map) = properties.as_object() else {
            problems.push(problem(
                "(properties)",
                "expected the resource's Properties to be a mapping",
            ));
            return Err(InvalidResource {
                pipeline: None,
                error: ValidationError { problems },
            });
        };
        for key in map.keys() {
            if !PROPERTIES.contains(&key.as_str()) {
                problems.push(problem(
                    key,
                    format!("unknown property; allowed: {}", PROPERTIES[1..].join(", ")),
                ));
            }
        }
        let pipeline = identity(properties, owner, &mut problems);
        let bus_arn = match text(properties, "PipelineBusArn", &mut problems) {
            Some(arn) => match bus_account(&arn) {
                Ok(account) if account == owner.account => Some(arn),
                Ok(account) => {
                    problems.push(problem(
                        "PipelineBusArn",
                        format!("the bus is in account {account} but the stack is in account {}; a pipeline's triggers go to a bus in its own account", owner.account),
                    ));
                    None
                }
                Err(message) => {
                    problems.push(problem("PipelineBusArn", message));
                    None
                }
            },
            None => None,
        };
        let topic = text(properties, baton_core::email::TOPIC_PROPERTY, &mut problems);
        let definition = match PipelineDefinition::from_cfn_properties(properties) {
            Ok(mut d) => match baton_core::email::check_topic(
                d.notifications.take(),
                topic.as_deref(),
                &owner.account,
            ) {
                Ok(notifications) => {
                    d.notifications = notifications;
                    Some(d)
                }
                Err(p) => {
                    problems.push(p);
                    None
                }
            },
            Err(e) => {
                problems.extend(e.problems);
                None
            }
        };
        let environment = text(properties, "Environment", &mut problems);
        match (pipeline, definition) {
            (Some(pipeline), Some(definition)) if problems.is_empty() => Ok(PipelineResource {
                pipeline,
                definition,
                bus_arn,
                environment,
            }),
            (pipeline, _) => Err(InvalidResource {
                pipeline,
                error: ValidationError { problems },
            }),
        }
    }

    /// Where its triggers go: `PipelineBusArn`, or the bus named `default_bus` in its account.
    pub fn effective_bus_arn(&self, default_bus: &str) -> String {
        self.bus_arn
            .clone()
            .unwrap_or_else(|| self.pipeline.event_bus_arn(default_bus))
    }
}

/// Reads only which pipeline the properties name (for the physical id of a failed Create).
pub fn pipeline_named(properties: &Value, owner: &StackOwner) -> Option<PipelineId> {
    identity(properties, owner, &mut Vec::new())
}

fn identity(
    properties: &Value,
    owner: &StackOwner,
    problems: &mut Vec<Problem>,
) -> Option<PipelineId> {
    let by_name = text(properties, "PipelineName", problems).and_then(|name| {
        PipelineId::new(&owner.account, &owner.region, &name)
            .map_err(|e| problems.push(problem("PipelineName", e.to_string())))
            .ok()
    });
    let by_arn = text(properties, "StateMachineArn", problems).and_then(|arn| {
        match PipelineId::from_state_machine_arn(&arn) {
            Ok(p) if p.account == owner.account && p.region == owner.region => Some(p),
            Ok(p) => {
                problems.push(problem(
                    "StateMachineArn",
                    format!(
                        "the state machine is in account {} region {} but the stack is in account {} region {}; a stack registers only pipelines of its own account and region",
                        p.account, p.region, owner.account, owner.region
                    ),
                ));
                None
            }
            Err(e) => {
                problems.push(problem("StateMachineArn", e.to_string()));
                None
            }
        }
    });
    let given = |key| properties.get(key).is_some_and(|v| !v.is_null());
    match (by_name, by_arn) {
        (Some(a), Some(b)) if a != b => {
            problems.push(problem(
                "StateMachineArn",
                format!(
                    "names pipeline `{}` but PipelineName is `{}`; give one of them",
                    b.name, a.name
                ),
            ));
            None
        }
        (Some(p), _) | (None, Some(p)) => Some(p),
        (None, None) => {
            if !given("PipelineName") && !given("StateMachineArn") {
                problems.push(problem(
                    "PipelineName",
                    "missing; give PipelineName (the state machine's name) or StateMachineArn",
                ));
            }
            None
        }
    }
}

/// A string property (CloudFormation sends scalars as strings); absent is `None`.
fn text(properties: &Value, key: &str, problems: &mut Vec<Problem>) -> Option<String> {
    match properties.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.trim().to_owned()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => {
            problems.push(problem(key, "expected a string"));
            None
        }
    }
}

/// The account of `arn:<partition>:events:<region>:<account>:event-bus/<name>`.
fn bus_account(arn: &str) -> Result<String, String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let bad = || {
        format!(
            "`{}` is not an EventBridge event bus ARN (arn:aws:events:<region>:<account>:event-bus/<name>)",
            shorten(arn, 200)
        )
    };
    match parts.as_slice() {
        ["arn", _, "events", region, account, resource] => {
            let name = resource.strip_prefix("event-bus/").ok_or_else(bad)?;
            let name_ok = !name.is_empty()
                && name.len() <= 256
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b));
            if name_ok && check_account(account).is_ok() && check_region(region).is_ok() {
                Ok((*account).to_owned())
            } else {
                Err(bad())
            }
        }
        _ => Err(bad()),
    }
}

/// The stable physical id of a registered pipeline, derived from its account, region and name, so
/// a changed name is a new resource (CloudFormation replaces it and deletes the old id).
pub fn physical_id(pipeline: &PipelineId) -> String {
    format!("{PHYSICAL_ID_PREFIX}{}", pipeline.key())
}

/// The physical id answered for a Create whose properties do not even name a pipeline: stable per
/// resource in its stack, never empty, and naming nothing to delete.
pub fn unregistered_id(logical_resource_id: &str) -> String {
    let logical: String = logical_resource_id.chars().take(255).collect();
    if logical.is_empty() {
        format!("{UNREGISTERED_PREFIX}resource")
    } else {
        format!("{UNREGISTERED_PREFIX}{logical}")
    }
}

/// The pipeline a physical id stands for; `None` for ids that never named a registration.
pub fn pipeline_of(physical_id: &str) -> Option<PipelineId> {
    physical_id
        .strip_prefix(PHYSICAL_ID_PREFIX)
        .and_then(|key| PipelineId::from_key(key).ok())
}

fn problem(path: &str, message: impl Into<String>) -> Problem {
    Problem {
        path: path.to_owned(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn owner() -> StackOwner {
        StackOwner::from_stack_id(
            "arn:aws:cloudformation:eu-west-1:123456789012:stack/pipeline-x/0f1e2d3c",
        )
        .unwrap()
    }

    #[test]
    fn physical_id_round_trips_and_is_stable() {
        let p = PipelineId::new("123456789012", "eu-west-1", "pipeline-x").unwrap();
        let id = physical_id(&p);
        assert_eq!(id, "baton:pipeline:123456789012:eu-west-1:pipeline-x");
        assert_eq!(pipeline_of(&id), Some(p));
        assert_eq!(pipeline_of(&unregistered_id("Pipeline")), None);
        assert_eq!(pipeline_of(""), None);
    }

    #[test]
    fn reports_every_problem_with_its_property_path() {
        let err = PipelineResource::read(
            &json!({
                "StateMachineArn": "arn:aws:states:eu-west-1:999999999999:stateMachine:other",
                "PipelineBusArn": "not-an-arn",
                "Trigerr": {},
                "Trigger": {"executions": {"allOf": [{"name": "listings", "account": "111111111111", "status": ["DONE"]}]}}
            }),
            &owner(),
        )
        .unwrap_err();
        let paths: Vec<&str> = err.error.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(err.pipeline, None);
        for expected in [
            "Trigerr",
            "StateMachineArn",
            "PipelineBusArn",
            "Trigger.executions.allOf[0].status[0]",
        ] {
            assert!(
                paths.contains(&expected),
                "{expected} missing from {paths:?}"
            );
        }
    }

    #[test]
    fn a_pipeline_named_both_ways_must_agree() {
        let ok = PipelineResource::read(
            &json!({"PipelineName": "x", "StateMachineArn": "arn:aws:states:eu-west-1:123456789012:stateMachine:x"}),
            &owner(),
        )
        .unwrap();
        assert_eq!(ok.pipeline.name, "x");
        assert_eq!(
            ok.effective_bus_arn("baton-pipelines"),
            "arn:aws:events:eu-west-1:123456789012:event-bus/baton-pipelines"
        );
        assert!(PipelineResource::read(
            &json!({"PipelineName": "x", "StateMachineArn": "arn:aws:states:eu-west-1:123456789012:stateMachine:y"}),
            &owner(),
        )
        .is_err());
        let missing = PipelineResource::read(&json!({}), &owner()).unwrap_err();
        assert_eq!(missing.error.problems[0].path, "PipelineName");
    }

    #[test]
    fn refuses_what_is_not_a_stack_id() {
        assert!(StackOwner::from_stack_id("arn:aws:s3:::bucket").is_err());
        assert_eq!(owner().account, "123456789012");
    }
}
