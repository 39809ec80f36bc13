//! pipeline-starter: runs in every member account. Takes the `Pipeline Trigger` events baton's
//! central account puts on the account's pipeline bus and starts the state machine each names with
//! `StartExecution(name = trigger id, input = the trigger)`.
//!
//! A trigger delivered any number of times starts one execution: Step Functions keeps execution
//! names (90 days for Standard workflows), so a repeat is answered with the running execution or
//! `ExecutionAlreadyExists`, both "already started". Throttling and service errors are retried
//! with backoff until shortly before the Lambda deadline, then fail the invocation as `StartUnavailable.Retryable`.
//! A trigger this account must not start (a state machine of another account or region, a
//! malformed ARN, a state machine that does not exist, a trigger without one) is refused with a
//! logged reason and fails as `StartRefused.NotRetryable` (or `MalformedEvent.NotRetryable`), so Lambda's asynchronous retries end in the DLQ.

use std::time::{Duration, Instant};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use baton_adapters::lambda::{Call, Function, FunctionError};
use baton_adapters::{ConfigError, Env};
use baton_core::events::{TRIGGER_DETAIL_TYPE, TRIGGER_SOURCE};
use baton_core::pipeline::{check_account, check_region};
use baton_core::start::{
    start_request, ExecutionStarter, HomeAccount, Refusal, StartError, StartOutcome, StartRequest,
};
use baton_core::PipelineTrigger;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;
use tracing::{error, info, warn};

/// Time kept free before the Lambda deadline to answer the invocation.
pub const DEADLINE_RESERVE: Duration = Duration::from_millis(500);

/// pipeline-starter's configuration, read once at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `BATON_ACCOUNT_ID` (the template sets it to `AWS::AccountId`) and `AWS_REGION` (set by
    /// Lambda): the only account and region whose state machines are started.
    pub home: HomeAccount,
    /// Waits between attempts of a retryable failure: doubling from `first_backoff`
    /// (`BATON_START_BACKOFF_MS`, default 200 ms) up to `max_backoff` (5 s, or the first wait if
    /// that is longer).
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        let account = env.required("BATON_ACCOUNT_ID")?;
        check_account(&account).map_err(|_| ConfigError::Invalid {
            name: "BATON_ACCOUNT_ID",
            value: account.clone(),
            expected: "a 12-digit AWS account id",
        })?;
        let region = env.required("AWS_REGION")?;
        check_region(&region).map_err(|_| ConfigError::Invalid {
            name: "AWS_REGION",
            value: region.clone(),
            expected: "an AWS region name such as eu-west-1",
        })?;
        let first_backoff = Duration::from_millis(env.positive_or("BATON_START_BACKOFF_MS", 200)?);
        Ok(Config {
            home: HomeAccount { account, region },
            first_backoff,
            max_backoff: first_backoff.max(Duration::from_secs(5)),
        })
    }
}

/// The `detail` of a delivered event: a `PipelineTrigger`, or what arrived instead, kept so the
/// refusal can say what was wrong with it (a typed-only payload would fail in the runtime,
/// before any log line could name the trigger).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TriggerDetail {
    Trigger(Box<PipelineTrigger>),
    Unreadable(Value),
}

/// The event the pipeline bus rule delivers.
pub type TriggerEvent = EventBridgeEvent<TriggerDetail>;

/// Why an invocation failed. The Lambda `errorType` says whether a retry can help.
#[derive(Debug, Error)]
pub enum StarterError {
    #[error("event {event_id} is not a Pipeline Trigger (source `{event_source}`, detail-type `{detail_type}`); nothing was started")]
    NotATrigger {
        event_id: String,
        event_source: String,
        detail_type: String,
    },
    #[error("event {event_id}: the Pipeline Trigger (id {trigger_id}, state machine {state_machine_arn}) cannot be read: {problem}; nothing was started")]
    Unreadable {
        event_id: String,
        trigger_id: String,
        state_machine_arn: String,
        problem: String,
    },
    #[error("refused: {0}")]
    Refused(Refusal),
    #[error("trigger {trigger_id}: {source} (gave up after {attempts} attempt(s), before the Lambda deadline); delivering the trigger again starts it at most once")]
    Unavailable {
        trigger_id: String,
        attempts: u32,
        source: StartError,
    },
}

impl StarterError {
    /// Whether delivering the same event again can help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StarterError::Unavailable { .. })
    }
}

impl FunctionError for StarterError {
    fn kind(&self) -> &'static str {
        match self {
            StarterError::NotATrigger { .. } | StarterError::Unreadable { .. } => "MalformedEvent",
            StarterError::Refused(_) => "StartRefused",
            StarterError::Unavailable { .. } => "StartUnavailable",
        }
    }

    fn is_retryable(&self) -> bool {
        StarterError::is_retryable(self)
    }
}

/// What an invocation did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    pub trigger_id: String,
    pub state_machine_arn: String,
    /// The execution Step Functions answered with (absent when it answered
    /// `ExecutionAlreadyExists`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
    pub already_started: bool,
}

/// The function: the account's Step Functions and the configuration.
pub struct PipelineStarter<'a, S> {
    pub starter: &'a S,
    pub config: &'a Config,
}

impl<S: ExecutionStarter + Sync> Function for PipelineStarter<'_, S> {
    type Event = TriggerEvent;
    type Output = Started;
    type Error = StarterError;

    async fn invoke(&self, event: TriggerEvent, call: &Call) -> Result<Started, StarterError> {
        self.handle(event, call.deadline.instant()).await
    }
}

impl<S: ExecutionStarter + Sync> PipelineStarter<'_, S> {
    /// Handles one delivered trigger: starts its state machine once, or refuses it.
    pub async fn handle(
        &self,
        event: TriggerEvent,
        deadline: Instant,
    ) -> Result<Started, StarterError> {
        let (starter, config) = (self.starter, self.config);
        let event_id = event.id.clone().unwrap_or_else(|| "(none)".to_owned());
        let trigger = match read_trigger(event, &event_id) {
            Ok(trigger) => trigger,
            Err(e) => {
                error!(event_id, reason = %e, "refused");
                return Err(e);
            }
        };
        let trigger_id = trigger.trigger_id.as_str().to_owned();
        let request = match start_request(&trigger, &config.home) {
            Ok(request) => request,
            Err(refusal) => return Err(refuse(&trigger_id, refusal)),
        };
        match start_with_retries(starter, &request, config, deadline).await {
            Ok(outcome) => Ok(report(trigger_id, request, outcome)),
            Err((source, attempts)) if source.is_retryable() => {
                error!(
                    trigger_id,
                    state_machine_arn = request.state_machine_arn,
                    attempts,
                    reason = %source,
                    "not started yet; the invocation fails to be retried"
                );
                Err(StarterError::Unavailable {
                    trigger_id,
                    attempts,
                    source,
                })
            }
            Err((source, _)) => Err(refuse(
                &trigger_id,
                Refusal::Start {
                    trigger_id: trigger_id.clone(),
                    source,
                },
            )),
        }
    }
}

fn read_trigger(event: TriggerEvent, event_id: &str) -> Result<PipelineTrigger, StarterError> {
    if event.source != TRIGGER_SOURCE || event.detail_type != TRIGGER_DETAIL_TYPE {
        return Err(StarterError::NotATrigger {
            event_id: event_id.to_owned(),
            event_source: event.source,
            detail_type: event.detail_type,
        });
    }
    match event.detail {
        TriggerDetail::Trigger(trigger) => Ok(*trigger),
        TriggerDetail::Unreadable(value) => {
            let text = |pointer: &str| {
                value
                    .pointer(pointer)
                    .and_then(Value::as_str)
                    .unwrap_or("(none)")
                    .to_owned()
            };
            // Deserialising again only to say precisely what is wrong.
            let problem = match serde_json::from_value::<PipelineTrigger>(value.clone()) {
                Err(e) => e.to_string(),
                Ok(_) => "it matches no known shape".to_owned(),
            };
            Err(StarterError::Unreadable {
                event_id: event_id.to_owned(),
                trigger_id: text("/batonTriggerId"),
                state_machine_arn: text("/target/stateMachineArn"),
                problem,
            })
        }
    }
}

fn refuse(trigger_id: &str, refusal: Refusal) -> StarterError {
    error!(
        trigger_id,
        state_machine_arn = refusal.state_machine_arn().unwrap_or("(none)"),
        reason = %refusal,
        "refused"
    );
    StarterError::Refused(refusal)
}

fn report(trigger_id: String, request: StartRequest, outcome: StartOutcome) -> Started {
    let state_machine_arn = request.state_machine_arn;
    match outcome {
        StartOutcome::Started { execution_arn } => {
            info!(trigger_id, state_machine_arn, execution_arn, "started");
            Started {
                trigger_id,
                state_machine_arn,
                execution_arn: Some(execution_arn),
                already_started: false,
            }
        }
        StartOutcome::AlreadyStarted => {
            info!(
                trigger_id,
                state_machine_arn, "already started (ExecutionAlreadyExists)"
            );
            Started {
                trigger_id,
                state_machine_arn,
                execution_arn: None,
                already_started: true,
            }
        }
    }
}

/// Calls the starter until it answers for good, retrying retryable failures with doubling waits
/// while a wait and another attempt still end before the deadline's reserve. Each attempt is cut
/// off at that point too. Repeating a start is safe: it carries the same name and input.
async fn start_with_retries<S: ExecutionStarter + Sync>(
    starter: &S,
    request: &StartRequest,
    config: &Config,
    deadline: Instant,
) -> Result<StartOutcome, (StartError, u32)> {
    let work_until = deadline.checked_sub(DEADLINE_RESERVE).unwrap_or(deadline);
    let mut backoff = config.first_backoff;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let left = work_until.saturating_duration_since(Instant::now());
        let failure = match tokio::time::timeout(left, starter.start(request)).await {
            Ok(Ok(outcome)) => return Ok(outcome),
            Ok(Err(e)) if !e.is_retryable() => return Err((e, attempts)),
            Ok(Err(e)) => e,
            Err(_) => StartError::Unavailable {
                arn: request.state_machine_arn.clone(),
                message: "no answer before the Lambda deadline".to_owned(),
            },
        };
        if Instant::now() + backoff >= work_until {
            return Err((failure, attempts));
        }
        warn!(
            trigger_id = request.execution_name,
            state_machine_arn = request.state_machine_arn,
            attempt = attempts,
            reason = %failure,
            wait_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
            "start failed; retrying"
        );
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(config.max_backoff);
    }
}

#[cfg(test)]
mod tests;
