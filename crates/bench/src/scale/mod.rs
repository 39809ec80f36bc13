//! The scale replay: a generated organisation (by default 100,000 pipelines over 1,000 accounts)
//! and one simulated day of its runs, every status event going through what run-log-writer and
//! trigger-manager do (record once, then core's flow: registry, evaluator, ledger, bus) over an
//! in-memory store. Roots run on a schedule; children run when their trigger is sent; some runs
//! fail and some failures are re-run; a few events arrive twice or out of order.
//!
//! Runs carry run keys: a root's run is for the day (a fifth of the roots run again later, half of
//! those a backfill of the day before), a re-run keeps its day, and a child started by an aligned
//! trigger runs for the trigger's key (as `runKey: $.runKey` reads it from the input).
//!
//! Afterwards an independent brute-force evaluation (`baton_testbed::oracle`) checks a sample of children:
//! each fired exactly at the points where its condition held (aligned children: per key, with a
//! cursor per key), with the runs it should consume.

pub mod org;

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};
use std::time::{Duration, Instant};

use baton_core::ports::{Recorded, RunLog};
use baton_core::trigger::{self, FlowSettings, Ports, Step};
use baton_core::{DependencyGraph, PipelineId, Run, RunKey, RunStatus, Timestamp};

use baton_testbed::memory::Memory;
use baton_testbed::oracle;
use org::{Organisation, Rng};

/// What to generate.
#[derive(Clone, Debug)]
pub struct ScaleSpec {
    pub pipelines: usize,
    pub accounts: usize,
    /// Children checked against the brute-force evaluation.
    pub sample: usize,
    pub seed: u64,
}

impl Default for ScaleSpec {
    fn default() -> ScaleSpec {
        ScaleSpec {
            pipelines: 100_000,
            accounts: 1_000,
            sample: 2_000,
            seed: 0xBA70_2026,
        }
    }
}

/// What the replay measured.
#[derive(Clone, Debug, Default)]
pub struct ScaleReport {
    pub pipelines: usize,
    pub accounts: usize,
    pub edges: usize,
    pub registrations: usize,
    pub build: Duration,
    pub events: u64,
    pub duplicates: u64,
    pub runs: u64,
    pub failures: u64,
    pub reruns: u64,
    pub decisions: u64,
    pub triggers: u64,
    pub replay: Duration,
    pub decision_p50: Duration,
    pub decision_p99: Duration,
    pub decision_max: Duration,
    pub store_requests_per_event: f64,
    pub max_children: usize,
    pub checked_children: usize,
    pub checked_points: u64,
    pub checked_firings: u64,
    /// Of them, firings of aligned children, for one run key.
    pub checked_key_firings: u64,
    pub mismatches: Vec<String>,
}

impl ScaleReport {
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.replay.as_secs_f64().max(1e-9)
    }
}

/// Midnight UTC, 2026-11-22: the simulated day.
const DAY_START: i64 = 1_795_305_600_000;
const DAY: i64 = 86_400_000;
const MINUTE: i64 = 60_000;

/// An event due at `at` (delivery time), ordered by time then creation.
struct Due {
    at: i64,
    seq: u64,
    run: Run,
}

impl PartialEq for Due {
    fn eq(&self, other: &Due) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Due {}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Due) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Due {
    fn cmp(&self, other: &Due) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

struct Day {
    rng: Rng,
    queue: BinaryHeap<Reverse<Due>>,
    seq: u64,
    executions: u64,
    report: ScaleReport,
}

impl Day {
    fn push(&mut self, at: i64, run: Run) {
        self.seq += 1;
        self.queue.push(Reverse(Due {
            at,
            seq: self.seq,
            run,
        }));
    }

    /// Starts an execution of `pipeline` at `start`: its RUNNING event and its final event, each
    /// delivered a little later (sometimes twice, sometimes RUNNING after the final status).
    fn start(
        &mut self,
        pipeline: &PipelineId,
        start: i64,
        trigger_id: Option<String>,
        run_key: Option<RunKey>,
    ) {
        if start >= DAY_START + DAY {
            return;
        }
        self.executions += 1;
        self.report.runs += 1;
        let name = format!("run-{}", self.executions);
        let execution_arn = format!(
            "arn:aws:states:{}:{}:execution:{}:{name}",
            pipeline.region, pipeline.account, pipeline.name
        );
        let stop = start + self.rng.between(MINUTE, 90 * MINUTE);
        let status = match self.rng.below(1000) {
            0..=49 => RunStatus::Failed,
            50..=59 => RunStatus::TimedOut,
            60..=64 => RunStatus::Aborted,
            _ => RunStatus::Succeeded,
        };
        let running = Run {
            pipeline: pipeline.clone(),
            execution_arn,
            execution_name: name,
            status: RunStatus::Running,
            started_at: Timestamp(start),
            stopped_at: None,
            error: None,
            cause: None,
            trigger_id,
            run_key: run_key.clone(),
        };
        let mut finished = running.clone();
        finished.status = status;
        finished.stopped_at = Some(Timestamp(stop));
        if status.is_failure() {
            finished.error = Some("States.TaskFailed".to_owned());
            self.report.failures += 1;
            // Someone fixes it and re-runs it, which must fire the children without anyone
            // touching them.
            if self.rng.chance(0.6) {
                let rerun = stop + self.rng.between(10 * MINUTE, 120 * MINUTE);
                self.report.reruns += 1;
                // The re-run is a new execution, started later from the queue.
                self.push(rerun, rerun_marker(pipeline, run_key));
            }
        }
        let running_at = if self.rng.chance(0.01) {
            stop + self.rng.between(1_000, MINUTE)
        } else {
            start + self.rng.between(50, 2_000)
        };
        let final_at = stop + self.rng.between(50, 2_000);
        for (at, run) in [(running_at, running), (final_at, finished)] {
            if self.rng.chance(0.02) {
                self.report.duplicates += 1;
                let again = at + self.rng.between(1_000, 2 * MINUTE);
                self.push(again, run.clone());
            }
            self.push(at, run);
        }
    }
}

/// A queue entry that means "start a re-run of this pipeline now" rather than a status event.
/// The re-run is for the same day as the run it fixes (`run_key`).
fn rerun_marker(pipeline: &PipelineId, run_key: Option<RunKey>) -> Run {
    Run {
        pipeline: pipeline.clone(),
        execution_arn: String::new(),
        execution_name: String::new(),
        status: RunStatus::PendingRedrive,
        started_at: Timestamp(0),
        stopped_at: None,
        error: None,
        cause: None,
        trigger_id: None,
        run_key,
    }
}

/// A sampled child's view of the replay, for the oracle.
#[derive(Default)]
struct Watch {
    /// (event number, decision time, firings made there: consumed runs and cursor after).
    decisions: Vec<(u64, i64, Vec<oracle::Expected>)>,
}

fn percentile(sorted: &[u64], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    Duration::from_nanos(sorted[i.min(sorted.len() - 1)])
}

/// Generates the organisation, replays its day and checks a sample.
pub fn run(spec: &ScaleSpec) -> anyhow::Result<ScaleReport> {
    let mut rng = Rng::new(spec.seed);
    let registered_at = Timestamp(DAY_START - DAY);
    let built = Instant::now();
    let org: Organisation = org::generate(spec.pipelines, spec.accounts, registered_at, &mut rng)?;
    // Registering goes through the cycle check, as cfn-responder's would.
    let mut graph = DependencyGraph::new();
    for (i, parents) in org.parents.iter().enumerate() {
        if parents.is_empty() {
            continue;
        }
        let set: BTreeSet<PipelineId> = parents.iter().map(|&p| org.pipelines[p].clone()).collect();
        graph
            .set_parents(&org.pipelines[i], &set)
            .map_err(|cycle| anyhow::anyhow!("the generated DAG has a cycle: {cycle}"))?;
    }
    let store = Memory::new(None);
    let mut triggers_of: HashMap<PipelineId, baton_core::Trigger> = HashMap::new();
    for registration in &org.registrations {
        if let Some(trigger) = &registration.definition.trigger {
            triggers_of.insert(registration.pipeline.clone(), trigger.clone());
        }
        store.registry.load(registration.clone());
    }
    let report = ScaleReport {
        pipelines: spec.pipelines,
        accounts: spec.accounts,
        edges: org.parents.iter().map(Vec::len).sum(),
        registrations: org.registrations.len(),
        build: built.elapsed(),
        max_children: org
            .pipelines
            .iter()
            .map(|p| graph.children(p).count())
            .max()
            .unwrap_or(0),
        ..ScaleReport::default()
    };

    // The sample, and the parents whose runs the oracle needs.
    let mut sampled: HashMap<PipelineId, Watch> = HashMap::new();
    let mut watched_parents: HashSet<PipelineId> = HashSet::new();
    while sampled.len() < spec.sample.min(org.registrations.len()) {
        let r = &org.registrations[rng.below(org.registrations.len() as u64) as usize];
        if sampled
            .insert(r.pipeline.clone(), Watch::default())
            .is_none()
        {
            watched_parents.extend(r.parents().into_keys());
        }
    }
    let mut recorded_runs: Vec<(u64, Run)> = Vec::new();

    let mut day = Day {
        rng: Rng::new(spec.seed ^ 0xDA7),
        queue: BinaryHeap::new(),
        seq: 0,
        executions: 0,
        report,
    };
    // Roots run on their schedule, a fifth of them twice a day.
    let today = RunKey("2026-11-22".to_owned());
    let yesterday = RunKey("2026-11-21".to_owned());
    for &i in &org.roots {
        let start = DAY_START + day.rng.between(0, 20 * 60 * MINUTE);
        day.start(&org.pipelines[i].clone(), start, None, Some(today.clone()));
        if day.rng.chance(0.2) {
            let again = DAY_START + day.rng.between(12 * 60 * MINUTE, 23 * 60 * MINUTE);
            let key = if day.rng.chance(0.5) {
                &yesterday
            } else {
                &today
            };
            day.start(&org.pipelines[i].clone(), again, None, Some(key.clone()));
        }
    }

    let settings = FlowSettings::with_default_bus("baton-pipelines");
    let ports: Ports<'_, _, _, _, _, _> = store.ports();
    let mut timings: Vec<u64> = Vec::new();
    let replay = Instant::now();
    let mut event_no = 0_u64;
    while let Some(Reverse(due)) = day.queue.pop() {
        if due.at >= DAY_START + DAY {
            break;
        }
        if due.run.execution_arn.is_empty() {
            day.start(&due.run.pipeline, due.at, None, due.run.run_key.clone());
            continue;
        }
        event_no += 1;
        let now = Timestamp(due.at);
        // One invocation per event, ending a minute after it starts.
        let invocation = trigger::Invocation::new(
            format!("replay-{event_no}"),
            now,
            now.plus(baton_core::Span::MINUTE),
            &settings,
        );
        let run = due.run;
        // run-log-writer: record once; only a first sighting is announced.
        let recorded = futures::executor::block_on(store.run_log.record(&run))?;
        if recorded == Recorded::AlreadyAnnounced {
            continue;
        }
        futures::executor::block_on(store.run_log.mark_announced(&run))?;
        if watched_parents.contains(&run.pipeline) {
            recorded_runs.push((event_no, run.clone()));
        }
        // trigger-manager: wake each child, timing each decision.
        let parent = run.reference();
        let children =
            futures::executor::block_on(trigger::children_to_wake(&store.registry, &parent))?;
        for child in &children {
            let started = Instant::now();
            let child_report = futures::executor::block_on(trigger::wake_child(
                &ports,
                child,
                parent.run_key.as_ref(),
                &invocation,
                &settings,
                None,
            ));
            timings.push(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
            day.report.decisions += 1;
            if let Some(e) = &child_report.error {
                anyhow::bail!("deciding {child} at {now}: {e}");
            }
            if let Some(watch) = sampled.get_mut(child) {
                let firings = child_report
                    .steps
                    .iter()
                    .filter_map(|s| match s {
                        Step::Evaluated(e) => e.firing().map(|f| oracle::Expected {
                            consumed: f
                                .consumed
                                .iter()
                                .map(|r| (r.execution_arn.clone(), r.status, r.status_time.0))
                                .collect(),
                            cursor_after: f.cursor_after.0,
                        }),
                        _ => None,
                    })
                    .collect();
                watch.decisions.push((event_no, now.0, firings));
            }
        }
        // The pipeline buses: each trigger starts its child's execution a few seconds later.
        // Trigger notices go to Slack, which the replay does not model.
        store.topic.take_published();
        for (_bus, trigger) in store.buses.take_sent() {
            day.report.triggers += 1;
            let start = due.at + day.rng.between(500, 5_000);
            day.start(
                &trigger.target.id(),
                start,
                Some(trigger.trigger_id.0.clone()),
                trigger.run_key.clone(),
            );
        }
    }
    let mut report = day.report;
    report.replay = replay.elapsed();
    report.events = event_no;
    report.store_requests_per_event = store.requests.count() as f64 / event_no.max(1) as f64;
    timings.sort_unstable();
    report.decision_p50 = percentile(&timings, 0.50);
    report.decision_p99 = percentile(&timings, 0.99);
    report.decision_max = percentile(&timings, 1.0);

    check_sample(
        &sampled,
        &triggers_of,
        &recorded_runs,
        registered_at,
        &mut report,
    );
    Ok(report)
}

fn mismatch(report: &mut ScaleReport, text: String) {
    if report.mismatches.len() < 20 {
        report.mismatches.push(text);
    } else if report.mismatches.len() == 20 {
        report.mismatches.push("(more not shown)".to_owned());
    }
}

/// Replays each sampled child's history through the oracle and compares.
fn check_sample(
    sampled: &HashMap<PipelineId, Watch>,
    triggers_of: &HashMap<PipelineId, baton_core::Trigger>,
    recorded_runs: &[(u64, Run)],
    registered_at: Timestamp,
    report: &mut ScaleReport,
) {
    for (child, watch) in sampled {
        let Some(trigger) = triggers_of.get(child) else {
            continue;
        };
        report.checked_children += 1;
        let parents: HashSet<PipelineId> = trigger
            .executions
            .leaves()
            .iter()
            .map(|l| l.parent(child))
            .collect();
        let mine: Vec<&(u64, Run)> = recorded_runs
            .iter()
            .filter(|(_, r)| parents.contains(&r.pipeline))
            .collect();
        // One cursor, or (aligned) one per run key.
        let mut cursors: HashMap<Option<RunKey>, Timestamp> = HashMap::new();
        let aligned = trigger.is_aligned();
        let mut decided = watch.decisions.iter().peekable();
        for (k, (event_no, run)) in mine.iter().enumerate() {
            if !oracle::wakes(child, trigger, &run.pipeline, run.status) {
                continue;
            }
            report.checked_points += 1;
            let Some((got_no, now, got)) = decided.next() else {
                mismatch(
                    report,
                    format!(
                        "{child}: never woken by {} {}",
                        run.execution_arn, run.status
                    ),
                );
                break;
            };
            if got_no != event_no {
                mismatch(
                    report,
                    format!("{child}: woken at event {got_no}, expected at {event_no}"),
                );
                break;
            }
            let visible: Vec<&Run> = mine[..=k].iter().map(|(_, r)| r).collect();
            // Aligned: decided for the waking run's key; a run without a key decides nothing.
            let key = if aligned { run.run_key.clone() } else { None };
            let rounds = if aligned && key.is_none() { 0 } else { 3 };
            // As the flow does: decide, and after a firing decide again (up to three rounds).
            let mut expected = Vec::new();
            for _ in 0..rounds {
                let cursor = cursors.get(&key).copied().unwrap_or(registered_at);
                let now = Timestamp(*now);
                let firing = match &key {
                    Some(k) => oracle::decide_key(
                        child,
                        trigger,
                        &visible,
                        k.as_str(),
                        registered_at,
                        cursor,
                        now,
                    ),
                    None => oracle::decide(child, trigger, &visible, cursor, now),
                };
                match firing {
                    Some(firing) => {
                        cursors.insert(key.clone(), Timestamp(firing.cursor_after));
                        expected.push(firing);
                    }
                    None => break,
                }
            }
            report.checked_firings += expected.len() as u64;
            if aligned {
                report.checked_key_firings += expected.len() as u64;
            }
            if &expected != got {
                mismatch(
                    report,
                    format!(
                        "{child} at event {event_no}: expected {} firing(s) {:?}, the flow made {} {:?}",
                        expected.len(),
                        expected,
                        got.len(),
                        got
                    ),
                );
                break;
            }
        }
        if let Some((extra, _, _)) = decided.next() {
            mismatch(
                report,
                format!("{child}: decided at event {extra}, where no parent run wakes it"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_organisation_fires_exactly_when_the_brute_force_evaluation_says() {
        let report = run(&ScaleSpec {
            pipelines: 3_000,
            accounts: 30,
            sample: 400,
            seed: 7,
        })
        .unwrap();
        assert!(report.triggers > 100, "{report:?}");
        assert!(report.checked_firings > 20, "{report:?}");
        assert!(report.checked_key_firings > 5, "{report:?}");
        assert!(report.reruns > 0 && report.duplicates > 0, "{report:?}");
        assert!(report.mismatches.is_empty(), "{:#?}", report.mismatches);
    }
}
