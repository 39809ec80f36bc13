//! The trigger flow: from one parent run to the children it wakes, each decided over the run log
//! and committed in the ledger, then delivered to the child's pipeline bus. Generic over the
//! ports, so trigger-manager, the demo and any tool share this one implementation.
//!
//! For one child (DESIGN "Trigger semantics"):
//! 1. read its registration (none: not registered; no `trigger` block: nothing to decide) and,
//!    in the same round trip, its cursor state: a pending trigger (claimed, not confirmed sent)
//!    is handed back for re-sending before anything new is decided;
//! 2. effective cursor = max(stored cursor, the registration's floor), so a new child, or a
//!    trigger added or re-parented by an Update, never fires on history;
//! 3. query each parent's runs later than that cursor (bounded, newest first, all parents at once)
//!    and evaluate;
//! 4. on Fire, claim in the ledger with the cursor *as read*; on Lost, read again and decide again.
//!
//! The children of one run are decided side by side, at most [`FlowSettings::child_concurrency`]
//! at a time; each claim is conditional, so this is as safe as deciding them in turn.
//!
//! Delivery takes the trigger's send lease, sends, marks it sent and announces it. A failed send
//! gives the lease back and leaves the trigger pending, so the next delivery sends the same
//! trigger id again: never lost, never doubled.

use futures::future::{try_join, try_join_all};
use futures::stream::{self, StreamExt};
use thiserror::Error;

use crate::evaluator::{evaluate, Evaluation};
use crate::events::{PipelineTrigger, RunEvent};
use crate::pipeline::{partition_of, PipelineId};
use crate::ports::{
    ClaimOutcome, CursorState, Lease, Ledger, PublishError, Registration, Registry, RunEvents,
    RunLog, SendLease, StoreError, TriggerBus,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::run::{Run, RunRef};
use crate::status::RunStatus;
use crate::time::{Span, Timestamp};

/// Bounds and defaults of the flow, from the function's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowSettings {
    /// At most this many runs read per parent and evaluation (newest first).
    pub runs_per_parent: usize,
    /// How many times a child is re-read and decided again after losing a claim.
    pub claim_attempts: usize,
    /// How long after the sending invocation's deadline its send lease still holds (clocks
    /// between hosts may disagree by this much); see [`Invocation`].
    pub lease_margin: Span,
    /// The pipeline bus name in a child's account when its registration names no bus.
    pub default_bus_name: String,
    /// At most this many children of one run are decided and delivered at the same time. Each
    /// child's claim is conditional in the ledger, so deciding children concurrently is as safe
    /// as deciding them in turn; it only takes the store's latency off the critical path.
    pub child_concurrency: usize,
    /// The baton environment named in every trigger (`BATON_ENVIRONMENT`).
    pub environment: Option<String>,
}

impl FlowSettings {
    /// Defaults for everything but the bus name.
    pub fn with_default_bus(default_bus_name: impl Into<String>) -> FlowSettings {
        FlowSettings {
            runs_per_parent: 100,
            claim_attempts: 5,
            lease_margin: Span(10_000),
            default_bus_name: default_bus_name.into(),
            child_concurrency: 16,
            environment: None,
        }
    }
}

/// Reads the time now: the function passes the wall clock, tests and the simulation their own.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The invocation that decides and sends: when it started, its clock and its send lease.
///
/// The lease ends a margin after the invocation's own deadline, not a fixed time after `now`:
/// an invocation that started long ago (a large fan-out) still holds a lease that outlasts it,
/// so two senders never hold it at once, and a sender that died is replaced after its deadline.
/// Each decision and each lease check reads the clock afresh ([`Invocation::read_clock`]), so a
/// dead sender's lease is seen to have ended as soon as it has, however long this invocation
/// has been running, and `within` is judged at the time of the decision.
#[derive(Clone)]
pub struct Invocation {
    /// When the invocation started.
    pub now: Timestamp,
    pub lease: Lease,
    /// `None`: time stands still at `now` (a test or tool that decides at one instant).
    clock: Option<Clock>,
}

impl Invocation {
    /// The invocation `id` (e.g. the Lambda request id), started at `now`, ending at
    /// `deadline`. Its clock stands still at `now` unless one is given ([`Invocation::with_clock`]).
    pub fn new(
        id: impl Into<String>,
        now: Timestamp,
        deadline: Timestamp,
        settings: &FlowSettings,
    ) -> Invocation {
        Invocation {
            now,
            lease: Lease::until_after(id, deadline, settings.lease_margin),
            clock: None,
        }
    }

    /// The same invocation, reading the time from `clock`.
    pub fn with_clock(self, clock: impl Fn() -> Timestamp + Send + Sync + 'static) -> Invocation {
        Invocation {
            clock: Some(Arc::new(clock)),
            ..self
        }
    }

    /// The time now, read afresh; never earlier than the invocation's start.
    pub fn read_clock(&self) -> Timestamp {
        self.clock
            .as_ref()
            .map_or(self.now, |clock| clock().max(self.now))
    }
}

impl std::fmt::Debug for Invocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invocation")
            .field("now", &self.now)
            .field("lease", &self.lease)
            .field("clock", &self.clock.as_ref().map(|_| "fresh"))
            .finish()
    }
}

/// Why the flow stopped for a child.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FlowError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("child {child}: the claim was lost {attempts} times in a row to concurrent evaluations; a redelivery will decide again")]
    Contended { child: PipelineId, attempts: usize },
}

impl FlowError {
    /// Whether a redelivery of the event can help.
    pub fn is_retryable(&self) -> bool {
        match self {
            FlowError::Store(e) => e.is_retryable(),
            FlowError::Publish(e) => e.is_retryable(),
            FlowError::Contended { .. } => true,
        }
    }
}

/// What deciding one child found.
#[derive(Clone, Debug, PartialEq, Eq)]
// One value per child and decision, returned and consumed at once: boxing a variant would only
// add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum ChildDecision {
    /// The child has no registration (its edge outlived it, or it was just removed).
    NotRegistered,
    /// The child is registered without a trigger condition.
    NoTrigger,
    /// An earlier claim of this child was never confirmed sent: send it (same id) first.
    Pending {
        trigger: PipelineTrigger,
        bus_arn: String,
    },
    /// This evaluation fired the child and committed the claim: send it.
    Claimed {
        trigger: PipelineTrigger,
        bus_arn: String,
        evaluation: Evaluation,
    },
    /// The condition does not hold (yet).
    Waiting { evaluation: Evaluation },
}

/// The EventBridge bus ARN a child's triggers go to: the registration's, or the default bus name
/// in the child's own account and region.
pub fn bus_arn(registration: &Registration, default_bus_name: &str) -> String {
    match &registration.bus_arn {
        Some(arn) => arn.clone(),
        None => {
            let p = &registration.pipeline;
            format!(
                "arn:{}:events:{}:{}:event-bus/{}",
                partition_of(&p.region),
                p.region,
                p.account,
                default_bus_name
            )
        }
    }
}

/// The children a run can wake: those with an edge on the run's pipeline that wants its status.
pub async fn children_to_wake<R: Registry>(
    registry: &R,
    run: &RunRef,
) -> Result<Vec<PipelineId>, StoreError> {
    let edges = registry.children(&run.pipeline).await?;
    Ok(edges
        .into_iter()
        .filter(|edge| edge.statuses.contains(&run.status))
        .map(|edge| edge.child)
        .collect())
}

/// Decides one child at `now` and, when it fires, commits the claim (see the module doc).
pub async fn decide_child<L, R, G>(
    registry: &R,
    run_log: &L,
    ledger: &G,
    child: &PipelineId,
    now: Timestamp,
    settings: &FlowSettings,
) -> Result<ChildDecision, FlowError>
where
    L: RunLog + Sync,
    R: Registry + Sync,
    G: Ledger + Sync,
{
    // The registration and the cursor do not depend on each other: one round trip for both.
    let (registration, first_state) = try_join(registry.get(child), ledger.cursor(child)).await?;
    let Some(registration) = registration else {
        return Ok(ChildDecision::NotRegistered);
    };
    let Some(trigger) = registration.definition.trigger.as_ref() else {
        return Ok(ChildDecision::NoTrigger);
    };
    let bus = bus_arn(&registration, &settings.default_bus_name);
    let parents = registration.parents();
    let attempts = settings.claim_attempts.max(1);
    let mut first_state = Some(first_state);
    for _ in 0..attempts {
        // After a lost claim, read the cursor again: the winner moved it.
        let state = match first_state.take() {
            Some(state) => state,
            None => ledger.cursor(child).await?,
        };
        let stored = state.as_ref().map(|s| s.cursor);
        if let Some(pending) = state.and_then(|s| s.pending) {
            if pending.fired_at < registration.registered_at {
                // Claimed for an earlier registration of this name, deleted since (and its
                // ledger not forgotten, the deleting function having died): never sent to
                // this one. Only this trigger: another evaluation may have dropped it already
                // and claimed a new one.
                ledger.forget(child, Some(&pending.trigger_id)).await?;
                continue;
            }
            return Ok(ChildDecision::Pending {
                trigger: pending,
                bus_arn: bus,
            });
        }
        let cursor = effective_cursor(stored, &registration);
        let runs = parent_runs(run_log, &parents, cursor, settings).await?;
        let evaluation = evaluate(child, trigger, cursor, now, &runs);
        let Some(firing) = evaluation.firing() else {
            return Ok(ChildDecision::Waiting { evaluation });
        };
        // The target is the registered pipeline: its state machine ARN is the one registered.
        let mut pipeline_trigger = PipelineTrigger::new(&registration.pipeline, firing, now);
        pipeline_trigger.environment = settings.environment.clone();
        match ledger
            .claim(&pipeline_trigger, stored, firing.cursor_after)
            .await?
        {
            ClaimOutcome::Claimed => {
                return Ok(ChildDecision::Claimed {
                    trigger: pipeline_trigger,
                    bus_arn: bus,
                    evaluation,
                })
            }
            // Someone else moved the cursor or claimed this very firing: what they did is now
            // in the ledger, so reading again decides correctly.
            ClaimOutcome::Lost => continue,
        }
    }
    Err(FlowError::Contended {
        child: child.clone(),
        attempts,
    })
}

/// What delivering a trigger did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Sent to the bus, marked sent and announced. `decide_again`: while it was pending, another
    /// delivery found it and asked this sender to decide the child again afterwards.
    Sent { decide_again: bool },
    /// Another delivery holds the send lease; it was asked to decide the child again once it has
    /// sent the trigger.
    SentElsewhere,
    /// The trigger stopped being pending before this delivery could take its lease (another
    /// delivery just sent it): this one decides again itself.
    NoLongerPending,
}

/// Sends a claimed or pending trigger to `bus_arn` once: take the send lease, put the event,
/// mark it sent, publish the trigger notice. A failed put gives the lease back and leaves the
/// trigger pending for the next delivery.
pub async fn deliver<G, B, E>(
    ledger: &G,
    bus: &B,
    events: &E,
    bus_arn: &str,
    trigger: &PipelineTrigger,
    invocation: &Invocation,
) -> Result<Delivery, FlowError>
where
    G: Ledger + SendLease + Sync,
    B: TriggerBus + Sync,
    E: RunEvents + Sync,
{
    let child = trigger.target.id();
    let id = &trigger.trigger_id;
    let lease = &invocation.lease;
    // A fresh reading: another holder's lease may have ended since the invocation started.
    if !ledger
        .take_send_lease(&child, id, lease, invocation.read_clock())
        .await?
    {
        // A run this delivery was woken by may have come after the holder read the log: the
        // holder decides again after sending, or, if it already has, this delivery does.
        return Ok(if ledger.ask_to_decide_again(&child, id).await? {
            Delivery::SentElsewhere
        } else {
            Delivery::NoLongerPending
        });
    }
    if let Err(sent) = bus.send(bus_arn, trigger).await {
        // Best effort: if giving the lease back fails too, it ends on its own.
        let _ = ledger.release_send_lease(&child, id, &lease.holder).await;
        return Err(sent.into());
    }
    let decide_again = ledger.mark_sent(&child, id).await?;
    events.publish(&RunEvent::trigger_notice(trigger)).await?;
    Ok(Delivery::Sent { decide_again })
}

/// One thing that happened while waking a child, in order, for the caller to log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    NotRegistered,
    NoTrigger,
    /// An evaluation (fired or waiting) with its explanation.
    Evaluated(Evaluation),
    /// A trigger was delivered (or found being delivered elsewhere); `resent`: it was pending
    /// from an earlier claim.
    Delivered {
        trigger: PipelineTrigger,
        bus_arn: String,
        resent: bool,
        delivery: Delivery,
    },
}

/// Everything waking one child did, and the error that stopped it, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildReport {
    pub child: PipelineId,
    pub steps: Vec<Step>,
    pub error: Option<FlowError>,
}

/// The ports the flow needs, borrowed.
pub struct Ports<'a, L, R, G, B, E> {
    pub run_log: &'a L,
    pub registry: &'a R,
    pub ledger: &'a G,
    pub bus: &'a B,
    pub events: &'a E,
}

/// Decides `child` and delivers what it fires: a pending trigger first, then a new decision
/// (the pending one may have been what held the cursor back).
pub async fn wake_child<L, R, G, B, E>(
    ports: &Ports<'_, L, R, G, B, E>,
    child: &PipelineId,
    invocation: &Invocation,
    settings: &FlowSettings,
) -> ChildReport
where
    L: RunLog + Sync,
    R: Registry + Sync,
    G: Ledger + SendLease + Sync,
    B: TriggerBus + Sync,
    E: RunEvents + Sync,
{
    let mut report = ChildReport {
        child: child.clone(),
        steps: Vec::new(),
        error: None,
    };
    // A pending trigger, a new firing, a decision asked for while sending: a few rounds. A child
    // still to decide after them is an error, so the event is delivered again.
    for _ in 0..WAKE_ROUNDS {
        let decision = decide_child(
            ports.registry,
            ports.run_log,
            ports.ledger,
            child,
            invocation.read_clock(),
            settings,
        )
        .await;
        let (trigger, bus_arn, resent) = match decision {
            Err(e) => {
                report.error = Some(e);
                return report;
            }
            Ok(ChildDecision::NotRegistered) => {
                report.steps.push(Step::NotRegistered);
                return report;
            }
            Ok(ChildDecision::NoTrigger) => {
                report.steps.push(Step::NoTrigger);
                return report;
            }
            Ok(ChildDecision::Waiting { evaluation }) => {
                report.steps.push(Step::Evaluated(evaluation));
                return report;
            }
            Ok(ChildDecision::Pending { trigger, bus_arn }) => (trigger, bus_arn, true),
            Ok(ChildDecision::Claimed {
                trigger,
                bus_arn,
                evaluation,
            }) => {
                report.steps.push(Step::Evaluated(evaluation));
                (trigger, bus_arn, false)
            }
        };
        let delivered = deliver(
            ports.ledger,
            ports.bus,
            ports.events,
            &bus_arn,
            &trigger,
            invocation,
        )
        .await;
        match delivered {
            Err(e) => {
                report.error = Some(e);
                return report;
            }
            Ok(delivery) => {
                report.steps.push(Step::Delivered {
                    trigger,
                    bus_arn,
                    resent,
                    delivery,
                });
                // A re-sent pending trigger may have held back a newer firing, and another
                // delivery may have asked for a new decision while this one sent: decide again.
                // A fresh firing consumed every qualifying run this evaluation saw, and a holder
                // elsewhere was asked to decide again after sending.
                let again = match delivery {
                    Delivery::Sent { decide_again } => resent || decide_again,
                    Delivery::SentElsewhere => false,
                    Delivery::NoLongerPending => true,
                };
                if !again {
                    return report;
                }
            }
        }
    }
    report.error = Some(FlowError::Contended {
        child: child.clone(),
        attempts: WAKE_ROUNDS,
    });
    report
}

/// Rounds of decide-and-deliver for one child in one wake-up.
const WAKE_ROUNDS: usize = 5;

/// Wakes every child `run` can wake. A failure for one child does not stop the others; each
/// report carries its own error.
pub async fn wake_children<L, R, G, B, E>(
    ports: &Ports<'_, L, R, G, B, E>,
    run: &RunRef,
    invocation: &Invocation,
    settings: &FlowSettings,
) -> Result<Vec<ChildReport>, StoreError>
where
    L: RunLog + Sync,
    R: Registry + Sync,
    G: Ledger + SendLease + Sync,
    B: TriggerBus + Sync,
    E: RunEvents + Sync,
{
    let children = children_to_wake(ports.registry, run).await?;
    // Bounded concurrency, reports in the children's order.
    let reports = stream::iter(&children)
        .map(|child| wake_child(ports, child, invocation, settings))
        .buffered(settings.child_concurrency.max(1))
        .collect()
        .await;
    Ok(reports)
}

/// The cursor an evaluation uses: the stored one, never earlier than the registration's floor (a
/// new child, or a trigger an Update added or re-parented, never fires on history).
pub fn effective_cursor(stored: Option<Timestamp>, registration: &Registration) -> Timestamp {
    stored.unwrap_or_default().max(registration.floor())
}

/// The runs of each parent later than `cursor` with a status some leaf wants, newest first,
/// bounded per parent and status.
async fn parent_runs<L: RunLog + Sync>(
    run_log: &L,
    parents: &BTreeMap<PipelineId, BTreeSet<RunStatus>>,
    cursor: Timestamp,
    settings: &FlowSettings,
) -> Result<Vec<RunRef>, StoreError> {
    // One query per parent and status, all in flight together; results in the parents' order.
    let per_parent = try_join_all(parents.iter().map(|(parent, statuses)| {
        run_log.runs_since(parent, statuses, cursor, settings.runs_per_parent)
    }))
    .await?;
    Ok(per_parent.iter().flatten().map(Run::reference).collect())
}

/// A child's condition as the stores show it now; nothing is committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspection {
    pub registration: Registration,
    pub cursor_state: Option<CursorState>,
    /// The cursor the evaluation used ([`effective_cursor`]).
    pub cursor: Timestamp,
    /// `None` when the pipeline has no trigger condition.
    pub evaluation: Option<Evaluation>,
}

/// Reads `child`'s registration, cursor and parent runs and evaluates its condition at `now`,
/// exactly as [`decide_child`] would, without claiming anything: "why hasn't it started?".
/// `None` when the pipeline is not registered.
pub async fn inspect_child<L, R, G>(
    registry: &R,
    run_log: &L,
    ledger: &G,
    child: &PipelineId,
    now: Timestamp,
    settings: &FlowSettings,
) -> Result<Option<Inspection>, StoreError>
where
    L: RunLog + Sync,
    R: Registry + Sync,
    G: Ledger + Sync,
{
    let (registration, cursor_state) = try_join(registry.get(child), ledger.cursor(child)).await?;
    let Some(registration) = registration else {
        return Ok(None);
    };
    let cursor = effective_cursor(cursor_state.as_ref().map(|s| s.cursor), &registration);
    let evaluation = match registration.definition.trigger.as_ref() {
        Some(trigger) => {
            // Every status, so a waiting leaf's explanation can name the latest run of another.
            let every_status: BTreeMap<PipelineId, BTreeSet<RunStatus>> = registration
                .parents()
                .into_keys()
                .map(|p| (p, RunStatus::ALL.into_iter().collect()))
                .collect();
            let runs = parent_runs(run_log, &every_status, cursor, settings).await?;
            Some(evaluate(child, trigger, cursor, now, &runs))
        }
        None => None,
    };
    Ok(Some(Inspection {
        registration,
        cursor_state,
        cursor,
        evaluation,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::PipelineDefinition;

    #[test]
    fn triggers_go_to_the_registered_bus_or_the_default_name_in_the_child_account() {
        let mut registration = Registration {
            pipeline: PipelineId::new("333333333333", "eu-central-1", "pipeline-x").unwrap(),
            owner_stack_id: "stack".into(),
            definition: PipelineDefinition::default(),
            bus_arn: None,
            registered_at: Timestamp(0),
            trigger_floor: Timestamp(0),
        };
        assert_eq!(
            bus_arn(&registration, "baton-pipelines"),
            "arn:aws:events:eu-central-1:333333333333:event-bus/baton-pipelines"
        );
        registration.bus_arn = Some("arn:aws:events:eu-central-1:333333333333:event-bus/x".into());
        assert_eq!(
            bus_arn(&registration, "baton-pipelines"),
            "arn:aws:events:eu-central-1:333333333333:event-bus/x"
        );
    }
}
