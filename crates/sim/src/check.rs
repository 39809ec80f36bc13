//! The invariants checked once a schedule is quiet, against what really happened and the
//! brute-force oracle.

use std::collections::{BTreeMap, BTreeSet};

use baton_core::{DependencyGraph, PipelineId, Run, RunKey, RunStatus, Timestamp};
use baton_testbed::memory::Memory;
use baton_testbed::oracle;

use crate::faults::clock;
use crate::truth::Truth;
use crate::world::RUNAWAY;

/// Every end-of-schedule invariant; violations go into `truth`.
pub fn at_rest(truth: &mut Truth, mem: &Memory, now: i64, leftovers: (usize, usize, usize)) {
    if truth.executions > RUNAWAY {
        truth.violation(
            "runaway",
            format!("more than {RUNAWAY} executions: pipelines keep starting each other"),
            vec![],
        );
        registry_has_no_cycle(truth, mem);
        return;
    }
    if !truth.violations.is_empty() {
        return;
    }
    let (tasks, queued, dead) = leftovers;
    if tasks + queued + dead > 0 {
        truth.violation(
            "not quiet",
            format!("{tasks} invocations running, {queued} deliveries queued, {dead} in the DLQ after the faults stopped"),
            vec![],
        );
    }
    nothing_pending(truth, mem);
    every_claim_reached_its_bus(truth, mem);
    no_run_missing(truth, mem);
    registry_has_no_cycle(truth, mem);
    nothing_left_to_fire(truth, mem, now);
}

fn nothing_pending(truth: &mut Truth, mem: &Memory) {
    for ((child, key), item) in mem.ledger.cursors() {
        if let Some(id) = &item.pending_trigger_id {
            let key = key.map_or(String::new(), |k| format!(" (key {k})"));
            truth.violation(
                "pending trigger",
                format!("{child}{key} ends with trigger {id} pending: it can never fire again"),
                vec![
                    child.name.clone(),
                    id.as_str().get(..8).unwrap_or("").to_owned(),
                ],
            );
        }
    }
}

fn every_claim_reached_its_bus(truth: &mut Truth, mem: &Memory) {
    let claims: Vec<(PipelineId, String)> = mem
        .ledger
        .claims()
        .into_keys()
        .map(|(child, id)| (child, id.0))
        .collect();
    for (child, id) in &claims {
        if truth.sends.contains_key(id) {
            continue;
        }
        // A trigger of a pipeline deleted after its claim is dropped with the pipeline.
        let claimed_at = truth.claims.get(id).map_or(i64::MAX, |(_, at)| *at);
        let deleted_since = truth
            .deletions
            .get(child)
            .is_some_and(|d| d.iter().any(|t| *t > claimed_at));
        if !deleted_since {
            truth.violation(
                "trigger never sent",
                format!("trigger {id} of {child} was claimed but never reached the child's bus"),
                vec![child.name.clone(), id.get(..8).unwrap_or("").to_owned()],
            );
        }
    }
    let claimed: BTreeSet<&String> = claims.iter().map(|(_, id)| id).collect();
    let strays: Vec<String> = truth
        .sends
        .keys()
        .filter(|id| !claimed.contains(id))
        .cloned()
        .collect();
    for id in strays {
        truth.violation(
            "trigger without claim",
            format!("trigger {id} started an execution but was never claimed"),
            vec![id.get(..8).unwrap_or("").to_owned()],
        );
    }
}

fn no_run_missing(truth: &mut Truth, mem: &Memory) {
    let logged: BTreeSet<(String, RunStatus)> = mem
        .run_log
        .all_runs()
        .into_iter()
        .map(|r| (r.execution_arn, r.status))
        .collect();
    let missing: Vec<(String, RunStatus, String)> = truth
        .runs
        .iter()
        .filter(|r| !logged.contains(&(r.execution_arn.clone(), r.status)))
        .map(|r| (r.execution_name.clone(), r.status, r.pipeline.name.clone()))
        .collect();
    for (name, status, pipeline) in missing {
        truth.violation(
            "run missing from the log",
            format!("{pipeline} {name} {status} was emitted but is not in the run log"),
            vec![name],
        );
    }
}

fn registry_has_no_cycle(truth: &mut Truth, mem: &Memory) {
    let mut graph = DependencyGraph::new();
    for r in mem.registry.all() {
        let parents: BTreeSet<PipelineId> = r.parents().into_keys().collect();
        if let Err(cycle) = graph.set_parents(&r.pipeline, &parents) {
            truth.violation(
                "cycle registered",
                format!("the registry holds a {cycle}"),
                vec![r.pipeline.name.clone()],
            );
            return;
        }
    }
}

/// The oracle, over every run that happened and each child's final cursor (never below its
/// floor), finds nothing that should still fire: every firing it expects was made.
fn nothing_left_to_fire(truth: &mut Truth, mem: &Memory, now: i64) {
    let cursors: BTreeMap<(PipelineId, Option<RunKey>), i64> = mem
        .ledger
        .cursors()
        .into_iter()
        .map(|(slot, item)| (slot, item.cursor.0))
        .collect();
    // The decision depends only on the runs in the log: each run with the key its pipeline's
    // registration made of its input when it was recorded.
    let recorded: BTreeMap<(String, RunStatus), Option<RunKey>> = mem
        .run_log
        .all_runs()
        .into_iter()
        .map(|r| ((r.execution_arn, r.status), r.run_key))
        .collect();
    let keyed: Vec<Run> = truth
        .runs
        .iter()
        .map(|r| Run {
            run_key: recorded
                .get(&(r.execution_arn.clone(), r.status))
                .cloned()
                .flatten(),
            ..r.clone()
        })
        .collect();
    let runs: Vec<&Run> = keyed.iter().collect();
    let keys = oracle::keys(&runs);
    let mut missed = Vec::new();
    for r in mem.registry.all() {
        let Some(trigger) = &r.definition.trigger else {
            continue;
        };
        let child = &r.pipeline;
        let floor = truth.floor(child);
        let cursor_of = |key: Option<RunKey>| {
            cursors
                .get(&(child.clone(), key))
                .copied()
                .unwrap_or(i64::MIN)
                .max(floor)
        };
        // Aligned: every key any run has, each with its own cursor.
        let decisions: Vec<(Option<String>, i64, Option<oracle::Expected>)> = if trigger
            .is_aligned()
        {
            keys.iter()
                .map(|k| {
                    let cursor = cursor_of(Some(RunKey(k.clone())));
                    let expected = oracle::decide_key(
                        child,
                        trigger,
                        &runs,
                        k,
                        Timestamp(floor),
                        Timestamp(cursor),
                        Timestamp(now),
                    );
                    (Some(k.clone()), cursor, expected)
                })
                .collect()
        } else {
            let cursor = cursor_of(None);
            let expected = oracle::decide(child, trigger, &runs, Timestamp(cursor), Timestamp(now));
            vec![(None, cursor, expected)]
        };
        for (key, cursor, expected) in decisions {
            let Some(expected) = expected else { continue };
            let used: Vec<String> = expected
                .consumed
                .iter()
                .map(|(arn, status, t)| {
                    format!(
                        "{} {status} at {}",
                        arn.rsplit(':').next().unwrap_or(arn),
                        clock(*t)
                    )
                })
                .collect();
            let shown = match key {
                Some(k) => format!("{child} (key {k})"),
                None => child.to_string(),
            };
            missed.push((shown, child.name.clone(), cursor, used));
        }
    }
    for (child, name, cursor, used) in missed {
        truth.violation(
            "firing missed",
            format!(
                "{child} should have fired on [{}] (cursor {}) but never did",
                used.join(", "),
                clock(cursor)
            ),
            vec![name],
        );
    }
}
