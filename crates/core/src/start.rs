//! Starting a triggered pipeline in its own account (pipeline-starter): which triggers a member
//! account accepts, the `StartExecution` request a trigger becomes, and the port that makes it.
//!
//! Exactly one start per trigger comes from Step Functions itself: the execution is named by the
//! trigger id, and a name can be used once per state machine (kept 90 days for Standard
//! workflows). A repeat with the same name and input while the first execution runs answers with
//! that execution; after it closed, or with another input, it is refused as
//! `ExecutionAlreadyExists`. Both mean "already started", never a second run.

use std::future::Future;

use thiserror::Error;

use crate::events::PipelineTrigger;
use crate::pipeline::{check_name, PipelineId};

/// Where a pipeline-starter runs: it starts state machines of this account and region only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HomeAccount {
    pub account: String,
    pub region: String,
}

/// A `StartExecution` call: the state machine the trigger names, the trigger id as the execution
/// name, the trigger as the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartRequest {
    pub state_machine_arn: String,
    pub execution_name: String,
    pub input: String,
}

/// What a start came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartOutcome {
    /// Step Functions answered with an execution: a new one, or (same name and input, still
    /// running) the one an earlier delivery started.
    Started { execution_arn: String },
    /// `ExecutionAlreadyExists`: an earlier delivery started it.
    AlreadyStarted,
}

/// Why a start call failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StartError {
    #[error("starting `{arn}` failed and may succeed if retried: {message}")]
    Unavailable { arn: String, message: String },
    #[error("state machine `{arn}` does not exist (StateMachineDoesNotExist)")]
    StateMachineMissing { arn: String },
    #[error("starting `{arn}` was refused (retrying will not help): {message}")]
    Refused { arn: String, message: String },
}

impl StartError {
    /// Whether trying again later can help (throttling, service errors, timeouts).
    pub fn is_retryable(&self) -> bool {
        matches!(self, StartError::Unavailable { .. })
    }
}

/// Starts Step Functions executions (the adapter calls `states:StartExecution`).
pub trait ExecutionStarter {
    /// Starts `request`; `ExecutionAlreadyExists` is [`StartOutcome::AlreadyStarted`], not an
    /// error.
    fn start(
        &self,
        request: &StartRequest,
    ) -> impl Future<Output = Result<StartOutcome, StartError>> + Send;
}

/// Why a trigger is not started. Each one is final: delivering the trigger again cannot help.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    #[error("trigger {trigger_id} names no state machine (`target.stateMachineArn` is empty); nothing was started")]
    NoStateMachine { trigger_id: String },
    #[error(
        "trigger {trigger_id}: `{arn}` is not a state machine ARN: {problem}; nothing was started"
    )]
    MalformedArn {
        trigger_id: String,
        arn: String,
        problem: String,
    },
    #[error("trigger {trigger_id}: state machine `{arn}` is in account {account}, but this function starts only state machines of its own account {home}; nothing was started")]
    OtherAccount {
        trigger_id: String,
        arn: String,
        account: String,
        home: String,
    },
    #[error("trigger {trigger_id}: state machine `{arn}` is in region {region}, but this function starts only state machines of its own region {home}; nothing was started")]
    OtherRegion {
        trigger_id: String,
        arn: String,
        region: String,
        home: String,
    },
    #[error("trigger {trigger_id}: state machine `{arn}` is not the pipeline the trigger targets ({target}); nothing was started")]
    TargetMismatch {
        trigger_id: String,
        arn: String,
        target: String,
    },
    #[error("trigger id `{trigger_id}` cannot name an execution of `{arn}` ({problem}); nothing was started")]
    ExecutionName {
        trigger_id: String,
        arn: String,
        problem: String,
    },
    #[error("trigger {trigger_id} cannot be written as the input of `{arn}`: {problem}; nothing was started")]
    Input {
        trigger_id: String,
        arn: String,
        problem: String,
    },
    #[error("trigger {trigger_id}: {source}; nothing was started")]
    Start {
        trigger_id: String,
        source: StartError,
    },
}

impl Refusal {
    /// The state machine ARN the refused trigger named, when it named one.
    pub fn state_machine_arn(&self) -> Option<&str> {
        match self {
            Refusal::NoStateMachine { .. } => None,
            Refusal::MalformedArn { arn, .. }
            | Refusal::OtherAccount { arn, .. }
            | Refusal::OtherRegion { arn, .. }
            | Refusal::TargetMismatch { arn, .. }
            | Refusal::ExecutionName { arn, .. }
            | Refusal::Input { arn, .. } => Some(arn),
            Refusal::Start { source, .. } => match source {
                StartError::Unavailable { arn, .. }
                | StartError::StateMachineMissing { arn }
                | StartError::Refused { arn, .. } => Some(arn),
            },
        }
    }
}

/// The start request for `trigger`, or why this account must not start it: the state machine
/// must be a well-formed ARN of `home`'s account and region, agree with the trigger's target,
/// and the trigger id must be a valid execution name.
pub fn start_request(
    trigger: &PipelineTrigger,
    home: &HomeAccount,
) -> Result<StartRequest, Refusal> {
    let trigger_id = trigger.trigger_id.as_str().to_owned();
    let arn = trigger.target.state_machine_arn.trim();
    if arn.is_empty() {
        return Err(Refusal::NoStateMachine { trigger_id });
    }
    let pipeline = PipelineId::from_state_machine_arn(arn).map_err(|e| Refusal::MalformedArn {
        trigger_id: trigger_id.clone(),
        arn: arn.to_owned(),
        problem: e.to_string(),
    })?;
    if pipeline.account != home.account {
        return Err(Refusal::OtherAccount {
            trigger_id,
            arn: arn.to_owned(),
            account: pipeline.account,
            home: home.account.clone(),
        });
    }
    if pipeline.region != home.region {
        return Err(Refusal::OtherRegion {
            trigger_id,
            arn: arn.to_owned(),
            region: pipeline.region,
            home: home.region.clone(),
        });
    }
    // The run log files the child's run under the target; an ARN elsewhere would start one
    // pipeline and tell the story of another.
    if pipeline != trigger.target.id() {
        return Err(Refusal::TargetMismatch {
            trigger_id,
            arn: arn.to_owned(),
            target: trigger.target.id().to_string(),
        });
    }
    check_execution_name(&trigger_id).map_err(|problem| Refusal::ExecutionName {
        trigger_id: trigger_id.clone(),
        arn: arn.to_owned(),
        problem,
    })?;
    let input = serde_json::to_string(trigger).map_err(|e| Refusal::Input {
        trigger_id: trigger_id.clone(),
        arn: arn.to_owned(),
        problem: e.to_string(),
    })?;
    Ok(StartRequest {
        state_machine_arn: arn.to_owned(),
        execution_name: trigger_id,
        input,
    })
}

/// An execution name as Step Functions accepts it: the rules of a state machine name (1 to 80
/// characters, no whitespace, brackets, wildcards, control or special characters), in ASCII so
/// CloudWatch Logs can carry it. Trigger ids (32 hex digits) always pass.
pub fn check_execution_name(name: &str) -> Result<(), String> {
    if !name.is_ascii() {
        return Err("an execution name must be ASCII".to_owned());
    }
    check_name(name).map_err(|_| {
        "an execution name has 1 to 80 characters, none of them whitespace or < > { } [ ] ? * \" # % \\ ^ | ~ ` $ & , ; : /".to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluator::{Firing, TriggerId};
    use crate::run::RunRef;
    use crate::status::RunStatus;
    use crate::time::Timestamp;

    fn home() -> HomeAccount {
        HomeAccount {
            account: "333333333333".into(),
            region: "eu-west-1".into(),
        }
    }

    fn trigger_for(child: &PipelineId) -> PipelineTrigger {
        let parent = PipelineId::new("111111111111", "eu-west-1", "listings").unwrap();
        let consumed = vec![RunRef {
            pipeline: parent.clone(),
            execution_arn: "arn:aws:states:eu-west-1:111111111111:execution:listings:run-1".into(),
            status: RunStatus::Succeeded,
            status_time: Timestamp(1_000),
            run_key: None,
        }];
        let firing = Firing {
            trigger_id: TriggerId::of(child, &consumed),
            run_key: None,
            consumed,
            cursor_after: Timestamp(1_000),
        };
        PipelineTrigger::new(child, &firing, Timestamp(2_000))
    }

    fn child() -> PipelineId {
        PipelineId::new("333333333333", "eu-west-1", "pipeline-x").unwrap()
    }

    #[test]
    fn a_trigger_of_this_account_becomes_a_start_named_by_its_id_with_itself_as_input() {
        let trigger = trigger_for(&child());
        let request = start_request(&trigger, &home()).unwrap();
        assert_eq!(
            request.state_machine_arn,
            "arn:aws:states:eu-west-1:333333333333:stateMachine:pipeline-x"
        );
        assert_eq!(request.execution_name, trigger.trigger_id.0);
        let input: PipelineTrigger = serde_json::from_str(&request.input).unwrap();
        assert_eq!(input, trigger);
        // Two deliveries make the same input, which Step Functions needs to treat them as one.
        assert_eq!(start_request(&trigger, &home()).unwrap(), request);
    }

    #[test]
    fn an_aligned_trigger_puts_its_run_key_in_the_input_where_dollar_run_key_finds_it() {
        let trigger = PipelineTrigger {
            run_key: Some(crate::RunKey("2026-11-24".into())),
            ..trigger_for(&child())
        };
        let request = start_request(&trigger, &home()).unwrap();
        let path = crate::RunKeyPath::parse("$.runKey").unwrap();
        assert_eq!(
            path.read(&request.input),
            Ok(crate::RunKey("2026-11-24".into()))
        );
    }

    #[test]
    fn refuses_state_machines_of_other_accounts_and_regions_naming_the_arn() {
        let other_account = PipelineId::new("444444444444", "eu-west-1", "pipeline-x").unwrap();
        let refusal = start_request(&trigger_for(&other_account), &home()).unwrap_err();
        assert!(matches!(refusal, Refusal::OtherAccount { .. }));
        assert!(refusal
            .to_string()
            .contains("arn:aws:states:eu-west-1:444444444444:stateMachine:pipeline-x"));

        let other_region = PipelineId::new("333333333333", "us-east-1", "pipeline-x").unwrap();
        let refusal = start_request(&trigger_for(&other_region), &home()).unwrap_err();
        assert!(matches!(refusal, Refusal::OtherRegion { .. }));
        assert_eq!(
            refusal.state_machine_arn(),
            Some("arn:aws:states:us-east-1:333333333333:stateMachine:pipeline-x")
        );
    }

    #[test]
    fn refuses_a_missing_or_malformed_arn_and_one_that_is_not_the_target() {
        let mut trigger = trigger_for(&child());
        trigger.target.state_machine_arn = " ".into();
        assert!(matches!(
            start_request(&trigger, &home()),
            Err(Refusal::NoStateMachine { .. })
        ));
        trigger.target.state_machine_arn =
            "arn:aws:lambda:eu-west-1:333333333333:function:x".into();
        assert!(matches!(
            start_request(&trigger, &home()),
            Err(Refusal::MalformedArn { .. })
        ));
        trigger.target.state_machine_arn =
            "arn:aws:states:eu-west-1:333333333333:stateMachine:other".into();
        assert!(matches!(
            start_request(&trigger, &home()),
            Err(Refusal::TargetMismatch { .. })
        ));
    }

    #[test]
    fn trigger_ids_are_valid_execution_names_and_others_are_refused() {
        let trigger = trigger_for(&child());
        assert_eq!(trigger.trigger_id.0.len(), 32);
        assert_eq!(check_execution_name(&trigger.trigger_id.0), Ok(()));
        for bad in ["", "a b", "a:b", "ünïcode", &"x".repeat(81)] {
            let mut t = trigger.clone();
            t.trigger_id = TriggerId(bad.to_owned());
            assert!(
                matches!(
                    start_request(&t, &home()),
                    Err(Refusal::ExecutionName { .. })
                ),
                "{bad:?} was accepted"
            );
        }
    }
}
