//! The trigger path: from one parent run to the children it wakes, each decided over the run log
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
//! at a time; each claim is conditional, so this is as safe as deciding them in turn. Their first
//! reads (steps 1 and 3) are made together ([`Prefetch`]): registrations and cursors 100 to a
//! request, each parent's runs once for every child that names it.
//!
//! Delivery holds the trigger's send lease (a fresh claim takes it in its own transaction, a
//! pending trigger's delivery takes it first), sends, marks it sent and announces it. A failed send
//! gives the lease back and leaves the trigger pending, so the next delivery sends the same
//! trigger id again: never lost, never doubled.
//!
//! [`decide`](decide_child) holds steps 1 to 4 (and the same reads without a claim,
//! [`inspect_child`]), [`deliver`] the sending, and [`wake_child`] the rounds of both for one
//! child.

use std::sync::Arc;

use thiserror::Error;

use crate::pipeline::PipelineId;
use crate::ports::{
    Lease, Ledger, PublishError, Registry, RunEvents, RunLog, SendLease, StoreError, TriggerBus,
};
use crate::time::{Span, Timestamp};

mod decide;
mod deliver;
mod prefetch;
mod wake;

pub use decide::{
    bus_arn, children_to_wake, decide_child, effective_cursor, inspect_child, ChildDecision,
    Inspection,
};
pub use deliver::{deliver, Delivery};
pub use prefetch::{FirstRead, Prefetch};
pub use wake::{wake_child, wake_children, ChildReport, Step};

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

/// The stores a decision reads and claims in, borrowed.
pub struct Stores<'a, L, R, G> {
    pub run_log: &'a L,
    pub registry: &'a R,
    pub ledger: &'a G,
}

impl<L, R, G> Clone for Stores<'_, L, R, G> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<L, R, G> Copy for Stores<'_, L, R, G> {}

impl<'a, L, R, G, B, E> Ports<'a, L, R, G, B, E> {
    /// The stores of these ports, for deciding.
    pub fn stores(&self) -> Stores<'a, L, R, G> {
        Stores {
            run_log: self.run_log,
            registry: self.registry,
            ledger: self.ledger,
        }
    }
}

/// The ports the flow needs, borrowed.
pub struct Ports<'a, L, R, G, B, E> {
    pub run_log: &'a L,
    pub registry: &'a R,
    pub ledger: &'a G,
    pub bus: &'a B,
    pub events: &'a E,
}

/// [`Ports`] with the bounds the flow needs of each, written once: a caller holding ports
/// takes a `P: FlowStores` instead of repeating five bounds.
pub trait FlowStores: Sync {
    type RunLog: RunLog + Sync;
    type Registry: Registry + Sync;
    type Ledger: Ledger + SendLease + Sync;
    type Bus: TriggerBus + Sync;
    type Events: RunEvents + Sync;

    #[allow(clippy::type_complexity)]
    fn flow(
        &self,
    ) -> &Ports<'_, Self::RunLog, Self::Registry, Self::Ledger, Self::Bus, Self::Events>;
}

impl<L, R, G, B, E> FlowStores for Ports<'_, L, R, G, B, E>
where
    L: RunLog + Sync,
    R: Registry + Sync,
    G: Ledger + SendLease + Sync,
    B: TriggerBus + Sync,
    E: RunEvents + Sync,
{
    type RunLog = L;
    type Registry = R;
    type Ledger = G;
    type Bus = B;
    type Events = E;

    fn flow(&self) -> &Ports<'_, L, R, G, B, E> {
        self
    }
}
