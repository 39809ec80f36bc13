//! The world slack-notifier's integration tests run in: fresh tables in the emulator, the bot
//! token in a Secrets Manager secret, the Slack stand-in, and the notifier wired over them.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use aws_lambda_events::event::sns::SnsEvent;
use baton_adapters::sns::SnsEmailTopics;
use baton_adapters::{DynamoRegistry, DynamoSlackThreads, SecretsManagerToken, SlackWebApi};
use baton_core::definition::PipelineDefinition;
use baton_core::events::RunEvent;
use baton_core::registration::Registration;
use baton_core::{PipelineId, Run, RunStatus, Timestamp};
use baton_testbed::central::RETENTION;
use baton_testbed::fault_proxy::FaultProxy;
use baton_testbed::slack_standin::{Message, SlackStandIn};
use baton_testbed::{unique, Central, Moto};
use serde_json::Value;
use slack_notifier::{Notifier, NotifyError, Report};

const REGION: &str = "eu-west-1";
const FIXTURE: &str = include_str!("../../../events/slack-notifier/sns-run-event-failed.json");

type TestNotifier =
    Notifier<DynamoRegistry, DynamoSlackThreads, SlackWebApi<SecretsManagerToken>, SnsEmailTopics>;

pub struct World {
    pub central: Central,
    pub slack: SlackStandIn,
    pub notifier: TestNotifier,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub secret_id: String,
    pub token: String,
}

impl World {
    pub async fn new(prefix: &str) -> World {
        let central = Central::shared(prefix).await;
        let config = Moto::shared().sdk_config().await;
        let secrets = aws_sdk_secretsmanager::Client::new(&config);
        let secret_id = unique("baton-slack-token");
        let token = format!("xoxb-{}-s3cr3t", unique("tok"));
        secrets
            .create_secret()
            .name(&secret_id)
            .secret_string(&token)
            .send()
            .await
            .unwrap();
        let slack = SlackStandIn::start(&token).await.unwrap();
        let notifier = Notifier {
            registry: central.registry(),
            threads: central.slack_threads(),
            slack: SlackWebApi::new(
                slack.url(),
                SecretsManagerToken::new(secrets.clone(), &secret_id),
            )
            .unwrap(),
            email: SnsEmailTopics::new(&config),
            environment: None,
        };
        World {
            central,
            slack,
            notifier,
            secrets,
            secret_id,
            token,
        }
    }

    /// A world whose thread ledger is reached through a fault proxy in front of the emulator.
    pub async fn behind_faults(prefix: &str) -> (World, FaultProxy) {
        let mut world = World::new(prefix).await;
        let proxy = FaultProxy::start(Moto::shared().endpoint()).await.unwrap();
        let config = proxy.in_front_of(&world.central.config);
        let dynamo = aws_sdk_dynamodb::Client::new(&config);
        world.notifier.threads =
            DynamoSlackThreads::new(dynamo, &world.central.tables.slack_threads, RETENTION);
        (world, proxy)
    }

    pub async fn register(&self, pipeline: &PipelineId, yaml: &str) {
        self.register_definition(pipeline, PipelineDefinition::from_yaml(yaml).unwrap())
            .await;
    }

    pub async fn register_definition(&self, pipeline: &PipelineId, definition: PipelineDefinition) {
        let registration = Registration {
            pipeline: pipeline.clone(),
            owner_stack_id: format!(
                "arn:aws:cloudformation:{REGION}:{}:stack/{}/1",
                pipeline.account, pipeline.name
            ),
            definition,
            bus_arn: None,
            registered_at: at(0),
            trigger_floor: at(0),
        };
        baton_core::registration::register(&self.central.registry(), &registration, 100)
            .await
            .unwrap();
    }

    pub async fn deliver(&self, events: &[RunEvent]) -> Result<Report, NotifyError> {
        self.notifier.handle(&sns(events), deadline()).await
    }

    /// A delivery whose invocation ends at `deadline`.
    pub async fn deliver_until(
        &self,
        events: &[RunEvent],
        deadline: Instant,
    ) -> Result<Report, NotifyError> {
        self.notifier.handle(&sns(events), deadline).await
    }
}

pub fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

pub fn pipeline(account: &str, name: &str) -> PipelineId {
    PipelineId::new(account, REGION, name).unwrap()
}

/// 2026-11-22 03:00 UTC plus `minutes`.
pub fn at(minutes: i64) -> Timestamp {
    Timestamp(Timestamp::parse_rfc3339("2026-11-22T03:00:00Z").unwrap().0 + minutes * 60_000)
}

pub fn run(p: &PipelineId, execution: &str, status: RunStatus) -> Run {
    Run {
        pipeline: p.clone(),
        execution_arn: format!(
            "arn:aws:states:{REGION}:{}:execution:{}:{execution}",
            p.account, p.name
        ),
        execution_name: execution.to_owned(),
        status,
        started_at: at(0),
        stopped_at: status.is_final().then(|| at(62)),
        error: None,
        cause: None,
        trigger_id: None,
        run_key: None,
    }
}

pub fn failed(p: &PipelineId, execution: &str, error: &str, cause: &str) -> Run {
    Run {
        error: Some(error.to_owned()),
        cause: Some(cause.to_owned()),
        ..run(p, execution, RunStatus::Failed)
    }
}

/// An SNS delivery of `events`, in the shape of the fixture in `events/slack-notifier/`.
pub fn sns(events: &[RunEvent]) -> SnsEvent {
    let template: Value = serde_json::from_str(FIXTURE).unwrap();
    let records: Vec<Value> = events
        .iter()
        .map(|e| {
            let mut record = template["Records"][0].clone();
            record["Sns"]["Message"] = Value::String(serde_json::to_string(e).unwrap());
            record["Sns"]["MessageId"] = Value::String(unique("msg"));
            record
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
}

pub fn status(r: &Run) -> RunEvent {
    RunEvent::status(r)
}

/// Every piece of text in a message: the fallback and each block's texts.
pub fn texts(m: &Message) -> Vec<String> {
    let mut out = vec![m.text.clone()];
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(t)) = map.get("text") {
                    out.push(t.clone());
                }
                map.values().for_each(|v| walk(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(&m.blocks, &mut out);
    out
}

pub fn all_text(m: &Message) -> String {
    texts(m).join("\n")
}
