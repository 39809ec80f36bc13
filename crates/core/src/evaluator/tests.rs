//! The evaluator's rules, story by story, and its invariants as properties.

use super::*;
use crate::definition::PipelineDefinition;
use crate::status::RunStatus;
use proptest::prelude::*;

const A: &str = "111111111111";
const B: &str = "222222222222";
const C: &str = "333333333333";
const REGION: &str = "eu-west-1";

fn pipeline(account: &str, name: &str) -> PipelineId {
    PipelineId::new(account, REGION, name).unwrap()
}

/// `2026-11-<day>T<hour>:00:00Z`
fn at(day: u32, hour: u32) -> Timestamp {
    Timestamp::parse_rfc3339(&format!("2026-11-{day:02}T{hour:02}:00:00Z")).unwrap()
}

fn run(p: &PipelineId, execution: &str, status: RunStatus, time: Timestamp) -> RunRef {
    RunRef {
        pipeline: p.clone(),
        execution_arn: format!(
            "arn:aws:states:{}:{}:execution:{}:{execution}",
            p.region, p.account, p.name
        ),
        status,
        status_time: time,
        run_key: None,
    }
}

fn trigger(yaml: &str) -> Trigger {
    PipelineDefinition::from_yaml(yaml)
        .unwrap()
        .trigger
        .unwrap()
}

fn scout24() -> Trigger {
    trigger(&format!(
        "trigger:\n  executions:\n    allOf:\n      - {{name: listings, account: '{A}', status: [SUCCESS]}}\n      - {{name: searches, account: '{B}', status: [SUCCESS]}}\n"
    ))
}

fn registered_at() -> Timestamp {
    at(21, 12)
}

#[test]
fn scout24_story_fires_once_when_both_parents_succeeded() {
    let x = pipeline(C, "pipeline-x");
    let listings = run(
        &pipeline(A, "listings"),
        "l-22",
        RunStatus::Succeeded,
        at(22, 3),
    );
    let searches = run(
        &pipeline(B, "searches"),
        "s-22",
        RunStatus::Succeeded,
        at(22, 5),
    );
    let t = scout24();

    let after_listings = evaluate(
        &x,
        &t,
        registered_at(),
        at(22, 3),
        std::slice::from_ref(&listings),
    );
    assert_eq!(after_listings.decision, Decision::Wait);
    let text = after_listings.render();
    assert!(
        text.contains("[x] listings (111111111111/eu-west-1) SUCCEEDED: holds with run l-22"),
        "{text}"
    );
    assert!(
        text.contains(
            "[ ] searches (222222222222/eu-west-1) SUCCEEDED: waits: no run since the cursor"
        ),
        "{text}"
    );

    let runs = vec![listings.clone(), searches.clone()];
    let fired = evaluate(&x, &t, registered_at(), at(22, 5), &runs);
    let firing = fired.firing().expect("pipeline-x fires");
    assert_eq!(firing.consumed, vec![listings, searches]);
    assert_eq!(firing.cursor_after, at(22, 5));
    assert!(fired
        .render()
        .starts_with("pipeline-x (333333333333/eu-west-1) FIRES: trigger "));

    // The same runs again (a redelivery, another process) after the firing: nothing.
    let again = evaluate(&x, &t, firing.cursor_after, at(22, 6), &runs);
    assert_eq!(again.decision, Decision::Wait);
}

#[test]
fn a_failed_parent_fixed_by_a_rerun_fires_the_child_after_the_rerun() {
    let x = pipeline(C, "pipeline-x");
    let t = scout24();
    let mut runs = vec![
        run(
            &pipeline(A, "listings"),
            "l-22",
            RunStatus::Succeeded,
            at(22, 3),
        ),
        run(
            &pipeline(B, "searches"),
            "s-22",
            RunStatus::Failed,
            at(22, 5),
        ),
    ];
    let failed = evaluate(&x, &t, registered_at(), at(22, 5), &runs);
    assert_eq!(failed.decision, Decision::Wait);
    assert!(
        failed
            .render()
            .contains("waits: latest run since the cursor is s-22 FAILED at 2026-11-22T05:00:00Z"),
        "{failed}"
    );

    runs.push(run(
        &pipeline(B, "searches"),
        "s-22-rerun",
        RunStatus::Succeeded,
        at(22, 9),
    ));
    let fixed = evaluate(&x, &t, registered_at(), at(22, 9), &runs);
    let firing = fixed.firing().expect("fires after the re-run");
    assert!(firing
        .consumed
        .iter()
        .any(|r| r.execution_name() == "s-22-rerun"));
    assert_eq!(firing.cursor_after, at(22, 9));
}

#[test]
fn within_refuses_todays_a_with_yesterdays_b() {
    let x = pipeline(C, "pipeline-x");
    let mut t = scout24();
    t.executions.within = Some(Span::hours(20));
    let runs = vec![
        run(
            &pipeline(B, "searches"),
            "s-21",
            RunStatus::Succeeded,
            at(21, 5),
        ),
        run(
            &pipeline(A, "listings"),
            "l-22",
            RunStatus::Succeeded,
            at(22, 3),
        ),
    ];
    let e = evaluate(&x, &t, at(20, 0), at(22, 3), &runs);
    assert_eq!(e.decision, Decision::Wait);
    assert!(
        e.render().contains("is 22h old, more than within 20h"),
        "{e}"
    );

    // Without `within` the same runs would fire: the bound is what refuses them.
    t.executions.within = None;
    assert!(evaluate(&x, &t, at(20, 0), at(22, 3), &runs)
        .firing()
        .is_some());
}

#[test]
fn a_new_child_never_fires_on_history() {
    let x = pipeline(C, "pipeline-x");
    let runs = vec![
        run(
            &pipeline(A, "listings"),
            "l-21",
            RunStatus::Succeeded,
            at(21, 3),
        ),
        run(
            &pipeline(B, "searches"),
            "s-21",
            RunStatus::Succeeded,
            at(21, 5),
        ),
    ];
    // Registered at noon on the 21st: both runs are older than its cursor.
    let e = evaluate(&x, &scout24(), registered_at(), at(21, 13), &runs);
    assert_eq!(e.decision, Decision::Wait);
}

#[test]
fn a_fallback_pipeline_fires_on_failure() {
    let fallback = pipeline(C, "searches-fallback");
    let t = trigger(&format!("trigger: {{executions: {{anyOf: [{{name: searches, account: '{B}', status: [FAILED, TIMED_OUT]}}]}}}}"));
    let ok = vec![run(
        &pipeline(B, "searches"),
        "s-22",
        RunStatus::Succeeded,
        at(22, 5),
    )];
    assert_eq!(
        evaluate(&fallback, &t, registered_at(), at(22, 5), &ok).decision,
        Decision::Wait
    );
    let timed_out = vec![run(
        &pipeline(B, "searches"),
        "s-23",
        RunStatus::TimedOut,
        at(23, 5),
    )];
    let e = evaluate(&fallback, &t, registered_at(), at(23, 5), &timed_out);
    assert_eq!(e.firing().unwrap().consumed, timed_out);
}

#[test]
fn or_fires_on_either_side_and_consumes_what_holds() {
    let child = pipeline(C, "report");
    let t = trigger(&format!(
        "trigger:\n  executions:\n    operator: OR\n    allOf:\n      - {{name: listings, account: '{A}', status: [SUCCEEDED]}}\n      - {{name: searches, account: '{B}', status: [SUCCEEDED]}}\n    anyOf:\n      - {{name: manual-refresh, status: [SUCCEEDED]}}\n"
    ));
    // Only the anyOf side holds: fires, consuming only the manual run.
    let manual = run(
        &pipeline(C, "manual-refresh"),
        "m-1",
        RunStatus::Succeeded,
        at(22, 4),
    );
    let listings = run(
        &pipeline(A, "listings"),
        "l-22",
        RunStatus::Succeeded,
        at(22, 3),
    );
    let runs = vec![listings.clone(), manual.clone()];
    let e = evaluate(&child, &t, registered_at(), at(22, 4), &runs);
    assert_eq!(e.firing().unwrap().consumed, vec![manual]);
    assert!(e.render().contains("allOf OR anyOf: holds"), "{e}");

    // After that firing, listings alone does not make the allOf side hold.
    let next = evaluate(&child, &t, at(22, 4), at(22, 5), &runs);
    assert_eq!(next.decision, Decision::Wait);
}

#[test]
fn and_of_both_blocks_and_nesting() {
    let child = pipeline(C, "daily");
    let t = trigger(&format!(
        "trigger:\n  executions:\n    operator: AND\n    allOf:\n      - {{name: listings, account: '{A}', status: [SUCCEEDED]}}\n    anyOf:\n      - {{name: searches, account: '{B}', status: [SUCCEEDED]}}\n      - allOf:\n          - {{name: searches-eu, account: '{B}', status: [SUCCEEDED]}}\n          - {{name: searches-us, account: '{B}', status: [SUCCEEDED]}}\n"
    ));
    let l = run(
        &pipeline(A, "listings"),
        "l",
        RunStatus::Succeeded,
        at(22, 3),
    );
    let eu = run(
        &pipeline(B, "searches-eu"),
        "eu",
        RunStatus::Succeeded,
        at(22, 4),
    );
    let us = run(
        &pipeline(B, "searches-us"),
        "us",
        RunStatus::Succeeded,
        at(22, 6),
    );
    assert_eq!(
        evaluate(
            &child,
            &t,
            registered_at(),
            at(22, 5),
            &[l.clone(), eu.clone()]
        )
        .decision,
        Decision::Wait
    );
    let e = evaluate(
        &child,
        &t,
        registered_at(),
        at(22, 6),
        &[l.clone(), eu.clone(), us.clone()],
    );
    assert_eq!(e.firing().unwrap().consumed, vec![l, eu, us]);
}

#[test]
fn leaf_account_and_region_default_to_the_childs() {
    let child = pipeline(C, "local-child");
    let t = trigger(
        "trigger: {executions: {allOf: [{name: same-account-parent, status: [SUCCEEDED]}]}}",
    );
    let r = run(
        &pipeline(C, "same-account-parent"),
        "p",
        RunStatus::Succeeded,
        at(22, 3),
    );
    assert!(evaluate(&child, &t, registered_at(), at(22, 3), &[r])
        .firing()
        .is_some());
    let elsewhere = run(
        &pipeline(A, "same-account-parent"),
        "p",
        RunStatus::Succeeded,
        at(22, 3),
    );
    assert_eq!(
        evaluate(&child, &t, registered_at(), at(22, 3), &[elsewhere]).decision,
        Decision::Wait
    );
}

#[test]
fn the_trigger_id_is_stable_and_documented() {
    let x = pipeline(C, "pipeline-x");
    let consumed = vec![
        run(
            &pipeline(A, "listings"),
            "l-22",
            RunStatus::Succeeded,
            at(22, 3),
        ),
        run(
            &pipeline(B, "searches"),
            "s-22",
            RunStatus::Succeeded,
            at(22, 5),
        ),
    ];
    // Pinned: a change of the hash input would re-fire claimed triggers after an upgrade.
    assert_eq!(TriggerId::of(&x, &consumed).as_str(), expected_scout24_id());
    let reversed: Vec<RunRef> = consumed.iter().rev().cloned().collect();
    assert_eq!(TriggerId::of(&x, &reversed), TriggerId::of(&x, &consumed));
    assert_ne!(
        TriggerId::of(&pipeline(C, "pipeline-y"), &consumed),
        TriggerId::of(&x, &consumed)
    );
}

/// SHA-256 of the documented input, computed independently of `TriggerId::of` with the same
/// layout written out by hand.
fn expected_scout24_id() -> String {
    let input = format!(
        "baton-trigger-v1\n{C}:{REGION}:pipeline-x\narn:aws:states:{REGION}:{A}:execution:listings:l-22\tSUCCEEDED\t{}\narn:aws:states:{REGION}:{B}:execution:searches:s-22\tSUCCEEDED\t{}\n",
        at(22, 3).0,
        at(22, 5).0
    );
    let digest = Sha256::digest(input.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn explanation_serializes_for_tools() {
    let x = pipeline(C, "pipeline-x");
    let e = evaluate(&x, &scout24(), registered_at(), at(22, 3), &[]);
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["decision"]["decision"], "wait");
    assert_eq!(json["explanation"]["kind"], "allOf");
    assert_eq!(
        json["explanation"]["entries"][0]["outcome"],
        "noRunSinceCursor"
    );
    let back: Evaluation = serde_json::from_value(json).unwrap();
    assert_eq!(back, e);
}

// ---------------------------------------------------------------------------------------------
// Properties. A small world: three parents, a few statuses, hours 0..48, random trees.

const PARENTS: [&str; 3] = ["p0", "p1", "p2"];
const STATUSES: [RunStatus; 4] = [
    RunStatus::Running,
    RunStatus::Succeeded,
    RunStatus::Failed,
    RunStatus::TimedOut,
];

fn parent_id(i: usize) -> PipelineId {
    pipeline(A, PARENTS[i])
}

fn arb_leaf() -> impl Strategy<Value = Condition> {
    (
        0..PARENTS.len(),
        proptest::sample::subsequence(STATUSES.to_vec(), 1..=2),
    )
        .prop_map(|(p, statuses)| {
            Condition::Leaf(Leaf {
                name: PARENTS[p].to_owned(),
                account: Some(A.to_owned()),
                region: None,
                status: statuses.into_iter().collect(),
            })
        })
}

fn arb_group_from(entry: BoxedStrategy<Condition>) -> impl Strategy<Value = Group> {
    let block = proptest::collection::vec(entry, 1..=3);
    (
        proptest::option::of(block.clone()),
        proptest::option::of(block.clone()),
        any::<bool>(),
        proptest::option::of((block, 1usize..=3)),
        proptest::option::weighted(0.3, 1i64..30),
    )
        .prop_filter("a group has a block", |(a, b, _, k, _)| {
            a.is_some() || b.is_some() || k.is_some()
        })
        .prop_map(|(all_of, any_of, or, k_of, within)| {
            let within = within.map(Span::hours);
            match k_of {
                // `atLeast` is a group of its own (validation refuses it beside allOf/anyOf).
                Some((of, k)) if all_of.is_none() && any_of.is_none() || k == 3 => Group {
                    at_least: Some(AtLeast {
                        count: k.min(of.len()),
                        of,
                    }),
                    within,
                    ..Group::default()
                },
                _ if all_of.is_none() && any_of.is_none() => Group {
                    all_of: vec![],
                    any_of: vec![],
                    ..Group::default()
                },
                _ => Group {
                    all_of: all_of.unwrap_or_default(),
                    any_of: any_of.unwrap_or_default(),
                    operator: if or { Operator::Or } else { Operator::And },
                    at_least: None,
                    within,
                },
            }
        })
        .prop_filter("a group has a block", |g| {
            g.at_least.is_some() || !g.all_of.is_empty() || !g.any_of.is_empty()
        })
}

fn arb_trigger() -> impl Strategy<Value = Trigger> {
    let condition = arb_leaf().prop_recursive(3, 12, 3, |inner| {
        arb_group_from(inner.boxed()).prop_map(Condition::Group)
    });
    arb_group_from(condition.boxed()).prop_map(|executions| Trigger {
        executions,
        align_on: None,
    })
}

fn arb_runs() -> impl Strategy<Value = Vec<RunRef>> {
    proptest::collection::vec(
        (0..PARENTS.len(), 0..STATUSES.len(), 0i64..48, 0u8..4),
        0..12,
    )
    .prop_map(|rows| {
        rows.into_iter()
            .map(|(p, s, hour, exec)| {
                run(
                    &parent_id(p),
                    &format!("e{exec}"),
                    STATUSES[s],
                    Timestamp(at(20, 0).0 + Span::hours(hour).0),
                )
            })
            .collect()
    })
}

/// An independent reading of the rules: does the condition hold over the runs that qualify?
/// `qualifying(leaf, bounds)`: whether the leaf has a run no older than every bound above it.
fn holds_brute_force(
    group: &Group,
    bounds: &[Span],
    qualifying: &dyn Fn(&Leaf, &[Span]) -> bool,
) -> bool {
    let bounds: Vec<Span> = bounds.iter().copied().chain(group.within).collect();
    let entry = |c: &Condition| match c {
        Condition::Leaf(l) => qualifying(l, &bounds),
        Condition::Group(g) => holds_brute_force(g, &bounds, qualifying),
    };
    if let Some(k) = &group.at_least {
        return k.of.iter().filter(|c| entry(c)).count() >= k.count;
    }
    let all = (!group.all_of.is_empty()).then(|| group.all_of.iter().all(entry));
    let any = (!group.any_of.is_empty()).then(|| group.any_of.iter().any(entry));
    match (all, any) {
        (Some(a), Some(b)) if group.operator == Operator::And => a && b,
        (Some(a), Some(b)) => a || b,
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => false,
    }
}

fn qualifies(
    r: &RunRef,
    leaf: &Leaf,
    child: &PipelineId,
    cursor: Timestamp,
    now: Timestamp,
    bounds: &[Span],
) -> bool {
    r.pipeline == leaf.parent(child)
        && leaf.status.contains(&r.status)
        && r.status_time > cursor
        && bounds.iter().all(|w| now.0 - r.status_time.0 <= w.0)
}

/// Every leaf with the bounds of the groups above it.
fn bounded_leaves<'a>(group: &'a Group, bounds: &[Span], out: &mut Vec<(&'a Leaf, Vec<Span>)>) {
    let bounds: Vec<Span> = bounds.iter().copied().chain(group.within).collect();
    for c in group
        .all_of
        .iter()
        .chain(&group.any_of)
        .chain(group.at_least.iter().flat_map(|k| &k.of))
    {
        match c {
            Condition::Leaf(l) => out.push((l, bounds.clone())),
            Condition::Group(g) => bounded_leaves(g, &bounds, out),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn fires_exactly_when_the_tree_holds_over_runs_newer_than_the_cursor(
        t in arb_trigger(), runs in arb_runs(), cursor_h in 0i64..48, now_h in 24i64..60,
    ) {
        let child = pipeline(C, "child");
        let cursor = Timestamp(at(20, 0).0 + Span::hours(cursor_h).0);
        let now = Timestamp(at(20, 0).0 + Span::hours(now_h).0);
        let e = evaluate(&child, &t, cursor, now, &runs);
        let expected = holds_brute_force(&t.executions, &[], &|leaf: &Leaf, bounds: &[Span]| {
            runs.iter().any(|r| qualifies(r, leaf, &child, cursor, now, bounds))
        });
        prop_assert_eq!(e.firing().is_some(), expected);
        if let Some(f) = e.firing() {
            prop_assert!(!f.consumed.is_empty());
            let mut leaves = Vec::new();
            bounded_leaves(&t.executions, &[], &mut leaves);
            for r in &f.consumed {
                prop_assert!(runs.contains(r), "consumed run {:?} was not given", r);
                // Each consumed run qualifies for some leaf under that leaf's bounds.
                prop_assert!(leaves.iter().any(|(l, b)| qualifies(r, l, &child, cursor, now, b)));
            }
            prop_assert!(f.cursor_after > cursor);
        }
    }

    #[test]
    fn after_a_firing_the_same_runs_never_fire_again(
        t in arb_trigger(), runs in arb_runs(), cursor_h in 0i64..48, now_h in 24i64..60, later_h in 0i64..24,
    ) {
        let child = pipeline(C, "child");
        let cursor = Timestamp(at(20, 0).0 + Span::hours(cursor_h).0);
        let now = Timestamp(at(20, 0).0 + Span::hours(now_h).0);
        if let Some(f) = evaluate(&child, &t, cursor, now, &runs).firing() {
            let again = evaluate(&child, &t, f.cursor_after, now.plus(Span::hours(later_h)), &runs);
            prop_assert_eq!(&again.decision, &Decision::Wait, "{}", again);
        }
    }

    #[test]
    fn the_decision_does_not_depend_on_the_order_or_repetition_of_runs(
        t in arb_trigger(), runs in arb_runs(), seed in any::<u64>(), cursor_h in 0i64..48,
    ) {
        let child = pipeline(C, "child");
        let cursor = Timestamp(at(20, 0).0 + Span::hours(cursor_h).0);
        let now = at(22, 12);
        let mut shuffled = runs.clone();
        shuffled.extend(runs.iter().take(3).cloned()); // duplicate deliveries
        // Deterministic Fisher-Yates from the seed.
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(evaluate(&child, &t, cursor, now, &runs), evaluate(&child, &t, cursor, now, &shuffled));
    }

    #[test]
    fn the_trigger_id_depends_only_on_child_and_consumed_runs(
        t in arb_trigger(), runs in arb_runs(), noise in arb_runs(), cursor_h in 0i64..24,
    ) {
        let child = pipeline(C, "child");
        let cursor = Timestamp(at(20, 0).0 + Span::hours(cursor_h).0);
        let now = at(22, 12);
        if let Some(f) = evaluate(&child, &t, cursor, now, &runs).firing() {
            prop_assert_eq!(&f.trigger_id, &TriggerId::of(&child, &f.consumed));
            let mut reversed = f.consumed.clone();
            reversed.reverse();
            prop_assert_eq!(&f.trigger_id, &TriggerId::of(&child, &reversed));
            // Runs of other pipelines and runs at or before the cursor change nothing.
            let mut with_noise = runs.clone();
            for mut r in noise {
                if r.status_time > cursor {
                    r.pipeline.name = format!("unrelated-{}", r.pipeline.name);
                    r.execution_arn = format!("{}-unrelated", r.execution_arn);
                }
                with_noise.push(r);
            }
            let e2 = evaluate(&child, &t, cursor, now, &with_noise);
            let f2 = e2.firing();
            prop_assert!(f2.is_some());
            if let Some(f2) = f2 {
                // Noise at or before the cursor never counts; noise of other pipelines never does.
                prop_assert_eq!(&f2.trigger_id, &f.trigger_id);
            }
        }
    }
}
