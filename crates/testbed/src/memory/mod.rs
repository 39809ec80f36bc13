//! core's ports in memory (run log, registry, ledger, Slack thread ledger, run-events topic,
//! pipeline buses): a first-class adapter beside the DynamoDB, SNS and EventBridge ones,
//! shared by the simulation, the benchmarks and tests.
//!
//! Faithful by construction: **one port call makes exactly the requests the DynamoDB adapter
//! makes, each with the same condition**, and each request takes effect atomically on its own
//! (`mark_sent` is two writes here because it is two UpdateItems there). Rules live in core, so
//! neither store holds any: these only store.
//!
//! Every request goes through [`Requests`], which counts it and, when an [`Interceptor`] is
//! installed, first yields to the executor (so a simulation can interleave invocations at every
//! request) and lets the interceptor fail it before its effect, or after it (the response is
//! lost), as a throttle, a timeout or a dropped connection would.

mod executions;
mod ledger;
mod publish;
mod registry;
mod run_log;
mod slack_threads;
mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use baton_core::ports::{StoreError, StoreResult};
use baton_core::{PipelineId, PipelineTrigger, RunEvent, Timestamp, TriggerId};

pub use executions::MemoryExecutions;
pub use ledger::{ClaimItem, CursorItem, MemoryLedger};
pub use publish::{MemoryTopic, MemoryTriggerBus};
pub use registry::MemoryRegistry;
pub use run_log::{MemoryRunLog, PAGE_BYTES};
pub use slack_threads::MemorySlackThreads;
pub use watch::MemoryWatch;

/// BatchGetItem's limit of keys per request, as the DynamoDB adapters read.
pub const BATCH_GET_KEYS: usize = 100;

/// The request a port call is making, with what its condition and effect depend on.
#[derive(Clone, Copy, Debug)]
pub enum Op<'a> {
    /// PutItem of a run item, `attribute_not_exists(pk)`.
    PutRun(&'a baton_core::Run),
    /// GetItem of a run item (after its PutItem found it taken).
    GetRun(&'a baton_core::Run),
    /// PutItem of an execution's latest state, `attribute_not_exists(pk) OR rank < :rank`.
    PutLatest(&'a baton_core::Run),
    /// PutItem of a run under its run key, `attribute_not_exists(pk)`.
    PutRunKey(&'a baton_core::Run),
    /// UpdateItem `announced = true`, `attribute_exists(pk)`.
    MarkAnnounced(&'a baton_core::Run),
    GetLatest(&'a str),
    /// Query of one pipeline's runs with one status later than `after`, newest first.
    /// With `key`: of its runs under that run key.
    QueryRuns {
        pipeline: &'a PipelineId,
        key: Option<&'a baton_core::RunKey>,
        status: baton_core::RunStatus,
        after: Timestamp,
    },
    GetRegistration(&'a PipelineId),
    /// BatchGetItem of registrations (at most 100, strongly consistent).
    BatchGetRegistrations(&'a [PipelineId]),
    /// GetItem of the dependency graph's version.
    GetGraphVersion,
    QueryChildren(&'a PipelineId),
    /// TransactWriteItems of a registration and its edges.
    WriteRegistration(&'a PipelineId),
    /// TransactWriteItems deleting a registration and its edges.
    DeleteRegistration(&'a PipelineId),
    GetCursor(&'a PipelineId),
    /// BatchGetItem of cursor items (at most 100, strongly consistent).
    BatchGetCursors(&'a [baton_core::ports::CursorSlot]),
    /// TransactWriteItems: the claim item and the cursor move.
    Claim(&'a PipelineTrigger),
    /// UpdateItem of the cursor item: the pending trigger (and its lease) cleared, recorded as
    /// sent, only while it is the pending one.
    MarkSent {
        child: &'a PipelineId,
        trigger_id: &'a TriggerId,
    },
    /// Query of a child's cursor items (`begins_with(sk, cursor)`), before forgetting them.
    QueryCursors(&'a PipelineId),
    /// UpdateItem of a child's cursor item: its pending trigger (and lease) removed.
    Forget(&'a PipelineId),
    /// UpdateItem of a cursor item: a stale pending trigger dropped, only while it is pending.
    DropPending {
        child: &'a PipelineId,
        trigger_id: &'a TriggerId,
    },
    /// UpdateItem of the cursor item: the lease holder asked to decide again after sending.
    AskDecideAgain {
        child: &'a PipelineId,
        trigger_id: &'a TriggerId,
    },
    TakeLease {
        child: &'a PipelineId,
        trigger_id: &'a TriggerId,
        holder: &'a str,
        now: Timestamp,
        until: Timestamp,
    },
    ReleaseLease {
        child: &'a PipelineId,
        trigger_id: &'a TriggerId,
    },
    /// SNS Publish to the run-events topic.
    Publish(&'a RunEvent),
    /// A request on a Slack thread ledger slot (claim, read, record, release).
    SlackSlot(&'a baton_core::slack::ledger::PostSlot),
    /// A request of the watchdog's own (the deadline inbox, the pending-trigger index, the watch
    /// table), named as its DynamoDB request is.
    Watch(&'a str),
    /// EventBridge PutEvents of a trigger to a pipeline bus.
    PutTrigger {
        bus_arn: &'a str,
        trigger: &'a PipelineTrigger,
    },
}

/// What a request did to the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// A read: nothing changed.
    Read,
    /// A write whose condition held: it took effect.
    Written,
    /// A write whose condition failed: nothing changed.
    ConditionFailed,
}

/// A fault injected into one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// The request fails without effect (throttled, refused connection).
    Before(String),
    /// The request takes effect but its response is lost (a timeout, a dropped connection).
    After(String),
}

/// Sees every request: decides its fault, and hears what it did.
pub trait Interceptor: Send + Sync {
    fn before(&self, op: &Op<'_>) -> Fault;
    fn after(&self, op: &Op<'_>, effect: Effect);
}

/// The path every request takes: counted, and with an interceptor, yielded at and faulted.
#[derive(Default)]
pub struct Requests {
    interceptor: Option<Arc<dyn Interceptor>>,
    count: AtomicU64,
}

/// A request failed by the interceptor; the adapter turns it into its own error type.
#[derive(Debug)]
pub(crate) struct Injected(pub String);

impl Requests {
    pub fn new(interceptor: Option<Arc<dyn Interceptor>>) -> Requests {
        Requests {
            interceptor,
            count: AtomicU64::new(0),
        }
    }

    /// Requests made so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// BatchGetItem's limit of keys per request, as the DynamoDB adapters read.
    pub const BATCH_GET_KEYS: usize = 100;

    /// Makes one request: `effect` runs atomically and says what it did.
    pub(crate) async fn request<T>(
        &self,
        op: Op<'_>,
        effect: impl FnOnce() -> (T, Effect),
    ) -> Result<T, Injected> {
        self.count.fetch_add(1, Ordering::Relaxed);
        let Some(interceptor) = &self.interceptor else {
            return Ok(effect().0);
        };
        YieldNow(false).await;
        let fault = interceptor.before(&op);
        if let Fault::Before(message) = fault {
            return Err(Injected(message));
        }
        let (value, done) = effect();
        interceptor.after(&op, done);
        match fault {
            Fault::After(message) => Err(Injected(message)),
            _ => Ok(value),
        }
    }
}

/// Pending once, waking itself: hands control back to the executor, which picks what runs next.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// Locks a table; a poisoned lock (a panic while holding it) is reported, not propagated.
pub(crate) fn lock<'a, T>(
    table: &'a Mutex<T>,
    name: &str,
    operation: &'static str,
) -> Result<MutexGuard<'a, T>, StoreError> {
    table.lock().map_err(|_| StoreError::Unavailable {
        operation,
        table: name.to_owned(),
        message: "the in-memory table was poisoned by a panic".to_owned(),
    })
}

/// A BatchGetItem read as the adapters make it: one request per 100 distinct keys, all in flight
/// together; `op` names a chunk's request and `found` answers its items that exist, atomically.
pub(crate) async fn batch_get<K, V>(
    requests: &Requests,
    keys: &[K],
    op: for<'k> fn(&'k [K]) -> Op<'k>,
    (operation, table): (&'static str, &str),
    found: impl Fn(&[K]) -> StoreResult<Vec<(K, V)>>,
) -> StoreResult<BTreeMap<K, V>>
where
    K: Ord + Clone,
{
    let unique: Vec<K> = keys
        .iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let chunks = unique
        .chunks(BATCH_GET_KEYS)
        .map(|chunk| requests.request(op(chunk), || (found(chunk), Effect::Read)));
    let mut all = BTreeMap::new();
    for got in futures::future::join_all(chunks).await {
        all.extend(got.map_err(|f| unavailable(operation, table, f))??);
    }
    Ok(all)
}

pub(crate) fn unavailable(operation: &'static str, table: &str, fault: Injected) -> StoreError {
    StoreError::Unavailable {
        operation,
        table: table.to_owned(),
        message: fault.0,
    }
}

/// The central account's tables and outlets, in memory, sharing one request path.
pub struct Memory {
    pub requests: Arc<Requests>,
    pub run_log: MemoryRunLog,
    pub registry: MemoryRegistry,
    pub ledger: MemoryLedger,
    pub topic: MemoryTopic,
    pub buses: MemoryTriggerBus,
    pub slack_threads: MemorySlackThreads,
    pub watch: MemoryWatch,
    pub executions: MemoryExecutions,
}

impl Memory {
    /// Empty tables; every request goes through `interceptor` when given.
    pub fn new(interceptor: Option<Arc<dyn Interceptor>>) -> Memory {
        let requests = Arc::new(Requests::new(interceptor));
        Memory {
            run_log: MemoryRunLog::new(requests.clone()),
            registry: MemoryRegistry::new(requests.clone()),
            ledger: MemoryLedger::new(requests.clone()),
            topic: MemoryTopic::new(requests.clone()),
            buses: MemoryTriggerBus::new(requests.clone()),
            slack_threads: MemorySlackThreads::new(requests.clone()),
            watch: MemoryWatch::new(requests.clone()),
            executions: MemoryExecutions::new(requests.clone()),
            requests,
        }
    }

    /// The ports as core's flow takes them.
    pub fn ports(
        &self,
    ) -> baton_core::trigger::Ports<
        '_,
        MemoryRunLog,
        MemoryRegistry,
        MemoryLedger,
        MemoryTriggerBus,
        MemoryTopic,
    > {
        baton_core::trigger::Ports {
            run_log: &self.run_log,
            registry: &self.registry,
            ledger: &self.ledger,
            bus: &self.buses,
            events: &self.topic,
        }
    }

    /// The ports as core's watchdog takes them.
    #[allow(clippy::type_complexity)]
    pub fn watch_ports(
        &self,
    ) -> baton_core::watch::run::WatchPorts<
        '_,
        MemoryRunLog,
        MemoryRegistry,
        MemoryLedger,
        MemoryTriggerBus,
        MemoryTopic,
        MemoryWatch,
        MemoryExecutions,
    > {
        baton_core::watch::run::WatchPorts {
            flow: self.ports(),
            watch: &self.watch,
            lookup: &self.executions,
        }
    }
}

#[cfg(test)]
mod flow_tests;
#[cfg(test)]
mod prefetch_tests;
#[cfg(test)]
mod tests;
