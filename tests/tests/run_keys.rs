//! Run keys end to end against the emulator: run-log-writer records each run's key, an aligned
//! pipeline-x fires once per day with that day's pair even when day 1's searches finishes after
//! day 2's listings, a backfill re-fires day 1 only, and keys flow into the child's own runs.

mod common;

use std::collections::BTreeSet;

use baton_core::ports::{ClaimOutcome, Ledger, Recorded, RunLog};
use baton_core::trigger::inspect_child;
use baton_core::{PipelineTrigger, RunKey, RunStatus, Timestamp};
use baton_testbed::BusWatch;
use common::*;
use serde_json::Value;

const PIPELINE_X: &str = "runKey: $.runKey\ntrigger:\n  executions:\n    alignOn: runKey\n    allOf:\n      - {name: listings, account: '111111111111', status: [SUCCESS]}\n      - {name: searches, account: '222222222222', status: [SUCCESS]}\n";

/// A succeeded run of `p` for business day `date` (its input `{"date": ...}`).
fn day_run(p: &baton_core::PipelineId, exec: &str, date: &str, stop: Timestamp) -> Value {
    let start = Timestamp(stop.0 - 3_600_000);
    let mut event = status_event(p, exec, RunStatus::Succeeded, start, Some(stop));
    event["detail"]["input"] = serde_json::json!({ "date": date }).to_string().into();
    event
}

fn triggers(received: &[Value]) -> Vec<PipelineTrigger> {
    received
        .iter()
        .map(|e| serde_json::from_value(e["detail"].clone()).unwrap())
        .collect()
}

fn consumed(t: &PipelineTrigger) -> BTreeSet<String> {
    t.consumed
        .iter()
        .map(|r| r.execution_name().to_owned())
        .collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn an_aligned_child_fires_once_per_day_with_that_days_pair_and_a_backfill_refires_only_its_day(
) {
    let mut world = World::new("run-keys").await;
    let bus_c = BusWatch::create(&world.central.config, ACCOUNT_C, "pipelines-keys", "baton")
        .await
        .unwrap();
    world.settings.default_bus_name = bus_c.bus_name.clone();
    let listings = pipeline(ACCOUNT_A, "listings");
    let searches = pipeline(ACCOUNT_B, "searches");
    let x = pipeline(ACCOUNT_C, "pipeline-x");
    for p in [&listings, &searches] {
        world
            .register(p, "runKey: $.date\n", None, at(20, 0, 0))
            .await;
    }
    world.register(&x, PIPELINE_X, None, at(20, 0, 0)).await;

    // Day 2's listings finishes before day 1's searches.
    for event in [
        day_run(&listings, "l-23", "2026-11-23", at(23, 4, 0)),
        day_run(&listings, "l-24", "2026-11-24", at(24, 3, 0)),
        day_run(&searches, "s-23", "2026-11-23", at(24, 5, 0)),
        day_run(&searches, "s-24", "2026-11-24", at(24, 6, 0)),
    ] {
        let written = world.write(&event).await.unwrap();
        assert!(written.run_key.is_some(), "{written:?}");
    }
    let notifications = world.pump(at(24, 7, 0)).await;
    let sent = triggers(&bus_c.received().await.unwrap());
    let by_day: Vec<(Option<&str>, BTreeSet<String>)> = sent
        .iter()
        .map(|t| (t.run_key.as_ref().map(RunKey::as_str), consumed(t)))
        .collect();
    assert_eq!(
        by_day,
        vec![
            (Some("2026-11-23"), names(&["l-23", "s-23"])),
            (Some("2026-11-24"), names(&["l-24", "s-24"])),
        ],
        "one trigger per day, each with its own day's pair"
    );
    // The trigger notices say which day they fired for.
    let reasons: Vec<String> = trigger_notices(&notifications)
        .iter()
        .map(|n| n["trigger"]["reason"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        reasons[0].starts_with("run key 2026-11-23: "),
        "{reasons:?}"
    );

    // The events delivered again change nothing.
    for event in [
        day_run(&listings, "l-24", "2026-11-24", at(24, 3, 0)),
        day_run(&searches, "s-23", "2026-11-23", at(24, 5, 0)),
    ] {
        world.write(&event).await.unwrap();
    }
    world.pump(at(24, 7, 30)).await;
    assert!(bus_c.received().await.unwrap().is_empty());

    // A backfill of day 1's listings re-fires pipeline-x for day 1 only, with day 1's searches.
    world
        .write(&day_run(&listings, "l-23-fix", "2026-11-23", at(24, 9, 0)))
        .await
        .unwrap();
    world.pump(at(24, 9, 30)).await;
    let again = triggers(&bus_c.received().await.unwrap());
    assert_eq!(again.len(), 1, "{again:#?}");
    assert_eq!(
        again[0].run_key.as_ref().map(RunKey::as_str),
        Some("2026-11-23")
    );
    assert_eq!(consumed(&again[0]), names(&["l-23-fix", "s-23"]));
    assert_ne!(again[0].trigger_id, sent[0].trigger_id);

    // pipeline-x's run started by that trigger carries the key on: its own `runKey: $.runKey`.
    let mut started = status_event(&x, "x-23b", RunStatus::Running, at(24, 9, 31), None);
    started["detail"]["input"] = serde_json::to_string(&again[0]).unwrap().into();
    let written = world.write(&started).await.unwrap();
    assert_eq!(
        written.run_key.as_ref().map(RunKey::as_str),
        Some("2026-11-23")
    );

    // "Why?" for one day: the explanation of day 2 says it already fired on these runs.
    let inspection = inspect_child(
        &world.registry,
        &world.run_log,
        &world.ledger,
        &x,
        Some(&RunKey("2026-11-24".into())),
        at(24, 10, 0),
        &world.settings,
    )
    .await
    .unwrap()
    .unwrap();
    let text = inspection.evaluation.unwrap().render();
    assert!(
        text.contains("for key 2026-11-24 WAITS: it already fired"),
        "{text}"
    );
}

#[tokio::test]
async fn the_runs_of_one_key_and_the_cursor_of_one_key_are_read_alone() {
    let world = World::new("run-keys-store").await;
    let listings = pipeline(ACCOUNT_A, "listings");
    world
        .register(&listings, "runKey: $.date\n", None, at(20, 0, 0))
        .await;
    for (exec, date, hour) in [("a", "d1", 1), ("b", "d2", 2), ("c", "d1", 3)] {
        world
            .write(&day_run(&listings, exec, date, at(22, hour, 0)))
            .await
            .unwrap();
    }
    let succeeded = BTreeSet::from([RunStatus::Succeeded]);
    let d1 = RunKey("d1".into());
    let runs = world
        .run_log
        .runs_of_key(&listings, &d1, &succeeded, Timestamp(0), 10)
        .await
        .unwrap();
    let got: Vec<&str> = runs.iter().map(|r| r.execution_name.as_str()).collect();
    assert_eq!(got, ["c", "a"], "newest first, only key d1");
    assert!(runs.iter().all(|r| r.run_key.as_ref() == Some(&d1)));

    // A redelivery after the registration lost its `runKey` keeps the first recording's key.
    let first = baton_core::Run {
        run_key: Some(RunKey("d3".into())),
        ..world
            .run_log
            .latest(&execution_arn(&listings, "a"))
            .await
            .unwrap()
            .unwrap()
    };
    let first = baton_core::Run {
        execution_arn: execution_arn(&listings, "late"),
        execution_name: "late".into(),
        ..first
    };
    assert_eq!(world.run_log.record(&first).await.unwrap(), Recorded::New);
    let again = baton_core::Run {
        run_key: None,
        ..first.clone()
    };
    assert_eq!(
        world.run_log.record(&again).await.unwrap(),
        Recorded::Unannounced {
            run_key: Some(RunKey("d3".into()))
        }
    );
    let d3 = world
        .run_log
        .runs_of_key(
            &listings,
            &RunKey("d3".into()),
            &succeeded,
            Timestamp(0),
            10,
        )
        .await
        .unwrap();
    assert_eq!(d3, vec![first]);

    // A run whose input the event did not include has no key.
    let mut big = day_run(&listings, "big", "d1", at(22, 4, 0));
    big["detail"]["input"] = Value::Null;
    big["detail"]["inputDetails"]["included"] = false.into();
    assert_eq!(world.write(&big).await.unwrap().run_key, None);

    // Each key of a child has its own cursor and pending trigger; forget clears them all.
    let x = pipeline(ACCOUNT_C, "pipeline-x");
    let trigger = |id: &str, key: &str| -> PipelineTrigger {
        serde_json::from_value(serde_json::json!({
            "batonTriggerId": id, "runKey": key,
            "target": {"account": ACCOUNT_C, "region": REGION, "name": "pipeline-x",
                       "stateMachineArn": x.state_machine_arn()},
            "consumed": [], "reason": "test", "firedAt": 1000
        }))
        .unwrap()
    };
    let ledger = &world.ledger;
    assert_eq!(
        ledger
            .claim(
                &trigger("t1", "d1"),
                None,
                at(22, 1, 0),
                &baton_testbed::ended_lease()
            )
            .await
            .unwrap(),
        ClaimOutcome::Claimed
    );
    assert_eq!(
        ledger
            .claim(
                &trigger("t2", "d2"),
                None,
                at(22, 2, 0),
                &baton_testbed::ended_lease()
            )
            .await
            .unwrap(),
        ClaimOutcome::Claimed,
        "day 2 does not wait for day 1's pending trigger"
    );
    assert_eq!(ledger.cursor(&x, None).await.unwrap(), None);
    let d1_state = ledger.cursor(&x, Some(&d1)).await.unwrap().unwrap();
    assert_eq!(d1_state.cursor, at(22, 1, 0));
    ledger.forget(&x).await.unwrap();
    for key in ["d1", "d2"] {
        let state = ledger
            .cursor(&x, Some(&RunKey(key.into())))
            .await
            .unwrap()
            .unwrap();
        assert!(state.pending.is_none(), "{key} still pending");
    }
}
