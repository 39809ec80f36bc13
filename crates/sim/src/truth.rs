//! What really happened in a schedule (every status Step Functions emitted, every trigger the
//! member accounts received, the floor each registration set), and the invariants checked at
//! each write as it takes effect.

use std::collections::{BTreeMap, BTreeSet};

use baton_core::registration::Registration;
use baton_core::{PipelineId, PipelineTrigger, Run, RunKey, RunStatus};

use crate::faults::{clock, short, Observed, Seen};

/// A broken invariant: what, with the names to pick the trace lines that matter.
#[derive(Clone, Debug)]
pub struct Violation {
    pub invariant: &'static str,
    pub detail: String,
    pub focus: Vec<String>,
}

#[derive(Default)]
pub struct Truth {
    /// Every status Step Functions emitted.
    pub runs: Vec<Run>,
    pub executions: u64,
    /// Trigger ids put on a bus, and how often.
    pub sends: BTreeMap<String, u32>,
    /// Trigger ids claimed, with the child and when.
    pub claims: BTreeMap<String, (PipelineId, i64)>,
    /// When each pipeline's registration was deleted.
    pub deletions: BTreeMap<PipelineId, Vec<i64>>,
    /// (child, execution ARN, status) -> the trigger that consumed the run.
    pub consumed: BTreeMap<(PipelineId, String, RunStatus), String>,
    /// Aligned: (child, run key) -> the latest status time any firing for the key consumed.
    pub key_cursors: BTreeMap<(PipelineId, RunKey), i64>,
    /// Claims of aligned children, for one run key.
    pub key_claims: u64,
    /// trigger id -> (holding task, lease end).
    pub leases: BTreeMap<String, (u64, i64)>,
    /// Per pipeline, (from when, floor): runs at or before the floor never count.
    pub floors: BTreeMap<PipelineId, Vec<(i64, i64)>>,
    /// The registrations as stored.
    pub registrations: BTreeMap<PipelineId, Registration>,
    /// What each registering task is writing.
    pub registering: BTreeMap<u64, Registration>,
    /// When each task started.
    pub started_at: BTreeMap<u64, i64>,
    pub sweeps: u32,
    pub violations: Vec<Violation>,
}

impl Truth {
    pub fn violation(&mut self, invariant: &'static str, detail: String, focus: Vec<String>) {
        self.violations.push(Violation {
            invariant,
            detail,
            focus,
        });
    }

    /// A registration took effect at `at`. Its floor moves when the trigger is new or its set of
    /// parents changed (DESIGN "Floor"), to the time the registration was made.
    pub fn registered(&mut self, registration: &Registration, at: i64) {
        let p = &registration.pipeline;
        let parents: BTreeSet<PipelineId> = registration.parents().into_keys().collect();
        let before: Option<BTreeSet<PipelineId>> = self.registrations.get(p).and_then(|r| {
            r.definition
                .trigger
                .as_ref()
                .map(|_| r.parents().into_keys().collect())
        });
        let has_trigger = registration.definition.trigger.is_some();
        // Starting or stopping to align on run keys moves the floor too.
        let aligned = |r: &Registration| r.definition.trigger.as_ref().map(|t| t.is_aligned());
        let realigned = self
            .registrations
            .get(p)
            .is_some_and(|old| aligned(old) != aligned(registration));
        if has_trigger && (before.as_ref() != Some(&parents) || realigned) {
            self.floors
                .entry(p.clone())
                .or_default()
                .push((at, registration.registered_at.0));
        }
        self.registrations.insert(p.clone(), registration.clone());
    }

    /// The floor in effect for `child` at `at`.
    pub fn floor_at(&self, child: &PipelineId, at: i64) -> i64 {
        self.floors
            .get(child)
            .and_then(|f| f.iter().rev().find(|(from, _)| *from <= at))
            .map_or(i64::MIN, |(_, floor)| *floor)
    }

    /// The floor in effect now.
    pub fn floor(&self, child: &PipelineId) -> i64 {
        self.floor_at(child, i64::MAX)
    }

    /// The member side received `trigger`; `true` the first time (an execution starts).
    pub fn sent(&mut self, trigger: &PipelineTrigger) -> bool {
        let n = self.sends.entry(trigger.trigger_id.0.clone()).or_default();
        *n += 1;
        *n == 1
    }

    /// Checks a write as it takes effect.
    pub fn check_write(&mut self, o: &Observed) {
        match &o.seen {
            Seen::Claim { trigger, until } => {
                self.check_claim(o.task, o.at, trigger);
                self.leases
                    .insert(trigger.trigger_id.0.clone(), (o.task, until.0));
            }
            Seen::Lease {
                trigger_id, until, ..
            } => {
                self.leases.insert(trigger_id.0.clone(), (o.task, until.0));
            }
            Seen::Put { trigger, .. } => self.check_put(o, trigger),
            Seen::Deletion(p) => {
                self.registrations.remove(p);
                self.deletions.entry(p.clone()).or_default().push(o.at);
            }
            Seen::Registration(p) => {
                if let Some(r) = self.registering.get(&o.task).cloned() {
                    if &r.pipeline == p {
                        self.registered(&r, o.at);
                    }
                }
            }
        }
    }

    fn check_claim(&mut self, task: u64, at: i64, trigger: &PipelineTrigger) {
        let child = trigger.target.id();
        let id = trigger.trigger_id.0.clone();
        let focus = vec![child.name.clone(), short(&trigger.trigger_id).to_owned()];
        // Kept with the time its invocation began: a deletion after that may drop it.
        let started = self.started_at.get(&task).copied().unwrap_or(at);
        if self
            .claims
            .insert(id.clone(), (child.clone(), started))
            .is_some()
        {
            self.violation(
                "trigger claimed twice",
                format!("{id} for {child}"),
                focus.clone(),
            );
        }
        self.check_aligned_claim(trigger, &focus);
        let floor = self.floor_at(&child, started);
        for run in &trigger.consumed {
            if run.status_time.0 <= floor {
                self.violation(
                    "fired on history",
                    format!(
                        "trigger {} of {child} consumed {} {} at {}, not after the floor {} its registration set before this invocation started",
                        short(&trigger.trigger_id),
                        run.execution_name(),
                        run.status,
                        clock(run.status_time.0),
                        clock(floor)
                    ),
                    focus.clone(),
                );
            }
            if trigger.run_key.is_some() {
                // Aligned: a run may fire the child again for its key, with a newer run.
                continue;
            }
            let key = (child.clone(), run.execution_arn.clone(), run.status);
            if let Some(other) = self.consumed.insert(key, id.clone()) {
                self.violation(
                    "run consumed twice",
                    format!(
                        "{} {} fired {child} twice: triggers {} and {}",
                        run.execution_name(),
                        run.status,
                        other.get(..8).unwrap_or(&other),
                        short(&trigger.trigger_id)
                    ),
                    focus.clone(),
                );
            }
        }
    }

    /// Aligned: every consumed run has the trigger's key, and each firing for a key consumes a
    /// run later than every run an earlier firing for that key consumed (a re-run or backfill
    /// re-fires the key; the same runs never do).
    fn check_aligned_claim(&mut self, trigger: &PipelineTrigger, focus: &[String]) {
        let Some(key) = &trigger.run_key else { return };
        self.key_claims += 1;
        let child = trigger.target.id();
        if let Some(r) = trigger
            .consumed
            .iter()
            .find(|r| r.run_key.as_ref() != Some(key))
        {
            self.violation(
                "run of another key",
                format!(
                    "trigger {} of {child} for key {key} consumed {} {} of key {:?}",
                    short(&trigger.trigger_id),
                    r.execution_name(),
                    r.status,
                    r.run_key
                ),
                focus.to_vec(),
            );
        }
        let latest = trigger.consumed.iter().map(|r| r.status_time.0).max();
        let slot = (child.clone(), key.clone());
        let before = self.key_cursors.get(&slot).copied();
        if let (Some(latest), Some(before)) = (latest, before) {
            if latest <= before {
                self.violation(
                    "key fired twice on the same runs",
                    format!(
                        "trigger {} of {child} for key {key} consumes nothing later than {}, which an earlier firing for the key consumed",
                        short(&trigger.trigger_id),
                        clock(before)
                    ),
                    focus.to_vec(),
                );
            }
        }
        if let Some(latest) = latest {
            let entry = self.key_cursors.entry(slot).or_insert(latest);
            *entry = (*entry).max(latest);
        }
    }

    /// A trigger claimed before its pipeline was deleted is not sent by an invocation that began
    /// after the deletion (for the pipeline registered again, it is history).
    fn check_not_after_deletion(&mut self, o: &Observed, trigger: &PipelineTrigger) {
        let child = trigger.target.id();
        let Some((_, claimed)) = self.claims.get(&trigger.trigger_id.0) else {
            return;
        };
        let began = self.started_at.get(&o.task).copied().unwrap_or(o.at);
        let deleted = self
            .deletions
            .get(&child)
            .and_then(|d| d.iter().find(|t| **t > *claimed && **t < began).copied());
        if let Some(deleted) = deleted {
            self.violation(
                "trigger outlived its pipeline",
                format!(
                    "trigger {} of {child}, claimed by an invocation begun at {}, was sent at {} after the registration was deleted at {}",
                    short(&trigger.trigger_id),
                    clock(*claimed),
                    clock(o.at),
                    clock(deleted)
                ),
                vec![child.name.clone(), short(&trigger.trigger_id).to_owned()],
            );
        }
    }

    /// A trigger goes on a bus only from the invocation holding its unexpired send lease: two
    /// senders never hold it at once.
    fn check_put(&mut self, o: &Observed, trigger: &PipelineTrigger) {
        let id = &trigger.trigger_id.0;
        self.check_not_after_deletion(o, trigger);
        match self.leases.get(id) {
            Some((holder, until)) if *holder == o.task && *until > o.at => {}
            other => {
                let holder = match other {
                    Some((holder, until)) => format!("#{holder}'s until {}", clock(*until)),
                    None => "nobody's".to_owned(),
                };
                self.violation(
                    "lease held twice",
                    format!(
                        "#{} sent trigger {} of {} at {} under {holder} lease",
                        o.task,
                        short(&trigger.trigger_id),
                        trigger.target.name,
                        clock(o.at)
                    ),
                    vec![
                        trigger.target.name.clone(),
                        short(&trigger.trigger_id).to_owned(),
                    ],
                );
            }
        }
    }
}
