//! The ports through which baton's functions reach storage. Each is a small trait named for what
//! it does; `baton-adapters` implements them over DynamoDB. Domain logic takes these traits and
//! never an SDK client.
//!
//! Every operation is a GetItem (or a BatchGetItem of such keys), a Query or a conditional write in
//! the adapters: no Scan.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::evaluator::TriggerId;
use crate::events::PipelineTrigger;
use crate::pipeline::PipelineId;
use crate::registration::Registration;
use crate::run::Run;
use crate::run_key::RunKey;
use crate::status::RunStatus;
use crate::time::Timestamp;

/// A storage failure, phrased for the person reading the log.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    #[error("{operation} on table `{table}` failed and may succeed if retried: {message}")]
    Unavailable {
        operation: &'static str,
        table: String,
        message: String,
    },
    #[error("{operation} on table `{table}` was refused (retrying will not help; check the table name, its keys and the function's permissions): {message}")]
    Rejected {
        operation: &'static str,
        table: String,
        message: String,
    },
    #[error("item `{key}` in table `{table}` is malformed: {detail}")]
    Malformed {
        table: String,
        key: String,
        detail: String,
    },
    #[error("pipeline {pipeline} is registered by stack `{owner}`; only that stack can change or remove it")]
    NotOwner { pipeline: PipelineId, owner: String },
    #[error("pipeline {pipeline} names {parents} parents; at most {max} are supported")]
    TooManyParents {
        pipeline: PipelineId,
        parents: usize,
        max: usize,
    },
}

impl StoreError {
    /// Whether trying again later can help (throttling, timeouts, service errors).
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What recording a run found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// First time this (execution, status) was seen: announce it.
    New,
    /// Seen before but its announcement was never confirmed (a crash or a failed publish):
    /// announce it again, with the run key its first recording gave it (the registration that
    /// decides the key may have changed since).
    Unannounced { run_key: Option<RunKey> },
    /// Seen and announced before: nothing to do.
    AlreadyAnnounced,
}

/// The run log: every (execution, status) seen, and the latest state of each execution.
pub trait RunLog {
    /// Records a run idempotently: a repeat changes nothing (the first recording's run key
    /// stays). A run with a key is also recorded under its key, before this returns. Also updates
    /// the execution's latest state, where a final status beats RUNNING whatever the arrival
    /// order ([`Run::precedence`]).
    fn record(&self, run: &Run) -> impl Future<Output = StoreResult<Recorded>> + Send;

    /// Notes that the run's `RunEvent` was published, so a redelivery does not publish it again.
    fn mark_announced(&self, run: &Run) -> impl Future<Output = StoreResult<()>> + Send;

    /// Notes on the run that the watchdog recovered it (its status change event never arrived).
    fn mark_recovered(&self, run: &Run) -> impl Future<Output = StoreResult<()>> + Send;

    /// The latest state of an execution.
    fn latest(&self, execution_arn: &str) -> impl Future<Output = StoreResult<Option<Run>>> + Send;

    /// Runs of `pipeline` with one of `statuses` whose status time is later than `after`, newest
    /// first, at most `limit` of each status. Runs of other statuses are not read, so however
    /// many of them came later, a wanted run is found.
    fn runs_since(
        &self,
        pipeline: &PipelineId,
        statuses: &BTreeSet<RunStatus>,
        after: Timestamp,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<Run>>> + Send;

    /// As [`RunLog::runs_since`], over the runs of `pipeline` whose run key is `key` only: one
    /// key's runs never read the pipeline's whole history.
    fn runs_of_key(
        &self,
        pipeline: &PipelineId,
        key: &RunKey,
        statuses: &BTreeSet<RunStatus>,
        after: Timestamp,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<Run>>> + Send;
}

/// A reverse edge: `child` has a leaf on the parent, wanting one of `statuses`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildEdge {
    pub child: PipelineId,
    pub statuses: BTreeSet<RunStatus>,
}

/// The registry of pipelines and the reverse edges parent -> children.
pub trait Registry {
    fn get(
        &self,
        pipeline: &PipelineId,
    ) -> impl Future<Output = StoreResult<Option<Registration>>> + Send;

    /// The registrations of `pipelines` that exist, by pipeline (absent ones are left out): a
    /// parent's children read together, not one request each.
    fn get_many(
        &self,
        pipelines: &[PipelineId],
    ) -> impl Future<Output = StoreResult<BTreeMap<PipelineId, Registration>>> + Send;

    /// The children whose condition names `parent`.
    fn children(
        &self,
        parent: &PipelineId,
    ) -> impl Future<Output = StoreResult<Vec<ChildEdge>>> + Send;

    /// The stored registration of `pipeline` with its version, which a write must expect.
    fn read(
        &self,
        pipeline: &PipelineId,
    ) -> impl Future<Output = StoreResult<Option<Versioned>>> + Send;

    /// The version of the dependency graph: every write that adds an edge moves it, so a
    /// cycle check made at one version is valid for a write that expects that version.
    fn graph_version(&self) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Stores `write.registration` and its reverse edges in one conditional write: the stored
    /// version must be `write.expect` (`None`: nothing stored), and, with `write.graph`, the graph
    /// version must be that (and moves on). `false`: a condition failed, another registration
    /// came first; read again and decide again.
    fn write(&self, write: &RegistryWrite) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Removes the registration at version `version` and its reverse edges in one conditional
    /// write. `false`: it changed since it was read.
    fn remove(&self, stored: &Versioned) -> impl Future<Output = StoreResult<bool>> + Send;
}

/// A stored registration and its version (how many times it was written).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned {
    pub registration: Registration,
    pub version: u64,
}

/// One conditional write of a registration (see [`Registry::write`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryWrite {
    pub registration: Registration,
    /// The version read (`None`: nothing was stored); the write stores `expect + 1`.
    pub expect: Option<u64>,
    /// The graph version the cycle check was made at, when the write adds an edge.
    pub graph: Option<u64>,
    /// Parents the stored registration had and this one does not: their edges go.
    pub removed_parents: Vec<PipelineId>,
}

/// A child's position in the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CursorState {
    /// Runs at or before this never count again for the child.
    pub cursor: Timestamp,
    pub last_trigger_id: Option<TriggerId>,
    /// A claimed trigger not yet confirmed sent: re-send it before deciding anything new.
    pub pending: Option<PipelineTrigger>,
}

/// The outcome of a claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// This evaluation committed the firing; it must now send it.
    Claimed,
    /// Another evaluation committed first (this trigger, or the cursor moved): re-read and decide again.
    Lost,
}

/// A child's cursor, for one run key (aligned children) or none.
pub type CursorSlot = (PipelineId, Option<RunKey>);

/// The ledger: per child, the cursor, and the claims that make each firing happen exactly once.
pub trait Ledger {
    /// The child's cursor state (for an aligned child, its cursor for `run_key`), if it has
    /// ever fired (for that key).
    fn cursor(
        &self,
        child: &PipelineId,
        run_key: Option<&RunKey>,
    ) -> impl Future<Output = StoreResult<Option<CursorState>>> + Send;

    /// The cursor states of `slots` (child, run key) that exist, by slot (children that never
    /// fired for that key are left out): a parent's children read together.
    fn cursors(
        &self,
        slots: &[CursorSlot],
    ) -> impl Future<Output = StoreResult<BTreeMap<CursorSlot, CursorState>>> + Send;

    /// Commits a firing in one conditional transaction: a claim keyed by the trigger id (which must
    /// not exist), and the cursor (of the trigger's run key, if it has one) moved to `cursor_after` only from `cursor_read` (the value read
    /// before deciding; `None` when there was no cursor item) and only while no trigger is pending.
    /// The claimed trigger's send lease is taken for `lease` in the same write, so the claiming
    /// delivery sends without taking it first ([`SendLease::take_send_lease`]).
    fn claim(
        &self,
        trigger: &PipelineTrigger,
        cursor_read: Option<Timestamp>,
        cursor_after: Timestamp,
        lease: &Lease,
    ) -> impl Future<Output = StoreResult<ClaimOutcome>> + Send;

    /// Marks a pending trigger sent: one conditional write on the cursor item clears it from
    /// pending (with its send lease) only if it is still the pending one, so no crash point can
    /// leave a trigger both sent and pending. A trigger no longer pending is left as it is.
    /// `true`: while it was pending, another delivery asked the sender to decide the child again
    /// ([`SendLease::ask_to_decide_again`]).
    fn mark_sent(
        &self,
        child: &PipelineId,
        run_key: Option<&RunKey>,
        trigger_id: &TriggerId,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Forgets a child whose registration was deleted: its pending triggers (and leases), of
    /// every run key, go, so a
    /// pipeline registered again under the name is never sent the old trigger. The cursor value
    /// stays: an evaluation that read the old registration must not fire again on runs the child
    /// already consumed, and the new registration's floor is later anyway.
    fn forget(&self, child: &PipelineId) -> impl Future<Output = StoreResult<()>> + Send;

    /// Drops `trigger_id`, pending on the child's cursor item of `run_key` but claimed for an
    /// earlier registration of the name (deleted since, its ledger not forgotten), only while it
    /// is still the pending one: it is never sent to the new registration, and a trigger claimed
    /// since (on this or another key's item) is left alone.
    fn drop_pending(
        &self,
        child: &PipelineId,
        run_key: Option<&RunKey>,
        trigger_id: &TriggerId,
    ) -> impl Future<Output = StoreResult<()>> + Send;
}

/// A failure to publish a message (a `RunEvent` on the topic, a `PipelineTrigger` on a bus),
/// naming where it was going.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PublishError {
    #[error("publishing to `{destination}` failed and may succeed if retried: {message}")]
    Unavailable {
        destination: String,
        message: String,
    },
    #[error("publishing to `{destination}` was refused (retrying will not help until the destination exists and admits baton): {message}")]
    Rejected {
        destination: String,
        message: String,
    },
}

impl PublishError {
    /// Whether trying again later can help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, PublishError::Unavailable { .. })
    }
}

/// The run-events topic: where run-log-writer announces runs and trigger-manager announces
/// triggers. Messages carry the attributes of [`RunEvent::message_attributes`](crate::RunEvent::message_attributes)
/// for subscription filter policies.
pub trait RunEvents {
    fn publish(
        &self,
        event: &crate::events::RunEvent,
    ) -> impl Future<Output = Result<(), PublishError>> + Send;
}

/// Child accounts' pipeline buses: where a trigger goes (source `baton`, detail-type
/// `Pipeline Trigger`, the trigger as detail).
pub trait TriggerBus {
    fn send(
        &self,
        bus_arn: &str,
        trigger: &PipelineTrigger,
    ) -> impl Future<Output = Result<(), PublishError>> + Send;
}

/// A holder's claim on something only one delivery may do at a time: who holds it and until
/// when. Leases outlast their holder's invocation ([`Lease::until_after`]), so a live holder is
/// never overtaken and a dead one's lease ends by itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub holder: String,
    pub until: Timestamp,
}

impl Lease {
    /// A lease for a holder whose invocation ends at `deadline`, lasting `margin` longer (room
    /// for clocks that disagree between hosts): it can only end after the holder can no longer
    /// write.
    pub fn until_after(
        holder: impl Into<String>,
        deadline: Timestamp,
        margin: crate::time::Span,
    ) -> Lease {
        Lease {
            holder: holder.into(),
            until: deadline.plus(margin),
        }
    }
}

/// Who may send a pending trigger right now. The lease lives on the child's cursor item (of the
/// trigger's run key, `run_key`), beside the pending trigger it guards, so of any number of
/// evaluations that find the same pending trigger (the winner of the claim included) exactly
/// one sends it.
pub trait SendLease {
    /// Takes the send lease of `trigger_id` for `lease.holder` while it is the child's pending
    /// trigger and no other holder's lease runs at `now` (the holder's own repeated take, e.g. the
    /// SDK's retry after a lost answer, is granted again). `false`: the trigger is no longer
    /// pending (sent) or another delivery holds the lease.
    fn take_send_lease(
        &self,
        child: &PipelineId,
        run_key: Option<&RunKey>,
        trigger_id: &TriggerId,
        lease: &Lease,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Asks whoever holds the lease of pending `trigger_id` to decide the child again after it
    /// has sent it (a run recorded meanwhile may fire the child anew). `false`: the trigger is no
    /// longer pending, so the asker must decide again itself.
    fn ask_to_decide_again(
        &self,
        child: &PipelineId,
        run_key: Option<&RunKey>,
        trigger_id: &TriggerId,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Gives `holder`'s lease back after a failed send, so the next delivery re-sends at once.
    fn release_send_lease(
        &self,
        child: &PipelineId,
        run_key: Option<&RunKey>,
        trigger_id: &TriggerId,
        holder: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;
}
