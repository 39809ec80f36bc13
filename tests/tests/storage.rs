//! The DynamoDB adapters against the local AWS emulator, through the real SDK client.

use std::collections::BTreeSet;

use baton_adapters::DynamoRegistry;
use baton_core::definition::PipelineDefinition;
use baton_core::events::PipelineTrigger;
use baton_core::ports::{ClaimOutcome, CursorSlot, Lease, Ledger, Recorded, Registry, RunLog};
use baton_core::registration::{register, unregister, Refusal};
use baton_core::registration::{Deleted, Registration, Upserted};
use baton_core::slack::ledger::{PostSlot, SlackThreads, SlotClaim, SlotRecord, SlotState};
use baton_core::{evaluate, PipelineId, Run, RunKey, RunStatus, Timestamp};
use baton_testbed::Central;

const REGION: &str = "eu-west-1";

fn pipeline(account: &str, name: &str) -> PipelineId {
    PipelineId::new(account, REGION, name).unwrap()
}

fn at(day: u32, hour: u32) -> Timestamp {
    Timestamp::parse_rfc3339(&format!("2026-11-{day:02}T{hour:02}:00:00Z")).unwrap()
}

fn run(
    p: &PipelineId,
    execution: &str,
    status: RunStatus,
    start: Timestamp,
    stop: Option<Timestamp>,
) -> Run {
    Run {
        pipeline: p.clone(),
        execution_arn: format!(
            "arn:aws:states:{REGION}:{}:execution:{}:{execution}",
            p.account, p.name
        ),
        execution_name: execution.to_owned(),
        status,
        started_at: start,
        stopped_at: stop,
        error: None,
        cause: None,
        trigger_id: None,
        run_key: None,
    }
}

#[tokio::test]
async fn a_repeated_run_write_changes_nothing_and_is_announced_once() {
    let central = Central::shared("idempotent").await;
    let log = central.run_log();
    let listings = pipeline("111111111111", "listings");
    let r = run(
        &listings,
        "l-22",
        RunStatus::Succeeded,
        at(22, 3),
        Some(at(22, 4)),
    );

    assert_eq!(log.record(&r).await.unwrap(), Recorded::New);
    // Not yet confirmed announced: a redelivery must announce it again rather than lose it.
    assert_eq!(
        log.record(&r).await.unwrap(),
        Recorded::Unannounced { run_key: None }
    );
    log.mark_announced(&r).await.unwrap();
    assert_eq!(log.record(&r).await.unwrap(), Recorded::AlreadyAnnounced);
    assert_eq!(log.record(&r).await.unwrap(), Recorded::AlreadyAnnounced);

    let runs = log
        .runs_since(
            &listings,
            &baton_core::RunStatus::ALL.into_iter().collect(),
            at(21, 0),
            10,
        )
        .await
        .unwrap();
    assert_eq!(runs, vec![r.clone()]);
    assert_eq!(log.latest(&r.execution_arn).await.unwrap(), Some(r));
}

#[tokio::test]
async fn a_final_status_wins_over_running_whatever_the_arrival_order() {
    let central = Central::shared("order").await;
    let log = central.run_log();
    let searches = pipeline("222222222222", "searches");
    let running = run(&searches, "s-22", RunStatus::Running, at(22, 5), None);
    let failed = run(
        &searches,
        "s-22",
        RunStatus::Failed,
        at(22, 5),
        Some(at(22, 6)),
    );

    // The final status arrives first, RUNNING late.
    log.record(&failed).await.unwrap();
    log.record(&running).await.unwrap();
    assert_eq!(
        log.latest(&failed.execution_arn).await.unwrap(),
        Some(failed.clone())
    );

    // In order, for another execution.
    let running2 = run(&searches, "s-23", RunStatus::Running, at(23, 5), None);
    let ok2 = run(
        &searches,
        "s-23",
        RunStatus::Succeeded,
        at(23, 5),
        Some(at(23, 6)),
    );
    log.record(&running2).await.unwrap();
    assert_eq!(
        log.latest(&ok2.execution_arn).await.unwrap(),
        Some(running2.clone())
    );
    log.record(&ok2).await.unwrap();
    assert_eq!(
        log.latest(&ok2.execution_arn).await.unwrap(),
        Some(ok2.clone())
    );

    // Both statuses of both runs stay in the log, newest first, bounded, after a time.
    let all = log
        .runs_since(
            &searches,
            &baton_core::RunStatus::ALL.into_iter().collect(),
            at(22, 0),
            10,
        )
        .await
        .unwrap();
    let seen: Vec<(&str, RunStatus)> = all
        .iter()
        .map(|r| (r.execution_name.as_str(), r.status))
        .collect();
    assert_eq!(
        seen,
        [
            ("s-23", RunStatus::Succeeded),
            ("s-23", RunStatus::Running),
            ("s-22", RunStatus::Failed),
            ("s-22", RunStatus::Running)
        ]
    );
    // At most `limit` of each status, and only the statuses asked for.
    let running_only = log
        .runs_since(
            &searches,
            &BTreeSet::from([RunStatus::Running]),
            at(22, 0),
            1,
        )
        .await
        .unwrap();
    assert_eq!(running_only.len(), 1);
    assert_eq!(running_only[0].execution_name, "s-23");
    assert_eq!(running_only[0].status, RunStatus::Running);
    // Strictly later than the bound.
    assert_eq!(
        log.runs_since(
            &searches,
            &baton_core::RunStatus::ALL.into_iter().collect(),
            at(23, 5),
            10
        )
        .await
        .unwrap()
        .len(),
        1
    );
}

fn registration(p: &PipelineId, stack: &str, yaml: &str) -> Registration {
    Registration {
        pipeline: p.clone(),
        owner_stack_id: stack.to_owned(),
        definition: PipelineDefinition::from_yaml(yaml).unwrap(),
        bus_arn: None,
        registered_at: at(21, 12),
        trigger_floor: at(21, 12),
    }
}

async fn upsert(registry: &DynamoRegistry, r: &Registration) -> Result<Upserted, Refusal> {
    register(registry, r, 100).await
}

#[tokio::test]
async fn the_registry_keeps_reverse_edges_and_owners() {
    let central = Central::shared("registry").await;
    let registry = central.registry();
    let x = pipeline("333333333333", "pipeline-x");
    let (listings, searches) = (
        pipeline("111111111111", "listings"),
        pipeline("222222222222", "searches"),
    );
    let stack = "arn:aws:cloudformation:eu-west-1:333333333333:stack/pipeline-x/1";
    let yaml = "trigger:\n  executions:\n    allOf:\n      - {name: listings, account: '111111111111', status: [SUCCESS]}\n      - {name: searches, account: '222222222222', status: [SUCCEEDED, FAILED]}\n";
    assert_eq!(
        upsert(&registry, &registration(&x, stack, yaml))
            .await
            .unwrap(),
        Upserted::Created
    );
    // Same meaning, other formatting: no change.
    let reformatted = "trigger: {executions: {allOf: [{name: listings, account: '111111111111', status: SUCCEEDED}, {name: searches, account: '222222222222', status: [FAILED, SUCCESS]}]}}";
    assert_eq!(
        upsert(&registry, &registration(&x, stack, reformatted))
            .await
            .unwrap(),
        Upserted::Unchanged
    );

    let children = registry.children(&searches).await.unwrap();
    assert_eq!(children.len(), 1);
    assert_eq!(children[0].child, x);
    assert_eq!(
        children[0].statuses,
        BTreeSet::from([RunStatus::Succeeded, RunStatus::Failed])
    );

    // Another stack can neither overwrite nor delete it.
    let other = "arn:aws:cloudformation:eu-west-1:333333333333:stack/intruder/2";
    let ledger = central.ledger();
    assert!(matches!(
        upsert(&registry, &registration(&x, other, yaml)).await,
        Err(Refusal::NotOwner { .. })
    ));
    assert!(matches!(
        unregister(&registry, &ledger, &x, other).await,
        Err(Refusal::NotOwner { .. })
    ));

    // Dropping a parent removes its edge.
    let only_listings = "trigger: {executions: {allOf: [{name: listings, account: '111111111111', status: [SUCCESS]}]}}";
    assert_eq!(
        upsert(&registry, &registration(&x, stack, only_listings))
            .await
            .unwrap(),
        Upserted::Updated
    );
    assert!(registry.children(&searches).await.unwrap().is_empty());
    assert_eq!(registry.children(&listings).await.unwrap().len(), 1);
    assert_eq!(
        registry.get(&x).await.unwrap().unwrap().registered_at,
        at(21, 12)
    );

    assert_eq!(
        unregister(&registry, &ledger, &x, stack).await.unwrap(),
        Deleted::Removed
    );
    assert_eq!(
        unregister(&registry, &ledger, &x, stack).await.unwrap(),
        Deleted::NotFound
    );
    assert!(registry.children(&listings).await.unwrap().is_empty());
    assert!(registry.get(&x).await.unwrap().is_none());
}

fn scout24_firing() -> (PipelineId, PipelineTrigger, Timestamp) {
    let x = pipeline("333333333333", "pipeline-x");
    let def = PipelineDefinition::from_yaml("trigger:\n  executions:\n    allOf:\n      - {name: listings, account: '111111111111', status: [SUCCESS]}\n      - {name: searches, account: '222222222222', status: [SUCCESS]}\n").unwrap();
    let runs = [
        run(
            &pipeline("111111111111", "listings"),
            "l-22",
            RunStatus::Succeeded,
            at(22, 2),
            Some(at(22, 3)),
        ),
        run(
            &pipeline("222222222222", "searches"),
            "s-22",
            RunStatus::Succeeded,
            at(22, 4),
            Some(at(22, 5)),
        ),
    ]
    .map(|r| r.reference());
    let evaluation = evaluate(
        &x,
        def.trigger.as_ref().unwrap(),
        at(21, 12),
        at(22, 5),
        &runs,
    );
    let firing = evaluation.firing().unwrap().clone();
    let trigger = PipelineTrigger::new(&x, &firing, at(22, 5));
    (x, trigger, firing.cursor_after)
}

#[tokio::test]
async fn concurrent_claims_of_the_same_firing_have_exactly_one_winner() {
    let central = Central::shared("claims").await;
    let (x, trigger, after) = scout24_firing();
    let attempts = (0..8).map(|_| {
        let ledger = central.ledger();
        let trigger = trigger.clone();
        tokio::spawn(async move { ledger.claim(&trigger, None, after).await })
    });
    let outcomes: Vec<ClaimOutcome> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == ClaimOutcome::Claimed)
            .count(),
        1,
        "{outcomes:?}"
    );

    let ledger = central.ledger();
    let state = ledger.cursor(&x, None).await.unwrap().unwrap();
    assert_eq!(state.cursor, after);
    assert_eq!(
        state.pending.as_ref().map(|p| &p.trigger_id),
        Some(&trigger.trigger_id)
    );
    // Sent: no longer pending, the cursor stays.
    ledger
        .mark_sent(&x, None, &trigger.trigger_id)
        .await
        .unwrap();
    ledger
        .mark_sent(&x, None, &trigger.trigger_id)
        .await
        .unwrap();
    let state = ledger.cursor(&x, None).await.unwrap().unwrap();
    assert_eq!(
        (state.cursor, state.pending, state.last_trigger_id),
        (after, None, Some(trigger.trigger_id))
    );
}

#[tokio::test]
async fn a_stale_cursor_write_is_refused() {
    let central = Central::shared("cursor").await;
    let ledger = central.ledger();
    let (x, first, after) = scout24_firing();
    assert_eq!(
        ledger.claim(&first, None, after).await.unwrap(),
        ClaimOutcome::Claimed
    );
    ledger.mark_sent(&x, None, &first.trigger_id).await.unwrap();

    // Two evaluations both read the cursor at `after` and decide different firings: one wins,
    // the other's cursor write is stale and refused.
    let mut second = first.clone();
    second.trigger_id = baton_core::TriggerId("second".into());
    let mut third = first.clone();
    third.trigger_id = baton_core::TriggerId("third".into());
    assert_eq!(
        ledger.claim(&second, Some(after), at(23, 5)).await.unwrap(),
        ClaimOutcome::Claimed
    );
    assert_eq!(
        ledger.claim(&third, Some(after), at(23, 6)).await.unwrap(),
        ClaimOutcome::Lost
    );
    // Nor can a new firing be claimed while one is pending, even from the current cursor.
    assert_eq!(
        ledger
            .claim(&third, Some(at(23, 5)), at(23, 6))
            .await
            .unwrap(),
        ClaimOutcome::Lost
    );
    let state = ledger.cursor(&x, None).await.unwrap().unwrap();
    assert_eq!(state.cursor, at(23, 5));
    assert_eq!(
        state.pending.map(|p| p.trigger_id.0),
        Some("second".to_owned())
    );
}

#[tokio::test]
async fn forgetting_a_stale_trigger_leaves_a_newer_one_pending() {
    let central = Central::shared("forget").await;
    let ledger = central.ledger();
    let (x, stale, after) = scout24_firing();
    ledger.claim(&stale, None, after).await.unwrap();
    // One evaluation drops the stale trigger, another claims a new one for the new registration,
    // then the first evaluation's drop (a retry, or a second evaluation) arrives late.
    ledger
        .drop_pending(&x, None, &stale.trigger_id)
        .await
        .unwrap();
    let mut fresh = stale.clone();
    fresh.trigger_id = baton_core::TriggerId("fresh".into());
    assert_eq!(
        ledger.claim(&fresh, Some(after), at(23, 5)).await.unwrap(),
        ClaimOutcome::Claimed
    );
    ledger
        .drop_pending(&x, None, &stale.trigger_id)
        .await
        .unwrap();
    let state = ledger.cursor(&x, None).await.unwrap().unwrap();
    assert_eq!(
        state.pending.map(|p| p.trigger_id.0),
        Some("fresh".to_owned()),
        "the late drop of the stale trigger took the fresh one"
    );
    // Unregistering forgets whatever is pending, and keeps the cursor.
    ledger.forget(&x).await.unwrap();
    let state = ledger.cursor(&x, None).await.unwrap().unwrap();
    assert_eq!((state.cursor, state.pending), (at(23, 5), None));
}

#[tokio::test]
async fn the_pending_index_names_each_pending_trigger_with_its_run_key() {
    use baton_core::watch::PendingTriggers;
    let central = Central::shared("pending-index").await;
    let ledger = central.ledger();
    let (x, unkeyed, after) = scout24_firing();
    let mut keyed = unkeyed.clone();
    keyed.trigger_id = baton_core::TriggerId("keyed".into());
    keyed.run_key = Some(baton_core::RunKey("2026-11-22".into()));
    ledger.claim(&unkeyed, None, after).await.unwrap();
    ledger.claim(&keyed, None, after).await.unwrap();
    let mut pending = ledger.pending_before(at(30, 0), 10).await.unwrap();
    pending.sort();
    assert_eq!(
        pending,
        [
            (x.clone(), None),
            (x.clone(), Some(baton_core::RunKey("2026-11-22".into())))
        ]
    );
    // Sent: out of the index (the watchdog re-sends only what is still pending).
    ledger
        .mark_sent(
            &x,
            Some(&baton_core::RunKey("2026-11-22".into())),
            &keyed.trigger_id,
        )
        .await
        .unwrap();
    assert_eq!(
        ledger.pending_before(at(30, 0), 10).await.unwrap(),
        [(x, None)]
    );
}

fn lease(holder: &str, until: Timestamp) -> Lease {
    Lease {
        holder: holder.to_owned(),
        until,
    }
}

#[tokio::test]
async fn a_slack_post_slot_has_one_holder_until_done_or_its_lease_ends() {
    let central = Central::shared("threads").await;
    let threads = central.slack_threads();
    let exec = "arn:aws:states:eu-west-1:111111111111:execution:listings:l-22";
    let root = PostSlot::Root {
        execution_arn: exec.to_owned(),
        channel: "data-alerts".to_owned(),
    };
    let now = at(22, 3);
    let claims = futures::future::join_all((0..6).map(|i| {
        let threads = central.slack_threads();
        let root = root.clone();
        async move {
            threads
                .claim(&root, &lease(&format!("d{i}"), at(22, 4)), now)
                .await
                .unwrap()
        }
    }))
    .await;
    let won: Vec<usize> = (0..6)
        .filter(|i| matches!(claims[*i], SlotClaim::Won(_)))
        .collect();
    assert_eq!(won.len(), 1, "{claims:?}");
    let winner = format!("d{}", won[0]);
    assert!(claims
        .iter()
        .all(|c| matches!(c, SlotClaim::Won(_)) || *c == SlotClaim::Held { until: at(22, 4) }));

    // Only the holder records; the recorded ts and status come back with the next claim.
    let record = SlotRecord {
        ts: Some("C1 1700000000.000100".into()),
        shows: Some(RunStatus::Running),
        done: false,
    };
    assert!(!threads.record(&root, "intruder", &record).await.unwrap());
    assert!(threads.record(&root, &winner, &record).await.unwrap());
    // Its lease still runs: refused. After it ends: taken over, with what was recorded.
    assert_eq!(
        threads
            .claim(&root, &lease("late", at(22, 5)), at(22, 3))
            .await
            .unwrap(),
        SlotClaim::Held { until: at(22, 4) }
    );
    let state = SlotState {
        ts: Some("C1 1700000000.000100".into()),
        shows: Some(RunStatus::Running),
    };
    assert_eq!(
        threads
            .claim(&root, &lease("late", at(22, 6)), at(22, 5))
            .await
            .unwrap(),
        SlotClaim::Won(state.clone())
    );
    // The old holder can no longer record; the new one completes the slot.
    assert!(!threads
        .record(&root, &winner, &SlotRecord::done())
        .await
        .unwrap());
    assert!(threads
        .record(&root, "late", &SlotRecord::done())
        .await
        .unwrap());
    assert_eq!(
        threads
            .claim(&root, &lease("later", at(23, 9)), at(23, 8))
            .await
            .unwrap(),
        SlotClaim::Done(state)
    );

    // A released slot is free at once; a done slot cannot be released.
    let status = PostSlot::Status {
        execution_arn: exec.to_owned(),
        status: RunStatus::Failed,
        channel: "other".to_owned(),
    };
    assert!(matches!(
        threads
            .claim(&status, &lease("a", at(22, 4)), now)
            .await
            .unwrap(),
        SlotClaim::Won(_)
    ));
    threads.release(&status, "a").await.unwrap();
    assert_eq!(
        threads
            .claim(&status, &lease("b", at(22, 4)), now)
            .await
            .unwrap(),
        SlotClaim::Won(SlotState::default())
    );
    assert!(threads
        .record(&status, "b", &SlotRecord::done())
        .await
        .unwrap());
    threads.release(&status, "b").await.unwrap();
    assert!(matches!(
        threads
            .claim(&status, &lease("c", at(22, 4)), at(24, 0))
            .await
            .unwrap(),
        SlotClaim::Done(_)
    ));
}

#[tokio::test]
async fn bulk_loads_and_batch_reads_answer_what_single_reads_answer_over_many_keys() {
    let central = Central::shared("batch-reads").await;
    let (registry, ledger) = (central.registry(), central.ledger());
    let parent = pipeline("111111111111", "listings");
    // 101 children: two BatchGetItem requests of registrations (100 keys at most each).
    let children: Vec<PipelineId> = (0..101)
        .map(|i| pipeline("333333333333", &format!("child-{i:03}")))
        .collect();
    let yaml = "trigger:\n  executions:\n    allOf:\n      - {name: listings, account: '111111111111', status: [SUCCEEDED]}\n";
    // The first through the rules, the rest loaded in bulk: both store the same items.
    upsert(&registry, &registration(&children[0], "stack-batch", yaml))
        .await
        .unwrap();
    let bulk: Vec<Registration> = children[1..]
        .iter()
        .map(|child| registration(child, "stack-batch", yaml))
        .collect();
    registry.load(&bulk).await.unwrap();
    let absent = pipeline("333333333333", "never-registered");
    let mut asked = children.clone();
    asked.push(absent.clone());
    asked.push(children[0].clone()); // asked twice, read once
    let many = registry.get_many(&asked).await.unwrap();
    assert_eq!(many.len(), 101);
    assert!(!many.contains_key(&absent));
    for child in &children {
        assert_eq!(
            many.get(child),
            registry.get(child).await.unwrap().as_ref(),
            "{child}"
        );
        assert_eq!(
            many.get(child).map(|r| &r.definition),
            Some(&registration(child, "stack-batch", yaml).definition)
        );
    }
    assert_eq!(registry.children(&parent).await.unwrap().len(), 101);

    // Cursors: a few children have fired (one of them for a run key), most never did.
    let (x, trigger, after) = scout24_firing();
    assert_eq!(
        ledger.claim(&trigger, None, after).await.unwrap(),
        ClaimOutcome::Claimed
    );
    let mut slots: Vec<CursorSlot> = children.iter().map(|c| (c.clone(), None)).collect();
    slots.push((x.clone(), None));
    slots.push((x.clone(), Some(RunKey("2026-11-22".into()))));
    let states = ledger.cursors(&slots).await.unwrap();
    assert_eq!(states.len(), 1, "{states:?}");
    assert_eq!(
        states.get(&(x.clone(), None)),
        ledger.cursor(&x, None).await.unwrap().as_ref()
    );
    assert_eq!(
        states[&(x.clone(), None)]
            .pending
            .as_ref()
            .map(|p| &p.trigger_id),
        Some(&trigger.trigger_id)
    );
}
