//! The messages baton sends: `RunEvent` on the run-events SNS topic and `PipelineTrigger` on a
//! child account's pipeline bus. Both are versioned JSON; consumers must ignore unknown fields.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::evaluator::{Firing, TriggerId};
use crate::pipeline::PipelineId;
use crate::run::{Run, RunRef};
use crate::run_key::RunKey;
use crate::status::RunStatus;
use crate::time::Timestamp;
use crate::watch::AlertEvent;

/// The schema version of `RunEvent`. Bump on an incompatible change.
pub const RUN_EVENT_SCHEMA_VERSION: u32 = 1;

/// EventBridge `source` of a trigger.
pub const TRIGGER_SOURCE: &str = "baton";
/// EventBridge `detail-type` of a trigger.
pub const TRIGGER_DETAIL_TYPE: &str = "Pipeline Trigger";

/// What a `RunEvent` announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RunEventKind {
    /// A run reached a status (published by run-log-writer).
    Status,
    /// baton started a pipeline (published by trigger-manager).
    Trigger,
    /// A deadline was missed, or the late pipeline caught up (published by the watchdog).
    Alert,
}

/// A pipeline as events name it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineRef {
    pub account: String,
    pub region: String,
    pub name: String,
    pub state_machine_arn: String,
}

impl From<&PipelineId> for PipelineRef {
    fn from(id: &PipelineId) -> PipelineRef {
        PipelineRef {
            account: id.account.clone(),
            region: id.region.clone(),
            name: id.name.clone(),
            state_machine_arn: id.state_machine_arn(),
        }
    }
}

impl PipelineRef {
    pub fn id(&self) -> PipelineId {
        PipelineId {
            account: self.account.clone(),
            region: self.region.clone(),
            name: self.name.clone(),
        }
    }
}

/// The execution part of a status event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionInfo {
    pub arn: String,
    pub name: String,
    pub status: RunStatus,
    pub started_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The run's key, when its pipeline declares `runKey` and the input has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_key: Option<RunKey>,
}

/// Published on the run-events topic, told by `kind`: a run reached a status, baton triggered a
/// pipeline, or a deadline alert. Each kind holds only its own fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum RunEvent {
    /// A run reached a status (published by run-log-writer, or by the watchdog for a status
    /// whose event never arrived).
    Status(StatusEvent),
    /// baton started a pipeline (published by trigger-manager).
    Trigger(TriggerNotice),
    /// A deadline was missed, or the late pipeline caught up (published by the watchdog).
    Alert(AlertNotice),
}

/// `kind: status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusEvent {
    pub schema_version: u32,
    pub pipeline: PipelineRef,
    pub execution: ExecutionInfo,
    /// The baton trigger that started this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<String>,
    /// A status the watchdog found with `DescribeExecution` because its status change event
    /// never arrived.
    #[serde(default, skip_serializing_if = "is_false")]
    pub recovered: bool,
}

/// `kind: trigger`: `pipeline` is the trigger's target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerNotice {
    pub schema_version: u32,
    pub pipeline: PipelineRef,
    /// The trigger's id, at the top level as in status events (for filters and readers that
    /// do not open `trigger`).
    pub trigger_id: String,
    pub trigger: PipelineTrigger,
}

/// `kind: alert`: `pipeline` is the pipeline whose channels hear it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertNotice {
    pub schema_version: u32,
    pub pipeline: PipelineRef,
    pub alert: AlertEvent,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// An SNS message that is not a `RunEvent`: what is wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{problem}")]
pub struct UnreadableRunEvent {
    pub problem: String,
}

impl StatusEvent {
    /// The status event for a run; `recovered` when the watchdog found it.
    pub fn new(run: &Run, recovered: bool) -> StatusEvent {
        StatusEvent {
            schema_version: RUN_EVENT_SCHEMA_VERSION,
            pipeline: PipelineRef::from(&run.pipeline),
            execution: ExecutionInfo {
                arn: run.execution_arn.clone(),
                name: run.execution_name.clone(),
                status: run.status,
                started_at: run.started_at,
                stopped_at: run.stopped_at,
                error: run.error.clone(),
                cause: run.cause.clone(),
                run_key: run.run_key.clone(),
            },
            trigger_id: run.trigger_id.clone(),
            recovered,
        }
    }

    /// The run this event describes.
    pub fn run(&self) -> Run {
        let e = &self.execution;
        Run {
            pipeline: self.pipeline.id(),
            execution_arn: e.arn.clone(),
            execution_name: e.name.clone(),
            status: e.status,
            started_at: e.started_at,
            stopped_at: e.stopped_at,
            error: e.error.clone(),
            cause: e.cause.clone(),
            trigger_id: self.trigger_id.clone(),
            run_key: e.run_key.clone(),
        }
    }
}

impl RunEvent {
    /// The status event for a run.
    pub fn status(run: &Run) -> RunEvent {
        RunEvent::Status(StatusEvent::new(run, false))
    }

    /// The trigger notice for a trigger that was sent.
    pub fn trigger_notice(trigger: &PipelineTrigger) -> RunEvent {
        RunEvent::Trigger(TriggerNotice {
            schema_version: RUN_EVENT_SCHEMA_VERSION,
            pipeline: trigger.target.clone(),
            trigger_id: trigger.trigger_id.0.clone(),
            trigger: trigger.clone(),
        })
    }

    /// A deadline alert event, told in the channels of `to` (the late pipeline, or a parent it
    /// waits on).
    pub fn alert(to: &PipelineId, event: AlertEvent) -> RunEvent {
        RunEvent::Alert(AlertNotice {
            schema_version: RUN_EVENT_SCHEMA_VERSION,
            pipeline: PipelineRef::from(to),
            alert: event,
        })
    }

    pub fn kind(&self) -> RunEventKind {
        match self {
            RunEvent::Status(_) => RunEventKind::Status,
            RunEvent::Trigger(_) => RunEventKind::Trigger,
            RunEvent::Alert(_) => RunEventKind::Alert,
        }
    }

    /// The pipeline the event is about (and whose channels hear it).
    pub fn pipeline(&self) -> &PipelineRef {
        match self {
            RunEvent::Status(e) => &e.pipeline,
            RunEvent::Trigger(e) => &e.pipeline,
            RunEvent::Alert(e) => &e.pipeline,
        }
    }

    /// Reads an SNS message. A field that is missing or of the wrong type is named by its path
    /// (`execution.startedAt`), which a `kind`-tagged read alone would not tell.
    pub fn from_message(message: &str) -> Result<RunEvent, UnreadableRunEvent> {
        let value: serde_json::Value =
            serde_json::from_str(message).map_err(|e| UnreadableRunEvent {
                problem: format!("not JSON: {e}"),
            })?;
        let kind = value.get("kind").cloned();
        match kind.as_ref().and_then(serde_json::Value::as_str) {
            Some("status") => read(value).map(RunEvent::Status),
            Some("trigger") => read(value).map(RunEvent::Trigger),
            Some("alert") => read(value).map(RunEvent::Alert),
            _ => Err(UnreadableRunEvent {
                problem: format!(
                    "`kind` is {}; expected `status`, `trigger` or `alert`",
                    kind.map_or("missing".to_owned(), |k| format!("`{k}`"))
                ),
            }),
        }
    }
}

fn read<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, UnreadableRunEvent> {
    serde_path_to_error::deserialize(value).map_err(|e| UnreadableRunEvent {
        problem: match e.path().to_string().as_str() {
            "." => e.inner().to_string(),
            path => format!("`{path}`: {}", e.inner()),
        },
    })
}

/// Sent to the child account's pipeline bus (source `baton`, detail-type `Pipeline Trigger`); it
/// becomes the child execution's input, so the run log can tell which trigger started a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineTrigger {
    /// Field name also read back from execution input: `batonTriggerId`.
    #[serde(rename = "batonTriggerId")]
    pub trigger_id: TriggerId,
    pub target: PipelineRef,
    /// The run key it fires for (aligned triggers): in the child's execution input as
    /// `runKey`, so the child's own `runKey` can be `$.runKey` and keys flow downstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_key: Option<RunKey>,
    pub consumed: Vec<RunRef>,
    pub reason: String,
    pub fired_at: Timestamp,
    /// The baton environment (the central stack's `Environment`, e.g. dev or prod) that fired it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

impl PipelineTrigger {
    /// The trigger for a firing of `child` decided at `fired_at`.
    pub fn new(child: &PipelineId, firing: &Firing, fired_at: Timestamp) -> PipelineTrigger {
        PipelineTrigger {
            trigger_id: firing.trigger_id.clone(),
            target: PipelineRef::from(child),
            run_key: firing.run_key.clone(),
            consumed: firing.consumed.clone(),
            reason: firing.reason(),
            fired_at,
            environment: None,
        }
    }

    /// The trigger id carried by an execution input, if a `PipelineTrigger` started it (the rule
    /// on the pipeline bus passes the event's `detail` as input).
    pub fn id_in_execution_input(input: &str) -> Option<String> {
        let value: serde_json::Value = serde_json::from_str(input).ok()?;
        let id = value
            .get("batonTriggerId")
            .or_else(|| value.get("detail").and_then(|d| d.get("batonTriggerId")))?;
        id.as_str().map(str::to_owned)
    }
}

impl RunEvent {
    /// SNS message attributes for subscription filter policies: `account`, `pipeline` (name),
    /// `kind` (status | trigger | alert) and, for status events, `status`.
    pub fn message_attributes(&self) -> Vec<(&'static str, String)> {
        let kind = match self.kind() {
            RunEventKind::Status => "status",
            RunEventKind::Trigger => "trigger",
            RunEventKind::Alert => "alert",
        };
        let pipeline = self.pipeline();
        let mut attributes = vec![
            ("account", pipeline.account.clone()),
            ("pipeline", pipeline.name.clone()),
            ("kind", kind.to_owned()),
        ];
        if let RunEvent::Status(e) = self {
            attributes.push(("status", e.execution.status.as_str().to_owned()));
        }
        attributes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::RunStatus;

    fn run() -> Run {
        Run {
            pipeline: PipelineId::new("111111111111", "eu-west-1", "listings").unwrap(),
            execution_arn: "arn:aws:states:eu-west-1:111111111111:execution:listings:l-22".into(),
            execution_name: "l-22".into(),
            status: RunStatus::Failed,
            started_at: Timestamp(1_795_316_400_000),
            stopped_at: Some(Timestamp(1_795_320_000_000)),
            error: Some("States.TaskFailed".into()),
            cause: None,
            trigger_id: Some("abc".into()),
            run_key: None,
        }
    }

    #[test]
    fn a_status_event_keeps_its_wire_shape_and_reads_back() {
        let event = RunEvent::Status(StatusEvent::new(&run(), true));
        let wire = serde_json::to_value(&event).unwrap();
        assert_eq!(
            wire,
            serde_json::json!({
                "schemaVersion": 1, "kind": "status",
                "pipeline": {"account": "111111111111", "region": "eu-west-1", "name": "listings",
                    "stateMachineArn": "arn:aws:states:eu-west-1:111111111111:stateMachine:listings"},
                "execution": {"arn": "arn:aws:states:eu-west-1:111111111111:execution:listings:l-22",
                    "name": "l-22", "status": "FAILED", "startedAt": 1_795_316_400_000_i64,
                    "stoppedAt": 1_795_320_000_000_i64, "error": "States.TaskFailed"},
                "triggerId": "abc", "recovered": true,
            })
        );
        let back = RunEvent::from_message(&wire.to_string()).unwrap();
        assert_eq!(back, event);
        let RunEvent::Status(status) = back else {
            panic!("{back:?}")
        };
        assert_eq!(status.run(), run());
        assert_eq!(
            event.message_attributes(),
            vec![
                ("account", "111111111111".to_owned()),
                ("pipeline", "listings".to_owned()),
                ("kind", "status".to_owned()),
                ("status", "FAILED".to_owned()),
            ]
        );
    }

    #[test]
    fn an_unreadable_message_names_the_field_at_fault() {
        let mut wire = serde_json::to_value(RunEvent::status(&run())).unwrap();
        wire["execution"]["startedAt"] = "yesterday".into();
        let e = RunEvent::from_message(&wire.to_string()).unwrap_err();
        assert!(
            e.problem.starts_with("`execution.startedAt`: invalid type"),
            "{e}"
        );
        wire["execution"] = serde_json::Value::Null;
        let e = RunEvent::from_message(&wire.to_string()).unwrap_err();
        assert!(e.problem.contains("`execution`"), "{e}");
        wire["kind"] = "status-ish".into();
        let e = RunEvent::from_message(&wire.to_string()).unwrap_err();
        assert!(e.problem.contains("`\"status-ish\"`"), "{e}");
        assert!(RunEvent::from_message("{")
            .unwrap_err()
            .problem
            .starts_with("not JSON"));
    }
}
