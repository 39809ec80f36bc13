//! The watchdog against the local AWS emulator, through the real adapters: pipeline-x reported
//! late at 07:00 Berlin time because searches failed, with a note in searches' channel; the
//! re-run, the trigger, and the "started 35 min late" reply in the alert's thread in Slack; and a
//! trigger left pending re-sent from the ledger's pending index.

mod common;

use std::time::{Duration, Instant};

use aws_lambda_events::event::sns::SnsEvent;
use baton_adapters::sns::SnsEmailTopics;
use baton_adapters::{
    DynamoRegistry, DynamoSlackThreads, DynamoWatch, RoleExecutionLookup, SecretsManagerToken,
    SlackWebApi, READ_ONLY_ROLE_NAME,
};
use baton_core::ports::{Ledger, RunLog};
use baton_core::trigger::{Invocation, Ports};
use baton_core::watch::run::{WatchPorts, WatchSettings};
use baton_core::{PipelineTrigger, RunStatus, Span, Timestamp};
use baton_testbed::slack_standin::SlackStandIn;
use baton_testbed::{lambda_sns_event, unique, BusWatch, MemberAccount, Moto};
use common::*;
use serde_json::Value;
use slack_notifier::Notifier;
use watchdog::Watched;

const PIPELINE_X: &str = "trigger:\n  executions:\n    allOf:\n      - {name: listings, account: '111111111111', status: [SUCCESS]}\n      - {name: searches, account: '222222222222', status: [SUCCESS]}\ndeadlines: {startBy: '07:00', finishBy: '09:30', timezone: Europe/Berlin}\nnotifications:\n  targets: [{channel: SLACK, addresses: [rent-journey]}]\n  mentionOnFailure: '<!subteam^S0123>'\n";
const SEARCHES: &str = "notifications:\n  targets: [{channel: SLACK, addresses: [search-team]}]\n";

struct Watchdog {
    watch: DynamoWatch,
    lookup: RoleExecutionLookup,
    settings: WatchSettings,
}

impl Watchdog {
    fn new(world: &World) -> Watchdog {
        Watchdog {
            watch: world.central.watch(),
            lookup: RoleExecutionLookup::new(&world.central.config, READ_ONLY_ROLE_NAME),
            settings: WatchSettings::new(world.settings.clone()),
        }
    }

    async fn run(&self, world: &World, now: Timestamp) -> Watched {
        let ports = WatchPorts {
            flow: Ports {
                run_log: &world.run_log,
                registry: &world.registry,
                ledger: &world.ledger,
                bus: &world.bus,
                events: &world.events,
            },
            watch: &self.watch,
            lookup: &self.lookup,
        };
        let invocation = Invocation::new(
            unique("watchdog"),
            now,
            now.plus(Span::MINUTE),
            &self.settings.flow,
        );
        let watchdog = watchdog::Watchdog {
            ports,
            settings: &self.settings,
        };
        watchdog.handle(&invocation).await.unwrap()
    }
}

/// slack-notifier over the same tables, posting to a Slack stand-in.
async fn notifier(
    world: &World,
) -> (
    Notifier<DynamoRegistry, DynamoSlackThreads, SlackWebApi<SecretsManagerToken>, SnsEmailTopics>,
    SlackStandIn,
) {
    let secrets = aws_sdk_secretsmanager::Client::new(&Moto::shared().sdk_config().await);
    let secret_id = unique("baton-slack-token");
    let token = format!("xoxb-{}", unique("tok"));
    secrets
        .create_secret()
        .name(&secret_id)
        .secret_string(&token)
        .send()
        .await
        .unwrap();
    let slack = SlackStandIn::start(&token).await.unwrap();
    let notifier = Notifier {
        registry: world.central.registry(),
        threads: world.central.slack_threads(),
        slack: SlackWebApi::new(slack.url(), SecretsManagerToken::new(secrets, &secret_id))
            .unwrap(),
        email: SnsEmailTopics::new(&world.central.config),
        environment: None,
    };
    (notifier, slack)
}

async fn tell_slack(
    notifier: &Notifier<
        DynamoRegistry,
        DynamoSlackThreads,
        SlackWebApi<SecretsManagerToken>,
        SnsEmailTopics,
    >,
    notifications: &[Value],
) {
    for n in notifications {
        let event: SnsEvent =
            serde_json::from_value(lambda_sns_event(std::slice::from_ref(n))).unwrap();
        notifier
            .handle(&event, Instant::now() + Duration::from_secs(20))
            .await
            .unwrap();
    }
}

fn alerts(notifications: &[Value]) -> Vec<Value> {
    notifications
        .iter()
        .map(run_event)
        .filter(|e| e["kind"] == "alert")
        .collect()
}

#[tokio::test]
async fn pipeline_x_late_at_seven_because_searches_failed_then_started_35_min_late() {
    let mut world = World::new("watchdog").await;
    let bus_c = BusWatch::create(&world.central.config, ACCOUNT_C, "pipelines-c", "baton")
        .await
        .unwrap();
    world.settings.default_bus_name = bus_c.bus_name.clone();
    let (listings, searches, x) = (
        pipeline(ACCOUNT_A, "listings"),
        pipeline(ACCOUNT_B, "searches"),
        pipeline(ACCOUNT_C, "pipeline-x"),
    );
    world
        .register(&searches, SEARCHES, None, at(21, 12, 0))
        .await;
    world.register(&x, PIPELINE_X, None, at(21, 12, 0)).await;
    let dog = Watchdog::new(&world);
    assert_eq!(dog.run(&world, at(21, 12, 1)).await.scheduled, 1);
    // listings succeeds; searches fails at 05:18 Berlin (04:18Z).
    for event in [
        status_event(
            &listings,
            "listings-2026-11-22",
            RunStatus::Succeeded,
            at(22, 3, 0),
            Some(at(22, 4, 0)),
        ),
        status_event(
            &searches,
            "searches-2026-11-22",
            RunStatus::Failed,
            at(22, 4, 0),
            Some(at(22, 4, 18)),
        ),
    ] {
        world.write(&event).await.unwrap();
    }
    world.pump(at(22, 4, 30)).await;
    assert!(bus_c.received().await.unwrap().is_empty());
    let (notifier, slack) = notifier(&world).await;

    // 06:59 Berlin: nothing. 07:00: late, and why.
    assert!(dog.run(&world, at(22, 5, 59)).await.raised.is_empty());
    let watched = dog.run(&world, at(22, 6, 0)).await;
    assert_eq!(
        watched.raised,
        ["333333333333:eu-west-1:pipeline-x#2026-11-22#lateStart"]
    );
    let published = world.published().await;
    let raised = alerts(&published);
    assert_eq!(raised.len(), 2, "{raised:#?}");
    assert_eq!(
        raised[0]["alert"]["reasons"][0],
        "waiting on searches (222222222222): latest run searches-2026-11-22 FAILED at 05:18"
    );
    tell_slack(&notifier, &published).await;
    let alert = slack.messages("rent-journey");
    assert_eq!(alert.len(), 1);
    assert!(
        alert[0].text.starts_with(
            "pipeline-x has not started by 07:00 Europe/Berlin on 2026-11-22: waiting on searches"
        ),
        "{}",
        alert[0].text
    );
    assert!(alert[0].blocks.to_string().contains("<!subteam^S0123>"));
    let note = slack.messages("search-team");
    assert_eq!(note.len(), 1);
    assert!(
        note[0]
            .text
            .starts_with("pipeline-x (333333333333) is waiting on searches"),
        "{}",
        note[0].text
    );
    // Once per day and kind, even when two runs overlap.
    let (a, b) = tokio::join!(dog.run(&world, at(22, 6, 1)), dog.run(&world, at(22, 6, 1)));
    assert!(a.raised.is_empty() && b.raised.is_empty());

    // searches is re-run and succeeds; trigger-manager starts pipeline-x, which runs at 07:35.
    world
        .write(&status_event(
            &searches,
            "searches-2026-11-22-rerun",
            RunStatus::Succeeded,
            at(22, 6, 0),
            Some(at(22, 6, 30)),
        ))
        .await
        .unwrap();
    world.pump(at(22, 6, 31)).await;
    assert_eq!(bus_c.received().await.unwrap().len(), 1);
    world
        .write(&status_event(
            &x,
            "x-2026-11-22",
            RunStatus::Running,
            at(22, 6, 35),
            None,
        ))
        .await
        .unwrap();
    world.published().await;
    let watched = dog.run(&world, at(22, 6, 40)).await;
    assert_eq!(
        watched.resolved,
        ["333333333333:eu-west-1:pipeline-x#2026-11-22#lateStart"]
    );
    let published = world.published().await;
    tell_slack(&notifier, &published).await;
    tell_slack(&notifier, &published).await; // a redelivery posts nothing more
    let thread = slack.messages("rent-journey");
    assert_eq!(thread.len(), 2);
    assert_eq!(thread[1].thread_ts.as_deref(), Some(thread[0].ts.as_str()));
    assert_eq!(
        thread[1].text,
        "pipeline-x started 35 min late (run x-2026-11-22)"
    );
    assert!(dog.run(&world, at(22, 6, 45)).await.resolved.is_empty());
}

#[tokio::test]
async fn a_trigger_left_pending_is_found_on_the_index_and_re_sent_once() {
    let mut world = World::new("watchdog-pending").await;
    let bus_c = BusWatch::create(&world.central.config, ACCOUNT_C, "pipelines-c", "baton")
        .await
        .unwrap();
    world.settings.default_bus_name = bus_c.bus_name.clone();
    let y = pipeline(ACCOUNT_C, "pipeline-y");
    world.register(&y, "trigger: {executions: {allOf: [{name: listings, account: '111111111111', status: [SUCCESS]}]}}\n", None, at(21, 12, 0)).await;
    let trigger: PipelineTrigger = serde_json::from_value(serde_json::json!({
        "batonTriggerId": "t-left-pending",
        "target": {"account": ACCOUNT_C, "region": REGION, "name": "pipeline-y",
                   "stateMachineArn": "arn:aws:states:eu-west-1:333333333333:stateMachine:pipeline-y"},
        "consumed": [], "reason": "listings SUCCEEDED", "firedAt": at(22, 6, 0).0
    }))
    .unwrap();
    // Claimed; the send failed past Lambda's retries.
    world
        .ledger
        .claim(&trigger, None, at(22, 5, 59), &baton_testbed::ended_lease())
        .await
        .unwrap();
    let dog = Watchdog::new(&world);
    assert!(
        dog.run(&world, at(22, 6, 2)).await.resent.is_empty(),
        "within the grace"
    );
    assert_eq!(
        dog.run(&world, at(22, 6, 4)).await.resent,
        ["t-left-pending"]
    );
    let received = bus_c.received().await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["detail"]["batonTriggerId"], "t-left-pending");
    assert!(world
        .ledger
        .cursor(&y, None)
        .await
        .unwrap()
        .unwrap()
        .pending
        .is_none());
    assert!(dog.run(&world, at(22, 6, 10)).await.resent.is_empty());
    assert!(bus_c.received().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_run_past_its_max_duration_is_found_on_the_running_index() {
    let world = World::new("watchdog-running").await;
    let x = pipeline(ACCOUNT_C, "pipeline-x");
    let yaml = "deadlines: {maxDuration: 2h, timezone: Europe/Berlin}\nnotifications: {targets: [{channel: SLACK, addresses: [rent-journey]}]}\n";
    world.register(&x, yaml, None, at(21, 12, 0)).await;
    let dog = Watchdog::new(&world);
    dog.run(&world, at(22, 5, 0)).await;
    world
        .write(&status_event(
            &x,
            "long",
            RunStatus::Running,
            at(22, 5, 1),
            None,
        ))
        .await
        .unwrap();
    world
        .write(&status_event(
            &x,
            "short",
            RunStatus::Running,
            at(22, 5, 2),
            None,
        ))
        .await
        .unwrap();
    world
        .write(&status_event(
            &x,
            "short",
            RunStatus::Succeeded,
            at(22, 5, 2),
            Some(at(22, 5, 30)),
        ))
        .await
        .unwrap();
    dog.run(&world, at(22, 5, 3)).await;
    world.published().await;
    assert!(dog.run(&world, at(22, 7, 0)).await.raised.is_empty());
    let watched = dog.run(&world, at(22, 7, 1)).await;
    assert_eq!(
        watched.raised,
        ["333333333333:eu-west-1:pipeline-x#2026-11-22#tooLong"]
    );
    let raised = alerts(&world.published().await);
    assert_eq!(raised.len(), 1);
    assert_eq!(
        raised[0]["alert"]["executionArn"],
        execution_arn(&x, "long")
    );
    world
        .write(&status_event(
            &x,
            "long",
            RunStatus::Succeeded,
            at(22, 5, 1),
            Some(at(22, 7, 31)),
        ))
        .await
        .unwrap();
    assert_eq!(dog.run(&world, at(22, 7, 35)).await.resolved.len(), 1);
    assert!(dog.run(&world, at(22, 8, 0)).await.raised.is_empty());
}

#[tokio::test]
async fn a_final_status_eventbridge_never_delivered_is_recovered_through_the_member_role() {
    let world = World::new("watchdog-reconcile").await;
    let member = MemberAccount::enter(Moto::shared(), ACCOUNT_C)
        .await
        .unwrap();
    let name = unique("nightly");
    let state_machine = member.create_pipeline(&name).await.unwrap();
    let nightly = pipeline(ACCOUNT_C, &name);
    world
        .register(
            &nightly,
            "notifications: {targets: [{channel: SLACK, addresses: [data-alerts]}]}\n",
            None,
            at(21, 12, 0),
        )
        .await;
    let execution = member
        .sfn
        .start_execution()
        .state_machine_arn(&state_machine)
        .name("n-1")
        .input("{}")
        .send()
        .await
        .unwrap()
        .execution_arn;
    let started = Timestamp(
        member
            .sfn
            .describe_execution()
            .execution_arn(&execution)
            .send()
            .await
            .unwrap()
            .start_date
            .to_millis()
            .unwrap(),
    );
    // RUNNING reaches baton; the execution then stops, and that event is lost.
    world
        .write(&status_event(
            &nightly,
            "n-1",
            RunStatus::Running,
            started,
            None,
        ))
        .await
        .unwrap();
    world.published().await;
    member.stop(&execution).await.unwrap();
    let dog = Watchdog::new(&world);
    dog.run(&world, started.plus(Span::MINUTE)).await;
    assert!(dog
        .run(&world, started.plus(Span::hours(23)))
        .await
        .recovered
        .is_empty());
    // A day after its start the log still says RUNNING: Step Functions is asked through the
    // read-only role in account C, and the ABORTED it reports is recorded as recovered.
    let watched = dog.run(&world, started.plus(Span::hours(24))).await;
    assert_eq!(watched.recovered, [format!("{execution} ABORTED")]);
    let latest = world.run_log.latest(&execution).await.unwrap().unwrap();
    assert_eq!(latest.status, RunStatus::Aborted);
    let published = world.published().await;
    let events: Vec<Value> = published.iter().map(run_event).collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["execution"]["status"], "ABORTED");
    assert_eq!(events[0]["recovered"], true);
    // The run's story in Slack says how baton learned it.
    let (notifier, slack) = notifier(&world).await;
    tell_slack(&notifier, &published).await;
    let posted = slack.messages("data-alerts");
    assert_eq!(posted.len(), 1);
    assert!(
        posted[0].text.contains("recovered by baton's watchdog"),
        "{}",
        posted[0].text
    );
    // Recorded once: nothing is looked up again.
    assert!(dog
        .run(&world, started.plus(Span::hours(48)))
        .await
        .recovered
        .is_empty());
}
