//! The trigger path's writes under faults and races, through the real adapters against the
//! emulator: each test guards one fix of "Exactly once and never stuck under faults" and fails
//! without it. Faults are injected between trigger-manager and DynamoDB by the test bed's fault
//! proxy; every test checks that its fault fired.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use baton_core::definition::PipelineDefinition;
use baton_core::ports::{
    ChildEdge, Lease, Ledger, Registry, RegistryWrite, RunLog, SendLease, StoreResult, Versioned,
};
use baton_core::registration::Registration;
use baton_core::registration::{register, unregister, Refusal};
use baton_core::trigger::Invocation;
use baton_core::{PipelineId, Run, RunStatus, Timestamp, TriggerId};
use baton_testbed::fault_proxy::{Fault, Rule, Times};
use baton_testbed::BusWatch;
use common::*;
use tokio::sync::Barrier;

const BOTH_SUCCEED: &str = "trigger:\n  executions:\n    allOf:\n      - {name: listings, account: '111111111111', status: [SUCCESS]}\n      - {name: searches, account: '222222222222', status: [SUCCESS]}\n";

async fn bus_c(world: &World) -> BusWatch {
    BusWatch::on_bus(
        &world.central.config,
        ACCOUNT_C,
        &baton_testbed::unique("pipelines-c"),
        "baton",
    )
    .await
    .unwrap()
}

/// listings and searches succeed on `day`, through run-log-writer.
async fn both_succeed(world: &World, day: u32) {
    let (listings, searches) = (
        pipeline(ACCOUNT_A, "listings"),
        pipeline(ACCOUNT_B, "searches"),
    );
    for (p, name, minute) in [(&listings, "l", 0), (&searches, "s", 30)] {
        let event = status_event(
            p,
            &format!("{name}-{day}"),
            RunStatus::Succeeded,
            at(day, 3, minute),
            Some(at(day, 4, minute)),
        );
        world.write(&event).await.unwrap();
    }
}

fn trigger_ids(bus_events: &[serde_json::Value]) -> Vec<String> {
    triggers(bus_events)
        .iter()
        .map(|t| t["batonTriggerId"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_failed_sent_mark_leaves_the_child_able_to_fire_again() {
    let (world, proxy) = World::behind_faults("fault-mark-sent").await;
    let bus = bus_c(&world).await;
    let x = pipeline(ACCOUNT_C, "pipeline-x");
    world
        .register(&x, BOTH_SUCCEED, Some(&bus.bus_arn), at(21, 12, 0))
        .await;

    // The trigger reaches the bus; recording that it was sent fails until cleared.
    let rule = proxy.inject(Rule::new(
        "dynamodb:UpdateItem",
        &["REMOVE pendingTriggerId"],
        Fault::Before,
        Times::UntilCleared,
    ));
    both_succeed(&world, 22).await;
    let day22 = world.published().await;
    let mut failed = 0;
    for n in &day22 {
        failed += usize::from(
            world
                .manage(std::slice::from_ref(n), at(22, 5, 0))
                .await
                .is_err(),
        );
    }
    assert!(proxy.fired(rule) > 0, "the injected fault never fired");
    assert!(failed > 0);
    proxy.clear(rule);

    // Seven more days: the child fires every day, the first re-send keeps its id.
    for day in 23..30 {
        both_succeed(&world, day).await;
        world.pump(at(day, 5, 0)).await;
    }
    let ids = trigger_ids(&bus.received().await.unwrap());
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 8, "one trigger per day: {ids:?}");
    let state = world.ledger.cursor(&x, None).await.unwrap().unwrap();
    assert!(state.pending.is_none(), "nothing left pending");
}

#[tokio::test]
async fn a_lost_answer_to_the_send_lease_does_not_delay_the_trigger() {
    let (world, proxy) = World::behind_faults("fault-lease").await;
    let bus = bus_c(&world).await;
    let x = pipeline(ACCOUNT_C, "pipeline-x");
    world
        .register(&x, BOTH_SUCCEED, Some(&bus.bus_arn), at(21, 12, 0))
        .await;
    // Day 22's trigger is sent, but recording that fails: it stays pending. (A fresh claim takes
    // the send lease in its own transaction; only a pending trigger's delivery takes it apart.)
    let mark = proxy.inject(Rule::new(
        "dynamodb:UpdateItem",
        &["REMOVE pendingTriggerId"],
        Fault::Before,
        Times::UntilCleared,
    ));
    both_succeed(&world, 22).await;
    for n in &world.published().await {
        let _ = world.manage(std::slice::from_ref(n), at(22, 5, 0)).await;
    }
    assert!(proxy.fired(mark) > 0, "the sent mark never failed");
    proxy.clear(mark);
    // Day 23: the pending trigger is re-sent first. Its lease is taken, the answer lost; the SDK
    // takes it again (the same holder may), and the trigger goes out with its id.
    let rule = proxy.inject(Rule::new(
        "dynamodb:UpdateItem",
        &["SET leaseHolder"],
        Fault::After,
        Times::Exactly(1),
    ));
    both_succeed(&world, 23).await;
    world.pump(at(23, 5, 0)).await;
    assert_eq!(proxy.fired(rule), 1);
    let mut ids = trigger_ids(&bus.received().await.unwrap());
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        2,
        "day 22's trigger re-sent, day 23's sent: {ids:?}"
    );
    let state = world.ledger.cursor(&x, None).await.unwrap().unwrap();
    assert!(state.pending.is_none(), "nothing left pending");
}

#[tokio::test]
async fn a_lost_answer_to_the_claim_sends_the_trigger_once() {
    let (world, proxy) = World::behind_faults("fault-claim").await;
    let bus = bus_c(&world).await;
    let x = pipeline(ACCOUNT_C, "pipeline-x");
    world
        .register(&x, BOTH_SUCCEED, Some(&bus.bus_arn), at(21, 12, 0))
        .await;
    // The claim transaction (claim item and cursor) is applied, its answer lost.
    let rule = proxy.inject(Rule::new(
        "dynamodb:TransactWriteItems",
        &["pendingTriggerId"],
        Fault::After,
        Times::Exactly(1),
    ));
    both_succeed(&world, 22).await;
    world.pump(at(22, 5, 0)).await;
    assert_eq!(proxy.fired(rule), 1);
    assert_eq!(trigger_ids(&bus.received().await.unwrap()).len(), 1);
    assert!(world
        .ledger
        .cursor(&x, None)
        .await
        .unwrap()
        .unwrap()
        .pending
        .is_none());
}

#[tokio::test]
async fn a_claim_cancelled_for_another_reason_than_a_condition_says_so() {
    let (world, proxy) = World::behind_faults("fault-cancel").await;
    let bus = bus_c(&world).await;
    let x = pipeline(ACCOUNT_C, "pipeline-x");
    world
        .register(&x, BOTH_SUCCEED, Some(&bus.bus_arn), at(21, 12, 0))
        .await;
    let rule = proxy.inject(Rule::new(
        "dynamodb:TransactWriteItems",
        &["pendingTriggerId"],
        Fault::Answer {
            status: 400,
            body: r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","message":"Transaction cancelled, please refer cancellation reasons for specific reasons [None, ThrottlingError]","CancellationReasons":[{"Code":"None"},{"Code":"ThrottlingError","Message":"Throughput exceeds the current capacity for one or more global secondary indexes."}]}"#,
        },
        Times::UntilCleared,
    ));
    both_succeed(&world, 22).await;
    let notifications = world.published().await;
    let mut errors = Vec::new();
    for n in &notifications {
        if let Err(e) = world.manage(std::slice::from_ref(n), at(22, 5, 0)).await {
            errors.push(e.to_string());
        }
    }
    assert!(proxy.fired(rule) > 0, "the injected fault never fired");
    assert!(!errors.is_empty());
    for e in &errors {
        assert!(e.contains("ThrottlingError"), "{e}");
        assert!(!e.contains("lost"), "not a lost race: {e}");
    }
    // Lambda's retry after the throttling fires once.
    proxy.clear(rule);
    for n in &notifications {
        world
            .manage(std::slice::from_ref(n), at(22, 6, 0))
            .await
            .unwrap();
    }
    assert_eq!(trigger_ids(&bus.received().await.unwrap()).len(), 1);
}

#[tokio::test]
async fn a_claim_cancelled_as_invalid_is_an_error_that_retrying_cannot_fix() {
    let (world, proxy) = World::behind_faults("fault-cancel-invalid").await;
    let bus = bus_c(&world).await;
    let x = pipeline(ACCOUNT_C, "pipeline-x");
    world
        .register(&x, BOTH_SUCCEED, Some(&bus.bus_arn), at(21, 12, 0))
        .await;
    let rule = proxy.inject(Rule::new(
        "dynamodb:TransactWriteItems",
        &["pendingTriggerId"],
        Fault::Answer {
            status: 400,
            body: r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","message":"Transaction cancelled, please refer cancellation reasons for specific reasons [ValidationError, None]","CancellationReasons":[{"Code":"ValidationError","Message":"Item size has exceeded the maximum allowed size"},{"Code":"None"}]}"#,
        },
        Times::UntilCleared,
    ));
    both_succeed(&world, 22).await;
    let mut failures = Vec::new();
    for n in &world.published().await {
        if let Err(e) = world.manage(std::slice::from_ref(n), at(22, 5, 0)).await {
            failures.extend(e.failures);
        }
    }
    assert!(proxy.fired(rule) > 0, "the injected fault never fired");
    assert!(!failures.is_empty());
    for f in &failures {
        let message = f.to_string();
        assert!(
            message.contains("ValidationError: Item size has exceeded"),
            "{message}"
        );
        assert!(!f.is_retryable(), "retrying cannot fix it: {message}");
    }
    assert!(triggers(&bus.received().await.unwrap()).is_empty());
}

#[tokio::test]
async fn a_qualifying_run_is_seen_behind_any_number_of_later_failures() {
    let world = World::new("behind-failures").await;
    let bus = bus_c(&world).await;
    let x = pipeline(ACCOUNT_C, "pipeline-x");
    world
        .register(&x, BOTH_SUCCEED, Some(&bus.bus_arn), at(21, 12, 0))
        .await;
    let listings = pipeline(ACCOUNT_A, "listings");
    let run = |name: &str, status, start: Timestamp, stop: Option<Timestamp>| Run {
        pipeline: listings.clone(),
        execution_arn: execution_arn(&listings, name),
        execution_name: name.to_owned(),
        status,
        started_at: start,
        stopped_at: stop,
        error: status.is_failure().then(|| "States.TaskFailed".to_owned()),
        cause: status.is_failure().then(|| "x".repeat(32 * 1024)),
        trigger_id: None,
        run_key: None,
    };
    world
        .run_log
        .record(&run(
            "l-ok",
            RunStatus::Succeeded,
            at(22, 1, 0),
            Some(at(22, 2, 0)),
        ))
        .await
        .unwrap();
    // Then 60 runs that start and fail: 120 newer items of other statuses, 32 KB causes.
    for i in 0..60 {
        let start = Timestamp(at(22, 3, 0).0 + i * 60_000);
        let stop = Some(Timestamp(start.0 + 30_000));
        let name = format!("l-broken-{i}");
        world
            .run_log
            .record(&run(&name, RunStatus::Running, start, None))
            .await
            .unwrap();
        world
            .run_log
            .record(&run(&name, RunStatus::Failed, start, stop))
            .await
            .unwrap();
    }
    let searches = pipeline(ACCOUNT_B, "searches");
    world
        .write(&status_event(
            &searches,
            "s-22",
            RunStatus::Succeeded,
            at(22, 5, 0),
            Some(at(22, 5, 30)),
        ))
        .await
        .unwrap();
    world.pump(at(22, 6, 0)).await;
    let received = triggers(&bus.received().await.unwrap());
    assert_eq!(received.len(), 1, "pipeline-x fires on l-ok and s-22");
    assert!(received[0]["consumed"].to_string().contains("l-ok"));
}

#[tokio::test]
async fn a_trigger_added_by_an_update_does_not_fire_on_runs_from_before() {
    let world = World::new("floor-update").await;
    let bus = bus_c(&world).await;
    let x = pipeline(ACCOUNT_C, "pipeline-x");
    let notifications_only =
        "notifications: {type: FAILURES, targets: [{channel: SLACK, addresses: [x-alerts]}]}";
    world
        .register(&x, notifications_only, Some(&bus.bus_arn), at(1, 12, 0))
        .await;
    let listings = pipeline(ACCOUNT_A, "listings");
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
    world.pump(at(22, 4, 5)).await;
    // The Update at 10:00 gives pipeline-x its trigger; searches succeeds after it.
    world
        .register(&x, BOTH_SUCCEED, Some(&bus.bus_arn), at(22, 10, 0))
        .await;
    let searches = pipeline(ACCOUNT_B, "searches");
    world
        .write(&status_event(
            &searches,
            "s-22",
            RunStatus::Succeeded,
            at(22, 11, 0),
            Some(at(22, 12, 0)),
        ))
        .await
        .unwrap();
    world.pump(at(22, 12, 5)).await;
    assert!(
        triggers(&bus.received().await.unwrap()).is_empty(),
        "fired on a listings run from before its trigger existed"
    );
    // listings' next run counts.
    world
        .write(&status_event(
            &listings,
            "l-23",
            RunStatus::Succeeded,
            at(22, 13, 0),
            Some(at(22, 14, 0)),
        ))
        .await
        .unwrap();
    world.pump(at(22, 14, 5)).await;
    assert_eq!(triggers(&bus.received().await.unwrap()).len(), 1);
}

/// The emulator's registry, holding every write until both racing registrations reach it: both
/// have read the graph and checked it for cycles before either writes.
struct RacingRegistry {
    inner: baton_adapters::DynamoRegistry,
    both_checked: Arc<Barrier>,
}

impl Registry for RacingRegistry {
    async fn get(&self, p: &PipelineId) -> StoreResult<Option<Registration>> {
        self.inner.get(p).await
    }
    async fn get_many(&self, p: &[PipelineId]) -> StoreResult<BTreeMap<PipelineId, Registration>> {
        self.inner.get_many(p).await
    }
    async fn children(&self, p: &PipelineId) -> StoreResult<Vec<ChildEdge>> {
        self.inner.children(p).await
    }
    async fn read(&self, p: &PipelineId) -> StoreResult<Option<Versioned>> {
        self.inner.read(p).await
    }
    async fn graph_version(&self) -> StoreResult<u64> {
        self.inner.graph_version().await
    }
    async fn write(&self, write: &RegistryWrite) -> StoreResult<bool> {
        self.both_checked.wait().await;
        self.inner.write(write).await
    }
    async fn remove(&self, stored: &Versioned) -> StoreResult<bool> {
        self.inner.remove(stored).await
    }
}

#[tokio::test]
async fn racing_registrations_never_close_a_cycle() {
    let world = World::new("cycle-race").await;
    let (x, y) = (pipeline(ACCOUNT_A, "x"), pipeline(ACCOUNT_B, "y"));
    let on = |child: &PipelineId, parent: &PipelineId| {
        Registration {
        pipeline: child.clone(),
        owner_stack_id: format!("arn:aws:cloudformation:{REGION}:{}:stack/{}/1", child.account, child.name),
        definition: PipelineDefinition::from_yaml(&format!(
            "trigger: {{executions: {{allOf: [{{name: {}, account: '{}', status: [SUCCEEDED]}}]}}}}",
            parent.name, parent.account
        ))
        .unwrap(),
        bus_arn: None,
        registered_at: at(22, 1, 0),
        trigger_floor: at(22, 1, 0),
    }
    };
    // The second attempt of the loser does not wait: only the first writes meet at the barrier.
    let barrier = Arc::new(Barrier::new(2));
    let racing = |barrier: Arc<Barrier>| RacingRegistry {
        inner: world.central.registry(),
        both_checked: barrier,
    };
    let (rx, ry) = (racing(barrier.clone()), racing(barrier));
    let (a, b) = (on(&x, &y), on(&y, &x));
    let first_writes =
        async { futures::future::join(register(&rx, &a, 100), register(&ry, &b, 100)).await };
    let (ra, rb) = tokio::time::timeout(std::time::Duration::from_secs(30), first_writes)
        .await
        .unwrap_or_else(|_| {
            panic!("the loser's second write waited at the barrier: it should re-check and refuse")
        });
    let refused: Vec<&Result<_, Refusal>> = [&ra, &rb].into_iter().filter(|r| r.is_err()).collect();
    assert_eq!(refused.len(), 1, "{ra:?} {rb:?}");
    let message = refused[0].as_ref().unwrap_err().to_string();
    assert!(message.contains("dependency cycle"), "{message}");
    assert!(
        message.contains("x (111111111111") && message.contains("y (222222222222"),
        "{message}"
    );
}

/// pipeline-x registered with a bus that does not exist yet, fired on day 22: its trigger stays
/// pending.
async fn pending_for_a_missing_bus(world: &World) -> (PipelineId, baton_core::PipelineTrigger) {
    let x = pipeline(ACCOUNT_C, "pipeline-x");
    let missing = format!(
        "arn:aws:events:{REGION}:{ACCOUNT_C}:event-bus/{}",
        baton_testbed::unique("none")
    );
    world
        .register(&x, BOTH_SUCCEED, Some(&missing), at(21, 12, 0))
        .await;
    both_succeed(world, 22).await;
    for n in &world.published().await {
        let _ = world.manage(std::slice::from_ref(n), at(22, 5, 0)).await;
    }
    let state = world.ledger.cursor(&x, None).await.unwrap().unwrap();
    let pending = state
        .pending
        .expect("the trigger stays pending while the bus is missing");
    (x, pending)
}

#[tokio::test]
async fn a_pipeline_registered_again_is_never_sent_the_old_pending_trigger() {
    let world = World::new("delete-pending").await;
    let (x, old) = pending_for_a_missing_bus(&world).await;

    // The stack is deleted and created again, now with its bus.
    let stack = format!("arn:aws:cloudformation:{REGION}:{ACCOUNT_C}:stack/pipeline-x/1");
    unregister(&world.registry, &world.ledger, &x, &stack)
        .await
        .unwrap();
    assert!(
        world
            .ledger
            .cursor(&x, None)
            .await
            .unwrap()
            .unwrap()
            .pending
            .is_none(),
        "the ledger forgot its pending trigger"
    );
    let bus = bus_c(&world).await;
    world
        .register(&x, BOTH_SUCCEED, Some(&bus.bus_arn), at(22, 8, 0))
        .await;
    both_succeed(&world, 23).await;
    world.pump(at(23, 5, 0)).await;
    let ids = trigger_ids(&bus.received().await.unwrap());
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_ne!(ids[0], old.trigger_id.0);
}

#[tokio::test]
async fn a_pending_trigger_of_an_earlier_registration_is_dropped_not_sent() {
    // As above, but the deleting function died before forgetting the ledger.
    let world = World::new("stale-pending").await;
    let (x, old) = pending_for_a_missing_bus(&world).await;
    let stored = world.registry.read(&x).await.unwrap().unwrap();
    assert!(world.registry.remove(&stored).await.unwrap());
    let bus = bus_c(&world).await;
    world
        .register(&x, BOTH_SUCCEED, Some(&bus.bus_arn), at(22, 8, 0))
        .await;
    both_succeed(&world, 23).await;
    world.pump(at(23, 5, 0)).await;
    let ids = trigger_ids(&bus.received().await.unwrap());
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_ne!(ids[0], old.trigger_id.0);
}

#[tokio::test]
async fn a_send_lease_outlasts_its_invocation_however_long_ago_it_read_the_clock() {
    let world = World::new("lease").await;
    let x = pipeline(ACCOUNT_C, "pipeline-x");
    world.register(&x, BOTH_SUCCEED, None, at(21, 12, 0)).await;
    // A claimed, pending trigger.
    let ledger = &world.ledger;
    let trigger = baton_core::PipelineTrigger {
        trigger_id: TriggerId("t-lease".into()),
        target: baton_core::events::PipelineRef::from(&x),
        consumed: Vec::new(),
        reason: "test".into(),
        fired_at: at(22, 5, 0),
        environment: None,
        run_key: None,
    };
    ledger
        .claim(&trigger, None, at(22, 4, 0), &baton_testbed::ended_lease())
        .await
        .unwrap();
    // An invocation that read its clock at 05:00 and may run until 05:02 takes the lease...
    let long = Invocation::new("long", at(22, 5, 0), at(22, 5, 2), &world.settings);
    assert!(ledger
        .take_send_lease(&x, None, &trigger.trigger_id, &long.lease, long.now)
        .await
        .unwrap());
    // ...late in its run, another invocation at 05:01:10 must not take it too.
    let other = Lease {
        holder: "other".into(),
        until: at(22, 5, 4),
    };
    let late = Timestamp(at(22, 5, 1).0 + 10_000);
    assert!(!ledger
        .take_send_lease(&x, None, &trigger.trigger_id, &other, late)
        .await
        .unwrap());
    // After the long one's deadline and margin, it can.
    assert!(ledger
        .take_send_lease(&x, None, &trigger.trigger_id, &other, at(22, 5, 3))
        .await
        .unwrap());
}

#[tokio::test]
async fn a_dead_senders_lease_ends_also_for_an_invocation_that_started_before_it_ended() {
    let world = World::new("lease-clock").await;
    let bus = bus_c(&world).await;
    let x = pipeline(ACCOUNT_C, "pipeline-x");
    world
        .register(&x, BOTH_SUCCEED, Some(&bus.bus_arn), at(21, 12, 0))
        .await;
    let trigger = baton_core::PipelineTrigger {
        trigger_id: TriggerId("t-dead-sender".into()),
        target: baton_core::events::PipelineRef::from(&x),
        consumed: Vec::new(),
        reason: "test".into(),
        fired_at: at(22, 5, 0),
        environment: None,
        run_key: None,
    };
    world
        .ledger
        .claim(&trigger, None, at(22, 4, 0), &baton_testbed::ended_lease())
        .await
        .unwrap();
    // A sender took the lease and died: its lease ends 10 s after its 05:02 deadline.
    let dead = Invocation::new("dead", at(22, 5, 0), at(22, 5, 2), &world.settings);
    assert!(world
        .ledger
        .take_send_lease(&x, None, &trigger.trigger_id, &dead.lease, dead.now)
        .await
        .unwrap());
    // An invocation that started at 05:01 reaches the trigger late in its run, at 05:02:30:
    // the dead sender's lease has ended by then, so it sends.
    let late_in_the_run = Timestamp(at(22, 5, 2).0 + 30_000);
    let late = Invocation::new("late", at(22, 5, 1), at(22, 5, 3), &world.settings)
        .with_clock(move || late_in_the_run);
    let delivery = baton_core::trigger::deliver(
        &world.ledger,
        &world.bus,
        &world.events,
        &bus.bus_arn,
        &trigger,
        &late,
        false,
    )
    .await
    .unwrap();
    assert!(matches!(
        delivery,
        baton_core::trigger::Delivery::Sent { .. }
    ));
    assert_eq!(
        trigger_ids(&bus.received().await.unwrap()),
        vec!["t-dead-sender".to_owned()]
    );
    assert!(world
        .ledger
        .cursor(&x, None)
        .await
        .unwrap()
        .unwrap()
        .pending
        .is_none());
}
