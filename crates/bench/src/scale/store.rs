//! core's ports in memory, with the semantics the DynamoDB adapters give them (idempotent record,
//! conditional claim, send lease), so the real flow can replay a day of an organisation's runs
//! without the emulator. Every operation counts as the one request it would be in DynamoDB, so
//! the replay also reports requests per run event.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use baton_core::ports::{
    ChildEdge, ClaimOutcome, CursorState, Lease, Ledger, PublishError, Recorded, Registration,
    Registry, RegistryWrite, RunEvents, RunLog, SendLease, StoreError, StoreResult, TriggerBus,
    Versioned,
};
use baton_core::{PipelineId, PipelineTrigger, Run, RunEvent, RunStatus, Timestamp, TriggerId};

#[derive(Default)]
struct Inner {
    runs: HashMap<PipelineId, Vec<Run>>,
    seen: HashMap<(String, RunStatus), bool>,
    latest: HashMap<String, Run>,
    registrations: HashMap<PipelineId, Registration>,
    edges: HashMap<PipelineId, Vec<ChildEdge>>,
    cursors: HashMap<PipelineId, CursorState>,
    claims: HashMap<(PipelineId, TriggerId), ()>,
    leases: HashMap<PipelineId, Lease>,
    decide_again: std::collections::HashSet<PipelineId>,
    versions: HashMap<PipelineId, u64>,
    graph_version: u64,
    sent: Vec<(String, PipelineTrigger)>,
}

/// The central account's storage, the pipeline buses and the run-events topic, in memory.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// Requests the DynamoDB adapters would have made.
    pub requests: AtomicU64,
    /// Trigger notices published.
    pub notices: AtomicU64,
}

fn poisoned(table: &str) -> StoreError {
    StoreError::Unavailable {
        operation: "lock",
        table: table.to_owned(),
        message: "the in-memory store was poisoned by a panic".to_owned(),
    }
}

impl MemoryStore {
    fn with<T>(&self, table: &str, f: impl FnOnce(&mut Inner) -> T) -> StoreResult<T> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut inner = self.inner.lock().map_err(|_| poisoned(table))?;
        Ok(f(&mut inner))
    }

    /// Triggers sent to buses since the last call, oldest first.
    pub fn take_sent(&self) -> Vec<(String, PipelineTrigger)> {
        self.inner
            .lock()
            .map(|mut inner| std::mem::take(&mut inner.sent))
            .unwrap_or_default()
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl RunLog for MemoryStore {
    async fn record(&self, run: &Run) -> StoreResult<Recorded> {
        self.with("runs", |inner| {
            let key = (run.execution_arn.clone(), run.status);
            let recorded = match inner.seen.get(&key) {
                Some(true) => return Recorded::AlreadyAnnounced,
                Some(false) => Recorded::Unannounced,
                None => {
                    inner.seen.insert(key, false);
                    inner
                        .runs
                        .entry(run.pipeline.clone())
                        .or_default()
                        .push(run.clone());
                    Recorded::New
                }
            };
            let newer = inner
                .latest
                .get(&run.execution_arn)
                .is_none_or(|old| run.precedence() > old.precedence());
            if newer {
                inner.latest.insert(run.execution_arn.clone(), run.clone());
            }
            recorded
        })
    }

    async fn mark_announced(&self, run: &Run) -> StoreResult<()> {
        self.with("runs", |inner| {
            inner
                .seen
                .insert((run.execution_arn.clone(), run.status), true);
        })
    }

    async fn latest(&self, execution_arn: &str) -> StoreResult<Option<Run>> {
        self.with("runs", |inner| inner.latest.get(execution_arn).cloned())
    }

    async fn runs_since(
        &self,
        pipeline: &PipelineId,
        statuses: &std::collections::BTreeSet<RunStatus>,
        after: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Run>> {
        self.with("runs", |inner| {
            let mut runs = Vec::new();
            for status in statuses {
                let mut of_status: Vec<Run> = inner
                    .runs
                    .get(pipeline)
                    .into_iter()
                    .flatten()
                    .filter(|r| r.status == *status && r.status_time() > after)
                    .cloned()
                    .collect();
                of_status.sort_by_key(|r| std::cmp::Reverse(r.status_time()));
                of_status.truncate(limit);
                runs.extend(of_status);
            }
            runs.sort_by_key(|r| std::cmp::Reverse(r.status_time()));
            runs
        })
    }
}

impl Registry for MemoryStore {
    async fn get(&self, pipeline: &PipelineId) -> StoreResult<Option<Registration>> {
        self.with("registry", |inner| {
            inner.registrations.get(pipeline).cloned()
        })
    }

    async fn children(&self, parent: &PipelineId) -> StoreResult<Vec<ChildEdge>> {
        self.with("registry", |inner| {
            inner.edges.get(parent).cloned().unwrap_or_default()
        })
    }

    async fn read(&self, pipeline: &PipelineId) -> StoreResult<Option<Versioned>> {
        self.with("registry", |inner| {
            inner.registrations.get(pipeline).map(|r| Versioned {
                registration: r.clone(),
                version: inner.versions.get(pipeline).copied().unwrap_or(0),
            })
        })
    }

    async fn graph_version(&self) -> StoreResult<u64> {
        self.with("registry", |inner| inner.graph_version)
    }

    async fn write(&self, write: &RegistryWrite) -> StoreResult<bool> {
        self.with("registry", |inner| {
            let child = write.registration.pipeline.clone();
            let stored = inner
                .registrations
                .contains_key(&child)
                .then(|| inner.versions.get(&child).copied().unwrap_or(0));
            if stored != write.expect || write.graph.is_some_and(|g| g != inner.graph_version) {
                return false;
            }
            for edges in inner.edges.values_mut() {
                edges.retain(|e| e.child != child);
            }
            for (parent, statuses) in write.registration.parents() {
                inner.edges.entry(parent).or_default().push(ChildEdge {
                    child: child.clone(),
                    statuses,
                });
            }
            if write.graph.is_some() {
                inner.graph_version += 1;
            }
            inner
                .versions
                .insert(child.clone(), write.expect.map_or(1, |v| v + 1));
            inner
                .registrations
                .insert(child, write.registration.clone());
            true
        })
    }

    async fn remove(&self, stored: &Versioned) -> StoreResult<bool> {
        self.with("registry", |inner| {
            let pipeline = &stored.registration.pipeline;
            if inner.versions.get(pipeline).copied().unwrap_or(0) != stored.version {
                return false;
            }
            for edges in inner.edges.values_mut() {
                edges.retain(|e| &e.child != pipeline);
            }
            inner.versions.remove(pipeline);
            inner.registrations.remove(pipeline).is_some()
        })
    }
}

impl MemoryStore {
    /// Loads a registration without the linear edge clean-up of a replacement (the organisation
    /// is registered once, each pipeline once).
    pub fn load(&self, registration: Registration) {
        if let Ok(mut inner) = self.inner.lock() {
            let child = registration.pipeline.clone();
            for (parent, statuses) in registration.parents() {
                inner.edges.entry(parent).or_default().push(ChildEdge {
                    child: child.clone(),
                    statuses,
                });
            }
            inner.registrations.insert(child, registration);
        }
    }
}

impl Ledger for MemoryStore {
    async fn cursor(&self, child: &PipelineId) -> StoreResult<Option<CursorState>> {
        self.with("ledger", |inner| inner.cursors.get(child).cloned())
    }

    async fn claim(
        &self,
        trigger: &PipelineTrigger,
        cursor_read: Option<Timestamp>,
        cursor_after: Timestamp,
    ) -> StoreResult<ClaimOutcome> {
        self.with("ledger", |inner| {
            let child = trigger.target.id();
            let key = (child.clone(), trigger.trigger_id.clone());
            if inner.claims.contains_key(&key) {
                return ClaimOutcome::Lost;
            }
            let current = inner.cursors.get(&child);
            if current.map(|s| s.cursor) != cursor_read
                || current.is_some_and(|s| s.pending.is_some())
            {
                return ClaimOutcome::Lost;
            }
            inner.cursors.insert(
                child,
                CursorState {
                    cursor: cursor_after,
                    last_trigger_id: Some(trigger.trigger_id.clone()),
                    pending: Some(trigger.clone()),
                },
            );
            inner.claims.insert(key, ());
            ClaimOutcome::Claimed
        })
    }

    async fn mark_sent(&self, child: &PipelineId, trigger_id: &TriggerId) -> StoreResult<bool> {
        self.with("ledger", |inner| {
            let Some(state) = inner.cursors.get_mut(child) else {
                return false;
            };
            if !state
                .pending
                .as_ref()
                .is_some_and(|p| &p.trigger_id == trigger_id)
            {
                return false;
            }
            state.pending = None;
            inner.leases.remove(child);
            inner.decide_again.remove(child)
        })
    }

    async fn forget(&self, child: &PipelineId) -> StoreResult<()> {
        self.with("ledger", |inner| {
            if let Some(state) = inner.cursors.get_mut(child) {
                state.pending = None;
            }
            inner.leases.remove(child);
            inner.decide_again.remove(child);
        })
    }
}

impl SendLease for MemoryStore {
    async fn take_send_lease(
        &self,
        child: &PipelineId,
        trigger_id: &TriggerId,
        lease: &Lease,
        now: Timestamp,
    ) -> StoreResult<bool> {
        self.with("ledger", |inner| {
            let pending = inner
                .cursors
                .get(child)
                .and_then(|s| s.pending.as_ref())
                .is_some_and(|p| &p.trigger_id == trigger_id);
            let free = inner
                .leases
                .get(child)
                .is_none_or(|held| held.until < now || held.holder == lease.holder);
            if pending && free {
                inner.leases.insert(child.clone(), lease.clone());
            }
            pending && free
        })
    }

    async fn ask_to_decide_again(
        &self,
        child: &PipelineId,
        trigger_id: &TriggerId,
    ) -> StoreResult<bool> {
        self.with("ledger", |inner| {
            let pending = inner
                .cursors
                .get(child)
                .and_then(|s| s.pending.as_ref())
                .is_some_and(|p| &p.trigger_id == trigger_id);
            if pending {
                inner.decide_again.insert(child.clone());
            }
            pending
        })
    }

    async fn release_send_lease(
        &self,
        child: &PipelineId,
        _trigger_id: &TriggerId,
        holder: &str,
    ) -> StoreResult<()> {
        self.with("ledger", |inner| {
            if inner.leases.get(child).is_some_and(|l| l.holder == holder) {
                inner.leases.remove(child);
            }
        })
    }
}

impl TriggerBus for MemoryStore {
    async fn send(&self, bus_arn: &str, trigger: &PipelineTrigger) -> Result<(), PublishError> {
        let mut inner = self.inner.lock().map_err(|_| PublishError::Unavailable {
            destination: bus_arn.to_owned(),
            message: "the in-memory store was poisoned by a panic".to_owned(),
        })?;
        inner.sent.push((bus_arn.to_owned(), trigger.clone()));
        Ok(())
    }
}

impl RunEvents for MemoryStore {
    async fn publish(&self, _event: &RunEvent) -> Result<(), PublishError> {
        self.notices.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
