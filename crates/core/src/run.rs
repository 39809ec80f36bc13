//! Runs: what the run log knows of one execution at one status.

use serde::{Deserialize, Serialize};

use crate::pipeline::PipelineId;
use crate::run_key::RunKey;
use crate::status::RunStatus;
use crate::time::Timestamp;

/// One execution of a pipeline, seen at one status.
///
/// The run log keeps one `Run` per (execution, status) and, separately, the latest state of each
/// execution. The evaluator reads the former: a run qualifies for a leaf by its status and its
/// [`Run::status_time`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub pipeline: PipelineId,
    pub execution_arn: String,
    pub execution_name: String,
    pub status: RunStatus,
    pub started_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The baton trigger that started this execution, when a `PipelineTrigger` did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<String>,
    /// The run's key, read from its execution input at its pipeline's `runKey` path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_key: Option<RunKey>,
}

impl Run {
    /// When the run reached its status: `stopDate` for final statuses (and PENDING_REDRIVE, which
    /// follows a stop), `startDate` for RUNNING. A final status without a stop date falls back to
    /// the start date rather than being lost.
    pub fn status_time(&self) -> Timestamp {
        match self.status {
            RunStatus::Running => self.started_at,
            _ => self.stopped_at.unwrap_or(self.started_at),
        }
    }

    /// How long the execution ran, when it has stopped.
    pub fn duration_ms(&self) -> Option<i64> {
        self.stopped_at.map(|s| (s.0 - self.started_at.0).max(0))
    }

    /// The compact reference the evaluator and triggers carry.
    pub fn reference(&self) -> RunRef {
        RunRef {
            pipeline: self.pipeline.clone(),
            execution_arn: self.execution_arn.clone(),
            status: self.status,
            status_time: self.status_time(),
            run_key: self.run_key.clone(),
        }
    }

    /// Precedence of this state for "latest state of an execution": a final status beats any
    /// non-final one whatever the arrival order; among equals the later status time wins.
    /// (A redriven execution's new final status has a later stop date, so it replaces the old one.)
    pub fn precedence(&self) -> (bool, Timestamp) {
        (self.status.is_final(), self.status_time())
    }
}

/// A run as a trigger consumes it: which execution, at which status, at what time.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRef {
    pub pipeline: PipelineId,
    pub execution_arn: String,
    pub status: RunStatus,
    pub status_time: Timestamp,
    /// The run's key, if it has one (aligned triggers read only runs of the key they decide).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_key: Option<RunKey>,
}

impl RunRef {
    /// The execution's name (the ARN's last part).
    pub fn execution_name(&self) -> &str {
        self.execution_arn
            .rsplit(':')
            .next()
            .unwrap_or(&self.execution_arn)
    }
}
