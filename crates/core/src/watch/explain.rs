//! Why a pipeline is late, in one line per cause, from the same evaluation `baton explain` shows.

use crate::deadlines::Deadlines;
use crate::evaluator::{Decision, Explanation, LeafOutcome};
use crate::pipeline::PipelineId;
use crate::run::{Run, RunRef};
use crate::status::RunStatus;
use crate::trigger::Inspection;

/// Why `inspection`'s pipeline has not started, and the parents it waits on. Times are shown in
/// the deadline's time zone.
pub fn start_reasons(
    inspection: &Inspection,
    deadlines: &Deadlines,
) -> (Vec<String>, Vec<PipelineId>) {
    if let Some(pending) = inspection
        .cursor_state
        .as_ref()
        .and_then(|s| s.pending.as_ref())
    {
        let line = format!(
            "its trigger {} was claimed at {} and is waiting to be delivered",
            pending.trigger_id,
            deadlines.local_time(pending.fired_at)
        );
        return (vec![line], Vec::new());
    }
    let Some(evaluation) = &inspection.evaluation else {
        return (
            vec!["it has no trigger condition in baton and no run has started today".to_owned()],
            Vec::new(),
        );
    };
    if let Decision::Fire(firing) = &evaluation.decision {
        let line = format!(
            "its condition holds ({}); baton starts it on the next upstream event or watchdog run",
            firing.reason()
        );
        return (vec![line], Vec::new());
    }
    let mut lines = Vec::new();
    let mut parents = Vec::new();
    waiting_leaves(&evaluation.explanation, &mut |parent, statuses, outcome| {
        lines.push(leaf_line(parent, statuses, outcome, deadlines));
        if !parents.contains(parent) {
            parents.push(parent.clone());
        }
    });
    (lines, parents)
}

/// Why a pipeline has not succeeded yet today: its latest run of the day (`runs` started today).
pub fn finish_reasons(runs: &[Run], deadlines: &Deadlines) -> Vec<String> {
    let latest = runs.iter().max_by_key(|r| (r.started_at, r.precedence()));
    match latest {
        None => vec!["no run has started today".to_owned()],
        Some(run) if run.status == RunStatus::Running => vec![format!(
            "run {} has been running since {}",
            run.execution_name,
            deadlines.local_time(run.started_at)
        )],
        Some(run) => {
            let mut line = format!(
                "latest run {} {} at {}",
                run.execution_name,
                run.status,
                deadlines.local_time(run.status_time())
            );
            if let Some(error) = &run.error {
                line.push_str(&format!(" ({error})"));
            }
            vec![line]
        }
    }
}

/// Calls `found` for every leaf that does not hold, in the condition's order.
fn waiting_leaves(
    explanation: &Explanation,
    found: &mut dyn FnMut(&PipelineId, &[RunStatus], &LeafOutcome),
) {
    match explanation {
        Explanation::Leaf {
            parent,
            statuses,
            outcome,
        } => {
            if !matches!(**outcome, LeafOutcome::Holds { .. }) {
                found(parent, statuses, outcome);
            }
        }
        Explanation::AllOf { entries, .. }
        | Explanation::AnyOf { entries, .. }
        | Explanation::AtLeast { entries, .. } => {
            entries.iter().for_each(|e| waiting_leaves(e, found))
        }
        Explanation::Operator { blocks, .. } => {
            blocks.iter().for_each(|e| waiting_leaves(e, found))
        }
    }
}

fn leaf_line(
    parent: &PipelineId,
    statuses: &[RunStatus],
    outcome: &LeafOutcome,
    deadlines: &Deadlines,
) -> String {
    let wanted: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
    let head = format!("waiting on {} ({})", parent.name, parent.account);
    let run_line = |run: &RunRef| {
        format!(
            "latest run {} {} at {}",
            run.execution_name(),
            run.status,
            deadlines.local_time(run.status_time)
        )
    };
    match outcome {
        LeafOutcome::Holds { run } => format!("{head}: holds with {}", run_line(run)),
        LeafOutcome::NoRunSinceCursor => {
            format!(
                "{head}: no run since it last started this pipeline (wants {})",
                wanted.join("|")
            )
        }
        LeafOutcome::OtherStatus { run } => format!("{head}: {}", run_line(run)),
        LeafOutcome::TooOld { run, within, .. } => {
            format!("{head}: {} is older than `within` {within}", run_line(run))
        }
    }
}
