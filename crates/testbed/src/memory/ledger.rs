//! The ledger in memory, item for item as `DynamoLedger` keeps it: per child a cursor item (the
//! cursor, the last and the pending trigger) and one claim item per trigger id (its state and
//! send lease), changed by the same requests under the same conditions.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use baton_core::ports::{ClaimOutcome, CursorState, Ledger, SendLease, StoreResult};
use baton_core::{PipelineId, PipelineTrigger, Timestamp, TriggerId};

use super::{lock, unavailable, Effect, Op, Requests};

const TABLE: &str = "ledger (memory)";

/// A child's cursor item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CursorItem {
    pub cursor: Timestamp,
    pub last_trigger_id: Option<TriggerId>,
    pub pending_trigger_id: Option<TriggerId>,
    pub pending_trigger: Option<PipelineTrigger>,
}

/// The `state` attribute of a claim item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimState {
    Pending,
    Sent,
}

/// A claim item. An UpdateItem on a missing key creates it, so attributes may be missing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClaimItem {
    pub state: Option<ClaimState>,
    pub trigger: Option<PipelineTrigger>,
    pub lease_until: Option<Timestamp>,
}

#[derive(Default)]
struct Tables {
    cursors: BTreeMap<PipelineId, CursorItem>,
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

    /// Every cursor item: for checks over the whole ledger.
    pub fn cursors(&self) -> BTreeMap<PipelineId, CursorItem> {
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

    /// One UpdateItem of a claim item, applying `change` when `condition` holds on the item as
    /// stored (`None` when there is none).
    async fn update_claim<T>(
        &self,
        op: Op<'_>,
        operation: &'static str,
        key: (PipelineId, TriggerId),
        condition: impl FnOnce(Option<&ClaimItem>) -> bool,
        change: impl FnOnce(&mut ClaimItem),
        answer: impl FnOnce(bool) -> T,
    ) -> StoreResult<T> {
        self.requests
            .request(op, || {
                let mut t = match lock(&self.tables, TABLE, operation) {
                    Ok(t) => t,
                    Err(e) => return (Err(e), Effect::Read),
                };
                if !condition(t.claims.get(&key)) {
                    return (Ok(answer(false)), Effect::ConditionFailed);
                }
                change(t.claims.entry(key).or_default());
                (Ok(answer(true)), Effect::Written)
            })
            .await
            .map_err(|f| unavailable(operation, TABLE, f))?
    }
}

fn pending(item: Option<&ClaimItem>) -> bool {
    item.is_some_and(|c| c.state == Some(ClaimState::Pending))
}

impl Ledger for MemoryLedger {
    async fn cursor(&self, child: &PipelineId) -> StoreResult<Option<CursorState>> {
        self.requests
            .request(Op::GetCursor(child), || {
                let got = lock(&self.tables, TABLE, "GetItem (cursor)").map(|t| {
                    t.cursors.get(child).map(|item| CursorState {
                        cursor: item.cursor,
                        last_trigger_id: item.last_trigger_id.clone(),
                        pending: item.pending_trigger.clone(),
                    })
                });
                (got, Effect::Read)
            })
            .await
            .map_err(|f| unavailable("GetItem (cursor)", TABLE, f))?
    }

    async fn claim(
        &self,
        trigger: &PipelineTrigger,
        cursor_read: Option<Timestamp>,
        cursor_after: Timestamp,
    ) -> StoreResult<ClaimOutcome> {
        let child = trigger.target.id();
        let operation = "TransactWriteItems (claim)";
        self.requests
            .request(Op::Claim(trigger), || {
                let mut t = match lock(&self.tables, TABLE, operation) {
                    Ok(t) => t,
                    Err(e) => return (Err(e), Effect::Read),
                };
                let key = (child.clone(), trigger.trigger_id.clone());
                // The claim must not exist; the cursor moves only from the value read and
                // only while no trigger is pending.
                let cursor_ok = match (t.cursors.get(&child), cursor_read) {
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
                        state: Some(ClaimState::Pending),
                        trigger: Some(trigger.clone()),
                        lease_until: None,
                    },
                );
                t.cursors.insert(
                    child.clone(),
                    CursorItem {
                        cursor: cursor_after,
                        last_trigger_id: Some(trigger.trigger_id.clone()),
                        pending_trigger_id: Some(trigger.trigger_id.clone()),
                        pending_trigger: Some(trigger.clone()),
                    },
                );
                (Ok(ClaimOutcome::Claimed), Effect::Written)
            })
            .await
            .map_err(|f| unavailable(operation, TABLE, f))?
    }

    async fn mark_sent(&self, child: &PipelineId, trigger_id: &TriggerId) -> StoreResult<()> {
        // Two UpdateItems, as the adapter makes them: the claim (unconditional), then the
        // cursor's pending trigger (only if it is still this one).
        self.update_claim(
            Op::SetSent { child, trigger_id },
            "UpdateItem (trigger sent)",
            (child.clone(), trigger_id.clone()),
            |_| true,
            |item| item.state = Some(ClaimState::Sent),
            |_| (),
        )
        .await?;
        let operation = "UpdateItem (clear pending)";
        self.requests
            .request(Op::ClearPending { child, trigger_id }, || {
                let mut t = match lock(&self.tables, TABLE, operation) {
                    Ok(t) => t,
                    Err(e) => return (Err(e), Effect::Read),
                };
                match t.cursors.get_mut(child) {
                    Some(item) if item.pending_trigger_id.as_ref() == Some(trigger_id) => {
                        item.pending_trigger_id = None;
                        item.pending_trigger = None;
                        (Ok(()), Effect::Written)
                    }
                    // Already cleared by an earlier delivery.
                    _ => (Ok(()), Effect::ConditionFailed),
                }
            })
            .await
            .map_err(|f| unavailable(operation, TABLE, f))?
    }
}

impl SendLease for MemoryLedger {
    async fn take_send_lease(
        &self,
        child: &PipelineId,
        trigger_id: &TriggerId,
        now: Timestamp,
        until: Timestamp,
    ) -> StoreResult<bool> {
        self.update_claim(
            Op::TakeLease {
                child,
                trigger_id,
                now,
                until,
            },
            "UpdateItem (take send lease)",
            (child.clone(), trigger_id.clone()),
            |item| pending(item) && item.is_some_and(|c| c.lease_until.is_none_or(|t| t <= now)),
            |item| item.lease_until = Some(until),
            |taken| taken,
        )
        .await
    }

    async fn release_send_lease(
        &self,
        child: &PipelineId,
        trigger_id: &TriggerId,
    ) -> StoreResult<()> {
        self.update_claim(
            Op::ReleaseLease { child, trigger_id },
            "UpdateItem (release send lease)",
            (child.clone(), trigger_id.clone()),
            pending,
            |item| item.lease_until = None,
            |_| (),
        )
        .await
    }
}
