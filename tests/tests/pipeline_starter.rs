//! pipeline-starter's real handler and Step Functions adapter against the emulator's Step
//! Functions in member account C: however often a trigger is delivered, one execution, named by
//! the trigger id, with the trigger as input; triggers this account must not start are refused.

use std::time::{Duration, Instant};

use baton_adapters::lambda::error_type;
use baton_adapters::StepFunctionsStarter;
use baton_core::start::HomeAccount;
use baton_core::PipelineTrigger;
use baton_testbed::{unique, MemberAccount, Moto, REGION};
use futures::future::join_all;
use pipeline_starter::{Config, PipelineStarter, Started, StarterError, TriggerEvent};
use serde_json::Value;

const ACCOUNT_C: &str = "333333333333";

fn fixture(name: &str) -> Value {
    let text = match name {
        "trigger" => include_str!("../../events/pipeline-starter/trigger.json"),
        "other-account" => include_str!("../../events/pipeline-starter/trigger-other-account.json"),
        "other-region" => include_str!("../../events/pipeline-starter/trigger-other-region.json"),
        "missing" => {
            include_str!("../../events/pipeline-starter/trigger-missing-state-machine.json")
        }
        "without-arn" => {
            include_str!("../../events/pipeline-starter/trigger-without-state-machine.json")
        }
        other => panic!("no fixture {other}"),
    };
    serde_json::from_str(text).unwrap()
}

/// Account C with a fresh state machine, and pipeline-starter's handler wired to it.
struct World {
    member: MemberAccount,
    starter: StepFunctionsStarter,
    config: Config,
    pipeline: String,
    state_machine_arn: String,
}

impl World {
    async fn new() -> World {
        let member = MemberAccount::enter(Moto::shared(), ACCOUNT_C)
            .await
            .unwrap();
        let pipeline = unique("pipeline-x");
        let state_machine_arn = member.create_pipeline(&pipeline).await.unwrap();
        World {
            starter: StepFunctionsStarter::new(member.sfn.clone()),
            config: Config {
                home: HomeAccount {
                    account: ACCOUNT_C.into(),
                    region: REGION.into(),
                },
                first_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_secs(1),
            },
            member,
            pipeline,
            state_machine_arn,
        }
    }

    /// The fixture's event, aimed at this world's pipeline (in the fixture's account and
    /// region) with trigger id `trigger_id`.
    fn event(&self, fixture_name: &str, trigger_id: &str) -> Value {
        let mut event = fixture(fixture_name);
        let target = &mut event["detail"]["target"];
        target["name"] = self.pipeline.clone().into();
        if let Some(arn) = target["stateMachineArn"].as_str() {
            let prefix = arn.rsplit_once(':').map(|(p, _)| p).unwrap_or(arn);
            target["stateMachineArn"] = format!("{prefix}:{}", self.pipeline).into();
        }
        event["detail"]["batonTriggerId"] = trigger_id.into();
        event
    }

    async fn deliver(&self, event: &Value) -> Result<Started, StarterError> {
        let event: TriggerEvent = serde_json::from_value(event.clone()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        PipelineStarter {
            starter: &self.starter,
            config: &self.config,
        }
        .handle(event, deadline)
        .await
    }

    async fn executions(&self) -> Vec<(String, String)> {
        self.member
            .executions(&self.state_machine_arn)
            .await
            .unwrap()
    }
}

fn trigger_id() -> String {
    // A trigger id's shape: 32 hex digits, unique per test.
    let n = unique("t").replace(|c: char| !c.is_ascii_digit(), "");
    format!("{n:0>32}")
}

/// Exactly one execution, named by the trigger id, whose input is the delivered trigger.
async fn assert_one_execution(world: &World, event: &Value, trigger_id: &str) {
    let executions = world.executions().await;
    assert_eq!(executions.len(), 1, "executions: {executions:?}");
    let (name, input) = &executions[0];
    assert_eq!(name, trigger_id);
    let input: PipelineTrigger = serde_json::from_str(input).unwrap();
    let sent: PipelineTrigger = serde_json::from_value(event["detail"].clone()).unwrap();
    assert_eq!(input, sent);
}

#[tokio::test]
async fn a_trigger_delivered_three_times_starts_one_execution() {
    let world = World::new().await;
    let id = trigger_id();
    let event = world.event("trigger", &id);
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(world.deliver(&event).await.unwrap());
    }
    // Step Functions answers a repeat of a running execution's name and input with that execution.
    let first = answers[0].execution_arn.clone().unwrap();
    assert!(
        first.ends_with(&format!(":{}:{id}", world.pipeline)),
        "{first}"
    );
    assert!(answers
        .iter()
        .all(|a| a.execution_arn.as_deref() == Some(&first)));
    assert_one_execution(&world, &event, &id).await;
}

#[tokio::test]
async fn concurrent_deliveries_start_one_execution() {
    let world = World::new().await;
    let id = trigger_id();
    let event = world.event("trigger", &id);
    let answers = join_all((0..3).map(|_| world.deliver(&event))).await;
    for answer in &answers {
        assert!(answer.is_ok(), "{answer:?}");
    }
    assert_one_execution(&world, &event, &id).await;
}

#[tokio::test]
async fn a_redelivery_after_the_run_finished_is_already_started() {
    let world = World::new().await;
    let id = trigger_id();
    let event = world.event("trigger", &id);
    let started = world.deliver(&event).await.unwrap();
    world
        .member
        .stop(&started.execution_arn.unwrap())
        .await
        .unwrap();
    // Step Functions now answers ExecutionAlreadyExists: success, nothing new.
    let again = world.deliver(&event).await.unwrap();
    assert!(again.already_started);
    assert_eq!(again.execution_arn, None);
    assert_one_execution(&world, &event, &id).await;
}

/// A refusal: `<Kind>.NotRetryable`, naming the state machine, nothing started in account C.
async fn assert_refused(world: &World, fixture_name: &str, says: &str) -> String {
    let event = world.event(fixture_name, &trigger_id());
    let err = world.deliver(&event).await.unwrap_err();
    let text = err.to_string();
    let arn = event["detail"]["target"]["stateMachineArn"]
        .as_str()
        .unwrap_or("(none)");
    assert!(text.contains(says), "{fixture_name}: {text}");
    assert!(
        text.contains(arn),
        "{fixture_name} does not name {arn}: {text}"
    );
    let error_type = error_type(&err);
    assert!(error_type.ends_with(".NotRetryable"), "{error_type}");
    assert!(
        world.executions().await.is_empty(),
        "{fixture_name} started something"
    );
    text
}

#[tokio::test]
async fn triggers_for_other_accounts_and_regions_are_refused() {
    let world = World::new().await;
    // A state machine of the same name exists in account 444444444444 too: still not started.
    let other = MemberAccount::enter(Moto::shared(), "444444444444")
        .await
        .unwrap();
    let elsewhere = other.create_pipeline(&world.pipeline).await.unwrap();
    assert_refused(&world, "other-account", "its own account 333333333333").await;
    assert!(other.executions(&elsewhere).await.unwrap().is_empty());
    assert_refused(&world, "other-region", "its own region eu-west-1").await;
}

#[tokio::test]
async fn a_missing_state_machine_is_refused() {
    let world = World::new().await;
    let mut event = world.event("missing", &trigger_id());
    // The fixture's pipeline-y in account C, under a name no test creates.
    let missing = unique("pipeline-y");
    event["detail"]["target"]["name"] = missing.clone().into();
    event["detail"]["target"]["stateMachineArn"] =
        format!("arn:aws:states:{REGION}:{ACCOUNT_C}:stateMachine:{missing}").into();
    let err = world.deliver(&event).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("does not exist"), "{text}");
    assert!(text.contains(&format!("stateMachine:{missing}")), "{text}");
    assert_eq!(error_type(&err), "StartRefused.NotRetryable");
}

#[tokio::test]
async fn a_trigger_without_a_state_machine_is_refused() {
    let world = World::new().await;
    let text = assert_refused(&world, "without-arn", "stateMachineArn").await;
    assert!(text.contains("cannot be read"), "{text}");
}
