//! A central account in the emulator with run-log-writer and trigger-manager wired as in
//! production: events go through the real handlers, the run-events topic is real SNS (a queue
//! subscribed to it stands in for the Lambda subscription), triggers go to real EventBridge buses.

#![allow(dead_code)]

use aws_lambda_events::sns::SnsEvent;
use baton_adapters::{
    DynamoLedger, DynamoRegistry, DynamoRunLog, EventBridgeTriggerBus, SnsRunEvents,
};
use baton_core::definition::PipelineDefinition;
use baton_core::registration::Registration;
use baton_core::trigger::{FlowSettings, Invocation, Ports};
use baton_core::{PipelineId, RunStatus, Span, Timestamp};
use baton_testbed::central::RETENTION;
use baton_testbed::fault_proxy::FaultProxy;
use baton_testbed::{lambda_sns_event, unique, Central, Moto, RequestCounter, TopicWatch};
use serde_json::Value;

pub const REGION: &str = "eu-west-1";
pub const ACCOUNT_A: &str = "111111111111";
pub const ACCOUNT_B: &str = "222222222222";
pub const ACCOUNT_C: &str = "333333333333";

pub fn pipeline(account: &str, name: &str) -> PipelineId {
    PipelineId::new(account, REGION, name).unwrap()
}

/// 2026-11-`day` `hour`:`minute` UTC.
pub fn at(day: u32, hour: u32, minute: u32) -> Timestamp {
    Timestamp::parse_rfc3339(&format!("2026-11-{day:02}T{hour:02}:{minute:02}:00Z")).unwrap()
}

fn fixture(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Running => include_str!("../../../events/run-log-writer/running.json"),
        RunStatus::Succeeded => include_str!("../../../events/run-log-writer/succeeded.json"),
        RunStatus::Failed => include_str!("../../../events/run-log-writer/failed.json"),
        RunStatus::TimedOut => include_str!("../../../events/run-log-writer/timed-out.json"),
        RunStatus::Aborted => include_str!("../../../events/run-log-writer/aborted.json"),
        RunStatus::PendingRedrive => {
            include_str!("../../../events/run-log-writer/pending-redrive.json")
        }
    }
}

pub fn execution_arn(p: &PipelineId, execution: &str) -> String {
    format!(
        "arn:aws:states:{}:{}:execution:{}:{execution}",
        p.region, p.account, p.name
    )
}

/// A Step Functions status change event as the central bus delivers it, built from the fixture
/// of that status in `events/run-log-writer/`.
pub fn status_event(
    p: &PipelineId,
    execution: &str,
    status: RunStatus,
    start: Timestamp,
    stop: Option<Timestamp>,
) -> Value {
    let mut event: Value = serde_json::from_str(fixture(status)).unwrap();
    let arn = execution_arn(p, execution);
    event["id"] = unique("event").into();
    event["account"] = p.account.clone().into();
    event["region"] = p.region.clone().into();
    event["resources"] = serde_json::json!([arn]);
    let d = &mut event["detail"];
    d["executionArn"] = arn.into();
    d["stateMachineArn"] = p.state_machine_arn().into();
    d["name"] = execution.into();
    d["startDate"] = start.0.into();
    d["stopDate"] = stop.map(|t| Value::from(t.0)).unwrap_or(Value::Null);
    event
}

/// A deterministic shuffle (no randomness in tests that must fail the same way twice).
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    for i in (1..items.len()).rev() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = (state >> 33) as usize % (i + 1);
        items.swap(i, j);
    }
}

/// The central account: tables, the run-events topic and the adapters the two functions use.
pub struct World {
    pub central: Central,
    pub topic: TopicWatch,
    pub run_log: DynamoRunLog,
    pub registry: DynamoRegistry,
    pub ledger: DynamoLedger,
    pub bus: EventBridgeTriggerBus,
    pub events: SnsRunEvents,
    pub settings: FlowSettings,
    /// Counts the DynamoDB requests of the trigger-manager's adapters.
    pub trigger_manager_requests: RequestCounter,
    tm_run_log: DynamoRunLog,
    tm_registry: DynamoRegistry,
    tm_ledger: DynamoLedger,
}

impl World {
    pub async fn new(prefix: &str) -> World {
        let central = Central::shared(prefix).await;
        let topic = TopicWatch::create(&central.config, "run-events")
            .await
            .unwrap();
        let counter = RequestCounter::new();
        let counted = counter.dynamo_client(&central.config);
        let events = SnsRunEvents::new(
            aws_sdk_sns::Client::new(&central.config),
            topic.topic_arn.clone(),
        );
        World {
            run_log: central.run_log(),
            registry: central.registry(),
            ledger: central.ledger(),
            bus: EventBridgeTriggerBus::new(&central.config),
            events,
            settings: FlowSettings::with_default_bus("baton-pipelines"),
            trigger_manager_requests: counter,
            tm_run_log: DynamoRunLog::new(counted.clone(), &central.tables.runs, RETENTION),
            tm_registry: DynamoRegistry::new(counted.clone(), &central.tables.registry),
            tm_ledger: DynamoLedger::new(counted, &central.tables.ledger),
            central,
            topic,
        }
    }

    /// A world whose trigger-manager reaches DynamoDB through a fault proxy in front of the
    /// emulator (run-log-writer and the tests' own reads go direct).
    pub async fn behind_faults(prefix: &str) -> (World, FaultProxy) {
        let mut world = World::new(prefix).await;
        let proxy = FaultProxy::start(Moto::shared().endpoint()).await.unwrap();
        let config = proxy.in_front_of(&world.central.config);
        let dynamo = world.trigger_manager_requests.dynamo_client(&config);
        let tables = &world.central.tables;
        world.tm_run_log = DynamoRunLog::new(dynamo.clone(), &tables.runs, RETENTION);
        world.tm_registry = DynamoRegistry::new(dynamo.clone(), &tables.registry);
        world.tm_ledger = DynamoLedger::new(dynamo, &tables.ledger);
        (world, proxy)
    }

    pub async fn register(
        &self,
        p: &PipelineId,
        yaml: &str,
        bus_arn: Option<&str>,
        registered_at: Timestamp,
    ) {
        let registration = Registration {
            pipeline: p.clone(),
            owner_stack_id: format!(
                "arn:aws:cloudformation:{}:{}:stack/{}/1",
                p.region, p.account, p.name
            ),
            definition: PipelineDefinition::from_yaml(yaml).unwrap(),
            bus_arn: bus_arn.map(str::to_owned),
            registered_at,
            trigger_floor: registered_at,
        };
        baton_core::registration::register(&self.registry, &registration, 100)
            .await
            .unwrap();
    }

    /// Delivers one EventBridge event to run-log-writer.
    pub async fn write(
        &self,
        event: &Value,
    ) -> Result<run_log_writer::Written, run_log_writer::WriterError> {
        let writer = run_log_writer::RunLogWriter {
            run_log: &self.run_log,
            registry: &self.registry,
            run_events: &self.events,
        };
        writer.handle(event.clone()).await
    }

    /// What was published on the run-events topic since the last call (SNS notifications).
    pub async fn published(&self) -> Vec<Value> {
        self.topic.received().await.unwrap()
    }

    fn ports(
        &self,
    ) -> Ports<'_, DynamoRunLog, DynamoRegistry, DynamoLedger, EventBridgeTriggerBus, SnsRunEvents>
    {
        Ports {
            run_log: &self.tm_run_log,
            registry: &self.tm_registry,
            ledger: &self.tm_ledger,
            bus: &self.bus,
            events: &self.events,
        }
    }

    /// Delivers SNS notifications to trigger-manager in one Lambda event.
    pub async fn manage(
        &self,
        notifications: &[Value],
        now: Timestamp,
    ) -> Result<trigger_manager::Handled, trigger_manager::BatchError> {
        let event: SnsEvent = serde_json::from_value(lambda_sns_event(notifications)).unwrap();
        self.manage_event(event, now).await
    }

    /// Delivers a Lambda SNS event to trigger-manager as it is.
    pub async fn manage_event(
        &self,
        event: SnsEvent,
        now: Timestamp,
    ) -> Result<trigger_manager::Handled, trigger_manager::BatchError> {
        let manager = trigger_manager::TriggerManager {
            ports: self.ports(),
            settings: &self.settings,
        };
        manager.handle(event, &self.invocation(now)).await
    }

    /// A trigger-manager invocation at `now` (its own request id), ending two minutes later as
    /// the function's timeout allows.
    pub fn invocation(&self, now: Timestamp) -> Invocation {
        Invocation::new(
            unique("request"),
            now,
            now.plus(Span::minutes(2)),
            &self.settings,
        )
    }

    /// Delivers each notification published so far to trigger-manager, one per invocation as SNS
    /// does, until the topic is quiet. Returns every notification seen (status events and
    /// trigger notices).
    pub async fn pump(&self, now: Timestamp) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let batch = self.published().await;
            if batch.is_empty() {
                return seen;
            }
            for n in &batch {
                self.manage(std::slice::from_ref(n), now).await.unwrap();
            }
            seen.extend(batch);
        }
    }
}

/// The `RunEvent` inside an SNS notification.
pub fn run_event(notification: &Value) -> Value {
    serde_json::from_str(notification["Message"].as_str().unwrap()).unwrap()
}

/// Trigger notices among notifications.
pub fn trigger_notices(notifications: &[Value]) -> Vec<Value> {
    notifications
        .iter()
        .map(run_event)
        .filter(|e| e["kind"] == "trigger")
        .collect()
}

/// The `PipelineTrigger` details among events a bus received.
pub fn triggers(bus_events: &[Value]) -> Vec<Value> {
    bus_events
        .iter()
        .filter(|e| e["source"] == "baton" && e["detail-type"] == "Pipeline Trigger")
        .map(|e| e["detail"].clone())
        .collect()
}
