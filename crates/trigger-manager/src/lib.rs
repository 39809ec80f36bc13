//! trigger-manager: takes `RunEvent`s from the run-events topic and wakes the children of each
//! run's pipeline through core's trigger flow: decide over the run log, claim in the ledger,
//! send a `PipelineTrigger` to the child's pipeline bus, announce it.
//!
//! Exactly once comes from the ledger, not from delivery: a batch (or a record) can be handled
//! any number of times without a second trigger, so a failed record fails the invocation and
//! the whole batch is simply delivered again.

use aws_lambda_events::sns::{SnsEvent, SnsRecord};
use baton_adapters::lambda::{Call, Function, FunctionError};
use baton_adapters::{ConfigError, Env, FlowTargets};
use baton_core::ports::StoreError;
use baton_core::trigger::{
    self, ChildReport, Delivery, FlowError, FlowSettings, FlowStores, Invocation, Step,
};
use baton_core::{RunEvent, RunRef};
use serde::Serialize;
use thiserror::Error;

/// trigger-manager's configuration, read once at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Its tables and the run-events topic, where trigger notices go.
    pub targets: FlowTargets,
    /// `BATON_DEFAULT_PIPELINE_BUS` (name), `BATON_RUNS_PER_PARENT` (default 100),
    /// `BATON_CHILD_CONCURRENCY` (default 16), `BATON_ENVIRONMENT` (named in every trigger). A send lease lasts until 10 s after the
    /// invocation's deadline (`FlowSettings::lease_margin`), so it needs no setting.
    pub flow: FlowSettings,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        let mut flow = FlowSettings::with_default_bus(env.required("BATON_DEFAULT_PIPELINE_BUS")?);
        flow.runs_per_parent =
            usize::try_from(env.positive_or("BATON_RUNS_PER_PARENT", 100)?).unwrap_or(usize::MAX);
        flow.child_concurrency =
            usize::try_from(env.positive_or("BATON_CHILD_CONCURRENCY", 16)?).unwrap_or(usize::MAX);
        flow.environment = env.optional("BATON_ENVIRONMENT");
        Ok(Config {
            targets: FlowTargets::from_env(env)?,
            flow,
        })
    }
}

/// Why a record (and so the invocation) failed.
#[derive(Debug, Error)]
pub enum RecordError {
    #[error("SNS message {message_id} is not a RunEvent: {problem}")]
    Malformed { message_id: String, problem: String },
    #[error("SNS message {message_id}: finding the children of {pipeline}: {source}")]
    Children {
        message_id: String,
        pipeline: String,
        source: StoreError,
    },
    #[error("SNS message {message_id}: child {child}: {source}")]
    Child {
        message_id: String,
        child: String,
        source: FlowError,
    },
}

impl RecordError {
    pub fn is_retryable(&self) -> bool {
        match self {
            RecordError::Malformed { .. } => false,
            RecordError::Children { source, .. } => source.is_retryable(),
            RecordError::Child { source, .. } => source.is_retryable(),
        }
    }
}

/// The invocation failed for some records; the others were handled (and handling them again on
/// redelivery changes nothing).
#[derive(Debug, Error)]
#[error("{} of {total} records failed; the batch will be delivered again (handling it twice is harmless): {}", failures.len(), failures.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("; "))]
pub struct BatchError {
    pub total: usize,
    pub failures: Vec<RecordError>,
}

impl FunctionError for BatchError {
    fn kind(&self) -> &'static str {
        "RecordsFailed"
    }

    /// Only when every failed record may pass on a retry.
    fn is_retryable(&self) -> bool {
        self.failures.iter().all(RecordError::is_retryable)
    }
}

/// What one invocation did, for the response and for tests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Handled {
    pub records: usize,
    /// Trigger ids this invocation sent (new or re-sent).
    pub sent: Vec<String>,
}

/// The function: core's trigger flow over its ports (a [`Ports`](baton_core::trigger::Ports)).
pub struct TriggerManager<'a, P> {
    pub ports: P,
    pub settings: &'a FlowSettings,
}

impl<P: FlowStores> Function for TriggerManager<'_, P> {
    type Event = SnsEvent;
    type Output = Handled;
    type Error = BatchError;

    async fn invoke(&self, event: SnsEvent, call: &Call) -> Result<Handled, BatchError> {
        self.handle(event, &call.invocation(self.settings)).await
    }
}

impl<P: FlowStores> TriggerManager<'_, P> {
    /// Handles a batch of SNS records at `invocation`. Every record is handled even when one
    /// fails.
    pub async fn handle(
        &self,
        event: SnsEvent,
        invocation: &Invocation,
    ) -> Result<Handled, BatchError> {
        let (ports, settings) = (&self.ports, self.settings);
        let mut handled = Handled {
            records: event.records.len(),
            sent: Vec::new(),
        };
        let mut failures = Vec::new();
        for record in &event.records {
            match handle_record(record, ports, settings, invocation).await {
                Ok(sent) => handled.sent.extend(sent),
                Err(errors) => {
                    for e in &errors {
                        tracing::error!(message_id = %record.sns.message_id, error = %e, retryable = e.is_retryable(), "record failed");
                    }
                    failures.extend(errors);
                }
            }
        }
        if failures.is_empty() {
            Ok(handled)
        } else {
            Err(BatchError {
                total: event.records.len(),
                failures,
            })
        }
    }
}

async fn handle_record<P: FlowStores>(
    record: &SnsRecord,
    ports: &P,
    settings: &FlowSettings,
    invocation: &Invocation,
) -> Result<Vec<String>, Vec<RecordError>> {
    let message_id = &record.sns.message_id;
    let event = RunEvent::from_message(&record.sns.message).map_err(|e| {
        vec![RecordError::Malformed {
            message_id: message_id.clone(),
            problem: e.problem,
        }]
    })?;
    let RunEvent::Status(status) = event else {
        // Trigger notices and deadline alerts share the topic (for Slack); they wake nobody.
        return Ok(Vec::new());
    };
    let parent: RunRef = status.run().reference();
    let reports = trigger::wake_children(ports.flow(), &parent, invocation, settings)
        .await
        .map_err(|source| {
            vec![RecordError::Children {
                message_id: message_id.clone(),
                pipeline: parent.pipeline.key(),
                source,
            }]
        })?;
    let mut sent = Vec::new();
    let mut errors = Vec::new();
    for report in reports {
        log_report(&parent, &report);
        for step in &report.steps {
            if let Step::Delivered {
                trigger,
                delivery: Delivery::Sent { .. },
                ..
            } = step
            {
                sent.push(trigger.trigger_id.0.clone());
            }
        }
        if let Some(source) = report.error {
            errors.push(RecordError::Child {
                message_id: message_id.clone(),
                child: report.child.key(),
                source,
            });
        }
    }
    if errors.is_empty() {
        Ok(sent)
    } else {
        Err(errors)
    }
}

/// One structured log event per evaluation and per delivery.
fn log_report(parent: &RunRef, report: &ChildReport) {
    let child = report.child.key();
    let parent_pipeline = parent.pipeline.key();
    for step in &report.steps {
        match step {
            Step::NotRegistered => tracing::warn!(
                child, parent = parent_pipeline, parent_execution = %parent.execution_arn,
                "child has an edge but no registration; skipped"
            ),
            Step::NoTrigger => tracing::info!(
                child, parent = parent_pipeline, parent_execution = %parent.execution_arn,
                "child has no trigger condition; skipped"
            ),
            Step::NoRunKey => tracing::info!(
                child, parent = parent_pipeline, parent_execution = %parent.execution_arn,
                "child is aligned on run keys and this run has no run key (its pipeline declares no `runKey`, or its input had none); skipped"
            ),
            Step::Evaluated(evaluation) => {
                let firing = evaluation.firing();
                tracing::info!(
                    child,
                    parent = parent_pipeline,
                    parent_execution = %parent.execution_arn,
                    parent_status = %parent.status,
                    run_key = evaluation.run_key.as_ref().map(|k| k.as_str()).unwrap_or(""),
                    decision = if firing.is_some() { "fired" } else { "waiting" },
                    trigger_id = firing.map(|f| f.trigger_id.as_str()).unwrap_or(""),
                    explanation = %evaluation.render(),
                    "evaluated"
                );
            }
            Step::Delivered {
                trigger,
                bus_arn,
                resent,
                delivery,
            } => tracing::info!(
                child,
                parent_execution = %parent.execution_arn,
                trigger_id = %trigger.trigger_id,
                run_key = trigger.run_key.as_ref().map(|k| k.as_str()).unwrap_or(""),
                bus = %bus_arn,
                resent,
                delivery = ?delivery,
                "trigger delivered"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_names_what_is_missing_or_wrong() {
        let mut vars = vec![
            ("BATON_RUNS_TABLE", "runs"),
            ("BATON_REGISTRY_TABLE", "registry"),
            ("BATON_LEDGER_TABLE", "ledger"),
            (
                "BATON_RUN_EVENTS_TOPIC_ARN",
                "arn:aws:sns:eu-west-1:123456789012:run-events",
            ),
        ];
        let err = Config::from_env(&Env::from_pairs(vars.clone())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable BATON_DEFAULT_PIPELINE_BUS is not set"
        );
        vars.push(("BATON_DEFAULT_PIPELINE_BUS", "baton-pipelines"));
        vars.push(("BATON_CHILD_CONCURRENCY", "many"));
        let err = Config::from_env(&Env::from_pairs(vars.clone())).unwrap_err();
        assert!(err.to_string().contains("BATON_CHILD_CONCURRENCY"), "{err}");
        vars.pop();
        let config = Config::from_env(&Env::from_pairs(vars)).unwrap();
        assert_eq!(config.flow.default_bus_name, "baton-pipelines");
        assert_eq!(config.flow.lease_margin, baton_core::Span(10_000));
    }

    #[test]
    fn a_record_that_is_not_a_run_event_is_not_retryable() {
        let e = RecordError::Malformed {
            message_id: "m".into(),
            problem: "expected value".into(),
        };
        assert!(!e.is_retryable());
        let d = baton_adapters::lambda::diagnostic(&BatchError {
            total: 2,
            failures: vec![e],
        });
        assert_eq!(d.error_type, "RecordsFailed.NotRetryable");
        assert!(
            d.error_message.starts_with("1 of 2 records failed"),
            "{}",
            d.error_message
        );
    }
}
