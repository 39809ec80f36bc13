//! run-log-writer: turns a Step Functions "Execution Status Change" event, as the central bus
//! delivers it from a member account, into a run in the run log, and announces each
//! (execution, status) once on the run-events topic.
//!
//! The pipeline's account and region are the envelope's (`account`, `region`), which EventBridge
//! sets from the account that emitted the event; `detail` is only believed where it agrees.

use baton_adapters::lambda::{Call, Function, FunctionError};
use baton_adapters::{ConfigError, Env};
use baton_core::pipeline::{check_account, check_region};
use baton_core::ports::{PublishError, Registry, RunEvents, RunLog, StoreError};
use baton_core::recording::record_status;
use baton_core::{NoRunKey, PipelineId, PipelineTrigger, Run, RunKey, RunKeyPath, RunStatus, Span};
use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

mod status_change;

pub use status_change::{
    read_event, InputDetails, StatusChange, StatusChangeEvent, DETAIL_TYPE, SOURCE,
};

/// run-log-writer's configuration, read once at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `BATON_RUNS_TABLE`
    pub runs_table: String,
    /// `BATON_REGISTRY_TABLE` (read only: each pipeline's `runKey` path)
    pub registry_table: String,
    /// `BATON_RUN_EVENTS_TOPIC_ARN`
    pub run_events_topic_arn: String,
    /// `BATON_RUN_RETENTION_DAYS` (default 90): how long runs stay in the log.
    pub retention: Span,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        let days = env.positive_or("BATON_RUN_RETENTION_DAYS", 90)?;
        Ok(Config {
            runs_table: env.required("BATON_RUNS_TABLE")?,
            registry_table: env.required("BATON_REGISTRY_TABLE")?,
            run_events_topic_arn: env.required("BATON_RUN_EVENTS_TOPIC_ARN")?,
            retention: Span::days(days),
        })
    }
}

/// Why an event was not written.
#[derive(Debug, Error)]
pub enum WriterError {
    #[error("malformed Step Functions status change event (id {event_id}): {problem}; nothing was written")]
    Malformed { event_id: String, problem: String },
    #[error("rejected event {event_id}: {field} `{arn}` does not belong to the sending account {account} in {region} (the envelope's account and region); nothing was written")]
    ForeignArn {
        event_id: String,
        field: &'static str,
        arn: String,
        account: String,
        region: String,
    },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Publish(#[from] PublishError),
}

impl WriterError {
    /// Whether a retry of the same event can help.
    pub fn is_retryable(&self) -> bool {
        match self {
            WriterError::Malformed { .. } | WriterError::ForeignArn { .. } => false,
            WriterError::Store(e) => e.is_retryable(),
            WriterError::Publish(e) => e.is_retryable(),
        }
    }
}

impl FunctionError for WriterError {
    fn kind(&self) -> &'static str {
        match self {
            WriterError::Malformed { .. } => "MalformedEvent",
            WriterError::ForeignArn { .. } => "RejectedEvent",
            WriterError::Store(_) => "Storage",
            WriterError::Publish(_) => "Publish",
        }
    }

    fn is_retryable(&self) -> bool {
        WriterError::is_retryable(self)
    }
}

/// What the writer did with one event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Written {
    pub pipeline: String,
    pub execution_arn: String,
    pub status: RunStatus,
    /// The run was new, or seen before without a confirmed announcement.
    pub announced: bool,
    /// The baton trigger that started the execution, when one did.
    pub trigger_id: Option<String>,
    /// The run's key, when its pipeline declares `runKey` and the input has one.
    pub run_key: Option<RunKey>,
}

/// Reads the run an event describes, or says what is wrong with it.
pub fn run_from_event(event: &StatusChangeEvent) -> Result<Run, WriterError> {
    let event_id = event.id.clone().unwrap_or_else(|| "(none)".to_owned());
    let malformed = |problem: String| WriterError::Malformed {
        event_id: event_id.clone(),
        problem,
    };
    let account = event
        .account
        .as_deref()
        .ok_or_else(|| malformed("the envelope has no `account`".into()))?;
    check_account(account).map_err(|e| malformed(format!("envelope `account`: {e}")))?;
    let region = event
        .region
        .as_deref()
        .ok_or_else(|| malformed("the envelope has no `region`".into()))?;
    check_region(region).map_err(|e| malformed(format!("envelope `region`: {e}")))?;

    let detail = &event.detail;
    let status = RunStatus::parse(&detail.status).ok_or_else(|| {
        malformed(format!(
            "`detail.status` is `{}`; expected one of {}",
            detail.status,
            RunStatus::ACCEPTED_WORDS
        ))
    })?;
    let pipeline = PipelineId::from_state_machine_arn(&detail.state_machine_arn)
        .map_err(|e| malformed(format!("`detail.stateMachineArn`: {e}")))?;
    let foreign = |field: &'static str, arn: &str| WriterError::ForeignArn {
        event_id: event_id.clone(),
        field,
        arn: arn.to_owned(),
        account: account.to_owned(),
        region: region.to_owned(),
    };
    if pipeline.account != account || pipeline.region != region {
        return Err(foreign("detail.stateMachineArn", &detail.state_machine_arn));
    }
    let (execution_pipeline, execution_name) =
        PipelineId::from_execution_arn(&detail.execution_arn)
            .map_err(|e| malformed(format!("`detail.executionArn`: {e}")))?;
    if execution_pipeline != pipeline {
        return Err(foreign("detail.executionArn", &detail.execution_arn));
    }
    Ok(Run {
        pipeline,
        execution_arn: detail.execution_arn.clone(),
        execution_name,
        status,
        started_at: detail.start_date,
        stopped_at: detail.stop_date,
        error: detail.error.clone(),
        cause: detail.cause.clone(),
        trigger_id: detail
            .input
            .as_deref()
            .and_then(PipelineTrigger::id_in_execution_input),
        run_key: None,
    })
}

/// The run's key, read at its pipeline's `runKey` path from the execution input the event
/// carries (Step Functions includes it up to 248 KB; `inputDetails.included` says whether it did).
pub fn run_key_in_event(path: &RunKeyPath, detail: &StatusChange) -> Result<RunKey, NoRunKey> {
    let included = detail.input_details.as_ref().and_then(|d| d.included);
    if included == Some(false) {
        return Err(NoRunKey::InputNotIncluded);
    }
    match &detail.input {
        Some(input) => path.read(input),
        None => Err(NoRunKey::NotInInput),
    }
}

/// The run's key when its pipeline declares `runKey` (one GetItem of its registration).
async fn run_key<R: Registry + Sync>(
    registry: &R,
    run: &Run,
    detail: &StatusChange,
) -> Result<Option<RunKey>, WriterError> {
    let registration = registry.get(&run.pipeline).await?;
    let Some(path) = registration.and_then(|r| r.definition.run_key) else {
        return Ok(None);
    };
    match run_key_in_event(&path, detail) {
        Ok(key) => Ok(Some(key)),
        Err(why) => {
            // Aligned children never count this run; say why once, here.
            tracing::warn!(
                pipeline = %run.pipeline.key(), execution = %run.execution_arn,
                run_key_path = %path, reason = %why,
                "run has no run key: aligned children will not count it"
            );
            Ok(None)
        }
    }
}

/// The function: the run log it writes, the registry it reads run key paths from, the topic it
/// announces on.
pub struct RunLogWriter<'a, L, R, E> {
    pub run_log: &'a L,
    pub registry: &'a R,
    pub run_events: &'a E,
}

impl<L, R, E> Function for RunLogWriter<'_, L, R, E>
where
    L: RunLog + Sync,
    R: Registry + Sync,
    E: RunEvents + Sync,
{
    /// Read into a [`StatusChangeEvent`] by the handler, so a malformed event is refused (and
    /// logged) as `MalformedEvent` naming its field rather than failing in the runtime.
    type Event = Value;
    type Output = Written;
    type Error = WriterError;

    async fn invoke(&self, event: Self::Event, _call: &Call) -> Result<Written, WriterError> {
        self.handle(event).await
    }
}

impl<L, R, E> RunLogWriter<'_, L, R, E>
where
    L: RunLog + Sync,
    R: Registry + Sync,
    E: RunEvents + Sync,
{
    /// Handles one status change event: validate, read the run key, record, announce the first
    /// time, confirm.
    pub async fn handle(&self, event: Value) -> Result<Written, WriterError> {
        let (run_log, registry, run_events) = (self.run_log, self.registry, self.run_events);
        let envelope = |field: &str| event.get(field).and_then(Value::as_str).map(str::to_owned);
        let (event_id, account) = (envelope("id"), envelope("account"));
        let read = read_event(event).and_then(|event| Ok((run_from_event(&event)?, event.detail)));
        let (mut run, detail) = match read {
            Ok(read) => read,
            Err(e) => {
                tracing::error!(event_id = ?event_id, account = ?account, error = %e, "status change event refused");
                return Err(e);
            }
        };
        run.run_key = run_key(registry, &run, &detail).await?;
        let (recorded, announce) =
            record_status::<_, _, WriterError>(&mut run, false, run_log, run_events).await?;
        tracing::info!(
            pipeline = %run.pipeline.key(),
            execution = %run.execution_arn,
            status = %run.status,
            trigger_id = run.trigger_id.as_deref().unwrap_or(""),
            run_key = run.run_key.as_ref().map_or("", |k| k.as_str()),
            recorded = ?recorded,
            announced = announce,
            "run recorded"
        );
        Ok(Written {
            pipeline: run.pipeline.key(),
            execution_arn: run.execution_arn,
            status: run.status,
            announced: announce,
            trigger_id: run.trigger_id,
            run_key: run.run_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(account: &str, detail: Value) -> Value {
        serde_json::json!({
            "version": "0", "id": "e-1", "detail-type": DETAIL_TYPE, "source": SOURCE,
            "account": account, "time": "2026-11-22T04:00:00Z", "region": "eu-west-1",
            "resources": [], "detail": detail,
        })
    }

    fn run_from_event(event: Value) -> Result<Run, WriterError> {
        super::run_from_event(&read_event(event)?)
    }

    fn status_change(detail: Value) -> StatusChange {
        serde_json::from_value(detail).unwrap()
    }

    fn detail(status: &str) -> Value {
        serde_json::json!({
            "executionArn": "arn:aws:states:eu-west-1:111111111111:execution:listings:l-22",
            "stateMachineArn": "arn:aws:states:eu-west-1:111111111111:stateMachine:listings",
            "name": "l-22", "status": status, "startDate": 1_795_000_000_000_i64,
            "stopDate": null, "input": "{\"batonTriggerId\":\"abc\"}", "output": null,
            "error": null, "cause": null,
        })
    }

    #[test]
    fn reads_the_run_and_the_trigger_id_from_the_input() {
        let run = run_from_event(event("111111111111", detail("RUNNING"))).unwrap();
        assert_eq!(run.pipeline.key(), "111111111111:eu-west-1:listings");
        assert_eq!(run.execution_name, "l-22");
        assert_eq!(run.status, RunStatus::Running);
        assert_eq!(run.trigger_id.as_deref(), Some("abc"));
        assert_eq!(run.stopped_at, None);
    }

    #[test]
    fn reads_the_run_key_at_the_path_or_says_why_there_is_none() {
        let path = RunKeyPath::parse("$.runKey").unwrap();
        let mut d = detail("SUCCEEDED");
        d["input"] = r#"{"batonTriggerId": "abc", "runKey": "2026-11-24"}"#.into();
        d["inputDetails"] = serde_json::json!({"included": true});
        assert_eq!(
            run_key_in_event(&path, &status_change(d.clone())),
            Ok(RunKey("2026-11-24".into()))
        );
        d["inputDetails"] = serde_json::json!({"included": false});
        d["input"] = Value::Null;
        let why = run_key_in_event(&path, &status_change(d)).unwrap_err();
        assert_eq!(why, NoRunKey::InputNotIncluded);
        assert!(why.to_string().contains("248 KB"), "{why}");
    }

    #[test]
    fn names_what_is_wrong() {
        let mut d = detail("DONE");
        let e = run_from_event(event("111111111111", d.clone())).unwrap_err();
        assert!(e.to_string().contains("`detail.status` is `DONE`"), "{e}");
        d["status"] = "SUCCEEDED".into();
        d["startDate"] = "yesterday".into();
        let e = run_from_event(event("111111111111", d)).unwrap_err();
        assert!(e.to_string().contains("`detail.startDate`"), "{e}");
    }

    #[test]
    fn the_envelope_account_decides() {
        let e = run_from_event(event("999999999999", detail("SUCCEEDED"))).unwrap_err();
        assert!(matches!(e, WriterError::ForeignArn { .. }), "{e}");
        assert!(e.to_string().contains("999999999999"), "{e}");
    }
}
