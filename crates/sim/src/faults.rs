//! The fault plan and the interceptor every in-memory request passes: it decides, from the
//! schedule's one random stream, whether the request fails before its effect, after it, or times
//! out, and it records what the request did for the invariant checks and the trace.

use std::sync::{Arc, Mutex, MutexGuard};

use baton_core::{PipelineId, PipelineTrigger, Timestamp, TriggerId};
use baton_testbed::memory::{Effect, Fault, Interceptor, Op};
use baton_testbed::rng::Rng;

use crate::org::{DAY0, SECOND};

/// How hard a schedule is hit, drawn per schedule from its seed.
#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    /// A request fails before its effect (throttled, refused).
    pub before: f64,
    /// A request takes effect and its response is lost.
    pub after: f64,
    /// A request times out (a few seconds pass; it took effect or not).
    pub timeout: f64,
    /// An invocation crashes between two requests.
    pub crash: f64,
    /// The clock jumps 61 s to 150 s before a step (a stalled invocation, a slow network).
    pub jump: f64,
    /// A delivery (EventBridge, SNS, Lambda's async queue) happens twice.
    pub duplicate: f64,
    /// A RUNNING status event arrives after the execution's final one.
    pub reorder: f64,
}

impl FaultPlan {
    /// A fifth of schedules run fault-free; the rest draw each rate independently.
    pub fn draw(rng: &mut Rng) -> FaultPlan {
        if rng.chance(0.2) {
            return FaultPlan::default();
        }
        let mut rate = |max: f64| {
            if rng.chance(0.3) {
                0.0
            } else {
                max * rng.below(1000) as f64 / 1000.0
            }
        };
        FaultPlan {
            before: rate(0.08),
            after: rate(0.08),
            timeout: rate(0.04),
            crash: rate(0.04),
            jump: rate(0.03),
            duplicate: rate(0.3),
            reorder: rate(0.2),
        }
    }
}

/// How many faults a schedule injected, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Injected {
    pub before: u64,
    pub after: u64,
    pub timeouts: u64,
    pub crashes: u64,
    pub kills: u64,
    pub jumps: u64,
    pub duplicates: u64,
    pub reorders: u64,
    pub retries: u64,
    pub dead_letters: u64,
}

impl Injected {
    pub fn add(&mut self, other: &Injected) {
        self.before += other.before;
        self.after += other.after;
        self.timeouts += other.timeouts;
        self.crashes += other.crashes;
        self.kills += other.kills;
        self.jumps += other.jumps;
        self.duplicates += other.duplicates;
        self.reorders += other.reorders;
        self.retries += other.retries;
        self.dead_letters += other.dead_letters;
    }
}

/// A write that took effect, as the checks need it.
#[derive(Clone, Debug)]
pub enum Seen {
    /// A claim, which takes the claimed trigger's send lease until `until`.
    Claim {
        trigger: PipelineTrigger,
        until: Timestamp,
    },
    Lease {
        child: PipelineId,
        trigger_id: TriggerId,
        until: Timestamp,
    },
    Put {
        bus_arn: String,
        trigger: PipelineTrigger,
    },
    Registration(PipelineId),
    Deletion(PipelineId),
}

/// A write that took effect, by which task, when.
#[derive(Clone, Debug)]
pub struct Observed {
    pub task: u64,
    pub at: i64,
    pub seen: Seen,
}

/// Everything the schedule's tasks and the interceptor share.
pub struct Shared {
    pub rng: Rng,
    pub now: i64,
    /// The task being polled: requests are attributed to it.
    pub current: u64,
    pub plan: FaultPlan,
    pub faults_on: bool,
    pub injected: Injected,
    pub observed: Vec<Observed>,
    /// Kept only when replaying a seed.
    pub trace: Option<Vec<String>>,
}

impl Shared {
    /// Whether the fault with rate `rate` (from the plan) happens now; never once faults stopped.
    pub fn fault(&mut self, rate: impl Fn(&FaultPlan) -> f64) -> bool {
        let p = rate(&self.plan);
        self.faults_on && self.rng.chance(p)
    }

    pub fn note(&mut self, line: impl FnOnce() -> String) {
        if let Some(trace) = &mut self.trace {
            let t = self.now - DAY0;
            let line = line();
            trace.push(format!(
                "{:>3}:{:02}:{:02}.{:03} #{:<4} {line}",
                t / 3_600_000,
                t / 60_000 % 60,
                t / 1000 % 60,
                t % 1000,
                self.current
            ));
        }
    }
}

/// The schedule's shared state behind a lock: the tasks run one at a time, so it is never
/// contended; the lock only makes it `Sync` for the ports.
#[derive(Clone)]
pub struct Sim(pub Arc<Mutex<Shared>>);

impl Sim {
    pub fn lock(&self) -> MutexGuard<'_, Shared> {
        // A poisoned lock means a task panicked; the schedule is lost either way.
        match self.0.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// A short description of a request for the trace.
pub fn describe(op: &Op<'_>) -> String {
    match op {
        Op::PutRun(r) => format!("PutItem run {} {}", r.execution_name, r.status),
        Op::GetRun(r) => format!("GetItem run {} {}", r.execution_name, r.status),
        Op::PutLatest(r) => format!("PutItem latest {} {}", r.execution_name, r.status),
        Op::MarkAnnounced(r) => format!("UpdateItem announced {} {}", r.execution_name, r.status),
        Op::GetLatest(arn) => format!("GetItem latest {arn}"),
        Op::PutRunKey(r) => format!(
            "PutItem run {} {} under key {}",
            r.execution_name,
            r.status,
            r.run_key.as_ref().map_or("-", |k| k.as_str())
        ),
        Op::QueryRuns {
            pipeline,
            key,
            status,
            after,
        } => format!(
            "Query {status} runs of {}{} after {}",
            pipeline.name,
            key.map_or(String::new(), |k| format!(" key {k}")),
            clock(after.0)
        ),
        Op::QueryCursors(child) => format!("Query cursors of {}", child.name),
        Op::DropPending { child, trigger_id } => format!(
            "UpdateItem drop stale pending {} {}",
            child.name,
            short(trigger_id)
        ),
        Op::GetRegistration(p) => format!("GetItem registration {}", p.name),
        Op::BatchGetRegistrations(p) => format!("BatchGetItem {} registrations", p.len()),
        Op::GetGraphVersion => "GetItem graph version".to_owned(),
        Op::QueryChildren(p) => format!("Query children of {}", p.name),
        Op::WriteRegistration(p) => format!("TransactWriteItems registration {}", p.name),
        Op::DeleteRegistration(p) => format!("TransactWriteItems delete registration {}", p.name),
        Op::GetCursor(p) => format!("GetItem cursor {}", p.name),
        Op::BatchGetCursors(slots) => format!("BatchGetItem {} cursors", slots.len()),
        Op::Claim { trigger: t, lease } => format!(
            "TransactWriteItems claim {} {} leased to {} until {}",
            t.target.name,
            short(&t.trigger_id),
            lease.holder,
            clock(lease.until.0)
        ),
        Op::MarkSent { child, trigger_id } => {
            format!("UpdateItem sent {} {}", child.name, short(trigger_id))
        }
        Op::Forget(child) => format!("UpdateItem forget pending {}", child.name),
        Op::AskDecideAgain { child, trigger_id } => format!(
            "UpdateItem ask to decide again {} {}",
            child.name,
            short(trigger_id)
        ),
        Op::TakeLease {
            child,
            trigger_id,
            holder,
            now,
            until,
        } => format!(
            "UpdateItem take lease {} {} for {holder} now {} until {}",
            child.name,
            short(trigger_id),
            clock(now.0),
            clock(until.0)
        ),
        Op::ReleaseLease { child, trigger_id } => {
            format!(
                "UpdateItem release lease {} {}",
                child.name,
                short(trigger_id)
            )
        }
        Op::Publish(e) => format!("Publish {:?} of {}", e.kind(), e.pipeline().name),
        Op::SlackSlot(slot) => format!("UpdateItem Slack slot {}", slot.describe()),
        Op::Watch(request) => (*request).to_owned(),
        Op::PutTrigger { trigger, .. } => format!(
            "PutEvents trigger {} {}",
            trigger.target.name,
            short(&trigger.trigger_id)
        ),
    }
}

/// The first 8 characters of a trigger id: enough to tell them apart in a trace.
pub fn short(id: &TriggerId) -> &str {
    id.as_str().get(..8).unwrap_or(id.as_str())
}

/// A sim time as `h:mm:ss.mmm` from the start of the day.
pub fn clock(t: i64) -> String {
    let t = t.saturating_sub(DAY0);
    format!(
        "{}:{:02}:{:02}.{:03}",
        t / 3_600_000,
        t / 60_000 % 60,
        t / 1000 % 60,
        t.rem_euclid(1000)
    )
}

fn observe(op: &Op<'_>) -> Option<Seen> {
    Some(match op {
        Op::Claim { trigger, lease } => Seen::Claim {
            trigger: (*trigger).clone(),
            until: lease.until,
        },
        Op::TakeLease {
            child,
            trigger_id,
            until,
            ..
        } => Seen::Lease {
            child: (*child).clone(),
            trigger_id: (*trigger_id).clone(),
            until: *until,
        },
        Op::PutTrigger { bus_arn, trigger } => Seen::Put {
            bus_arn: (*bus_arn).to_owned(),
            trigger: (*trigger).clone(),
        },
        Op::WriteRegistration(p) => Seen::Registration((*p).clone()),
        Op::DeleteRegistration(p) => Seen::Deletion((*p).clone()),
        _ => return None,
    })
}

impl Interceptor for Sim {
    fn before(&self, op: &Op<'_>) -> Fault {
        let mut s = self.lock();
        if !s.faults_on {
            return Fault::None;
        }
        let plan = s.plan.clone();
        let roll = s.rng.below(1_000_000) as f64 / 1_000_000.0;
        let fault = if roll < plan.before {
            s.injected.before += 1;
            Fault::Before("ThrottlingException: injected before the effect".into())
        } else if roll < plan.before + plan.after {
            s.injected.after += 1;
            Fault::After("connection reset: injected after the effect".into())
        } else if roll < plan.before + plan.after + plan.timeout {
            s.injected.timeouts += 1;
            let waited = s.rng.between(SECOND, 5 * SECOND);
            s.now += waited;
            if s.rng.chance(0.5) {
                Fault::Before("timed out (injected, no effect)".into())
            } else {
                Fault::After("timed out (injected, took effect)".into())
            }
        } else {
            Fault::None
        };
        if fault != Fault::None {
            s.note(|| format!("{} -> FAULT {fault:?}", describe(op)));
        }
        fault
    }

    fn after(&self, op: &Op<'_>, effect: Effect) {
        let mut s = self.lock();
        s.note(|| format!("{} -> {effect:?}", describe(op)));
        if effect == Effect::Written {
            if let Some(seen) = observe(op) {
                let (task, at) = (s.current, s.now);
                s.observed.push(Observed { task, at, seen });
            }
        }
    }
}
