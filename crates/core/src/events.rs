//! The messages baton sends: `RunEvent` on the run-events SNS topic and `PipelineTrigger` on a
//! child account's pipeline bus. Both are versioned JSON; consumers must ignore unknown fields.

use serde::{Deserialize, Serialize};

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

/// The execution part of a status `RunEvent`.
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

/// Published on the run-events topic: a run reached a status, or baton triggered a pipeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunEvent {
    pub schema_version: u32,
    pub kind: RunEventKind,
    pub pipeline: PipelineRef,
    /// Present for `kind: status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionInfo>,
    /// The baton trigger that started this run (status), or the trigger announced (trigger).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<String>,
    /// Present for `kind: trigger`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<PipelineTrigger>,
    /// Present for `kind: alert`; `pipeline` is then the pipeline whose channels hear it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<AlertEvent>,
    /// A status the watchdog found with `DescribeExecution` because its status change event
    /// never arrived.
    #[serde(default, skip_serializing_if = "is_false")]
    pub recovered: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl RunEvent {
    /// The status event for a run.
    pub fn status(run: &Run) -> RunEvent {
        RunEvent {
            schema_version: RUN_EVENT_SCHEMA_VERSION,
            kind: RunEventKind::Status,
            pipeline: PipelineRef::from(&run.pipeline),
            execution: Some(ExecutionInfo {
                arn: run.execution_arn.clone(),
                name: run.execution_name.clone(),
                status: run.status,
                started_at: run.started_at,
                stopped_at: run.stopped_at,
                error: run.error.clone(),
                cause: run.cause.clone(),
                run_key: run.run_key.clone(),
            }),
            trigger_id: run.trigger_id.clone(),
            trigger: None,
            alert: None,
            recovered: false,
        }
    }

    /// The trigger notice for a trigger that was sent.
    pub fn trigger_notice(trigger: &PipelineTrigger) -> RunEvent {
        RunEvent {
            schema_version: RUN_EVENT_SCHEMA_VERSION,
            kind: RunEventKind::Trigger,
            pipeline: trigger.target.clone(),
            execution: None,
            trigger_id: Some(trigger.trigger_id.0.clone()),
            trigger: Some(trigger.clone()),
            alert: None,
            recovered: false,
        }
    }

    /// A deadline alert event, told in the channels of `to` (the late pipeline, or a parent it
    /// waits on).
    pub fn alert(to: &PipelineId, event: AlertEvent) -> RunEvent {
        RunEvent {
            schema_version: RUN_EVENT_SCHEMA_VERSION,
            kind: RunEventKind::Alert,
            pipeline: PipelineRef::from(to),
            execution: None,
            trigger_id: None,
            trigger: None,
            alert: Some(event),
            recovered: false,
        }
    }

    /// The run this status event describes.
    pub fn run(&self) -> Option<Run> {
        let e = self.execution.as_ref()?;
        Some(Run {
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
        })
    }
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
        let kind = match self.kind {
            RunEventKind::Status => "status",
            RunEventKind::Trigger => "trigger",
            RunEventKind::Alert => "alert",
        };
        let mut attributes = vec![
            ("account", self.pipeline.account.clone()),
            ("pipeline", self.pipeline.name.clone()),
            ("kind", kind.to_owned()),
        ];
        if let Some(execution) = &self.execution {
            attributes.push(("status", execution.status.as_str().to_owned()));
        }
        attributes
    }
}
