//! The in-memory ports keep the DynamoDB adapters' conditions and request counts.

use baton_core::ports::{ClaimOutcome, Ledger, RunLog, SendLease};
use baton_core::{PipelineId, PipelineTrigger, Run, RunKey, RunStatus, Timestamp, TriggerId};
use futures::executor::block_on;

use super::{Memory, PAGE_BYTES};

fn child() -> PipelineId {
    PipelineId::new("333333333333", "eu-west-1", "pipeline-x").unwrap()
}

fn trigger(id: &str) -> PipelineTrigger {
    serde_json::from_value(serde_json::json!({
        "batonTriggerId": id,
        "target": {"account": "333333333333", "region": "eu-west-1", "name": "pipeline-x",
                   "stateMachineArn": "arn:aws:states:eu-west-1:333333333333:stateMachine:pipeline-x"},
        "consumed": [], "reason": "test", "firedAt": 1000
    }))
    .unwrap()
}

fn failed_run(i: i64, cause_bytes: usize) -> Run {
    let p = PipelineId::new("111111111111", "eu-west-1", "listings").unwrap();
    Run {
        execution_arn: format!("arn:aws:states:eu-west-1:111111111111:execution:listings:r{i}"),
        execution_name: format!("r{i}"),
        pipeline: p,
        status: RunStatus::Failed,
        started_at: Timestamp(1_000 + i * 10),
        stopped_at: Some(Timestamp(1_005 + i * 10)),
        error: Some("States.TaskFailed".into()),
        cause: Some("x".repeat(cause_bytes)),
        trigger_id: None,
        run_key: None,
    }
}

#[test]
fn a_claim_moves_the_cursor_only_from_the_value_read_and_only_once() {
    let mem = Memory::new(None);
    let first = trigger("t1");
    let claimed = block_on(mem.ledger.claim(&first, None, Timestamp(50))).unwrap();
    assert_eq!(claimed, ClaimOutcome::Claimed);
    // The same firing again, or another from a stale cursor, or while t1 is pending: lost.
    assert_eq!(
        block_on(mem.ledger.claim(&first, Some(Timestamp(50)), Timestamp(60))).unwrap(),
        ClaimOutcome::Lost
    );
    assert_eq!(
        block_on(mem.ledger.claim(&trigger("t2"), None, Timestamp(60))).unwrap(),
        ClaimOutcome::Lost
    );
    assert_eq!(
        block_on(
            mem.ledger
                .claim(&trigger("t2"), Some(Timestamp(50)), Timestamp(60))
        )
        .unwrap(),
        ClaimOutcome::Lost
    );
    let state = block_on(mem.ledger.cursor(&child(), None))
        .unwrap()
        .unwrap();
    assert_eq!(state.cursor, Timestamp(50));
    assert_eq!(
        state.pending.map(|p| p.trigger_id),
        Some(TriggerId("t1".into()))
    );
    assert_eq!(mem.requests.count(), 5);
}

#[test]
fn each_run_key_has_its_own_cursor_and_pending_trigger_and_forget_clears_them_all() {
    let mem = Memory::new(None);
    let keyed = |id: &str, key: &str| PipelineTrigger {
        run_key: Some(RunKey(key.into())),
        ..trigger(id)
    };
    let d1 = RunKey("d1".into());
    // d1 fires and stays pending; d2 still fires: keys never wait on each other.
    assert_eq!(
        block_on(mem.ledger.claim(&keyed("t1", "d1"), None, Timestamp(50))).unwrap(),
        ClaimOutcome::Claimed
    );
    assert_eq!(
        block_on(mem.ledger.claim(&keyed("t2", "d2"), None, Timestamp(40))).unwrap(),
        ClaimOutcome::Claimed
    );
    // d1 again, from the value read, while its trigger is pending: lost.
    assert_eq!(
        block_on(
            mem.ledger
                .claim(&keyed("t3", "d1"), Some(Timestamp(50)), Timestamp(60))
        )
        .unwrap(),
        ClaimOutcome::Lost
    );
    assert_eq!(block_on(mem.ledger.cursor(&child(), None)).unwrap(), None);
    let state = block_on(mem.ledger.cursor(&child(), Some(&d1)))
        .unwrap()
        .unwrap();
    assert_eq!(state.cursor, Timestamp(50));
    block_on(mem.ledger.forget(&child())).unwrap();
    let pending: Vec<_> = mem
        .ledger
        .cursors()
        .into_values()
        .filter_map(|c| c.pending_trigger_id)
        .collect();
    assert!(pending.is_empty(), "{pending:?}");
    // Three claims, two cursor reads; forget: one Query, one UpdateItem per cursor item.
    assert_eq!(mem.requests.count(), 3 + 2 + 1 + 2);
}

#[test]
fn the_send_lease_is_held_by_one_holder_until_it_ends_and_never_after_sent() {
    use baton_core::ports::Lease;
    let mem = Memory::new(None);
    let t = trigger("t1");
    let id = &t.trigger_id;
    block_on(mem.ledger.claim(&t, None, Timestamp(50))).unwrap();
    let take = |holder: &str, now: i64| {
        let lease = Lease {
            holder: holder.into(),
            until: Timestamp(now + 60),
        };
        block_on(
            mem.ledger
                .take_send_lease(&child(), None, id, &lease, Timestamp(now)),
        )
        .unwrap()
    };
    assert!(take("a", 100));
    assert!(!take("b", 160), "a holds it until 160");
    assert!(take("a", 150), "a's own take again");
    assert!(take("b", 211), "a's lease ended at 210");
    block_on(mem.ledger.release_send_lease(&child(), None, id, "a")).unwrap();
    assert!(!take("c", 212), "only the holder gives it back");
    block_on(mem.ledger.release_send_lease(&child(), None, id, "b")).unwrap();
    assert!(take("c", 213), "given back");
    block_on(mem.ledger.mark_sent(&child(), None, id)).unwrap();
    assert!(!take("d", 10_000), "sent: never again");
    let item = mem.ledger.cursors().remove(&(child(), None)).unwrap();
    assert_eq!(item.pending_trigger_id, None);
    assert_eq!(item.last_sent_trigger_id.as_ref(), Some(id));
    block_on(mem.ledger.forget(&child())).unwrap();
    let kept = block_on(mem.ledger.cursor(&child(), None))
        .unwrap()
        .unwrap();
    assert!(
        kept.pending.is_none(),
        "forget keeps the cursor, drops the pending trigger"
    );
}

#[test]
fn forgetting_a_stale_trigger_leaves_a_newer_one_pending() {
    let mem = Memory::new(None);
    block_on(mem.ledger.claim(&trigger("stale"), None, Timestamp(50))).unwrap();
    block_on(
        mem.ledger
            .drop_pending(&child(), None, &TriggerId("stale".into())),
    )
    .unwrap();
    block_on(
        mem.ledger
            .claim(&trigger("fresh"), Some(Timestamp(50)), Timestamp(60)),
    )
    .unwrap();
    block_on(
        mem.ledger
            .drop_pending(&child(), None, &TriggerId("stale".into())),
    )
    .unwrap();
    let state = block_on(mem.ledger.cursor(&child(), None))
        .unwrap()
        .unwrap();
    assert_eq!(
        state.pending.map(|p| p.trigger_id.0),
        Some("fresh".to_owned())
    );
}

#[test]
fn a_query_page_stops_at_its_limit_or_at_one_megabyte_newest_first() {
    let mem = Memory::new(None);
    for i in 0..60 {
        block_on(mem.run_log.record(&failed_run(i, 32 * 1024))).unwrap();
    }
    let p = failed_run(0, 0).pipeline;
    let failed = std::collections::BTreeSet::from([RunStatus::Failed]);
    let page = block_on(mem.run_log.runs_since(&p, &failed, Timestamp(0), 100)).unwrap();
    let bytes: usize = page
        .iter()
        .map(|r| r.cause.as_ref().map_or(0, String::len))
        .sum();
    assert!(
        page.len() < 60 && bytes <= PAGE_BYTES,
        "{} runs, {bytes} bytes",
        page.len()
    );
    assert_eq!(page[0].execution_name, "r59");
    let small = block_on(mem.run_log.runs_since(&p, &failed, Timestamp(0), 10)).unwrap();
    assert_eq!(small.len(), 10);
    // Later than `after` only.
    let later = block_on(
        mem.run_log
            .runs_since(&p, &failed, Timestamp(1_005 + 58 * 10), 100),
    )
    .unwrap();
    assert_eq!(later.len(), 1);
    // A success behind all those failures is in the first page of its own status.
    let mut ok = failed_run(0, 0);
    ok.status = RunStatus::Succeeded;
    ok.stopped_at = Some(Timestamp(1_001));
    block_on(mem.run_log.record(&ok)).unwrap();
    let wanted = std::collections::BTreeSet::from([RunStatus::Succeeded]);
    let found = block_on(mem.run_log.runs_since(&p, &wanted, Timestamp(0), 100)).unwrap();
    assert_eq!(found.len(), 1);
}

#[test]
fn recording_a_run_twice_reports_what_was_announced() {
    use baton_core::ports::Recorded;
    let mem = Memory::new(None);
    let run = failed_run(1, 10);
    assert_eq!(block_on(mem.run_log.record(&run)).unwrap(), Recorded::New);
    assert_eq!(
        block_on(mem.run_log.record(&run)).unwrap(),
        Recorded::Unannounced { run_key: None }
    );
    block_on(mem.run_log.mark_announced(&run)).unwrap();
    assert_eq!(
        block_on(mem.run_log.record(&run)).unwrap(),
        Recorded::AlreadyAnnounced
    );
    // PutItem run + PutItem latest, then each repeat adds a GetItem; one UpdateItem.
    assert_eq!(mem.requests.count(), 2 + 3 + 1 + 3);
}

#[test]
fn a_runs_key_is_its_first_recordings_and_it_is_found_under_it_before_it_is_announced() {
    use baton_core::ports::Recorded;
    let mem = Memory::new(None);
    let d1 = RunKey("d1".into());
    let keyed = Run {
        run_key: Some(d1.clone()),
        ..failed_run(1, 10)
    };
    assert_eq!(block_on(mem.run_log.record(&keyed)).unwrap(), Recorded::New);
    // Redelivered after its pipeline's registration lost its `runKey` (deleted, changed): the
    // run keeps the key it was first recorded with.
    let unkeyed = Run {
        run_key: None,
        ..keyed.clone()
    };
    assert_eq!(
        block_on(mem.run_log.record(&unkeyed)).unwrap(),
        Recorded::Unannounced {
            run_key: Some(d1.clone())
        }
    );
    let statuses = std::collections::BTreeSet::from([RunStatus::Failed]);
    let under_key =
        block_on(
            mem.run_log
                .runs_of_key(&keyed.pipeline, &d1, &statuses, Timestamp(0), 10),
        )
        .unwrap();
    assert_eq!(under_key, vec![keyed]);
}

#[test]
fn a_slack_slot_is_held_by_one_delivery_until_its_lease_ends_or_it_is_done() {
    use baton_core::ports::Lease;
    use baton_core::slack::ledger::{PostSlot, SlackThreads, SlotClaim, SlotRecord};
    let mem = Memory::new(None);
    let slot = PostSlot::Root {
        execution_arn: "arn:aws:states:eu-west-1:111111111111:execution:listings:l-1".into(),
        channel: "data-alerts".into(),
    };
    let lease = |holder: &str, until: i64| Lease {
        holder: holder.into(),
        until: Timestamp(until),
    };
    let claim = |holder: &str, now: i64| {
        block_on(
            mem.slack_threads
                .claim(&slot, &lease(holder, now + 100), Timestamp(now)),
        )
        .unwrap()
    };
    assert!(matches!(claim("a", 0), SlotClaim::Won(_)));
    assert_eq!(
        claim("b", 50),
        SlotClaim::Held {
            until: Timestamp(100)
        }
    );
    assert!(
        matches!(claim("a", 60), SlotClaim::Won(_)),
        "its own claim again"
    );
    assert!(
        matches!(claim("b", 161), SlotClaim::Won(_)),
        "a's lease ended"
    );
    assert!(!block_on(mem.slack_threads.record(&slot, "a", &SlotRecord::done())).unwrap());
    assert!(block_on(mem.slack_threads.record(&slot, "b", &SlotRecord::done())).unwrap());
    assert!(matches!(claim("c", 10_000), SlotClaim::Done(_)));
}
