//! `within` in any group, `atLeast: K`, and alignment by run key: stories, and the aligned
//! semantics as properties against a brute-force reading of DESIGN "Alignment".

use super::*;
use crate::definition::PipelineDefinition;
use crate::status::RunStatus;
use proptest::prelude::*;

const A: &str = "111111111111";

fn pipeline(name: &str) -> PipelineId {
    PipelineId::new(A, "eu-west-1", name).unwrap()
}

fn hour(h: i64) -> Timestamp {
    Timestamp(1_795_000_000_000 + Span::hours(h).0)
}

fn run(parent: &str, exec: &str, status: RunStatus, h: i64, key: Option<&str>) -> RunRef {
    RunRef {
        pipeline: pipeline(parent),
        execution_arn: format!("arn:aws:states:eu-west-1:{A}:execution:{parent}:{exec}"),
        status,
        status_time: hour(h),
        run_key: key.map(|k| RunKey(k.to_owned())),
    }
}

fn ok(parent: &str, exec: &str, h: i64, key: &str) -> RunRef {
    run(parent, exec, RunStatus::Succeeded, h, Some(key))
}

fn trigger(executions: &str) -> Trigger {
    let yaml = format!("trigger:\n  executions:\n{executions}");
    PipelineDefinition::from_yaml(&yaml)
        .unwrap()
        .trigger
        .unwrap()
}

fn child() -> PipelineId {
    PipelineId::new(A, "eu-west-1", "x").unwrap()
}

#[test]
fn within_in_a_nested_group_bounds_only_the_leaves_beneath_it() {
    let t = trigger(
        "    allOf:\n      - {name: a, status: [SUCCEEDED]}\n      - anyOf: [{name: b, status: [SUCCEEDED]}]\n        within: 2h\n",
    );
    // a is 10 h old (no bound on it), b 3 h old (bound 2 h): waits on b.
    let runs = vec![
        run("a", "a1", RunStatus::Succeeded, 0, None),
        run("b", "b1", RunStatus::Succeeded, 7, None),
    ];
    let e = evaluate(&child(), &t, hour(-1), hour(10), &runs);
    assert_eq!(e.decision, Decision::Wait);
    assert!(e.render().contains("more than within 2h"), "{e}");
    // b 1 h old: fires, with a's 10-hour-old run.
    let e = evaluate(&child(), &t, hour(-1), hour(8), &runs);
    assert_eq!(e.firing().map(|f| f.consumed.len()), Some(2), "{e}");
}

#[test]
fn nested_bounds_all_apply() {
    let t = trigger(
        "    within: 1h\n    allOf:\n      - allOf: [{name: a, status: [SUCCEEDED]}]\n        within: 5h\n",
    );
    let runs = vec![run("a", "a1", RunStatus::Succeeded, 0, None)];
    let e = evaluate(&child(), &t, hour(-1), hour(3), &runs);
    assert!(e.render().contains("more than within 1h"), "{e}");
}

#[test]
fn at_least_two_of_three_fire_and_consume_every_holding_entry() {
    let t = trigger(
        "    atLeast: 2\n    of:\n      - {name: a, status: [SUCCEEDED]}\n      - {name: b, status: [SUCCEEDED]}\n      - {name: c, status: [SUCCEEDED]}\n",
    );
    let a = run("a", "a1", RunStatus::Succeeded, 1, None);
    let b = run("b", "b1", RunStatus::Succeeded, 2, None);
    let c = run("c", "c1", RunStatus::Failed, 3, None);
    let e = evaluate(&child(), &t, hour(0), hour(4), &[a.clone(), c.clone()]);
    assert_eq!(e.decision, Decision::Wait);
    assert!(e.render().contains("atLeast 2 of 3: waits (1 hold)"), "{e}");
    let e = evaluate(&child(), &t, hour(0), hour(4), &[a.clone(), b.clone(), c]);
    let f = e.firing().expect("two of three hold");
    assert_eq!(f.consumed, vec![a.clone(), b.clone()]);
    assert_eq!(f.cursor_after, hour(2));
    // With all three, all three are consumed.
    let c_ok = run("c", "c2", RunStatus::Succeeded, 3, None);
    let e = evaluate(&child(), &t, hour(0), hour(4), &[a, b, c_ok]);
    assert_eq!(e.firing().map(|f| f.consumed.len()), Some(3));
}

#[test]
fn the_documented_at_least_example_reads_as_the_docs_say() {
    let t = trigger(
        "    allOf:\n      - {name: listings, status: [SUCCESS]}\n      - atLeast: 2\n        of:\n          - {name: export-eu, status: [SUCCESS]}\n          - {name: export-us, status: [SUCCESS]}\n          - {name: export-ap, status: [SUCCESS]}\n        within: 6h\n",
    );
    let listings = run("listings", "l", RunStatus::Succeeded, 3, None);
    let eu = run("export-eu", "eu", RunStatus::Succeeded, 8, None);
    let us = run("export-us", "us", RunStatus::Succeeded, 9, None);
    let runs = vec![listings.clone(), eu.clone(), us];
    let f = evaluate(&child(), &t, hour(0), hour(9), &runs);
    let f = f.firing().expect("fires at 09:00").clone();
    assert_eq!((f.consumed.len(), f.cursor_after), (3, hour(9)));
    let mut later = runs.clone();
    later.push(run("export-ap", "ap", RunStatus::Succeeded, 16, None));
    let e = evaluate(&child(), &t, f.cursor_after, hour(16), &later);
    assert_eq!(e.decision, Decision::Wait);
    // export-us at 02:00: 7 h old at 09:00, too old; listings at 03:00 is under no bound.
    let early = run("export-us", "us", RunStatus::Succeeded, 2, None);
    let e = evaluate(&child(), &t, hour(0), hour(9), &[listings, eu, early]);
    assert_eq!(e.decision, Decision::Wait);
    assert!(e.render().contains("more than within 6h"), "{e}");
    assert!(e.render().contains("[x] listings"), "{e}");
}

fn aligned() -> Trigger {
    trigger(
        "    alignOn: runKey\n    allOf:\n      - {name: listings, status: [SUCCEEDED]}\n      - {name: searches, status: [SUCCEEDED]}\n",
    )
}

#[test]
fn aligned_runs_pair_by_key_and_a_backfill_refires_only_its_key() {
    let t = aligned();
    assert!(t.is_aligned());
    let d1 = RunKey("2026-11-23".into());
    let d2 = RunKey("2026-11-24".into());
    // Day 2's listings finishes before day 1's searches.
    let mut runs = vec![
        ok("listings", "l-23", 1, "2026-11-23"),
        ok("listings", "l-24", 3, "2026-11-24"),
        ok("searches", "s-23", 4, "2026-11-23"),
    ];
    let e1 = evaluate_key(&child(), &t, &d1, hour(0), hour(0), hour(5), &runs);
    let f1 = e1.firing().expect("day 1 pairs l-23 with s-23").clone();
    assert_eq!(
        f1.consumed
            .iter()
            .map(|r| r.execution_name())
            .collect::<Vec<_>>(),
        ["l-23", "s-23"]
    );
    assert_eq!(f1.run_key.as_ref(), Some(&d1));
    // The trigger (and its notice) say which key it fires for.
    assert!(
        f1.reason()
            .starts_with("run key 2026-11-23: listings SUCCEEDED (l-23"),
        "{}",
        f1.reason()
    );
    assert!(e1.render().contains("for key 2026-11-23 FIRES"), "{e1}");
    let e2 = evaluate_key(&child(), &t, &d2, hour(0), hour(0), hour(5), &runs);
    assert_eq!(e2.decision, Decision::Wait, "day 2 has no searches yet");

    // Fired for day 1: the same runs never fire it again for day 1.
    let again = evaluate_key(&child(), &t, &d1, hour(0), f1.cursor_after, hour(6), &runs);
    assert_eq!(again.decision, Decision::Wait);
    assert!(
        again.already_fired && again.render().contains("already fired"),
        "{again}"
    );

    // A backfill of day 1's listings fires day 1 again (a new trigger id), and day 2 not.
    runs.push(ok("listings", "l-23-backfill", 8, "2026-11-23"));
    let refire = evaluate_key(&child(), &t, &d1, hour(0), f1.cursor_after, hour(9), &runs);
    let f = refire.firing().expect("the backfill re-fires day 1");
    assert_ne!(f.trigger_id, f1.trigger_id);
    assert_eq!(f.cursor_after, hour(8));
    assert_eq!(
        evaluate_key(&child(), &t, &d2, hour(0), hour(0), hour(9), &runs).decision,
        Decision::Wait
    );
}

#[test]
fn the_trigger_id_covers_the_key() {
    let consumed = vec![ok("listings", "l", 1, "k")];
    let k = RunKey("k".into());
    assert_ne!(
        TriggerId::of_key(&child(), Some(&k), &consumed),
        TriggerId::of(&child(), &consumed)
    );
    assert_ne!(
        TriggerId::of_key(&child(), Some(&k), &consumed),
        TriggerId::of_key(&child(), Some(&RunKey("k2".into())), &consumed)
    );
}

#[test]
fn definitions_say_where_within_goes_and_check_at_least_and_align_on() {
    let err = PipelineDefinition::from_yaml(
        "trigger:\n  executions:\n    allOf: [{name: a, status: [SUCCEEDED]}]\n  within: 20h\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("trigger.within: `within` now goes inside `executions`"),
        "{err}"
    );
    for (executions, expected) in [
        (
            "    atLeast: 3\n    of: [{name: a, status: [SUCCEEDED]}, {name: b, status: [SUCCEEDED]}]\n",
            "trigger.executions.atLeast: \"3\" is not a count of entries; allowed: 1 to 2",
        ),
        (
            "    atLeast: 1\n",
            "trigger.executions.of: missing",
        ),
        (
            "    atLeast: 1\n    of: [{name: a, status: [SUCCEEDED]}]\n    allOf: [{name: b, status: [SUCCEEDED]}]\n",
            "`atLeast` with `of` is a group of its own",
        ),
        (
            "    alignOn: date\n    allOf: [{name: a, status: [SUCCEEDED]}]\n",
            "trigger.executions.alignOn: \"date\" is not something runs align on; allowed: runKey",
        ),
        (
            "    allOf:\n      - allOf: [{name: a, status: [SUCCEEDED]}]\n        alignOn: runKey\n",
            "trigger.executions.allOf[0].alignOn: only the top group",
        ),
    ] {
        let yaml = format!("trigger:\n  executions:\n{executions}");
        let err = PipelineDefinition::from_yaml(&yaml).unwrap_err().to_string();
        assert!(err.contains(expected), "{err}");
    }
    let def = PipelineDefinition::from_yaml(
        "runKey: $.date\ntrigger:\n  executions:\n    alignOn: runKey\n    atLeast: 1\n    of: [{name: a, status: [SUCCEEDED]}]\n    within: 20h\n",
    )
    .unwrap();
    assert_eq!(
        def.run_key.map(|p| p.to_string()).as_deref(),
        Some("$.date")
    );
    let t = def.trigger.unwrap();
    assert!(t.is_aligned());
    assert_eq!(t.executions.within, Some(Span::hours(20)));
    let bad = PipelineDefinition::from_yaml("runKey: date\n")
        .unwrap_err()
        .to_string();
    assert!(
        bad.contains("runKey: \"date\" is not a run key path"),
        "{bad}"
    );
}

#[test]
fn a_registration_stored_with_the_old_within_keeps_its_bound() {
    let stored = r#"{"executions": {"allOf": [{"name": "a", "status": ["SUCCEEDED"]}]}, "within": 72000000}"#;
    let t: Trigger = serde_json::from_str(stored).unwrap();
    assert_eq!(t.executions.within, Some(Span::hours(20)));
}

// ---- properties: aligned decisions against a brute-force reading ----

const PARENTS: [&str; 3] = ["p0", "p1", "p2"];
const KEYS: [&str; 3] = ["d1", "d2", "d3"];

fn arb_aligned_trigger() -> impl Strategy<Value = Trigger> {
    let leaf = (0..PARENTS.len(), any::<bool>()).prop_map(|(p, also_failed)| {
        let mut status = std::collections::BTreeSet::from([RunStatus::Succeeded]);
        if also_failed {
            status.insert(RunStatus::Failed);
        }
        Condition::Leaf(Leaf {
            name: PARENTS[p].to_owned(),
            account: None,
            region: None,
            status,
        })
    });
    let entries = proptest::collection::vec(leaf, 1..=3);
    (
        entries,
        0u8..3,
        1usize..=3,
        proptest::option::weighted(0.3, 1i64..30),
    )
        .prop_map(|(entries, kind, k, within)| {
            let mut g = Group {
                within: within.map(Span::hours),
                ..Group::default()
            };
            match kind {
                0 => g.all_of = entries,
                1 => g.any_of = entries,
                _ => {
                    g.at_least = Some(AtLeast {
                        count: k.min(entries.len()),
                        of: entries,
                    })
                }
            }
            Trigger {
                executions: g,
                align_on: Some(crate::condition::AlignOn::RunKey),
            }
        })
}

fn arb_keyed_runs() -> impl Strategy<Value = Vec<RunRef>> {
    proptest::collection::vec(
        (
            0..PARENTS.len(),
            any::<bool>(),
            0i64..48,
            0..KEYS.len() + 1,
            0u8..4,
        ),
        0..14,
    )
    .prop_map(|rows| {
        rows.into_iter()
            .map(|(p, failed, h, k, e)| {
                let status = if failed {
                    RunStatus::Failed
                } else {
                    RunStatus::Succeeded
                };
                // KEYS.len(): a run without a key (its input was not in the event).
                run(
                    PARENTS[p],
                    &format!("e{e}-{h}"),
                    status,
                    h,
                    KEYS.get(k).copied(),
                )
            })
            .collect()
    })
}

/// DESIGN "Alignment", read directly: each leaf's latest run of key `key` with a wanted status,
/// later than the floor and within every bound; the group's truth; the runs of the holding
/// leaves that make it hold; fire when it holds and one of those is later than the cursor.
fn oracle(
    t: &Trigger,
    key: &str,
    floor: Timestamp,
    cursor: Timestamp,
    now: Timestamp,
    runs: &[RunRef],
) -> Option<Vec<RunRef>> {
    let g = &t.executions;
    let latest = |c: &Condition| -> Option<RunRef> {
        let Condition::Leaf(l) = c else { return None };
        runs.iter()
            .filter(|r| r.pipeline.name == l.name && l.status.contains(&r.status))
            .filter(|r| r.run_key.as_ref().map(RunKey::as_str) == Some(key))
            .filter(|r| r.status_time > floor)
            .filter(|r| g.within.is_none_or(|w| now.0 - r.status_time.0 <= w.0))
            .max_by_key(|r| (r.status_time, r.execution_arn.clone(), r.status))
            .cloned()
    };
    let (entries, need) = if let Some(k) = &g.at_least {
        (&k.of, k.count)
    } else if !g.all_of.is_empty() {
        (&g.all_of, g.all_of.len())
    } else {
        (&g.any_of, 1)
    };
    let held: Vec<RunRef> = entries.iter().filter_map(latest).collect();
    let holding = entries.iter().filter(|c| latest(c).is_some()).count();
    if holding < need || !held.iter().any(|r| r.status_time > cursor) {
        return None;
    }
    let mut held = held;
    held.sort();
    held.dedup();
    Some(held)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn aligned_fires_exactly_when_the_oracle_says_per_key(
        t in arb_aligned_trigger(), runs in arb_keyed_runs(), floor_h in 0i64..10,
        cursors in proptest::collection::vec(0i64..48, KEYS.len()), now_h in 24i64..60,
    ) {
        for (key, cursor_h) in KEYS.iter().zip(cursors) {
            let (floor, cursor, now) = (hour(floor_h), hour(cursor_h), hour(now_h));
            let k = RunKey((*key).to_owned());
            let e = evaluate_key(&child(), &t, &k, floor, cursor, now, &runs);
            let expected = oracle(&t, key, floor, cursor.max(floor), now, &runs);
            prop_assert_eq!(e.firing().map(|f| f.consumed.clone()), expected, "{}", e);
            if let Some(f) = e.firing() {
                prop_assert!(f.consumed.iter().all(|r| r.run_key.as_ref() == Some(&k)));
                prop_assert_eq!(&f.trigger_id, &TriggerId::of_key(&child(), Some(&k), &f.consumed));
            }
        }
    }

    #[test]
    fn aligned_never_fires_twice_for_the_same_key_and_runs(
        t in arb_aligned_trigger(), runs in arb_keyed_runs(), now_h in 24i64..60, later_h in 0i64..24,
    ) {
        for key in KEYS {
            let k = RunKey(key.to_owned());
            let e = evaluate_key(&child(), &t, &k, hour(0), hour(0), hour(now_h), &runs);
            if let Some(f) = e.firing() {
                let again = evaluate_key(&child(), &t, &k, hour(0), f.cursor_after, hour(now_h + later_h), &runs);
                prop_assert_eq!(&again.decision, &Decision::Wait, "{}", again);
            }
        }
    }

    #[test]
    fn aligned_decisions_do_not_depend_on_order_or_repetition(
        t in arb_aligned_trigger(), runs in arb_keyed_runs(), cursor_h in 0i64..48,
    ) {
        let mut shuffled: Vec<RunRef> = runs.iter().rev().cloned().collect();
        shuffled.extend(runs.iter().take(3).cloned());
        for key in KEYS {
            let k = RunKey(key.to_owned());
            prop_assert_eq!(
                evaluate_key(&child(), &t, &k, hour(0), hour(cursor_h), hour(50), &runs),
                evaluate_key(&child(), &t, &k, hour(0), hour(cursor_h), hour(50), &shuffled)
            );
        }
    }

    #[test]
    fn a_backfill_fires_only_its_key(
        t in arb_aligned_trigger(), runs in arb_keyed_runs(), p in 0..PARENTS.len(), h in 48i64..50,
    ) {
        // Every key has fired on what it had (cursor at its consumed runs); then a parent runs
        // again for d1, later than everything.
        let now = hour(51);
        let cursors: Vec<Timestamp> = KEYS.iter().map(|key| {
            let k = RunKey((*key).to_owned());
            evaluate_key(&child(), &t, &k, hour(0), hour(0), now, &runs)
                .firing().map_or(hour(0), |f| f.cursor_after)
        }).collect();
        let mut backfilled = runs.clone();
        backfilled.push(ok(PARENTS[p], "backfill", h, KEYS[0]));
        for (key, cursor) in KEYS.iter().zip(&cursors).skip(1) {
            let k = RunKey((*key).to_owned());
            prop_assert_eq!(
                evaluate_key(&child(), &t, &k, hour(0), *cursor, now, &backfilled).decision,
                Decision::Wait
            );
        }
        let k = RunKey(KEYS[0].to_owned());
        let e = evaluate_key(&child(), &t, &k, hour(0), cursors[0], now, &backfilled);
        prop_assert_eq!(e.firing().map(|f| f.consumed.clone()),
            oracle(&t, KEYS[0], hour(0), cursors[0], now, &backfilled));
    }
}
