//! The handler over a scripted starter: retries, deadline, refusals, unreadable events. The real
//! Step Functions answers (duplicates, missing state machines) are exercised against the emulator
//! in `tests/tests/pipeline_starter.rs`.

use std::collections::VecDeque;
use std::sync::Mutex;

use baton_adapters::lambda::{error_type, Call, Deadline};

use super::*;

const TRIGGER: &str = include_str!("../../../events/pipeline-starter/trigger.json");
const WITHOUT_ARN: &str =
    include_str!("../../../events/pipeline-starter/trigger-without-state-machine.json");
const OTHER_ACCOUNT: &str =
    include_str!("../../../events/pipeline-starter/trigger-other-account.json");

/// Answers each start with the next scripted result (the last one forever); `None` never answers.
struct Scripted {
    answers: Mutex<VecDeque<Option<Result<StartOutcome, StartError>>>>,
    calls: Mutex<Vec<StartRequest>>,
}

impl Scripted {
    fn new(answers: Vec<Option<Result<StartOutcome, StartError>>>) -> Scripted {
        Scripted {
            answers: Mutex::new(answers.into()),
            calls: Mutex::new(Vec::new()),
        }
    }

    fn calls(&self) -> usize {
        self.calls.lock().unwrap().len()
    }
}

impl ExecutionStarter for Scripted {
    async fn start(&self, request: &StartRequest) -> Result<StartOutcome, StartError> {
        self.calls.lock().unwrap().push(request.clone());
        let answer = {
            let mut answers = self.answers.lock().unwrap();
            if answers.len() > 1 {
                answers.pop_front().flatten()
            } else {
                answers.front().cloned().flatten()
            }
        };
        match answer {
            Some(answer) => answer,
            None => std::future::pending().await,
        }
    }
}

fn config() -> Config {
    Config {
        home: HomeAccount {
            account: "333333333333".into(),
            region: "eu-west-1".into(),
        },
        first_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
    }
}

async fn handle(
    event: TriggerEvent,
    starter: &Scripted,
    config: &Config,
    deadline: Instant,
) -> Result<Started, StarterError> {
    PipelineStarter { starter, config }
        .handle(event, deadline)
        .await
}

fn event(json: &str) -> TriggerEvent {
    serde_json::from_str(json).unwrap()
}

fn throttled() -> Option<Result<StartOutcome, StartError>> {
    Some(Err(StartError::Unavailable {
        arn: "arn:aws:states:eu-west-1:333333333333:stateMachine:pipeline-x".into(),
        message: "ThrottlingException: Rate exceeded".into(),
    }))
}

fn soon(ms: u64) -> Instant {
    Instant::now() + DEADLINE_RESERVE + Duration::from_millis(ms)
}

#[tokio::test]
async fn throttling_is_retried_until_the_start_goes_through() {
    let started = Some(Ok(StartOutcome::Started {
        execution_arn: "arn:aws:states:eu-west-1:333333333333:execution:pipeline-x:7491462106215fcfb5603ed298ea0306".into(),
    }));
    let starter = Scripted::new(vec![throttled(), throttled(), started]);
    let done = handle(event(TRIGGER), &starter, &config(), soon(5_000))
        .await
        .unwrap();
    assert_eq!(starter.calls(), 3);
    assert!(!done.already_started);
    assert_eq!(done.trigger_id, "7491462106215fcfb5603ed298ea0306");
    // Every attempt is the same start: same name, same input.
    let calls = starter.calls.lock().unwrap();
    assert!(calls.iter().all(|c| c == &calls[0]));
    assert_eq!(calls[0].execution_name, done.trigger_id);
}

#[tokio::test]
async fn throttling_past_the_deadline_fails_as_retryable() {
    let starter = Scripted::new(vec![throttled()]);
    let err = handle(event(TRIGGER), &starter, &config(), soon(100))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(starter.calls() > 1, "retried {} times", starter.calls());
    assert_eq!(error_type(&err), "StartUnavailable.Retryable");
}

#[tokio::test]
async fn a_start_without_an_answer_is_cut_off_before_the_deadline() {
    let starter = Scripted::new(vec![None]);
    let deadline = soon(200);
    let err = handle(event(TRIGGER), &starter, &config(), deadline)
        .await
        .unwrap_err();
    assert!(Instant::now() < deadline, "answered after the deadline");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("no answer"), "{err}");
}

#[tokio::test]
async fn the_lambda_deadline_bounds_the_invocation() {
    let starter = Scripted::new(vec![None]);
    let call = Call {
        request_id: "r-1".into(),
        deadline: Deadline::after(DEADLINE_RESERVE + Duration::from_millis(300)),
    };
    let function = PipelineStarter {
        starter: &starter,
        config: &config(),
    };
    let answered = tokio::time::timeout(
        Duration::from_secs(5),
        function.invoke(event(TRIGGER), &call),
    )
    .await
    .expect("answered before the Lambda deadline");
    let err = answered.unwrap_err();
    assert!(
        Instant::now() < call.deadline.instant(),
        "answered after the deadline"
    );
    assert_eq!(error_type(&err), "StartUnavailable.Retryable");
}

#[tokio::test]
async fn already_exists_is_success() {
    let starter = Scripted::new(vec![Some(Ok(StartOutcome::AlreadyStarted))]);
    let done = handle(event(TRIGGER), &starter, &config(), soon(1_000))
        .await
        .unwrap();
    assert!(done.already_started);
    assert_eq!(done.execution_arn, None);
}

#[tokio::test]
async fn a_missing_state_machine_is_refused_at_once_naming_it() {
    let arn = "arn:aws:states:eu-west-1:333333333333:stateMachine:pipeline-x";
    let starter = Scripted::new(vec![Some(Err(StartError::StateMachineMissing {
        arn: arn.into(),
    }))]);
    let err = handle(event(TRIGGER), &starter, &config(), soon(1_000))
        .await
        .unwrap_err();
    assert_eq!(starter.calls(), 1);
    assert!(err.to_string().contains(arn), "{err}");
    assert_eq!(error_type(&err), "StartRefused.NotRetryable");
}

#[tokio::test]
async fn a_trigger_for_another_account_is_refused_without_a_call() {
    let starter = Scripted::new(vec![throttled()]);
    let err = handle(event(OTHER_ACCOUNT), &starter, &config(), soon(1_000))
        .await
        .unwrap_err();
    assert_eq!(starter.calls(), 0);
    assert!(err
        .to_string()
        .contains("arn:aws:states:eu-west-1:444444444444:stateMachine:pipeline-x"));
    assert_eq!(error_type(&err), "StartRefused.NotRetryable");
}

#[tokio::test]
async fn a_trigger_without_a_state_machine_is_refused_saying_what_is_missing() {
    let starter = Scripted::new(vec![throttled()]);
    let err = handle(event(WITHOUT_ARN), &starter, &config(), soon(1_000))
        .await
        .unwrap_err();
    assert_eq!(starter.calls(), 0);
    let text = err.to_string();
    assert!(text.contains("stateMachineArn"), "{text}");
    assert!(text.contains("7491462106215fcfb5603ed298ea0306"), "{text}");
    assert_eq!(error_type(&err), "MalformedEvent.NotRetryable");
}

#[tokio::test]
async fn an_event_that_is_not_a_trigger_is_refused() {
    let mut json: Value = serde_json::from_str(TRIGGER).unwrap();
    json["source"] = "someone.else".into();
    let starter = Scripted::new(vec![throttled()]);
    let err = handle(
        serde_json::from_value(json).unwrap(),
        &starter,
        &config(),
        soon(1_000),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StarterError::NotATrigger { .. }));
    assert_eq!(error_type(&err), "MalformedEvent.NotRetryable");
    assert_eq!(starter.calls(), 0);
}

#[test]
fn configuration_names_the_variable_at_fault() {
    let env = Env::from_pairs([("AWS_REGION", "eu-west-1")]);
    assert_eq!(
        Config::from_env(&env).unwrap_err().to_string(),
        "environment variable BATON_ACCOUNT_ID is not set"
    );
    let env = Env::from_pairs([("AWS_REGION", "eu-west-1"), ("BATON_ACCOUNT_ID", "1234")]);
    assert!(Config::from_env(&env)
        .unwrap_err()
        .to_string()
        .contains("BATON_ACCOUNT_ID"));
    let env = Env::from_pairs([
        ("AWS_REGION", "eu-west-1"),
        ("BATON_ACCOUNT_ID", "333333333333"),
    ]);
    assert_eq!(Config::from_env(&env).unwrap().home, config().home);
}
