//! An independent, brute-force reading of DESIGN "Trigger semantics", written from the design and
//! not from core's evaluator, to check the replay: for a sampled child, walk every run of its
//! parents in the order they were recorded, decide at every point where the child is woken, and
//! say whether (and with which runs) it must fire there.

use std::collections::BTreeSet;

use baton_core::{
    Condition, Group, Leaf, Operator, PipelineId, Run, RunStatus, Timestamp, Trigger,
};

/// A run as a firing consumes it: (execution ARN, status, status time).
pub type Used = (String, RunStatus, i64);

/// A firing the oracle expects: the runs used and where the cursor goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub consumed: BTreeSet<Used>,
    pub cursor_after: i64,
}

fn time(run: &Run) -> i64 {
    match run.status {
        RunStatus::Running => run.started_at.0,
        _ => run.stopped_at.map_or(run.started_at.0, |t| t.0),
    }
}

struct View<'a> {
    child: &'a PipelineId,
    runs: &'a [&'a Run],
    /// Runs at or before this never count: the cursor, or (aligned) the floor.
    after: i64,
    now: i64,
    /// Aligned: only runs with this key count.
    key: Option<&'a str>,
}

impl View<'_> {
    /// The leaf's latest qualifying run under the `within` bounds of every group above it.
    fn leaf(&self, leaf: &Leaf, bounds: &[i64]) -> Option<Used> {
        let account = leaf.account.as_deref().unwrap_or(&self.child.account);
        let region = leaf.region.as_deref().unwrap_or(&self.child.region);
        self.runs
            .iter()
            .filter(|r| {
                r.pipeline.account == account
                    && r.pipeline.region == region
                    && r.pipeline.name == leaf.name
                    && leaf.status.contains(&r.status)
            })
            .filter(|r| {
                self.key
                    .is_none_or(|k| r.run_key.as_ref().is_some_and(|rk| rk.as_str() == k))
            })
            .map(|r| (time(r), r.execution_arn.clone(), r.status))
            .filter(|(t, _, _)| *t > self.after)
            .filter(|(t, _, _)| bounds.iter().all(|w| self.now - t <= *w))
            .max()
            .map(|(t, arn, status)| (arn, status, t))
    }

    fn entry(&self, entry: &Condition, bounds: &[i64]) -> (bool, Vec<Used>) {
        match entry {
            Condition::Leaf(leaf) => match self.leaf(leaf, bounds) {
                Some(used) => (true, vec![used]),
                None => (false, Vec::new()),
            },
            Condition::Group(group) => self.group(group, bounds),
        }
    }

    /// Whether the group holds, and the runs of the leaves that make it hold.
    fn group(&self, group: &Group, bounds: &[i64]) -> (bool, Vec<Used>) {
        let bounds: Vec<i64> = bounds
            .iter()
            .copied()
            .chain(group.within.map(|w| w.0))
            .collect();
        let holding = |entries: &[Condition]| -> Vec<(bool, Vec<Used>)> {
            entries.iter().map(|e| self.entry(e, &bounds)).collect()
        };
        if let Some(k) = &group.at_least {
            let of = holding(&k.of);
            let holds = of.iter().filter(|(h, _)| *h).count() >= k.count;
            let used = of.into_iter().filter(|(h, _)| *h).flat_map(|(_, u)| u);
            return (holds, if holds { used.collect() } else { Vec::new() });
        }
        let all = holding(&group.all_of);
        let any = holding(&group.any_of);
        let all_holds = all.iter().all(|(h, _)| *h);
        let any_holds = any.iter().any(|(h, _)| *h);
        let all_used: Vec<Used> = all.into_iter().flat_map(|(_, u)| u).collect();
        let any_used: Vec<Used> = any
            .into_iter()
            .filter(|(h, _)| *h)
            .flat_map(|(_, u)| u)
            .collect();
        match (group.all_of.is_empty(), group.any_of.is_empty()) {
            (false, true) => (all_holds, all_used),
            (true, false) => (any_holds, any_used),
            (true, true) => (false, Vec::new()),
            (false, false) => match group.operator {
                Operator::And => (all_holds && any_holds, [all_used, any_used].concat()),
                Operator::Or => {
                    let mut used = Vec::new();
                    if all_holds {
                        used.extend(all_used);
                    }
                    if any_holds {
                        used.extend(any_used);
                    }
                    (all_holds || any_holds, used)
                }
            },
        }
    }
}

/// The firing `trigger` makes for `child` at `now` over the runs visible then, from `cursor`.
/// For an aligned trigger, use [`decide_key`].
pub fn decide(
    child: &PipelineId,
    trigger: &Trigger,
    runs: &[&Run],
    cursor: Timestamp,
    now: Timestamp,
) -> Option<Expected> {
    let view = View {
        child,
        runs,
        after: cursor.0,
        now: now.0,
        key: None,
    };
    conclude(&view, trigger, cursor.0)
}

/// DESIGN "Alignment": the firing an aligned `trigger` makes for `child` and run key `key` at
/// `now`: the tree over the runs of key `key` later than `floor`, firing when it holds and a
/// run it uses is later than `cursor`, the child's cursor for the key.
pub fn decide_key(
    child: &PipelineId,
    trigger: &Trigger,
    runs: &[&Run],
    key: &str,
    floor: Timestamp,
    cursor: Timestamp,
    now: Timestamp,
) -> Option<Expected> {
    let view = View {
        child,
        runs,
        after: floor.0,
        now: now.0,
        key: Some(key),
    };
    conclude(&view, trigger, cursor.0.max(floor.0))
}

/// The run keys among `runs` (for checking every key of an aligned child).
pub fn keys(runs: &[&Run]) -> BTreeSet<String> {
    runs.iter()
        .filter_map(|r| r.run_key.as_ref().map(|k| k.as_str().to_owned()))
        .collect()
}

fn conclude(view: &View<'_>, trigger: &Trigger, cursor: i64) -> Option<Expected> {
    let (holds, used) = view.group(&trigger.executions, &[]);
    if !holds {
        return None;
    }
    let consumed: BTreeSet<Used> = used.into_iter().collect();
    let cursor_after = consumed.iter().map(|(_, _, t)| *t).max()?;
    (cursor_after > cursor).then_some(Expected {
        consumed,
        cursor_after,
    })
}

/// Whether a run of `parent` at `status` wakes a child with this trigger: some leaf names the
/// parent and wants the status.
pub fn wakes(
    child: &PipelineId,
    trigger: &Trigger,
    parent: &PipelineId,
    status: RunStatus,
) -> bool {
    trigger.executions.leaves().iter().any(|leaf| {
        leaf.name == parent.name
            && leaf.account.as_deref().unwrap_or(&child.account) == parent.account
            && leaf.region.as_deref().unwrap_or(&child.region) == parent.region
            && leaf.status.contains(&status)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_core::PipelineDefinition;

    fn run(name: &str, execution: &str, status: RunStatus, at: i64) -> Run {
        Run {
            pipeline: PipelineId::new("111111111111", "eu-west-1", name).unwrap(),
            execution_arn: format!(
                "arn:aws:states:eu-west-1:111111111111:execution:{name}:{execution}"
            ),
            execution_name: execution.to_owned(),
            status,
            started_at: Timestamp(at - 10),
            stopped_at: Some(Timestamp(at)),
            error: None,
            cause: None,
            trigger_id: None,
            run_key: None,
        }
    }

    #[test]
    fn fires_on_fresh_runs_only_and_moves_the_cursor_to_the_latest_used() {
        let child = PipelineId::new("111111111111", "eu-west-1", "x").unwrap();
        let definition = PipelineDefinition::from_yaml(
            "trigger:\n  executions:\n    allOf:\n      - {name: a, status: [SUCCEEDED]}\n      - {name: b, status: [SUCCEEDED]}\n",
        )
        .unwrap();
        let trigger = definition.trigger.unwrap();
        let a = run("a", "a1", RunStatus::Succeeded, 100);
        let b_old = run("b", "b0", RunStatus::Succeeded, 40);
        let b = run("b", "b1", RunStatus::Succeeded, 120);
        let failed = run("b", "b2", RunStatus::Failed, 130);
        // b's only success is at or before the cursor: wait.
        assert_eq!(
            decide(
                &child,
                &trigger,
                &[&a, &b_old],
                Timestamp(50),
                Timestamp(200)
            ),
            None
        );
        let fired = decide(
            &child,
            &trigger,
            &[&a, &b_old, &b, &failed],
            Timestamp(50),
            Timestamp(200),
        )
        .unwrap();
        assert_eq!(fired.cursor_after, 120);
        assert_eq!(fired.consumed.len(), 2);
        // The same runs never fire twice.
        assert_eq!(
            decide(&child, &trigger, &[&a, &b], Timestamp(120), Timestamp(200)),
            None
        );
        assert!(wakes(&child, &trigger, &b.pipeline, RunStatus::Succeeded));
        assert!(!wakes(&child, &trigger, &b.pipeline, RunStatus::Failed));
    }
}
