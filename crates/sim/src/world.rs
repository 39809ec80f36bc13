//! One schedule: the central account's functions (the real run-log-writer and trigger-manager
//! handlers, core's registration check and flow) over the in-memory ports, the deliveries between
//! them (EventBridge, SNS, Lambda's asynchronous queue with its two retries and its dead-letter
//! queue), the member accounts (Step Functions executions, the pipeline-starter that starts an
//! execution named by the trigger id), a simulated clock, and the fault plan.

use std::collections::BTreeMap;

use aws_lambda_events::sns::SnsEvent;
use baton_core::registration::Registration;
use baton_core::registration::{self, MAX_CHECKED_DOWNSTREAM};
use baton_core::trigger::{self, FlowSettings};
use baton_core::{PipelineId, PipelineTrigger, Run, RunEvent, RunKey, RunStatus, Timestamp};
use baton_testbed::memory::Memory;
use serde_json::{json, Value};

use crate::executor::{Invocation, Task};
use crate::faults::{clock, short, Sim};
use crate::org::{Organisation, PlannedRun, DAY0, HOUR, MINUTE, SECOND};
use crate::truth::Truth;

/// Lambda's timeouts (template.yaml): 30 s for each function.
pub const WRITER_TIMEOUT: i64 = 30 * SECOND;
pub const MANAGER_TIMEOUT: i64 = 30 * SECOND;
/// Lambda's asynchronous invocation: the first attempt and two retries, then the DLQ.
const ATTEMPTS: u32 = 3;
/// Faults stop here; the schedule then runs to quiescence.
const FAULT_END: i64 = DAY0 + 3 * HOUR;
/// More executions than this in one schedule means pipelines keep starting each other.
pub const RUNAWAY: u64 = 1_500;

/// What an invocation is for.
#[derive(Clone, Debug)]
pub enum Job {
    /// run-log-writer, on a status change event from the central bus.
    Writer(Box<Value>),
    /// trigger-manager, on a message of the run-events topic.
    Manager(Box<SnsEvent>),
    /// A stack's Create or Update of its pipeline (cfn-responder's registration path).
    Register(Box<Registration>),
    /// A stack's Delete of its pipeline (cfn-responder's unregistration path), and the
    /// registration of the stack created again once it succeeded.
    Unregister(Box<Registration>, Option<Box<Registration>>),
    /// The pending-trigger sweep for one child, once faults have stopped.
    Sweep(PipelineId, Option<RunKey>),
}

impl Job {
    fn timeout(&self) -> i64 {
        match self {
            Job::Writer(_) | Job::Register(_) | Job::Unregister(..) => WRITER_TIMEOUT,
            Job::Manager(_) | Job::Sweep(..) => MANAGER_TIMEOUT,
        }
    }

    fn label(&self) -> String {
        match self {
            Job::Writer(e) => format!(
                "run-log-writer {} {}",
                e["detail"]["name"].as_str().unwrap_or("?"),
                e["detail"]["status"].as_str().unwrap_or("?")
            ),
            Job::Manager(e) => format!(
                "trigger-manager {}",
                e.records
                    .first()
                    .map(|r| r.sns.message_id.as_str())
                    .unwrap_or("?")
            ),
            Job::Register(r) => format!("register {}", r.pipeline.name),
            Job::Unregister(r, _) => format!("unregister {}", r.pipeline.name),
            Job::Sweep(p, None) => format!("sweep {}", p.name),
            Job::Sweep(p, Some(k)) => format!("sweep {} key {k}", p.name),
        }
    }
}

/// A schedule in progress.
pub struct World<'m> {
    pub sim: Sim,
    mem: &'m Memory,
    settings: &'m FlowSettings,
    tasks: Vec<Task<'m, Job>>,
    queue: BTreeMap<(i64, u64), (Job, u32)>,
    seq: u64,
    next_task: u64,
    dead_letters: Vec<Job>,
    pub truth: Truth,
    pub steps: u64,
    pub invocations: u64,
    /// Set once the schedule settles: no fault comes back.
    calm: bool,
}

impl<'m> World<'m> {
    pub fn new(
        sim: Sim,
        mem: &'m Memory,
        settings: &'m FlowSettings,
        org: &Organisation,
    ) -> World<'m> {
        let mut world = World {
            sim,
            mem,
            settings,
            tasks: Vec::new(),
            queue: BTreeMap::new(),
            seq: 0,
            next_task: 1,
            dead_letters: Vec::new(),
            truth: Truth::default(),
            steps: 0,
            invocations: 0,
            calm: false,
        };
        for registration in &org.initial {
            world
                .sim
                .lock()
                .note(|| format!("registered the day before: {}", describe(registration)));
            mem.registry.load(registration.clone());
            world.truth.registered(registration, i64::MIN);
        }
        for change in &org.changes {
            let what = if change.delete {
                "unregisters"
            } else {
                "registers"
            };
            world.sim.lock().note(|| {
                format!(
                    "{what} at {}: {}",
                    clock(change.at),
                    describe(&change.registration)
                )
            });
            let registration = Box::new(change.registration.clone());
            let job = if change.delete {
                Job::Unregister(registration, change.then.clone().map(Box::new))
            } else {
                Job::Register(registration)
            };
            world.push(change.at, job, 1);
        }
        for run in &org.roots {
            world.execute(run, None);
        }
        world
    }

    fn push(&mut self, at: i64, job: Job, attempt: u32) {
        self.seq += 1;
        self.queue.insert((at, self.seq), (job, attempt));
    }

    /// A delivery by an at-least-once service: sometimes twice.
    fn deliver(&mut self, at: i64, job: Job) {
        let twice = {
            let mut s = self.sim.lock();
            let dup = s.fault(|p| p.duplicate);
            if dup {
                s.injected.duplicates += 1;
                Some(at + s.rng.between(0, 5 * SECOND))
            } else {
                None
            }
        };
        if let Some(again) = twice {
            self.push(again, job.clone(), 1);
        }
        self.push(at, job, 1);
    }

    /// Runs the schedule to quiescence.
    pub fn run(&mut self) {
        let mut settles = 0;
        loop {
            if self.truth.executions > RUNAWAY || !self.truth.violations.is_empty() {
                return;
            }
            self.steps += 1;
            let now = self.sim.lock().now;
            self.sim.lock().faults_on = now < FAULT_END && !self.calm;
            let ready: Vec<usize> = (0..self.tasks.len())
                .filter(|&i| self.tasks[i].is_ready())
                .collect();
            let due = self.queue.keys().next().map(|(at, _)| *at);
            let start_due = match (due, ready.is_empty()) {
                (Some(at), true) => {
                    let mut s = self.sim.lock();
                    s.now = s.now.max(at);
                    true
                }
                (Some(at), false) => at <= now && self.sim.lock().rng.chance(0.35),
                (None, false) => false,
                (None, true) => {
                    if !self.tasks.is_empty() {
                        self.truth
                            .violation("stuck", "tasks wait on nothing".into(), vec![]);
                        return;
                    }
                    settles += 1;
                    if settles > 12 || !self.settle() {
                        return;
                    }
                    continue;
                }
            };
            if start_due {
                if let Some(((_, _), (job, attempt))) = self.queue.pop_first() {
                    self.spawn(job, attempt);
                }
            } else {
                let pick = self.sim.lock().rng.below(ready.len() as u64) as usize;
                self.step(ready[pick]);
            }
            self.absorb();
        }
    }

    /// After the faults: redrive the DLQ, sweep pending triggers. `false` when nothing is left.
    fn settle(&mut self) -> bool {
        self.calm = true;
        let now = {
            let mut s = self.sim.lock();
            s.faults_on = false;
            s.now
        };
        if !self.dead_letters.is_empty() {
            self.sim
                .lock()
                .note(|| "redrive the dead-letter queue".into());
            for job in std::mem::take(&mut self.dead_letters) {
                self.push(now + MINUTE, job, 1);
            }
            return true;
        }
        let pending: Vec<(PipelineId, Option<RunKey>)> = self
            .mem
            .ledger
            .cursors()
            .into_iter()
            .filter(|(_, item)| item.pending_trigger_id.is_some())
            .map(|(slot, _)| slot)
            .collect();
        if pending.is_empty() || self.truth.sweeps >= 4 {
            return false;
        }
        self.truth.sweeps += 1;
        // After every lease taken so far has ended (a lease outlasts its invocation's deadline by
        // the margin).
        let at = now + MANAGER_TIMEOUT + self.settings.lease_margin.0 + SECOND;
        for (child, key) in pending {
            self.push(at, Job::Sweep(child, key), 1);
        }
        true
    }

    fn spawn(&mut self, job: Job, attempt: u32) {
        let id = self.next_task;
        self.next_task += 1;
        self.invocations += 1;
        let now = {
            let mut s = self.sim.lock();
            s.current = id;
            let label = job.label();
            s.note(|| format!("start {label} (attempt {attempt})"));
            s.now
        };
        let job = match job {
            Job::Register(mut r) => {
                r.registered_at = Timestamp(now);
                self.truth.registering.insert(id, (*r).clone());
                Job::Register(r)
            }
            other => other,
        };
        self.truth.started_at.insert(id, now);
        let deadline = now + job.timeout();
        let invocation = trigger::Invocation::new(
            format!("invocation-{id}"),
            Timestamp(now),
            Timestamp(deadline),
            self.settings,
        );
        let future = self.invocation(&job, invocation);
        self.tasks
            .push(Task::new(id, job, attempt, now, deadline, future));
    }

    fn invocation(&self, job: &Job, invocation: trigger::Invocation) -> Invocation<'m> {
        let mem = self.mem;
        let settings = self.settings;
        let sim = self.sim.clone();
        match job.clone() {
            Job::Writer(event) => Box::pin(async move {
                let writer = run_log_writer::RunLogWriter {
                    run_log: &mem.run_log,
                    registry: &mem.registry,
                    run_events: &mem.topic,
                };
                writer
                    .handle(*event)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }),
            Job::Manager(event) => Box::pin(async move {
                let manager = trigger_manager::TriggerManager {
                    ports: mem.ports(),
                    settings,
                };
                manager
                    .handle(*event, &invocation)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }),
            Job::Register(r) => Box::pin(async move {
                // cfn-responder's Create and Update: core's rules over the registry.
                match registration::register(&mem.registry, &r, MAX_CHECKED_DOWNSTREAM).await {
                    Ok(upserted) => {
                        sim.lock()
                            .note(|| format!("{} {upserted:?}", r.pipeline.name));
                        Ok(())
                    }
                    // Refused for good: CloudFormation hears FAILED; nothing to retry.
                    Err(
                        e @ (registration::Refusal::Cycle { .. }
                        | registration::Refusal::NotOwner { .. }),
                    ) => {
                        sim.lock().note(|| format!("refused: {e}"));
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                }
            }),
            Job::Unregister(r, _) => Box::pin(async move {
                // cfn-responder's Delete.
                match registration::unregister(
                    &mem.registry,
                    &mem.ledger,
                    &r.pipeline,
                    &r.owner_stack_id,
                )
                .await
                {
                    Ok(deleted) => {
                        sim.lock()
                            .note(|| format!("{} {deleted:?}", r.pipeline.name));
                        Ok(())
                    }
                    Err(e @ registration::Refusal::NotOwner { .. }) => {
                        sim.lock().note(|| format!("refused: {e}"));
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                }
            }),
            Job::Sweep(child, key) => Box::pin(async move {
                let ports = mem.ports();
                let report =
                    trigger::wake_child(&ports, &child, key.as_ref(), &invocation, settings, None)
                        .await;
                match report.error {
                    Some(e) => Err(e.to_string()),
                    None => Ok(()),
                }
            }),
        }
    }

    /// Polls the `i`th task once, unless the clock or the fault plan ends it first.
    fn step(&mut self, i: usize) {
        let (now, crash) = {
            let mut s = self.sim.lock();
            let tick = s.rng.between(0, 40);
            s.now += tick;
            if s.fault(|p| p.jump) {
                let jump = s.rng.between(61 * SECOND, 150 * SECOND);
                s.now += jump;
                s.injected.jumps += 1;
                s.note(|| format!("clock jumps {} s", jump / 1000));
            }
            let crash = s.fault(|p| p.crash);
            s.current = self.tasks[i].id;
            (s.now, crash)
        };
        if now >= self.tasks[i].deadline {
            let task = self.tasks.swap_remove(i);
            self.sim.lock().injected.kills += 1;
            self.finish(task, Err("Task timed out (the function's timeout)".into()));
        } else if crash {
            let task = self.tasks.swap_remove(i);
            self.sim.lock().injected.crashes += 1;
            self.finish(task, Err("Runtime exited (crash injected)".into()));
        } else if let Some(result) = self.tasks[i].poll() {
            let task = self.tasks.swap_remove(i);
            self.finish(task, result);
        }
    }

    /// Lambda's asynchronous invocation: a failed attempt is retried twice (after about one and
    /// two minutes), then the event goes to the dead-letter queue.
    fn finish(&mut self, task: Task<'m, Job>, result: Result<(), String>) {
        let now = {
            let mut s = self.sim.lock();
            s.current = task.id;
            let outcome = match &result {
                Ok(()) => "ok".to_owned(),
                Err(e) => format!("FAILED: {e}"),
            };
            s.note(|| format!("end {}: {outcome}", task.job.label()));
            s.now
        };
        if result.is_ok() {
            if let Job::Unregister(_, Some(again)) = task.job {
                let at = now + self.sim.lock().rng.between(5 * MINUTE, 30 * MINUTE);
                self.push(at, Job::Register(again), 1);
            }
            return;
        }
        if task.attempt < ATTEMPTS {
            let at = {
                let mut s = self.sim.lock();
                s.injected.retries += 1;
                now + i64::from(task.attempt) * MINUTE + s.rng.between(0, 10 * SECOND)
            };
            self.push(at, task.job, task.attempt + 1);
        } else {
            self.sim.lock().injected.dead_letters += 1;
            self.dead_letters.push(task.job);
        }
    }

    /// Moves what the last step produced onwards: run events to trigger-manager, triggers to the
    /// member accounts, observed writes to the checks.
    fn absorb(&mut self) {
        let now = self.sim.lock().now;
        for event in self.mem.topic.take_published() {
            // The subscription's filter policy: trigger notices go to Slack only.
            if !matches!(event, RunEvent::Status(_)) {
                continue;
            }
            let at = now + self.sim.lock().rng.between(20, 500);
            self.seq += 1;
            let sns = sns_event(&event, self.seq);
            self.deliver(at, Job::Manager(Box::new(sns)));
        }
        for (bus_arn, trigger) in self.mem.buses.take_sent() {
            self.member_receives(&bus_arn, &trigger, now);
        }
        let observed = std::mem::take(&mut self.sim.lock().observed);
        for o in observed {
            self.truth.check_write(&o);
        }
    }

    /// The child account's pipeline-starter: `StartExecution(name = trigger id)`, where
    /// `ExecutionAlreadyExists` is success.
    fn member_receives(&mut self, bus_arn: &str, trigger: &PipelineTrigger, now: i64) {
        let child = trigger.target.id();
        if !bus_arn.contains(&format!(":{}:event-bus/", child.account)) {
            self.truth.violation(
                "wrong bus",
                format!(
                    "trigger {} for {child} went to {bus_arn}",
                    trigger.trigger_id
                ),
                vec![child.name.clone()],
            );
        }
        if !self.truth.sent(trigger) {
            return;
        }
        let (start, fails) = {
            let mut s = self.sim.lock();
            (now + s.rng.between(500, 3 * SECOND), s.rng.chance(0.15))
        };
        let run = PlannedRun {
            pipeline: child,
            start,
            fails,
            cause_bytes: 200,
            may_rerun: true,
            duration: self.sim.lock().rng.between(MINUTE, 20 * MINUTE),
            key: None,
        };
        self.execute(&run, Some(trigger));
    }

    /// A Step Functions execution: its RUNNING and final status events, each delivered by
    /// EventBridge a little later (sometimes twice, sometimes RUNNING after the final one), and
    /// now and then a re-run of a failure by its owners.
    fn execute(&mut self, planned: &PlannedRun, trigger: Option<&PipelineTrigger>) {
        self.truth.executions += 1;
        let n = self.truth.executions;
        let name = match trigger {
            Some(t) => t.trigger_id.0.clone(),
            None => format!("run-{n}"),
        };
        let p = &planned.pipeline;
        let (stop, running_late, latencies, rerun) = {
            let mut s = self.sim.lock();
            let stop = planned.start + planned.duration;
            let late = s.fault(|p| p.reorder);
            if late {
                s.injected.reorders += 1;
            }
            let latencies = (
                s.rng.between(100, 2 * SECOND),
                s.rng.between(100, 2 * SECOND),
            );
            let rerun = (planned.fails && planned.may_rerun && s.rng.chance(0.4)).then(|| {
                let start = stop + s.rng.between(5 * MINUTE, 40 * MINUTE);
                (start, s.rng.between(MINUTE, 20 * MINUTE))
            });
            (stop, late, latencies, rerun)
        };
        let running = Run {
            pipeline: p.clone(),
            execution_arn: format!(
                "arn:aws:states:{}:{}:execution:{}:{name}",
                p.region, p.account, p.name
            ),
            execution_name: name,
            status: RunStatus::Running,
            started_at: Timestamp(planned.start),
            stopped_at: None,
            error: None,
            cause: None,
            trigger_id: trigger.map(|t| t.trigger_id.0.clone()),
            run_key: None,
        };
        let mut done = running.clone();
        done.stopped_at = Some(Timestamp(stop));
        if planned.fails {
            done.status = RunStatus::Failed;
            done.error = Some("States.TaskFailed".into());
            done.cause = Some("x".repeat(planned.cause_bytes));
        } else {
            done.status = RunStatus::Succeeded;
        }
        // A triggered execution's input is its trigger (with `runKey` when aligned); a root's
        // names its day in keyed schedules.
        let input = match (trigger, &planned.key) {
            (Some(t), _) => serde_json::to_string(t).ok(),
            (None, Some(key)) => Some(json!({ "runKey": key }).to_string()),
            (None, None) => None,
        };
        let final_at = stop + latencies.1;
        let running_at = if running_late {
            final_at + latencies.0
        } else {
            planned.start + latencies.0
        };
        for (at, run) in [(running_at, running), (final_at, done)] {
            let id = format!("event-{}-{}", self.truth.executions, run.status);
            let event = baton_testbed::status_change_event(&run, &id, input.as_deref());
            self.truth.runs.push(run);
            self.deliver(at, Job::Writer(Box::new(event)));
        }
        if let Some((start, duration)) = rerun {
            let again = PlannedRun {
                pipeline: p.clone(),
                start,
                fails: false,
                cause_bytes: 0,
                may_rerun: false,
                duration,
                // A re-run of the same day.
                key: planned.key.clone(),
            };
            self.execute(&again, None);
        }
    }

    /// Whatever is still running or queued when the schedule ends.
    pub fn leftovers(&self) -> (usize, usize, usize) {
        (self.tasks.len(), self.queue.len(), self.dead_letters.len())
    }
}

/// An SNS delivery of a run event to trigger-manager (one record, as SNS invokes Lambda).
fn sns_event(event: &RunEvent, n: u64) -> SnsEvent {
    let message = serde_json::to_string(event).unwrap_or_default();
    let value = baton_testbed::lambda_sns_event(&[json!({
        "Type": "Notification",
        "MessageId": format!("m-{n}"),
        "TopicArn": "arn:aws:sns:eu-west-1:000000000000:baton-run-events",
        "Message": message,
        "Timestamp": "2026-11-22T00:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "",
        "SigningCertURL": "",
        "UnsubscribeURL": "",
    })]);
    serde_json::from_value(value).unwrap_or_default()
}

/// For traces: a trigger id's short form.
pub fn trigger_label(t: &PipelineTrigger) -> String {
    format!("{} {}", t.target.name, short(&t.trigger_id))
}

/// A registration in one line: the pipeline and its trigger condition.
fn describe(r: &Registration) -> String {
    let trigger = r
        .definition
        .trigger
        .as_ref()
        .and_then(|t| serde_json::to_string(t).ok())
        .unwrap_or_else(|| "no trigger".to_owned());
    format!("{} {trigger}", r.pipeline.name)
}
