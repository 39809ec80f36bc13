//! The central account the function processes run against: baton's tables, the run-events topic,
//! a pipeline bus and the Slack token secret in a fresh emulator, registrations for the fan-out
//! sizes measured, and the events each function is fed.

use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use baton_adapters::DynamoRegistry;
use baton_core::ports::RunLog;
use baton_core::registration::Registration;
use baton_core::{PipelineDefinition, PipelineId, Run, RunEvent, RunStatus, Span, Timestamp};
use baton_testbed::{Central, Moto, REGION};
use serde_json::{json, Value};

use crate::counting_proxy::CountingProxy;
use crate::report;

/// The four functions, in the order the table shows them.
pub const FUNCTIONS: [&str; 4] = [
    "run-log-writer",
    "trigger-manager",
    "slack-notifier",
    "cfn-responder",
];

/// The account parents of the fan-out measurements live in.
pub const PARENT_ACCOUNT: &str = "111111111111";
/// The account of the other parents each child waits for.
pub const UPSTREAM_ACCOUNT: &str = "222222222222";
/// The account of the children.
pub const CHILD_ACCOUNT: &str = "333333333333";
/// Fan-out sizes of the warm trigger-manager measurement.
pub const FAN_OUTS: [usize; 4] = [1, 10, 100, 1000];
/// Children of the parent whose every run fires all of them.
pub const FIRING_CHILDREN: usize = 10;
/// The Slack channel registered for notified pipelines.
pub const SLACK_CHANNEL: &str = "bench-alerts";

/// Everything the function processes need, in one emulator.
pub struct Bench {
    pub moto: Moto,
    pub central: Central,
    pub topic_arn: String,
    pub bus_arn: String,
    pub secret_id: String,
    /// In front of the emulator: counts requests, and stands in for Slack and CloudFormation.
    pub proxy: CountingProxy,
    pub registered_at: Timestamp,
    seq: AtomicU64,
}

fn pipeline(account: &str, name: &str) -> anyhow::Result<PipelineId> {
    PipelineId::new(account, REGION, name).map_err(|e| anyhow::anyhow!("{name}: {e}"))
}

/// The parent whose runs wake `n` children.
pub fn fan_out_parent(n: usize) -> anyhow::Result<PipelineId> {
    pipeline(PARENT_ACCOUNT, &format!("bench-parent-{n}"))
}

/// A parent with no children, for warming a process up.
pub fn idle_parent() -> anyhow::Result<PipelineId> {
    pipeline(PARENT_ACCOUNT, "bench-idle")
}

/// The parent (and its two co-parents) whose runs fire every one of its children.
pub fn firing_parents() -> anyhow::Result<[PipelineId; 3]> {
    Ok([
        pipeline(PARENT_ACCOUNT, "bench-fire")?,
        pipeline(UPSTREAM_ACCOUNT, "bench-fire-a")?,
        pipeline(UPSTREAM_ACCOUNT, "bench-fire-b")?,
    ])
}

/// A child of the one-child parent, registered with a Slack channel.
pub fn notified_pipeline() -> anyhow::Result<PipelineId> {
    pipeline(CHILD_ACCOUNT, "bench-child-1-0")
}

impl Bench {
    /// Starts an emulator and creates the central account's resources and registrations: the
    /// children of each of `fan_outs` (sizes from [`FAN_OUTS`]; the one-child family is always
    /// there, the cold-start and memory events wake it) and the always-firing family.
    pub async fn create(fan_outs: &[usize]) -> anyhow::Result<Bench> {
        let moto = Moto::start().map_err(|e| anyhow::anyhow!("{e}"))?;
        let central = Central::create(&moto, "bench").await?;
        let sns = aws_sdk_sns::Client::new(&central.config);
        let topic_arn = sns
            .create_topic()
            .name("bench-run-events")
            .send()
            .await
            .context("creating the run-events topic")?
            .topic_arn
            .context("the emulator returned no topic ARN")?;
        let events = aws_sdk_eventbridge::Client::new(&central.config);
        let bus_arn = events
            .create_event_bus()
            .name("bench-pipelines")
            .send()
            .await
            .context("creating the pipeline bus")?
            .event_bus_arn
            .context("the emulator returned no bus ARN")?;
        let secrets = aws_sdk_secretsmanager::Client::new(&central.config);
        let secret_id = secrets
            .create_secret()
            .name("bench-slack-token")
            .secret_string("xoxb-bench-token")
            .send()
            .await
            .context("creating the Slack token secret")?
            .arn
            .context("the emulator returned no secret ARN")?;
        let proxy = CountingProxy::start(moto.endpoint()).await?;
        let registered_at = Timestamp::now().minus(Span::HOUR);
        let bench = Bench {
            moto,
            central,
            topic_arn,
            bus_arn,
            secret_id,
            proxy,
            registered_at,
            seq: AtomicU64::new(0),
        };
        bench.register(fan_outs).await?;
        Ok(bench)
    }

    /// Reserves `n` numbers never handed out before, starting at an even one (so event `i` and
    /// `i + 1` of a block are the RUNNING and final status of one execution). Keeps every
    /// event's execution unique across the whole bench.
    pub fn reserve(&self, n: u64) -> u64 {
        self.seq.fetch_add(n + n % 2, Ordering::Relaxed)
    }

    fn registration(
        &self,
        child: &PipelineId,
        parents: &[PipelineId],
    ) -> anyhow::Result<Registration> {
        let leaves: Vec<Value> = parents
            .iter()
            .map(|p| json!({"name": p.name, "account": p.account, "status": ["SUCCEEDED"]}))
            .collect();
        let doc = json!({
            "trigger": {"executions": {"allOf": leaves}},
            "notifications": {
                "type": "FULL_EXECUTION",
                "targets": [{"channel": "SLACK", "addresses": [SLACK_CHANNEL]}],
            },
        });
        let definition = PipelineDefinition::from_document(&doc)
            .map_err(|e| anyhow::anyhow!("bench definition of {child}: {e}"))?;
        Ok(Registration {
            pipeline: child.clone(),
            owner_stack_id: format!(
                "arn:aws:cloudformation:{REGION}:{}:stack/bench/{}",
                child.account, child.name
            ),
            definition,
            bus_arn: Some(self.bus_arn.clone()),
            registered_at: self.registered_at,
            trigger_floor: self.registered_at,
        })
    }

    /// Children for each fan-out size (each with the parent and two co-parents from a pool of
    /// 20), and the always-firing family.
    async fn register(&self, fan_outs: &[usize]) -> anyhow::Result<()> {
        let mut registrations = Vec::new();
        let mut sizes = vec![1];
        sizes.extend(fan_outs.iter().copied().filter(|&n| n != 1));
        for n in sizes {
            let parent = fan_out_parent(n)?;
            for i in 0..n {
                let child = pipeline(CHILD_ACCOUNT, &format!("bench-child-{n}-{i}"))?;
                let co_a = pipeline(UPSTREAM_ACCOUNT, &format!("bench-upstream-{}", i % 20))?;
                let co_b = pipeline(
                    UPSTREAM_ACCOUNT,
                    &format!("bench-upstream-{}", (i + 7) % 20),
                )?;
                registrations.push(self.registration(&child, &[parent.clone(), co_a, co_b])?);
            }
        }
        let family = firing_parents()?;
        for i in 0..FIRING_CHILDREN {
            let child = pipeline(CHILD_ACCOUNT, &format!("bench-firechild-{i}"))?;
            registrations.push(self.registration(&child, &family)?);
        }
        // In bulk (BatchWriteItem, no rules): registering 1,121 children one transaction at a
        // time takes the emulator minutes and gigabytes (it copies the table for each
        // transaction). A generated family has no cycle and no other owner.
        let registry: DynamoRegistry = self.central.registry();
        registry
            .load(&registrations)
            .await
            .context("loading the fan-out families into the registry")?;
        Ok(())
    }

    /// The environment `template.yaml` gives every function, pointing at this bench's resources.
    pub fn function_env(&self) -> Vec<(String, String)> {
        let t = &self.central.tables;
        [
            ("BATON_RUNS_TABLE", t.runs.clone()),
            ("BATON_REGISTRY_TABLE", t.registry.clone()),
            ("BATON_LEDGER_TABLE", t.ledger.clone()),
            ("BATON_SLACK_THREADS_TABLE", t.slack_threads.clone()),
            ("BATON_RUN_RETENTION_DAYS", "90".to_owned()),
            ("BATON_RUN_EVENTS_TOPIC_ARN", self.topic_arn.clone()),
            ("BATON_DEFAULT_PIPELINE_BUS", "bench-pipelines".to_owned()),
            // cfn-responder: the emulator's default account is the central account, and answers
            // go to the proxy's response-URL stand-in instead of CloudFormation's buckets.
            ("BATON_CENTRAL_ACCOUNT", "123456789012".to_owned()),
            (
                "BATON_EMULATED_RESPONSE_ENDPOINT",
                self.proxy.endpoint().to_owned(),
            ),
            ("BATON_ENVIRONMENT", "bench".to_owned()),
            ("BATON_SLACK_TOKEN_SECRET_ID", self.secret_id.clone()),
            (
                "BATON_SLACK_API_URL",
                format!("{}/api", self.proxy.endpoint()),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// A run of `pipeline` with a fresh execution, `status` now-ish.
    pub fn run(&self, pipeline: &PipelineId, status: RunStatus) -> Run {
        let seq = self.reserve(1);
        run_at(
            pipeline,
            &format!("bench-{seq}"),
            status,
            Timestamp::now().0,
        )
    }

    /// Records runs in the run log as run-log-writer would have before announcing them.
    pub async fn record(&self, runs: &[Run]) -> anyhow::Result<()> {
        let log = self.central.run_log();
        for run in runs {
            log.record(run)
                .await
                .with_context(|| format!("recording {}", run.execution_arn))?;
        }
        Ok(())
    }

    /// The event function `name` is fed as number `seq` (from [`Bench::reserve`]) in the cold
    /// start and memory runs: a new run each (RUNNING for even `seq`, a final status for odd), or
    /// a new registration for cfn-responder.
    pub fn event_for(&self, name: &str, seq: u64) -> anyhow::Result<Value> {
        let i = seq;
        Ok(match name {
            "run-log-writer" | report::PYTHON | report::NODE | report::FLOOR => {
                // A RUNNING then a final status of each execution, as Step Functions sends them.
                let status = match i % 2 {
                    0 => RunStatus::Running,
                    _ => RunStatus::Succeeded,
                };
                let listings = pipeline(PARENT_ACCOUNT, "listings")?;
                status_change_event(&run_at(
                    &listings,
                    &format!("w-{}", seq / 2),
                    status,
                    Timestamp::now().0,
                ))
            }
            "trigger-manager" => sns_event(
                &self.topic_arn,
                &RunEvent::status(&self.run(&fan_out_parent(1)?, RunStatus::Succeeded)),
            ),
            "slack-notifier" => {
                let status = match i % 2 {
                    0 => RunStatus::Running,
                    _ => RunStatus::Failed,
                };
                let run = run_at(
                    &notified_pipeline()?,
                    &format!("n-{}", seq / 2),
                    status,
                    Timestamp::now().0,
                );
                sns_event(&self.topic_arn, &RunEvent::status(&run))
            }
            "cfn-responder" => self.custom_resource_event(seq),
            other => anyhow::bail!("no workload for `{other}`"),
        })
    }

    /// A `Custom::BatonPipeline` Create request from the central account's own stack.
    fn custom_resource_event(&self, seq: u64) -> Value {
        json!({
            "RequestType": "Create",
            "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:cfn-responder",
            "ResponseURL": format!("{}/cloudformation-response/{seq}", self.proxy.endpoint()),
            "StackId": format!("arn:aws:cloudformation:{REGION}:123456789012:stack/bench-{seq}/5b0b4a70-0000-11ef-0000-0a{seq:010}"),
            "RequestId": format!("bench-request-{seq}"),
            "LogicalResourceId": "BatonPipeline",
            "ResourceType": "Custom::BatonPipeline",
            "ResourceProperties": {
                "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:cfn-responder",
                "PipelineName": format!("bench-registered-{seq}"),
                "PipelineBusArn": self.bus_arn,
                "Trigger": {"executions": {"allOf": [
                    {"name": "listings", "account": PARENT_ACCOUNT, "status": ["SUCCESS"]},
                    {"name": "searches", "account": UPSTREAM_ACCOUNT, "status": ["SUCCESS"]},
                ], "within": "20h"}},
                "Notifications": {"type": "FULL_EXECUTION", "targets": [
                    {"channel": "SLACK", "addresses": [SLACK_CHANNEL]},
                ]},
            },
        })
    }
}

/// A run of `pipeline`, execution `name`, at `status` reached at `at` (started a minute before).
pub fn run_at(pipeline: &PipelineId, name: &str, status: RunStatus, at: i64) -> Run {
    let execution_arn = format!(
        "arn:aws:states:{}:{}:execution:{}:{name}",
        pipeline.region, pipeline.account, pipeline.name
    );
    let (started_at, stopped_at) = if status == RunStatus::Running {
        (Timestamp(at), None)
    } else {
        (Timestamp(at - 60_000), Some(Timestamp(at)))
    };
    Run {
        pipeline: pipeline.clone(),
        execution_arn,
        execution_name: name.to_owned(),
        status,
        started_at,
        stopped_at,
        error: status.is_failure().then(|| "States.TaskFailed".to_owned()),
        cause: status
            .is_failure()
            .then(|| "bench: the job <failed> & stopped".to_owned()),
        trigger_id: None,
        run_key: None,
    }
}

/// The EventBridge event Step Functions emits for `run`, as the central bus delivers it.
pub fn status_change_event(run: &Run) -> Value {
    let id = format!("bench-{}-{}", run.execution_name, run.status);
    baton_testbed::status_change_event(run, &id, Some("{}"))
}

/// An SNS delivery of `event` from the run-events topic.
pub fn sns_event(topic_arn: &str, event: &RunEvent) -> Value {
    let attributes: serde_json::Map<String, Value> = event
        .message_attributes()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), json!({"Type": "String", "Value": v})))
        .collect();
    json!({"Records": [{
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": format!("{topic_arn}:bench-subscription"),
        "Sns": {
            "Type": "Notification",
            "MessageId": format!("bench-{}", Timestamp::now().0),
            "TopicArn": topic_arn,
            "Subject": null,
            "Message": serde_json::to_string(event).unwrap_or_default(),
            "Timestamp": "2026-11-22T04:00:00.000Z",
            "SignatureVersion": "1",
            "Signature": "bench",
            "SigningCertUrl": "https://sns.eu-west-1.amazonaws.com/bench.pem",
            "UnsubscribeUrl": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
            "MessageAttributes": attributes,
        },
    }]})
}
