//! The ledger in memory, item for item as `DynamoLedger` keeps it: per child a cursor item (the
//! cursor, the last and the pending trigger, the pending trigger's send lease, the last trigger
//! sent) and one claim item per trigger id, changed by the same requests under the same
//! conditions.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use baton_core::ports::{
    ClaimOutcome, CursorSlot, CursorState, Lease, Ledger, SendLease, StoreResult,
};
use baton_core::watch::PendingTriggers;
use baton_core::{PipelineId, PipelineTrigger, RunKey, Timestamp, TriggerId};

use super::{batch_get, lock, unavailable, Effect, Op, Requests};

const TABLE: &str = "ledger (memory)";

/// A child's cursor item.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CursorItem {
    pub cursor: Timestamp,
    pub last_trigger_id: Option<TriggerId>,
    pub pending_trigger_id: Option<TriggerId>,
    pub pending_trigger: Option<PipelineTrigger>,
    pub lease_holder: Option<String>,
    pub lease_until: Option<Timestamp>,
    pub last_sent_trigger_id: Option<TriggerId>,
    /// Another delivery asked the lease holder to decide the child again after sending.
    pub decide_again: bool,
}

/// A claim item: the record of a firing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimItem {
    pub trigger: PipelineTrigger,
}

#[derive(Default)]
struct Tables {
    /// (child, run key): `cursor`, or `cursor#<key>` of an aligned child.
    cursors: BTreeMap<(PipelineId, Option<RunKey>), CursorItem>,
    claims: BTreeMap<(PipelineId, TriggerId), ClaimItem>,
}

/// [`Ledger`] and [`SendLease`] in memory.
pub struct MemoryLedger {
    requests: Arc<Requests>,
    tables: Mutex<Tables>,
}

impl MemoryLedger {
    pub fn new(requests: Arc<Requests>) -> MemoryLedger {
        MemoryLedger {
            requests,
            tables: Mutex::new(Tables::default()),
        }
    }

    /// Every cursor item, by child and run key: for checks over the whole ledger.
    pub fn cursors(&self) -> BTreeMap<(PipelineId, Option<RunKey>), CursorItem> {
        self.tables
            .lock()
            .map(|t| t.cursors.clone())
            .unwrap_or_default()
    }

    /// Every claim item: for checks over the whole ledger.
    pub fn claims(&self) -> BTreeMap<(PipelineId, TriggerId), ClaimItem> {
        self.tables
            .lock()
            .map(|t| t.claims.clone())
            .unwrap_or_default()
    }

    /// One UpdateItem of a child's cursor item, applying `change` when `condition` holds on the
    /// item as stored (`None` when there is none). A failed condition is `Ok(false)`.
    async fn update_cursor(
        &self,
        op: Op<'_>,
        operation: &'static str,
        child: &PipelineId,
        run_key: Option<&RunKey>,
        condition: impl FnOnce(Option<&CursorItem>) -> bool,
        change: impl FnOnce(&mut CursorItem),
    ) -> StoreResult<bool> {
        self.requests
            .request(op, || {
                let mut t = match lock(&self.tables, TABLE, operation) {
                    Ok(t) => t,
                    Err(e) => return (Err(e), Effect::Read),
                };
                let slot = (child.clone(), run_key.cloned());
                if !condition(t.cursors.get(&slot)) {
                    return (Ok(false), Effect::ConditionFailed);
                }
                change(t.cursors.entry(slot).or_default());
                (Ok(true), Effect::Written)
            })
            .await
            .map_err(|f| unavailable(operation, TABLE, f))?
    }
}

fn pending_is(item: Option<&CursorItem>, trigger_id: &TriggerId) -> bool {
    item.is_some_and(|c| c.pending_trigger_id.as_ref() == Some(trigger_id))
}

impl Ledger for MemoryLedger {
    async fn cursor(
        &self,
        child: &PipelineId,
        run_key: Option<&RunKey>,
    ) -> StoreResult<Option<CursorState>> {
        let slot = (child.clone(), run_key.cloned());
        self.requests
            .request(Op::GetCursor(child), || {
                let got = lock(&self.tables, TABLE, "GetItem (cursor)")
                    .map(|t| t.cursors.get(&slot).map(cursor_state));
                (got, Effect::Read)
            })
            .await
            .map_err(|f| unavailable("GetItem (cursor)", TABLE, f))?
    }

    /// One BatchGetItem per 100 distinct slots, all in flight together, as the adapter reads.
    async fn cursors(
        &self,
        slots: &[CursorSlot],
    ) -> StoreResult<BTreeMap<CursorSlot, CursorState>> {
        let operation = "BatchGetItem (cursors)";
        batch_get(
            &self.requests,
            slots,
            |chunk: &[CursorSlot]| Op::BatchGetCursors(chunk),
            (operation, TABLE),
            |chunk| {
                let t = lock(&self.tables, TABLE, operation)?;
                Ok(chunk
                    .iter()
                    .filter_map(|slot| Some((slot.clone(), cursor_state(t.cursors.get(slot)?))))
                    .collect())
            },
        )
        .await
    }

    async fn claim(
        &self,
        trigger: &PipelineTrigger,
        cursor_read: Option<Timestamp>,
        cursor_after: Timestamp,
        lease: &Lease,
    ) -> StoreResult<ClaimOutcome> {
        let child = trigger.target.id();
        let operation = "TransactWriteItems (claim)";
        self.requests
            .request(Op::Claim { trigger, lease }, || {
                let mut t = match lock(&self.tables, TABLE, operation) {
                    Ok(t) => t,
                    Err(e) => return (Err(e), Effect::Read),
                };
                let key = (child.clone(), trigger.trigger_id.clone());
                let slot = (child.clone(), trigger.run_key.clone());
                // The claim must not exist; the cursor moves only from the value read and
                // only while no trigger is pending.
                let cursor_ok = match (t.cursors.get(&slot), cursor_read) {
                    (None, None) => true,
                    (Some(item), Some(read)) => {
                        item.cursor == read && item.pending_trigger_id.is_none()
                    }
                    _ => false,
                };
                if t.claims.contains_key(&key) || !cursor_ok {
                    return (Ok(ClaimOutcome::Lost), Effect::ConditionFailed);
                }
                t.claims.insert(
                    key,
                    ClaimItem {
                        trigger: trigger.clone(),
                    },
                );
                let item = t.cursors.entry(slot).or_default();
                item.cursor = cursor_after;
                item.last_trigger_id = Some(trigger.trigger_id.clone());
                item.pending_trigger_id = Some(trigger.trigger_id.clone());
                item.pending_trigger = Some(trigger.clone());
                item.lease_holder = Some(lease.holder.clone());
                item.lease_until = Some(lease.until);
                (Ok(ClaimOutcome::Claimed), Effect::Written)
            })
            .await
            .map_err(|f| unavailable(operation, TABLE, f))?
    }

    async fn mark_sent(
        &self,
        child: &PipelineId,
        run_key: Option<&RunKey>,
        trigger_id: &TriggerId,
    ) -> StoreResult<bool> {
        // One UpdateItem on the cursor item, only while this trigger is the pending one,
        // returning the old item (its `decideAgain`).
        let asked = std::sync::atomic::AtomicBool::new(false);
        self.update_cursor(
            Op::MarkSent { child, trigger_id },
            "UpdateItem (trigger sent)",
            child,
            run_key,
            |item| pending_is(item, trigger_id),
            |item| {
                asked.store(item.decide_again, std::sync::atomic::Ordering::Relaxed);
                item.pending_trigger_id = None;
                item.pending_trigger = None;
                item.lease_holder = None;
                item.lease_until = None;
                item.decide_again = false;
                item.last_sent_trigger_id = Some(trigger_id.clone());
            },
        )
        .await?;
        Ok(asked.load(std::sync::atomic::Ordering::Relaxed))
    }

    async fn forget(&self, child: &PipelineId) -> StoreResult<()> {
        // As the adapter: one Query of the child's cursor items with a pending trigger, then one
        // UpdateItem (`attribute_exists(pk)`) per item: the cursor value stays, the pending
        // trigger goes.
        let keys: Vec<Option<RunKey>> = self
            .requests
            .request(Op::QueryCursors(child), || {
                let got = lock(&self.tables, TABLE, "Query (cursors of a child)").map(|t| {
                    t.cursors
                        .iter()
                        .filter(|((c, _), item)| c == child && item.pending_trigger_id.is_some())
                        .map(|((_, k), _)| k.clone())
                        .collect()
                });
                (got, Effect::Read)
            })
            .await
            .map_err(|f| unavailable("Query (cursors of a child)", TABLE, f))??;
        for run_key in keys {
            self.update_cursor(
                Op::Forget(child),
                "UpdateItem (forget pending)",
                child,
                run_key.as_ref(),
                |item| item.is_some(),
                |item| {
                    item.pending_trigger_id = None;
                    item.pending_trigger = None;
                    item.lease_holder = None;
                    item.lease_until = None;
                    item.decide_again = false;
                },
            )
            .await?;
        }
        Ok(())
    }

    async fn drop_pending(
        &self,
        child: &PipelineId,
        run_key: Option<&RunKey>,
        trigger_id: &TriggerId,
    ) -> StoreResult<()> {
        // `pendingTriggerId = :id`; a failed condition is success.
        self.update_cursor(
            Op::DropPending { child, trigger_id },
            "UpdateItem (drop stale pending)",
            child,
            run_key,
            |item| pending_is(item, trigger_id),
            |item| {
                item.pending_trigger_id = None;
                item.pending_trigger = None;
                item.lease_holder = None;
                item.lease_until = None;
                item.decide_again = false;
            },
        )
        .await
        .map(|_| ())
    }
}

impl SendLease for MemoryLedger {
    async fn take_send_lease(
        &self,
        child: &PipelineId,
        run_key: Option<&RunKey>,
        trigger_id: &TriggerId,
        lease: &Lease,
        now: Timestamp,
    ) -> StoreResult<bool> {
        // `pendingTriggerId = :id AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now OR
        // leaseHolder = :holder)`
        self.update_cursor(
            Op::TakeLease {
                child,
                trigger_id,
                holder: &lease.holder,
                now,
                until: lease.until,
            },
            "UpdateItem (take send lease)",
            child,
            run_key,
            |item| {
                pending_is(item, trigger_id)
                    && item.is_some_and(|c| {
                        c.lease_until.is_none_or(|t| t < now)
                            || c.lease_holder.as_deref() == Some(lease.holder.as_str())
                    })
            },
            |item| {
                item.lease_holder = Some(lease.holder.clone());
                item.lease_until = Some(lease.until);
            },
        )
        .await
    }

    async fn ask_to_decide_again(
        &self,
        child: &PipelineId,
        run_key: Option<&RunKey>,
        trigger_id: &TriggerId,
    ) -> StoreResult<bool> {
        self.update_cursor(
            Op::AskDecideAgain { child, trigger_id },
            "UpdateItem (decide again)",
            child,
            run_key,
            |item| pending_is(item, trigger_id),
            |item| item.decide_again = true,
        )
        .await
    }

    async fn release_send_lease(
        &self,
        child: &PipelineId,
        run_key: Option<&RunKey>,
        trigger_id: &TriggerId,
        holder: &str,
    ) -> StoreResult<()> {
        self.update_cursor(
            Op::ReleaseLease { child, trigger_id },
            "UpdateItem (release send lease)",
            child,
            run_key,
            |item| {
                pending_is(item, trigger_id)
                    && item.is_some_and(|c| c.lease_holder.as_deref() == Some(holder))
            },
            |item| {
                item.lease_holder = None;
                item.lease_until = None;
            },
        )
        .await
        .map(|_| ())
    }
}

impl PendingTriggers for MemoryLedger {
    /// The pending index as DynamoDB's sparse GSI holds it: cursor items with a pending trigger,
    /// by the time it was claimed, oldest first.
    async fn pending_before(
        &self,
        claimed_before: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<(PipelineId, Option<RunKey>)>> {
        let operation = "Query (pending triggers index)";
        self.requests
            .request(Op::Watch(operation), || {
                let got = lock(&self.tables, TABLE, operation).map(|t| {
                    let mut pending: Vec<(Timestamp, (PipelineId, Option<RunKey>))> = t
                        .cursors
                        .iter()
                        .filter_map(|(child_and_key, item)| {
                            let at = item.pending_trigger.as_ref()?.fired_at;
                            (at < claimed_before).then(|| (at, child_and_key.clone()))
                        })
                        .collect();
                    pending.sort();
                    pending.into_iter().take(limit).map(|(_, c)| c).collect()
                });
                (got, Effect::Read)
            })
            .await
            .map_err(|f| unavailable(operation, TABLE, f))?
    }
}

/// A cursor item as the ledger's readers see it.
fn cursor_state(item: &CursorItem) -> CursorState {
    CursorState {
        cursor: item.cursor,
        last_trigger_id: item.last_trigger_id.clone(),
        pending: item.pending_trigger.clone(),
    }
}
