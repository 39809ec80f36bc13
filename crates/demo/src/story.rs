//! The story itself: set-up, registration, a day of status changes, and what came of them.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use aws_lambda_events::event::sns::SnsEvent;
use baton_adapters::{EventBridgeTriggerBus, SecretsManagerToken, SlackWebApi, SnsRunEvents};
use baton_core::trigger::{FlowSettings, Ports};
use baton_core::{PipelineTrigger, Timestamp};
use baton_testbed::cfn_capture::CfnCapture;
use baton_testbed::slack_standin::SlackStandIn;
use baton_testbed::{lambda_sns_event, BusWatch, Central, Moto, TopicWatch, REGION};
use chrono::{DateTime, Duration as Days, NaiveTime, Utc};
use serde_json::{json, Value};

use crate::account_c::AccountC;
use crate::capture::Captured;

mod two_days;

const CENTRAL: &str = "123456789012";
const A: &str = "111111111111";
const B: &str = "222222222222";
const C: &str = "333333333333";
const DEFAULT_BUS: &str = "baton-pipelines";
/// The environment the demo's central stack plays; the examples are synthesized for it.
const ENVIRONMENT: &str = "dev";
const CHANNELS: [&str; 3] = ["core-data-availability", "search-team", "rent-journey"];

/// Everything the handlers run against.
struct World {
    central: Central,
    topic_arn: String,
    to_trigger_manager: TopicWatch,
    to_slack: TopicWatch,
    bus_c: BusWatch,
    account_c: AccountC,
    slack: SlackStandIn,
    capture: CfnCapture,
    events: SnsRunEvents,
    bus: EventBridgeTriggerBus,
    settings: FlowSettings,
    notifier: slack_notifier::Notifier<
        baton_adapters::DynamoRegistry,
        baton_adapters::DynamoSlackThreads,
        SlackWebApi<SecretsManagerToken>,
        baton_adapters::sns::SnsEmailTopics,
    >,
    captured: Captured,
    /// What trigger-manager last received, to deliver it again.
    last_for_trigger_manager: std::sync::Mutex<Vec<Value>>,
}

/// A status change as Step Functions reports it.
struct Change {
    account: &'static str,
    pipeline: &'static str,
    execution: String,
    status: &'static str,
    start: Timestamp,
    stop: Option<Timestamp>,
    input: Value,
    error: Option<(&'static str, &'static str)>,
}

fn clock(t: Timestamp) -> String {
    DateTime::from_timestamp_millis(t.0)
        .map(|d| d.format("%H:%M").to_string())
        .unwrap_or_default()
}

fn heading(text: &str) {
    println!("\n== {text}");
}

impl World {
    async fn create(moto: &Moto, captured: Captured) -> anyhow::Result<World> {
        let central = Central::create(moto, "demo").await?;
        let config = &central.config;
        let sns = aws_sdk_sns::Client::new(config);
        let topic_arn = sns
            .create_topic()
            .name("baton-run-events")
            .send()
            .await?
            .topic_arn
            .context("CreateTopic returned no ARN")?;
        // The template's two subscriptions: trigger-manager takes status events only.
        let to_trigger_manager =
            TopicWatch::subscribe(config, &topic_arn, Some(&json!({"kind": ["status"]}))).await?;
        let to_slack = TopicWatch::subscribe(config, &topic_arn, None).await?;
        // Account C's pipeline bus. The emulator keeps every bus in one account, so it carries
        // C's id in its name; the ARN the code uses names account C as in production.
        let bus_c = BusWatch::on_bus(config, C, &format!("{DEFAULT_BUS}-{C}"), "baton").await?;
        // Account C's Step Functions, reached with credentials of account C.
        let account_c = AccountC::create(moto, C).await?;
        let token = "xoxb-demo-bot-token";
        let secrets = aws_sdk_secretsmanager::Client::new(config);
        secrets
            .create_secret()
            .name("baton/slack-token")
            .secret_string(token)
            .send()
            .await?;
        let slack = SlackStandIn::start(token).await?;
        let notifier = slack_notifier::Notifier {
            registry: central.registry(),
            threads: central.slack_threads(),
            slack: SlackWebApi::new(
                slack.url(),
                SecretsManagerToken::new(secrets, "baton/slack-token"),
            )?,
            email: baton_adapters::sns::SnsEmailTopics::new(config),
            environment: Some(ENVIRONMENT.to_owned()),
        };
        let mut settings = FlowSettings::with_default_bus(DEFAULT_BUS);
        settings.environment = Some(ENVIRONMENT.to_owned());
        Ok(World {
            events: SnsRunEvents::new(sns, &topic_arn),
            bus: EventBridgeTriggerBus::new(config),
            settings,
            capture: CfnCapture::start().await?,
            central,
            topic_arn,
            to_trigger_manager,
            to_slack,
            bus_c,
            account_c,
            slack,
            notifier,
            captured,
            last_for_trigger_manager: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Registers the Scout24 example `pipeline` (examples/scout24) as its stack, synthesized by
    /// `baton synth --env dev`, registers it once deployed in `account`: the resource's
    /// properties with the template's intrinsics resolved for that account.
    async fn register_synthesized(
        &self,
        account: &str,
        pipeline: &str,
        email_topic: Option<&str>,
    ) -> anyhow::Result<()> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/scout24")
            .join(pipeline);
        let made = baton_synth::synth(&dir, ENVIRONMENT).map_err(|e| anyhow::anyhow!("{e}"))?;
        let at = baton_synth::local::Deployment {
            account,
            region: REGION,
            notification_topic_arn: email_topic,
        };
        let mut properties = baton_synth::local::registration_properties(&made, &at)?;
        if properties.get("PipelineBusArn").is_some() {
            // The emulator keeps every bus in one account: account C's carries C's id in its name.
            properties["PipelineBusArn"] = json!(self.bus_c.bus_arn);
        }
        println!(
            "  {pipeline}: examples/scout24/{pipeline}/pipeline.yaml, synthesized for {ENVIRONMENT}, deployed in account {account}"
        );
        self.register(account, pipeline, properties).await
    }

    /// A Create request for `Custom::BatonPipeline` from a stack in `account`, delivered through
    /// the registration topic (member accounts' ServiceToken).
    async fn register(
        &self,
        account: &str,
        pipeline: &str,
        properties: Value,
    ) -> anyhow::Result<()> {
        let stack_id =
            format!("arn:aws:cloudformation:{REGION}:{account}:stack/{pipeline}/0a1b2c3d");
        // The stack account's own registration topic: the route that vouches for it.
        let topic = format!("arn:aws:sns:{REGION}:{account}:baton-registrations");
        let mut props = properties;
        props["ServiceToken"] = json!(topic);
        props["PipelineName"] = json!(pipeline);
        let request = json!({
            "RequestType": "Create",
            "ServiceToken": topic,
            "ResponseURL": format!("{}/{pipeline}?X-Amz-Signature=demo", self.capture.base_url()),
            "StackId": stack_id,
            "RequestId": format!("create-{pipeline}"),
            "LogicalResourceId": "BatonPipeline",
            "ResourceType": "Custom::BatonPipeline",
            "ResourceProperties": props,
        });
        let envelope = json!({"Records": [{
            "EventSource": "aws:sns", "EventVersion": "1.0",
            "EventSubscriptionArn": format!("{topic}:demo"),
            "Sns": {"Type": "Notification", "MessageId": format!("m-{pipeline}"), "TopicArn": topic,
                    "Subject": "AWS CloudFormation custom resource request", "Message": request.to_string(),
                    "Timestamp": Utc::now().to_rfc3339(), "SignatureVersion": "1", "Signature": "",
                    "SigningCertUrl": "", "UnsubscribeUrl": "", "MessageAttributes": {}}
        }]});
        let responder = cfn_responder::Responder::new(
            self.central.registry(),
            self.central.ledger(),
            cfn_responder::Config {
                registry_table: self.central.tables.registry.clone(),
                ledger_table: self.central.tables.ledger.clone(),
                default_pipeline_bus: DEFAULT_BUS.to_owned(),
                deadline_margin: Duration::from_secs(5),
                central_account: CENTRAL.to_owned(),
                admitted: cfn_responder::route::Admitted::from_list(&[A, B, C].join(",")),
                // The demo's capture stands in for CloudFormation's response bucket.
                endpoints: cfn_responder::route::ResponseEndpoints {
                    emulated: Some(self.capture.base_url().to_owned()),
                },
                environment: Some(ENVIRONMENT.to_owned()),
            },
            baton_adapters::http::client().context("building the HTTP client")?,
        );
        let before = self.capture.accepted().len();
        responder
            .handle(envelope, Instant::now() + Duration::from_secs(60))
            .await?;
        let answers = self.capture.accepted();
        let answer = answers
            .get(before)
            .context("cfn-responder sent no answer")?
            .json();
        println!(
            "  stack {pipeline} in account {account}: cfn-responder answered {} (PhysicalResourceId {}){}",
            answer["Status"].as_str().unwrap_or("?"),
            answer["PhysicalResourceId"].as_str().unwrap_or("?"),
            answer["Reason"].as_str().map(|r| format!(": {r}")).unwrap_or_default(),
        );
        if let Some(data) = answer["Data"].as_object() {
            for (k, v) in data {
                println!("      {k} = {}", v.as_str().unwrap_or_default());
            }
        }
        Ok(())
    }

    /// Delivers a status change to run-log-writer as the central bus rule does, then lets every
    /// subscriber process what followed. Returns the Pipeline Triggers that reached account C.
    async fn status_change(&self, change: &Change) -> anyhow::Result<Vec<Value>> {
        let execution_arn = format!(
            "arn:aws:states:{REGION}:{}:execution:{}:{}",
            change.account, change.pipeline, change.execution
        );
        let event = json!({
            "version": "0",
            "id": format!("{}-{}", change.execution, change.status),
            "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states",
            "account": change.account,
            "time": DateTime::from_timestamp_millis(change.stop.unwrap_or(change.start).0).map(|d| d.to_rfc3339()),
            "region": REGION,
            "resources": [execution_arn],
            "detail": {
                "executionArn": execution_arn,
                "stateMachineArn": format!("arn:aws:states:{REGION}:{}:stateMachine:{}", change.account, change.pipeline),
                "name": change.execution,
                "status": change.status,
                "startDate": change.start.0,
                "stopDate": change.stop.map(|t| t.0),
                "input": change.input.to_string(),
                "inputDetails": {"included": true},
                "output": null,
                "error": change.error.map(|e| e.0),
                "cause": change.error.map(|e| e.1),
            }
        });
        let at = change.stop.unwrap_or(change.start);
        let writer = run_log_writer::RunLogWriter {
            run_log: &self.central.run_log(),
            registry: &self.central.registry(),
            run_events: &self.events,
        };
        let written = writer.handle(event).await?;
        println!(
            "{}  {} {} {} (account {}) -> run-log-writer: {}{}",
            clock(at),
            change.pipeline,
            change.execution,
            change.status,
            change.account,
            if written.announced {
                "recorded, announced on run-events"
            } else {
                "already recorded, nothing announced"
            },
            written
                .trigger_id
                .as_deref()
                .map(|t| format!(" (started by trigger {t})"))
                .unwrap_or_default(),
        );
        self.pump(at, None).await
    }

    /// Runs trigger-manager and slack-notifier on what their subscriptions received, until
    /// nothing more arrives. `redeliver`: SNS notifications to hand trigger-manager again first
    /// (SNS delivers at least once).
    async fn pump(
        &self,
        now: Timestamp,
        redeliver: Option<&[Value]>,
    ) -> anyhow::Result<Vec<Value>> {
        let mut triggers = Vec::new();
        let mut redeliver = redeliver.map(<[Value]>::to_vec);
        loop {
            let mut quiet = true;
            let for_tm = match redeliver.take() {
                Some(again) => again,
                None => self.to_trigger_manager.received().await?,
            };
            if !for_tm.is_empty() {
                quiet = false;
                self.trigger_manager(&for_tm, now).await?;
                if let Ok(mut last) = self.last_for_trigger_manager.lock() {
                    *last = for_tm;
                }
            }
            let for_slack = self.to_slack.received().await?;
            if !for_slack.is_empty() {
                quiet = false;
                let event: SnsEvent = serde_json::from_value(lambda_sns_event(&for_slack))?;
                let report = self
                    .notifier
                    .handle(&event, Instant::now() + Duration::from_secs(30))
                    .await?;
                println!(
                    "       slack-notifier: {} record(s): {} posted or edited, {} already delivered, {} refused",
                    for_slack.len(),
                    report.posted,
                    report.already_delivered,
                    report.refused
                );
            }
            for arrived in self.bus_c.received().await? {
                quiet = false;
                let detail = &arrived["detail"];
                println!(
                    "       account {C} pipeline bus: {} for {} (trigger {}): {}",
                    arrived["detail-type"].as_str().unwrap_or("?"),
                    detail["target"]["name"].as_str().unwrap_or("?"),
                    detail["batonTriggerId"].as_str().unwrap_or("?"),
                    detail["reason"].as_str().unwrap_or(""),
                );
                // The rule on C's pipeline bus invokes pipeline-starter.
                self.account_c.deliver(&arrived).await?;
                triggers.push(arrived);
            }
            if quiet {
                return Ok(triggers);
            }
        }
    }

    async fn trigger_manager(&self, notifications: &[Value], now: Timestamp) -> anyhow::Result<()> {
        let event: SnsEvent = serde_json::from_value(lambda_sns_event(notifications))?;
        let (run_log, registry, ledger) = (
            self.central.run_log(),
            self.central.registry(),
            self.central.ledger(),
        );
        let ports = Ports {
            run_log: &run_log,
            registry: &registry,
            ledger: &ledger,
            bus: &self.bus,
            events: &self.events,
        };
        // Each delivery is an invocation of its own, with the function's two-minute timeout.
        let invocation = baton_core::trigger::Invocation::new(
            baton_testbed::unique("request"),
            now,
            now.plus(baton_core::Span::minutes(2)),
            &self.settings,
        );
        let manager = trigger_manager::TriggerManager {
            ports,
            settings: &self.settings,
        };
        let handled = manager.handle(event, &invocation).await;
        for logged in self.captured.drain() {
            match logged.message.as_str() {
                "evaluated" => {
                    println!(
                        "       trigger-manager decided for {}: {}",
                        logged.field("child"),
                        logged.field("decision")
                    );
                    for line in logged.field("explanation").lines() {
                        println!("         {line}");
                    }
                }
                "trigger delivered" => println!(
                    "       trigger-manager sent trigger {} to {}{}",
                    logged.field("trigger_id"),
                    logged.field("bus"),
                    if logged.field("resent") == "true" {
                        " (re-sent)"
                    } else {
                        ""
                    }
                ),
                _ => {}
            }
        }
        match handled {
            Ok(h) if h.sent.is_empty() => println!(
                "       trigger-manager: {} record(s), no trigger sent",
                h.records
            ),
            Ok(h) => println!(
                "       trigger-manager: {} record(s), sent {}",
                h.records,
                h.sent.join(", ")
            ),
            Err(e) => println!("       trigger-manager failed (the event would be retried): {e}"),
        }
        Ok(())
    }

    /// One watchdog run at `now` (the schedule invokes it every minute), over the central
    /// tables; prints what it did.
    async fn watchdog(&self, now: Timestamp) -> anyhow::Result<()> {
        let (run_log, registry, ledger, watch) = (
            self.central.run_log(),
            self.central.registry(),
            self.central.ledger(),
            self.central.watch(),
        );
        let lookup = baton_adapters::RoleExecutionLookup::new(
            &self.central.config,
            baton_adapters::READ_ONLY_ROLE_NAME,
        );
        let ports = baton_core::watch::run::WatchPorts {
            flow: Ports {
                run_log: &run_log,
                registry: &registry,
                ledger: &ledger,
                bus: &self.bus,
                events: &self.events,
            },
            watch: &watch,
            lookup: &lookup,
        };
        let settings = baton_core::watch::run::WatchSettings::new(self.settings.clone());
        let invocation = baton_core::trigger::Invocation::new(
            baton_testbed::unique("watchdog"),
            now,
            now.plus(baton_core::Span::MINUTE),
            &settings.flow,
        );
        let report = baton_core::watch::run::watch_once(&ports, &invocation, &settings).await;
        print!("{}  watchdog (every minute):", clock(now));
        if report.scheduled.is_empty() && report.raised.is_empty() && report.resolved.is_empty() {
            print!(" nothing due");
        }
        for pipeline in &report.scheduled {
            print!(" scheduled the deadlines of {}", pipeline.name);
        }
        println!();
        for alert in &report.raised {
            println!(
                "       {} has not started by {} on {}: alert to its channels, a note to each parent it waits on",
                alert.pipeline.name, alert.due_local, alert.day
            );
            for reason in &alert.reasons {
                println!("         why: {reason}");
            }
        }
        for key in &report.resolved {
            println!("       alert {key} followed up in its thread");
        }
        for error in &report.errors {
            println!("       watchdog step failed (retried next minute): {error}");
        }
        Ok(())
    }

    fn print_slack(&self) {
        for channel in CHANNELS {
            let messages = self.slack.messages(channel);
            println!("\n  #{channel}");
            if messages.is_empty() {
                println!("    (nothing posted)");
            }
            for root in messages.iter().filter(|m| m.thread_ts.is_none()) {
                let edited = if root.edits > 0 {
                    format!("  [edited {}x]", root.edits)
                } else {
                    String::new()
                };
                for (i, line) in root.text.lines().enumerate() {
                    println!(
                        "    {} {line}{}",
                        if i == 0 { "*" } else { " " },
                        if i == 0 { edited.as_str() } else { "" }
                    );
                }
                for reply in messages
                    .iter()
                    .filter(|m| m.thread_ts.as_deref() == Some(root.ts.as_str()))
                {
                    for (i, line) in reply.text.lines().enumerate() {
                        println!("      {} {line}", if i == 0 { "|-" } else { "| " });
                    }
                }
            }
        }
    }
}

/// `hh:mm` on the day after today (UTC): the story happens after the pipelines are registered.
fn tomorrow_at(hour: u32, minute: u32) -> Timestamp {
    let day = Utc::now().date_naive() + Days::days(1);
    let time = NaiveTime::from_hms_opt(hour, minute, 0).unwrap_or_default();
    Timestamp(day.and_time(time).and_utc().timestamp_millis())
}

pub async fn run(captured: Captured) -> anyhow::Result<()> {
    let started = Instant::now();
    println!("baton demo: the Scout24 story on a local emulated AWS");
    println!("starting the AWS emulator (moto) on 127.0.0.1 ...");
    let moto = Moto::start()?;
    let world = World::create(&moto, captured).await?;
    println!(
        "central account {CENTRAL}: tables {}, {}, {}, {}; topic {}; Slack stand-in at {}",
        world.central.tables.runs,
        world.central.tables.registry,
        world.central.tables.ledger,
        world.central.tables.slack_threads,
        world.topic_arn,
        world.slack.url()
    );
    let mailbox = register_the_pipelines(&world).await?;
    let date = DateTime::from_timestamp_millis(tomorrow_at(0, 0).0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let (fixed, mut triggers) = the_first_day(&world, &date).await?;
    triggers.extend(delivered_again(&world, &fixed).await?);
    let executions = one_execution(&world, &triggers).await?;
    pipeline_x_runs(&world, &executions).await?;
    two_days::play(&world).await?;
    what_happened(&world, &triggers, &mailbox).await?;
    println!("\nfinished in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

/// A status change of the story's executions, with an empty input.
fn change(
    account: &'static str,
    pipeline: &'static str,
    execution: &str,
    status: &'static str,
    start: Timestamp,
    stop: Option<Timestamp>,
    error: Option<(&'static str, &'static str)>,
) -> Change {
    Change {
        account,
        pipeline,
        execution: execution.to_owned(),
        status,
        start,
        stop,
        input: json!({}),
        error,
    }
}

/// Chapter 1: the three pipeline stacks register; a registration closing a cycle is refused.
/// Answers pipeline-x's e-mail topic.
async fn register_the_pipelines(world: &World) -> anyhow::Result<TopicWatch> {
    heading(
        "1. Pipeline stacks register with baton (Custom::BatonPipeline via the registration topic), as `baton synth --env dev` made them",
    );
    world.register_synthesized(A, "listings", None).await?;
    world.register_synthesized(B, "searches", None).await?;
    // pipeline-x's stack also creates its e-mail topic in account C.
    let mailbox = world.account_c.email_topic().await?;
    world
        .register_synthesized(C, "pipeline-x", Some(&mailbox.topic_arn))
        .await?;
    // A pipeline closing a cycle (listings waiting for pipeline-x) is refused, naming the cycle.
    println!("  listings' stack is updated to wait for pipeline-x, which waits for listings:");
    world
        .register(A, "listings", json!({"Trigger": {"executions": {"allOf": [{"name": "pipeline-x", "account": C, "status": ["SUCCEEDED"]}]}}}))
        .await?;
    Ok(mailbox)
}

/// Chapter 2: listings and searches run, searches fails, pipeline-x is late at 07:00, searches
/// is re-run. Answers the decisive status change and the triggers it sent.
async fn the_first_day(world: &World, date: &str) -> anyhow::Result<(Change, Vec<Value>)> {
    heading(&format!(
        "2. {date}: listings and searches run; searches fails; pipeline-x is late at 07:00; searches is re-run"
    ));
    world.watchdog(tomorrow_at(0, 1)).await?;
    let l = format!("listings-{date}");
    let s = format!("searches-{date}");
    let s2 = format!("searches-{date}-rerun");
    let story = [
        change(A, "listings", &l, "RUNNING", tomorrow_at(3, 0), None, None),
        change(
            A,
            "listings",
            &l,
            "SUCCEEDED",
            tomorrow_at(3, 0),
            Some(tomorrow_at(3, 42)),
            None,
        ),
        change(B, "searches", &s, "RUNNING", tomorrow_at(5, 0), None, None),
        change(
            B,
            "searches",
            &s,
            "FAILED",
            tomorrow_at(5, 0),
            Some(tomorrow_at(5, 18)),
            Some((
                "States.TaskFailed",
                "S3 export of search events failed: <AccessDenied> on s3://searches-export/2026/",
            )),
        ),
    ];
    for c in &story {
        world.status_change(c).await?;
    }
    // 07:00: pipeline-x should have started; the watchdog says so, and why.
    world.watchdog(tomorrow_at(7, 0)).await?;
    world.pump(tomorrow_at(7, 0), None).await?;
    world
        .status_change(&change(
            B,
            "searches",
            &s2,
            "RUNNING",
            tomorrow_at(7, 2),
            None,
            None,
        ))
        .await?;
    let fixed = change(
        B,
        "searches",
        &s2,
        "SUCCEEDED",
        tomorrow_at(7, 2),
        Some(tomorrow_at(7, 31)),
        None,
    );
    let triggers = world.status_change(&fixed).await?;
    Ok((fixed, triggers))
}

/// Chapter 3: the decisive status change delivered twice more. Answers any triggers sent.
async fn delivered_again(world: &World, fixed: &Change) -> anyhow::Result<Vec<Value>> {
    heading("3. The same status change delivered twice more (EventBridge and SNS deliver at least once)");
    let mut triggers = world.status_change(fixed).await?;
    let again = world
        .last_for_trigger_manager
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    println!(
        "{}  SNS delivers the decisive run event to trigger-manager again",
        clock(tomorrow_at(7, 32))
    );
    triggers.extend(world.pump(tomorrow_at(7, 32), Some(&again)).await?);
    Ok(triggers)
}

/// Chapter 4: the trigger reaches pipeline-starter three times; one execution starts.
async fn one_execution(world: &World, triggers: &[Value]) -> anyhow::Result<Vec<(String, String)>> {
    heading("4. The Pipeline Trigger reaches pipeline-starter twice more (EventBridge delivers at least once): three deliveries, one execution");
    let trigger = triggers.first().context("pipeline-x was never triggered")?;
    for _ in 0..2 {
        world.account_c.deliver(trigger).await?;
    }
    let executions = world.account_c.executions().await?;
    println!(
        "  pipeline-x's executions in account {C} (ListExecutions on {}): {}",
        world.account_c.pipeline_x_arn,
        executions.len()
    );
    for (name, input) in &executions {
        println!(
            "    {name} (input: the Pipeline Trigger {})",
            PipelineTrigger::id_in_execution_input(input).unwrap_or_else(|| "?".to_owned())
        );
    }
    Ok(executions)
}

/// Chapter 5: pipeline-x runs, 35 minutes after its deadline; the alert's thread hears of it.
async fn pipeline_x_runs(world: &World, executions: &[(String, String)]) -> anyhow::Result<()> {
    heading("5. pipeline-x runs (35 min after its deadline); its status changes carry the trigger that started it");
    let (x, input) = executions
        .first()
        .context("pipeline-starter started no execution")?;
    let input: Value = serde_json::from_str(input)?;
    let mut running = change(
        C,
        "pipeline-x",
        x,
        "RUNNING",
        tomorrow_at(7, 35),
        None,
        None,
    );
    running.input = input.clone();
    let mut done = change(
        C,
        "pipeline-x",
        x,
        "SUCCEEDED",
        tomorrow_at(7, 35),
        Some(tomorrow_at(8, 5)),
        None,
    );
    done.input = input;
    world.status_change(&running).await?;
    // The watchdog follows up open alerts every five minutes: at 07:40 it sees pipeline-x
    // started at 07:35, and the alert's thread hears how late.
    world.watchdog(tomorrow_at(7, 40)).await?;
    world.pump(tomorrow_at(7, 40), None).await?;
    world.status_change(&done).await?;
    Ok(())
}

/// Chapter 8: the triggers account C's bus saw, the Slack channels and the e-mail received.
async fn what_happened(
    world: &World,
    triggers: &[Value],
    mailbox: &TopicWatch,
) -> anyhow::Result<()> {
    heading("8. What happened");
    println!(
        "  Pipeline Triggers that reached account {C}'s bus: {}",
        triggers.len()
    );
    for t in triggers {
        println!(
            "    {} -> {}",
            t["detail"]["batonTriggerId"].as_str().unwrap_or("?"),
            t["detail"]["target"]["name"].as_str().unwrap_or("?")
        );
    }
    println!("\n  Slack, as the channels show it (* thread root, |- replies in its thread):");
    world.print_slack();
    println!("\n  E-mail to rent-journey@example.com, through pipeline-x's topic in account {C}:");
    for n in mailbox.received().await? {
        let subject = n["Subject"].as_str().unwrap_or("?");
        let first = n["Message"]
            .as_str()
            .and_then(|m| m.lines().next())
            .unwrap_or("");
        println!("    {subject}\n      {first}");
    }
    Ok(())
}
