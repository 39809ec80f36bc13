//! Waking a child: decide, deliver what fires, and decide again while a delivery asks for it;
//! and waking every child of a run, side by side.

use futures::stream::{self, StreamExt};

use super::{
    children_to_wake, decide_child, deliver, ChildDecision, Delivery, FlowError, FlowSettings,
    FlowStores, Invocation, Prefetch,
};
use crate::evaluator::Evaluation;
use crate::events::PipelineTrigger;
use crate::pipeline::PipelineId;
use crate::ports::StoreError;
use crate::run::RunRef;
use crate::run_key::RunKey;

/// One thing that happened while waking a child, in order, for the caller to log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    NotRegistered,
    NoTrigger,
    /// Aligned child, woken by a run without a key.
    NoRunKey,
    /// An evaluation (fired or waiting) with its explanation.
    Evaluated(Box<Evaluation>),
    /// A trigger was delivered (or found being delivered elsewhere); `resent`: it was pending
    /// from an earlier claim.
    Delivered {
        trigger: Box<PipelineTrigger>,
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

/// Decides `child` and delivers what it fires: a pending trigger first, then a new decision
/// (the pending one may have been what held the cursor back). `run_key`: the key of the run
/// that woke it (an aligned child is decided for that key; a sweep of a pending trigger passes
/// the trigger's key). `prefetch`: the child's first reads, made together with its siblings'
/// ([`Prefetch`]); `None` reads them for this child alone.
pub async fn wake_child<P: FlowStores>(
    ports: &P,
    child: &PipelineId,
    run_key: Option<&RunKey>,
    invocation: &Invocation,
    settings: &FlowSettings,
    prefetch: Option<&Prefetch>,
) -> ChildReport {
    let ports = ports.flow();
    let mut report = ChildReport {
        child: child.clone(),
        steps: Vec::new(),
        error: None,
    };
    // A pending trigger, a new firing, a decision asked for while sending: a few rounds. A child
    // still to decide after them is an error, so the event is delivered again. Only the first
    // round decides on what was read with the siblings.
    let mut prefetch = prefetch;
    for _ in 0..WAKE_ROUNDS {
        let decision = decide_child(
            ports.stores(),
            child,
            run_key,
            invocation.read_clock(),
            &invocation.lease,
            settings,
            prefetch.take(),
        )
        .await;
        let send = match decision {
            Err(e) => return report.stopped_by(e),
            Ok(decision) => match to_send(decision, &mut report.steps) {
                Some(send) => send,
                None => return report,
            },
        };
        let delivered = deliver(
            ports.ledger,
            ports.bus,
            ports.events,
            &send.bus_arn,
            &send.trigger,
            invocation,
            // A fresh claim took the send lease with it; a pending trigger's is taken here.
            !send.resent,
        )
        .await;
        let delivery = match delivered {
            Err(e) => return report.stopped_by(e),
            Ok(delivery) => delivery,
        };
        let again = decide_again(delivery, send.resent);
        report.steps.push(Step::Delivered {
            trigger: Box::new(send.trigger),
            bus_arn: send.bus_arn,
            resent: send.resent,
            delivery,
        });
        if !again {
            return report;
        }
    }
    report.stopped_by(FlowError::Contended {
        child: child.clone(),
        attempts: WAKE_ROUNDS,
    })
}

impl ChildReport {
    fn stopped_by(mut self, error: FlowError) -> ChildReport {
        self.error = Some(error);
        self
    }
}

/// A trigger a decision hands over for delivery; `resent`: it was pending from an earlier claim.
struct ToSend {
    trigger: PipelineTrigger,
    bus_arn: String,
    resent: bool,
}

/// Notes what `decision` found in `steps`, and what it hands over to send, if anything.
fn to_send(decision: ChildDecision, steps: &mut Vec<Step>) -> Option<ToSend> {
    match decision {
        ChildDecision::NotRegistered => steps.push(Step::NotRegistered),
        ChildDecision::NoTrigger => steps.push(Step::NoTrigger),
        ChildDecision::NoRunKey => steps.push(Step::NoRunKey),
        ChildDecision::Waiting { evaluation } => steps.push(Step::Evaluated(evaluation)),
        ChildDecision::Pending { trigger, bus_arn } => {
            return Some(ToSend {
                trigger,
                bus_arn,
                resent: true,
            })
        }
        ChildDecision::Claimed {
            trigger,
            bus_arn,
            evaluation,
        } => {
            steps.push(Step::Evaluated(evaluation));
            return Some(ToSend {
                trigger,
                bus_arn,
                resent: false,
            });
        }
    }
    None
}

/// Whether the child must be decided again after `delivery`. A re-sent pending trigger may have
/// held back a newer firing, and another delivery may have asked for a new decision while this
/// one sent: decide again. A fresh firing consumed every qualifying run this evaluation saw, and
/// a holder elsewhere was asked to decide again after sending.
fn decide_again(delivery: Delivery, resent: bool) -> bool {
    match delivery {
        Delivery::Sent { decide_again } => resent || decide_again,
        Delivery::SentElsewhere => false,
        Delivery::NoLongerPending => true,
    }
}

/// Rounds of decide-and-deliver for one child in one wake-up.
const WAKE_ROUNDS: usize = 5;

/// Wakes every child `run` can wake. A failure for one child does not stop the others; each
/// report carries its own error.
pub async fn wake_children<P: FlowStores>(
    ports: &P,
    run: &RunRef,
    invocation: &Invocation,
    settings: &FlowSettings,
) -> Result<Vec<ChildReport>, StoreError> {
    let flow = ports.flow();
    let children = children_to_wake(flow.registry, run).await?;
    let key = run.run_key.as_ref();
    // The children's registrations, cursors and parents' runs read together. Should that fail,
    // each child reads its own, and a store that is really down fails each child's report.
    let prefetch = Prefetch::read(
        flow.registry,
        flow.ledger,
        flow.run_log,
        &children,
        key,
        settings,
    )
    .await
    .ok();
    // Bounded concurrency, reports in the children's order.
    let reports = stream::iter(&children)
        .map(|child| wake_child(ports, child, key, invocation, settings, prefetch.as_ref()))
        .buffered(settings.child_concurrency.max(1))
        .collect()
        .await;
    Ok(reports)
}
