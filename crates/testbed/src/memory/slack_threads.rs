//! The Slack thread ledger in memory, slot for slot as `DynamoSlackThreads` keeps it: one item per
//! slot (`holder`, `leaseUntil`, `ts`, `shows`, `done`), changed by the same conditional
//! UpdateItems, and a GetItem after a refused claim.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use baton_core::ports::Lease;
use baton_core::ports::StoreResult;
use baton_core::slack::ledger::{PostSlot, SlackThreads, SlotClaim, SlotRecord, SlotState};
use baton_core::Timestamp;

use super::{lock, unavailable, Effect, Op, Requests};

const TABLE: &str = "slack threads (memory)";

#[derive(Clone, Debug, Default)]
struct SlotItem {
    holder: Option<String>,
    lease_until: Option<Timestamp>,
    state: SlotState,
    done: bool,
}

/// [`SlackThreads`] in memory.
pub struct MemorySlackThreads {
    requests: Arc<Requests>,
    slots: Mutex<BTreeMap<String, SlotItem>>,
}

fn slot_key(slot: &PostSlot) -> String {
    match slot {
        PostSlot::Root {
            execution_arn,
            channel,
        } => format!("{execution_arn} / root#{channel}"),
        PostSlot::Status {
            execution_arn,
            status,
            channel,
        } => format!("{execution_arn} / post#{status}#{channel}"),
        PostSlot::TriggerNotice {
            trigger_id,
            channel,
        } => format!("trigger#{trigger_id} / notice#{channel}"),
        PostSlot::Alert {
            alert_key,
            part,
            channel,
        } => format!("alert#{alert_key} / {part}#{channel}"),
        PostSlot::Email {
            execution_arn,
            status,
        } => format!("{execution_arn} / email#{status}"),
    }
}

impl MemorySlackThreads {
    pub fn new(requests: Arc<Requests>) -> MemorySlackThreads {
        MemorySlackThreads {
            requests,
            slots: Mutex::new(BTreeMap::new()),
        }
    }

    /// One consistent GetItem of a slot whose claim was refused: done, or held until when.
    async fn refused(&self, slot: &PostSlot) -> StoreResult<SlotClaim> {
        let key = slot_key(slot);
        self.requests
            .request(Op::SlackSlot(slot), || {
                let got = lock(&self.slots, TABLE, "GetItem (Slack post)").map(|slots| {
                    let item = slots.get(&key).cloned().unwrap_or_default();
                    if item.done {
                        SlotClaim::Done(item.state)
                    } else {
                        SlotClaim::Held {
                            until: item.lease_until.unwrap_or(Timestamp(0)),
                        }
                    }
                });
                (got, Effect::Read)
            })
            .await
            .map_err(|f| unavailable("GetItem (Slack post)", TABLE, f))?
    }
}

impl SlackThreads for MemorySlackThreads {
    async fn claim(
        &self,
        slot: &PostSlot,
        lease: &Lease,
        now: Timestamp,
    ) -> StoreResult<SlotClaim> {
        let key = slot_key(slot);
        let operation = "UpdateItem (claim Slack post)";
        let won = self
            .requests
            .request(Op::SlackSlot(slot), || {
                let mut slots = match lock(&self.slots, TABLE, operation) {
                    Ok(s) => s,
                    Err(e) => return (Err(e), Effect::Read),
                };
                // `attribute_not_exists(pk) OR (attribute_not_exists(done) AND
                // (leaseUntil < :now OR holder = :holder))`
                let free = slots.get(&key).is_none_or(|item| {
                    !item.done
                        && (item.lease_until.is_some_and(|t| t < now)
                            || item.holder.as_deref() == Some(lease.holder.as_str()))
                });
                if !free {
                    return (Ok(None), Effect::ConditionFailed);
                }
                let item = slots.entry(key.clone()).or_default();
                item.holder = Some(lease.holder.clone());
                item.lease_until = Some(lease.until);
                (Ok(Some(item.state.clone())), Effect::Written)
            })
            .await
            .map_err(|f| unavailable(operation, TABLE, f))??;
        match won {
            Some(state) => Ok(SlotClaim::Won(state)),
            None => self.refused(slot).await,
        }
    }

    async fn record(
        &self,
        slot: &PostSlot,
        holder: &str,
        record: &SlotRecord,
    ) -> StoreResult<bool> {
        if record.ts.is_none() && record.shows.is_none() && !record.done {
            return Ok(true);
        }
        let key = slot_key(slot);
        let operation = "UpdateItem (record Slack post)";
        self.requests
            .request(Op::SlackSlot(slot), || {
                let mut slots = match lock(&self.slots, TABLE, operation) {
                    Ok(s) => s,
                    Err(e) => return (Err(e), Effect::Read),
                };
                match slots.get_mut(&key) {
                    Some(item) if item.holder.as_deref() == Some(holder) => {
                        if let Some(ts) = &record.ts {
                            item.state.ts = Some(ts.clone());
                        }
                        if let Some(shows) = record.shows {
                            item.state.shows = Some(shows);
                        }
                        item.done |= record.done;
                        (Ok(true), Effect::Written)
                    }
                    _ => (Ok(false), Effect::ConditionFailed),
                }
            })
            .await
            .map_err(|f| unavailable(operation, TABLE, f))?
    }

    async fn release(&self, slot: &PostSlot, holder: &str) -> StoreResult<()> {
        let key = slot_key(slot);
        let operation = "UpdateItem (release Slack post)";
        self.requests
            .request(Op::SlackSlot(slot), || {
                let mut slots = match lock(&self.slots, TABLE, operation) {
                    Ok(s) => s,
                    Err(e) => return (Err(e), Effect::Read),
                };
                match slots.get_mut(&key) {
                    Some(item) if item.holder.as_deref() == Some(holder) && !item.done => {
                        item.lease_until = Some(Timestamp(0));
                        (Ok(()), Effect::Written)
                    }
                    _ => (Ok(()), Effect::ConditionFailed),
                }
            })
            .await
            .map_err(|f| unavailable(operation, TABLE, f))?
    }
}
