//! From Step Functions status changes to pipeline triggers, through the real run-log-writer and
//! trigger-manager handlers against the local AWS emulator.

mod common;

use std::collections::BTreeSet;

use baton_core::ports::{Ledger, RunLog};
use baton_core::trigger::{decide_child, ChildDecision, Stores};
use baton_core::{RunStatus, Timestamp};
use baton_testbed::BusWatch;
use common::*;
use futures::future::join_all;
use serde_json::Value;

const BOTH_SUCCEED: &str = "trigger:\n  executions:\n    allOf:\n      - {name: listings, account: '111111111111', status: [SUCCESS]}\n      - {name: searches, account: '222222222222', status: [SUCCESS]}\n";

/// The Scout24 story's status events: listings (A) and searches (B) run and succeed.
fn story_events() -> Vec<Value> {
    let listings = pipeline(ACCOUNT_A, "listings");
    let searches = pipeline(ACCOUNT_B, "searches");
    vec![
        status_event(&listings, "l-22", RunStatus::Running, at(22, 3, 0), None),
        status_event(&searches, "s-22", RunStatus::Running, at(22, 3, 30), None),
        status_event(
            &listings,
            "l-22",
            RunStatus::Succeeded,
            at(22, 3, 0),
            Some(at(22, 4, 0)),
        ),
        status_event(
            &searches,
            "s-22",
            RunStatus::Succeeded,
            at(22, 3, 30),
            Some(at(22, 5, 0)),
        ),
    ]
}

/// Pipeline buses of the three member accounts (distinct names: the emulator resolves a bus ARN
/// by name in its own account), each watched by a rule forwarding to a queue.
async fn member_buses(world: &World) -> [BusWatch; 3] {
    let config = &world.central.config;
    [
        BusWatch::create(config, ACCOUNT_A, "pipelines-a", "baton")
            .await
            .unwrap(),
        BusWatch::create(config, ACCOUNT_B, "pipelines-b", "baton")
            .await
            .unwrap(),
        BusWatch::create(config, ACCOUNT_C, "pipelines-c", "baton")
            .await
            .unwrap(),
    ]
}

#[tokio::test]
async fn scout24_pipeline_x_gets_exactly_one_trigger_on_account_c_bus() {
    let mut world = World::new("scout24").await;
    let [bus_a, bus_b, bus_c] = member_buses(&world).await;
    // pipeline-x names no bus: its triggers go to the default bus name in its own account.
    world.settings.default_bus_name = bus_c.bus_name.clone();
    let x = pipeline(ACCOUNT_C, "pipeline-x");
    world.register(&x, BOTH_SUCCEED, None, at(21, 12, 0)).await;

    for event in story_events() {
        let written = world.write(&event).await.unwrap();
        assert!(written.announced);
    }
    let notifications = world.pump(at(22, 6, 0)).await;

    let received = triggers(&bus_c.received().await.unwrap());
    assert_eq!(received.len(), 1, "{received:#?}");
    let trigger = &received[0];
    assert_eq!(trigger["target"]["name"], "pipeline-x");
    assert_eq!(trigger["target"]["account"], ACCOUNT_C);
    // The registered state machine, which the member account's pipeline-starter starts.
    assert_eq!(
        trigger["target"]["stateMachineArn"],
        "arn:aws:states:eu-west-1:333333333333:stateMachine:pipeline-x"
    );
    let consumed: BTreeSet<&str> = trigger["consumed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["executionArn"].as_str().unwrap())
        .collect();
    assert_eq!(
        consumed,
        BTreeSet::from([
            execution_arn(&pipeline(ACCOUNT_A, "listings"), "l-22").as_str(),
            execution_arn(&pipeline(ACCOUNT_B, "searches"), "s-22").as_str(),
        ])
    );
    assert!(bus_a.received().await.unwrap().is_empty());
    assert!(bus_b.received().await.unwrap().is_empty());

    // Slack hears about it once, and the four status events were announced once each.
    let notices = trigger_notices(&notifications);
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0]["triggerId"], trigger["batonTriggerId"]);
    assert_eq!(notifications.len(), 5);

    // pipeline-x's execution, started by the trigger, is logged with the trigger id.
    let mut started = status_event(&x, "x-22", RunStatus::Running, at(22, 6, 1), None);
    started["detail"]["input"] = trigger.to_string().into();
    world.write(&started).await.unwrap();
    let run = world
        .run_log
        .latest(&execution_arn(&x, "x-22"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        Some(trigger["batonTriggerId"].as_str().unwrap()),
        run.trigger_id.as_deref()
    );
    let announced = world.published().await;
    assert_eq!(
        run_event(&announced[0])["triggerId"],
        trigger["batonTriggerId"]
    );
}

#[tokio::test]
async fn every_event_delivered_three_times_shuffled_gives_the_same_log_and_one_trigger() {
    let world = World::new("redelivery").await;
    let [_, _, bus_c] = member_buses(&world).await;
    let x = pipeline(ACCOUNT_C, "pipeline-x");
    world
        .register(&x, BOTH_SUCCEED, Some(&bus_c.bus_arn), at(21, 12, 0))
        .await;

    let mut deliveries: Vec<Value> = story_events()
        .into_iter()
        .flat_map(|e| [e.clone(), e.clone(), e])
        .collect();
    shuffle(&mut deliveries, 7);
    for event in &deliveries {
        world.write(event).await.unwrap();
    }
    let mut notifications = world.published().await;
    // Each (execution, status) announced once, whatever the repeats.
    assert_eq!(notifications.len(), 4);
    notifications = notifications
        .iter()
        .flat_map(|n| [n.clone(), n.clone(), n.clone()])
        .collect();
    shuffle(&mut notifications, 11);
    for n in &notifications {
        world
            .manage(std::slice::from_ref(n), at(22, 6, 0))
            .await
            .unwrap();
    }

    assert_eq!(triggers(&bus_c.received().await.unwrap()).len(), 1);
    assert_eq!(trigger_notices(&world.published().await).len(), 1);
    // The run log is what one delivery in order would have left.
    let listings = pipeline(ACCOUNT_A, "listings");
    let runs = world
        .run_log
        .runs_since(
            &listings,
            &baton_core::RunStatus::ALL.into_iter().collect(),
            Timestamp(0),
            10,
        )
        .await
        .unwrap();
    let statuses: Vec<RunStatus> = runs.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![RunStatus::Succeeded, RunStatus::Running]);
    let latest = world
        .run_log
        .latest(&execution_arn(&listings, "l-22"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.status, RunStatus::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_trigger_managers_fire_once() {
    let world = World::new("race").await;
    let [_, _, bus_c] = member_buses(&world).await;
    let x = pipeline(ACCOUNT_C, "pipeline-x");
    world
        .register(&x, BOTH_SUCCEED, Some(&bus_c.bus_arn), at(21, 12, 0))
        .await;
    // Both parents succeed before trigger-manager hears of either.
    for event in story_events().into_iter().skip(2) {
        world.write(&event).await.unwrap();
    }
    let notifications = world.published().await;
    assert_eq!(notifications.len(), 2);

    let invocations = (0..16).map(|i| {
        let n = notifications[i % 2].clone();
        let world = &world;
        async move { world.manage(&[n], at(22, 6, 0)).await }
    });
    let results = join_all(invocations).await;
    let mut sent = Vec::new();
    for result in results {
        sent.extend(result.unwrap().sent);
    }
    let received = triggers(&bus_c.received().await.unwrap());
    assert_eq!(received.len(), 1, "{received:#?}");
    assert_eq!(sent, vec![received[0]["batonTriggerId"].as_str().unwrap()]);
    assert_eq!(trigger_notices(&world.published().await).len(), 1);
}

#[tokio::test]
async fn a_fixed_rerun_of_a_failed_parent_fires_the_child_once() {
    let world = World::new("rerun").await;
    let [_, _, bus_c] = member_buses(&world).await;
    let x = pipeline(ACCOUNT_C, "pipeline-x");
    world
        .register(&x, BOTH_SUCCEED, Some(&bus_c.bus_arn), at(21, 12, 0))
        .await;
    let listings = pipeline(ACCOUNT_A, "listings");
    let searches = pipeline(ACCOUNT_B, "searches");
    for event in [
        status_event(
            &listings,
            "l-22",
            RunStatus::Succeeded,
            at(22, 3, 0),
            Some(at(22, 4, 0)),
        ),
        status_event(
            &searches,
            "s-22",
            RunStatus::Failed,
            at(22, 3, 30),
            Some(at(22, 4, 30)),
        ),
    ] {
        world.write(&event).await.unwrap();
    }
    world.pump(at(22, 5, 0)).await;
    assert!(
        bus_c.received().await.unwrap().is_empty(),
        "fired on a failure"
    );

    // The searches team fixes the bug and re-runs; nobody touches pipeline-x.
    let rerun = status_event(
        &searches,
        "s-22-rerun",
        RunStatus::Succeeded,
        at(22, 6, 0),
        Some(at(22, 7, 0)),
    );
    world.write(&rerun).await.unwrap();
    world.pump(at(22, 7, 5)).await;
    let received = triggers(&bus_c.received().await.unwrap());
    assert_eq!(received.len(), 1);
    let consumed: Vec<&str> = received[0]["consumed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["executionArn"].as_str().unwrap())
        .collect();
    assert!(consumed.contains(&execution_arn(&searches, "s-22-rerun").as_str()));
}

#[tokio::test]
async fn a_parent_run_older_than_within_does_not_fire_and_the_explanation_says_so() {
    let world = World::new("stale").await;
    let [_, _, bus_c] = member_buses(&world).await;
    let x = pipeline(ACCOUNT_C, "pipeline-x");
    let yaml = format!("{BOTH_SUCCEED}    within: 20h\n");
    world
        .register(&x, &yaml, Some(&bus_c.bus_arn), at(20, 0, 0))
        .await;
    let listings = pipeline(ACCOUNT_A, "listings");
    let searches = pipeline(ACCOUNT_B, "searches");
    // searches succeeded 30 hours before listings.
    world
        .write(&status_event(
            &searches,
            "s-21",
            RunStatus::Succeeded,
            at(21, 5, 0),
            Some(at(21, 6, 0)),
        ))
        .await
        .unwrap();
    world
        .write(&status_event(
            &listings,
            "l-22",
            RunStatus::Succeeded,
            at(22, 11, 0),
            Some(at(22, 12, 0)),
        ))
        .await
        .unwrap();
    let now = at(22, 12, 5);
    world.pump(now).await;
    assert!(bus_c.received().await.unwrap().is_empty());

    let decision = decide_child(
        Stores {
            run_log: &world.run_log,
            registry: &world.registry,
            ledger: &world.ledger,
        },
        &x,
        None,
        now,
        &baton_testbed::ended_lease(),
        &world.settings,
        None,
    )
    .await
    .unwrap();
    let ChildDecision::Waiting { evaluation } = decision else {
        panic!("expected a wait, got {decision:?}");
    };
    let text = evaluation.render();
    assert!(text.contains("more than within 20h"), "{text}");
}

#[tokio::test]
async fn a_fallback_child_fires_on_failed_and_the_success_child_does_not() {
    let world = World::new("fallback").await;
    let [_, _, bus_c] = member_buses(&world).await;
    let cleanup = pipeline(ACCOUNT_C, "listings-cleanup");
    let x = pipeline(ACCOUNT_C, "pipeline-x");
    world
        .register(
            &cleanup,
            "trigger: {executions: {allOf: [{name: listings, account: '111111111111', status: [FAILED, TIMED_OUT]}]}}",
            Some(&bus_c.bus_arn),
            at(21, 12, 0),
        )
        .await;
    world
        .register(&x, BOTH_SUCCEED, Some(&bus_c.bus_arn), at(21, 12, 0))
        .await;
    let listings = pipeline(ACCOUNT_A, "listings");
    world
        .write(&status_event(
            &listings,
            "l-22",
            RunStatus::Failed,
            at(22, 3, 0),
            Some(at(22, 4, 0)),
        ))
        .await
        .unwrap();
    world.pump(at(22, 4, 1)).await;
    let received = triggers(&bus_c.received().await.unwrap());
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["target"]["name"], "listings-cleanup");
    assert_eq!(received[0]["consumed"][0]["status"], "FAILED");
}

#[tokio::test]
async fn an_or_condition_fires_on_either_parent_each_time() {
    let world = World::new("or").await;
    let [_, _, bus_c] = member_buses(&world).await;
    let x = pipeline(ACCOUNT_C, "pipeline-x");
    world
        .register(
            &x,
            "trigger:\n  executions:\n    anyOf:\n      - {name: listings, account: '111111111111', status: [SUCCESS]}\n      - {name: searches, account: '222222222222', status: [SUCCESS]}\n",
            Some(&bus_c.bus_arn),
            at(21, 12, 0),
        )
        .await;
    let listings = pipeline(ACCOUNT_A, "listings");
    let searches = pipeline(ACCOUNT_B, "searches");
    world
        .write(&status_event(
            &listings,
            "l-22",
            RunStatus::Succeeded,
            at(22, 3, 0),
            Some(at(22, 4, 0)),
        ))
        .await
        .unwrap();
    world.pump(at(22, 4, 1)).await;
    let first = triggers(&bus_c.received().await.unwrap());
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["consumed"][0]["pipeline"]["name"], "listings");

    world
        .write(&status_event(
            &searches,
            "s-22",
            RunStatus::Succeeded,
            at(22, 3, 30),
            Some(at(22, 5, 0)),
        ))
        .await
        .unwrap();
    world.pump(at(22, 5, 1)).await;
    let second = triggers(&bus_c.received().await.unwrap());
    assert_eq!(second.len(), 1);
    assert_eq!(second[0]["consumed"][0]["pipeline"]["name"], "searches");
    assert_ne!(first[0]["batonTriggerId"], second[0]["batonTriggerId"]);
}

#[tokio::test]
async fn a_failed_send_is_resent_with_the_same_trigger_id_exactly_once() {
    let world = World::new("send-failure").await;
    let x = pipeline(ACCOUNT_C, "pipeline-x");
    // The member account has not deployed its pipeline bus yet.
    let bus_name = baton_testbed::unique("pipelines-c-late");
    let bus_arn = format!("arn:aws:events:{REGION}:{ACCOUNT_C}:event-bus/{bus_name}");
    world
        .register(&x, BOTH_SUCCEED, Some(&bus_arn), at(21, 12, 0))
        .await;
    for event in story_events() {
        world.write(&event).await.unwrap();
    }
    let notifications = world.published().await;
    let mut failed = 0;
    for n in &notifications {
        if let Err(e) = world.manage(std::slice::from_ref(n), at(22, 6, 0)).await {
            assert!(e.to_string().contains(&bus_arn), "{e}");
            failed += 1;
        }
    }
    // The event that fires the child fails, and so does every later one while the trigger is
    // pending (each tries to re-send it).
    assert!(failed >= 1);
    let pending = world
        .ledger
        .cursor(&x, None)
        .await
        .unwrap()
        .unwrap()
        .pending
        .unwrap();

    // The bus appears; SNS redelivers the failed event (and, for good measure, all of them).
    let bus_c = BusWatch::on_bus(&world.central.config, ACCOUNT_C, &bus_name, "baton")
        .await
        .unwrap();
    for n in &notifications {
        world
            .manage(std::slice::from_ref(n), at(22, 6, 10))
            .await
            .unwrap();
    }
    let received = triggers(&bus_c.received().await.unwrap());
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["batonTriggerId"], pending.trigger_id.0.as_str());
    assert!(world
        .ledger
        .cursor(&x, None)
        .await
        .unwrap()
        .unwrap()
        .pending
        .is_none());
    assert_eq!(trigger_notices(&world.published().await).len(), 1);
}

#[tokio::test]
async fn a_parent_with_200_children_costs_requests_linear_in_children_not_history() {
    let world = World::new("fan-out").await;
    let config = &world.central.config;
    let bus = BusWatch::create(config, ACCOUNT_C, "pipelines-fan", "baton")
        .await
        .unwrap();
    let listings = pipeline(ACCOUNT_A, "listings");
    let few = pipeline(ACCOUNT_A, "few-children");
    // listings: 200 children, 150 of them wanting SUCCESS and 50 a failure.
    // few-children: 20 children, 15 wanting SUCCESS.
    for (parent, count) in [(&listings, 200), (&few, 20)] {
        for i in 0..count {
            let status = if i % 4 == 3 { "FAILED" } else { "SUCCESS" };
            let child = pipeline(ACCOUNT_C, &format!("{}-child-{i:03}", parent.name));
            let yaml = format!("trigger: {{executions: {{allOf: [{{name: {}, account: '{ACCOUNT_A}', status: [{status}]}}]}}}}", parent.name);
            world
                .register(&child, &yaml, Some(&bus.bus_arn), at(21, 12, 0))
                .await;
        }
    }
    // Long history of listings before the children were registered.
    for day in 1..=20 {
        world
            .write(&status_event(
                &listings,
                &format!("old-{day}"),
                RunStatus::Succeeded,
                at(day, 1, 0),
                Some(at(day, 2, 0)),
            ))
            .await
            .unwrap();
    }
    world.published().await;

    let requests_for = |event: Value, now: Timestamp| {
        let world = &world;
        async move {
            world.write(&event).await.unwrap();
            let notifications = world.published().await;
            let before = world.trigger_manager_requests.count();
            world.manage(&notifications, now).await.unwrap();
            world.trigger_manager_requests.count() - before
        }
    };
    let few_requests = requests_for(
        status_event(
            &few,
            "f-22",
            RunStatus::Succeeded,
            at(22, 3, 0),
            Some(at(22, 4, 0)),
        ),
        at(22, 4, 1),
    )
    .await;
    let fired_few = triggers(&bus.received().await.unwrap());
    assert_eq!(fired_few.len(), 15);

    let many_requests = requests_for(
        status_event(
            &listings,
            "l-22",
            RunStatus::Succeeded,
            at(22, 3, 0),
            Some(at(22, 4, 0)),
        ),
        at(22, 4, 1),
    )
    .await;
    let fired = triggers(&bus.received().await.unwrap());
    let targets: BTreeSet<&str> = fired
        .iter()
        .map(|t| t["target"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        (fired.len(), targets.len()),
        (150, 150),
        "each eligible child fired once"
    );

    // More history (runs after the cursor included), then the next day's run.
    for hour in 5..15 {
        world
            .write(&status_event(
                &listings,
                &format!("extra-{hour}"),
                RunStatus::Aborted,
                at(22, hour, 0),
                Some(at(22, hour, 30)),
            ))
            .await
            .unwrap();
    }
    world.published().await;
    let later_requests = requests_for(
        status_event(
            &listings,
            "l-23",
            RunStatus::Succeeded,
            at(23, 3, 0),
            Some(at(23, 4, 0)),
        ),
        at(23, 4, 1),
    )
    .await;
    assert_eq!(triggers(&bus.received().await.unwrap()).len(), 150);

    println!(
        "DynamoDB requests per run event: {few_requests} for 20 children (15 fire), {many_requests} for 200 children (150 fire), {later_requests} for 200 children after more history"
    );
    // Linear in children: the same cost per child, whatever their number.
    let per_child_few = few_requests as f64 / 20.0;
    let per_child_many = many_requests as f64 / 200.0;
    assert!(
        (per_child_many - per_child_few).abs() <= 0.1 * per_child_few,
        "{per_child_few} vs {per_child_many} requests per child"
    );
    // Not in history.
    assert_eq!(later_requests, many_requests);
}

#[tokio::test]
async fn spoofed_or_malformed_events_are_rejected_and_nothing_is_written() {
    let world = World::new("spoof").await;
    let listings = pipeline(ACCOUNT_A, "listings");
    let arn = execution_arn(&listings, "l-22");
    for (fixture, expect) in [
        (
            include_str!("../../events/run-log-writer/spoofed-account.json"),
            "999999999999",
        ),
        (
            include_str!("../../events/run-log-writer/mismatched-arn.json"),
            "detail.executionArn",
        ),
        (
            include_str!("../../events/run-log-writer/malformed-no-status.json"),
            "`detail.status` is missing",
        ),
    ] {
        let event: Value = serde_json::from_str(fixture).unwrap();
        let err = world.write(&event).await.unwrap_err();
        assert!(err.to_string().contains(expect), "{err}");
        assert!(!err.is_retryable());
    }
    assert_eq!(world.run_log.latest(&arn).await.unwrap(), None);
    assert!(world
        .run_log
        .runs_since(
            &listings,
            &baton_core::RunStatus::ALL.into_iter().collect(),
            Timestamp(0),
            10
        )
        .await
        .unwrap()
        .is_empty());
    assert!(world.published().await.is_empty());
}
