//! The ledger in DynamoDB: per child, its cursor and its trigger claims.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | the child's cursor (and pending trigger) | `child#<account:region:name>` | `cursor` |
//! | an aligned child's cursor for one run key (and its pending trigger) | `child#<account:region:name>` | `cursor#<run key>` |
//! | a claim of one firing | `child#<account:region:name>` | `trigger#<trigger id>` |
//!
//! A firing is committed by one TransactWriteItems: the claim must not exist, and the cursor item
//! must still hold the value read (and have no pending trigger). Exactly one of any number of
//! concurrent evaluations can pass both conditions.
//!
//! Everything that happens to a claimed trigger afterwards is one write on the cursor item, where
//! it is pending: its send lease (`leaseHolder`, `leaseUntil`) and its being sent (pending
//! removed, `lastSentTriggerId` set). No crash point can leave a trigger sent and still pending.
//!
//! A cursor item with a pending trigger also holds `pendingIndex = "pending"` and `pendingSince`
//! (the claim's time), set and removed by the same writes as the pending trigger: the sparse
//! global secondary index [`PENDING_INDEX`] holds exactly the pending triggers, oldest first, so
//! the watchdog finds those left behind with one Query and never reads every child.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use baton_core::evaluator::TriggerId;
use baton_core::events::PipelineTrigger;
use baton_core::ports::{
    ClaimOutcome, CursorSlot, CursorState, Lease, Ledger, StoreError, StoreResult,
};
use baton_core::{PipelineId, RunKey, Timestamp};

use baton_core::watch::PendingTriggers;

use super::{
    batch_get_items, get_item, is_condition_failed, key, n, query_items, s, store_error,
    transacted, unless_condition_failed, Item, Reader,
};

/// The ledger's sparse index of pending triggers (partition `pendingIndex`, sort `pendingSince`).
pub const PENDING_INDEX: &str = "pending";
/// The one partition value of [`PENDING_INDEX`].
const PENDING_INDEX_KEY: &str = "pending";

/// [`Ledger`] over the ledger table.
#[derive(Clone, Debug)]
pub struct DynamoLedger {
    client: Client,
    table: String,
}

/// The ledger's keys, shared with the in-memory ledger that mirrors this layout.
pub mod keys {
    use baton_core::{PipelineId, RunKey};

    /// `child#<pipeline key>`
    pub fn child_pk(child: &PipelineId) -> String {
        format!("child#{}", child.key())
    }

    /// `cursor`, or `cursor#<run key>` for an aligned child's cursor of one key: each key has
    /// its own cursor, pending trigger and send lease, so keys never wait on each other.
    pub fn cursor_sk(key: Option<&RunKey>) -> String {
        match key {
            Some(k) => format!("cursor#{k}"),
            None => "cursor".to_owned(),
        }
    }
}

use keys::{child_pk, cursor_sk};

impl DynamoLedger {
    fn cursor_state(&self, item: &Item) -> StoreResult<CursorState> {
        let r = Reader {
            table: &self.table,
            item,
        };
        let pending = match r.opt_string("pendingTrigger")? {
            Some(_) => Some(r.json::<PipelineTrigger>("pendingTrigger")?),
            None => None,
        };
        Ok(CursorState {
            cursor: Timestamp(r.number("cursor")?),
            last_trigger_id: r.opt_string("lastTriggerId")?.map(TriggerId),
            pending,
        })
    }

    pub fn new(client: Client, table: impl Into<String>) -> DynamoLedger {
        DynamoLedger {
            client,
            table: table.into(),
        }
    }

    fn request_error(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Rejected {
            operation: "TransactWriteItems (claim)",
            table: self.table.clone(),
            message: e.to_string(),
        }
    }
}

impl Ledger for DynamoLedger {
    async fn cursor(
        &self,
        child: &PipelineId,
        run_key: Option<&RunKey>,
    ) -> StoreResult<Option<CursorState>> {
        let key = key(child_pk(child), cursor_sk(run_key));
        let got = get_item(&self.client, &self.table, key, "GetItem (cursor)").await?;
        got.as_ref().map(|item| self.cursor_state(item)).transpose()
    }

    async fn cursors(
        &self,
        slots: &[CursorSlot],
    ) -> StoreResult<BTreeMap<CursorSlot, CursorState>> {
        let by_key: HashMap<(String, String), &CursorSlot> = slots
            .iter()
            .map(|slot| ((child_pk(&slot.0), cursor_sk(slot.1.as_ref())), slot))
            .collect();
        let keys = by_key
            .keys()
            .map(|(pk, sk)| key(pk.clone(), sk.clone()))
            .collect();
        let items =
            batch_get_items(&self.client, &self.table, keys, "BatchGetItem (cursors)").await?;
        let mut states = BTreeMap::new();
        for item in &items {
            let r = Reader {
                table: &self.table,
                item,
            };
            let slot = by_key
                .get(&(r.string("pk")?, r.string("sk")?))
                .ok_or_else(|| StoreError::Malformed {
                    table: self.table.clone(),
                    key: r.string("pk").unwrap_or_default(),
                    detail: "BatchGetItem answered an item that was not asked for".to_owned(),
                })?;
            states.insert((*slot).clone(), self.cursor_state(item)?);
        }
        Ok(states)
    }

    async fn claim(
        &self,
        trigger: &PipelineTrigger,
        cursor_read: Option<Timestamp>,
        cursor_after: Timestamp,
        lease: &Lease,
    ) -> StoreResult<ClaimOutcome> {
        let child = trigger.target.id();
        let payload = serde_json::to_string(trigger).map_err(|e| self.request_error(e))?;
        let mut claim = key(child_pk(&child), format!("trigger#{}", trigger.trigger_id));
        claim.insert("trigger".into(), s(&payload));
        claim.insert("claimedAt".into(), n(trigger.fired_at.0));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(claim))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| self.request_error(e))?;
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(child_pk(&child), cursor_sk(trigger.run_key.as_ref()))))
            .update_expression(
                "SET #cursor = :after, lastTriggerId = :id, pendingTriggerId = :id, pendingTrigger = :trigger, pendingIndex = :pending, pendingSince = :since, leaseHolder = :holder, leaseUntil = :until",
            )
            .expression_attribute_values(":holder", s(&lease.holder))
            .expression_attribute_values(":until", n(lease.until.0))
            .expression_attribute_names("#cursor", "cursor")
            .expression_attribute_values(":pending", s(PENDING_INDEX_KEY))
            .expression_attribute_values(":since", n(trigger.fired_at.0))
            .expression_attribute_values(":after", n(cursor_after.0))
            .expression_attribute_values(":id", s(trigger.trigger_id.as_str()))
            .expression_attribute_values(":trigger", s(&payload));
        // The cursor moves only from the value this evaluation read.
        let update = match cursor_read {
            None => update.condition_expression("attribute_not_exists(pk)"),
            Some(read) => update
                .condition_expression("#cursor = :read AND attribute_not_exists(pendingTriggerId)")
                .expression_attribute_values(":read", n(read.0)),
        }
        .build()
        .map_err(|e| self.request_error(e))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(update).build())
            .send()
            .await;
        let claimed = transacted(result, "TransactWriteItems (claim)", &self.table)?;
        Ok(if claimed {
            ClaimOutcome::Claimed
        } else {
            // A condition failed: another evaluation claimed first or moved the cursor.
            ClaimOutcome::Lost
        })
    }

    async fn mark_sent(
        &self,
        child: &PipelineId,
        run_key: Option<&RunKey>,
        trigger_id: &TriggerId,
    ) -> StoreResult<bool> {
        let cleared = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(child_pk(child), cursor_sk(run_key))))
            .update_expression(
                "REMOVE pendingTriggerId, pendingTrigger, pendingIndex, pendingSince, leaseHolder, leaseUntil, decideAgain SET lastSentTriggerId = :id",
            )
            .condition_expression("pendingTriggerId = :id")
            .expression_attribute_values(":id", s(trigger_id.as_str()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match cleared {
            Ok(out) => Ok(matches!(
                out.attributes().and_then(|a| a.get("decideAgain")),
                Some(AttributeValue::Bool(true))
            )),
            // No longer pending: an earlier delivery marked it (or the child was forgotten).
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(store_error("UpdateItem (trigger sent)", &self.table, e)),
        }
    }

    async fn forget(&self, child: &PipelineId) -> StoreResult<()> {
        // Every cursor item of the child with a pending trigger: `cursor`, and `cursor#<key>` of
        // each run key (a child aligned on daily keys has one item a day; only the pending ones
        // need a write).
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :cursor)")
            .filter_expression("attribute_exists(pendingTriggerId)")
            .expression_attribute_values(":pk", s(child_pk(child)))
            .expression_attribute_values(":cursor", s("cursor"))
            .projection_expression("sk")
            .consistent_read(true);
        let items = query_items(query, &self.table, "Query (cursors of a child)", None).await?;
        for item in items {
            if let Some(AttributeValue::S(sk)) = item.get("sk") {
                self.forget_cursor(child, sk.clone()).await?;
            }
        }
        Ok(())
    }

    async fn drop_pending(
        &self,
        child: &PipelineId,
        run_key: Option<&RunKey>,
        trigger_id: &TriggerId,
    ) -> StoreResult<()> {
        let dropped = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(child_pk(child), cursor_sk(run_key))))
            .update_expression(
                "REMOVE pendingTriggerId, pendingTrigger, pendingIndex, pendingSince, leaseHolder, leaseUntil, decideAgain",
            )
            .condition_expression("pendingTriggerId = :id")
            .expression_attribute_values(":id", s(trigger_id.as_str()))
            .send()
            .await;
        // A failed condition: no longer pending: dropped (or sent) by another delivery already.
        unless_condition_failed(dropped, "UpdateItem (drop stale pending)", &self.table)
    }
}

impl DynamoLedger {
    /// Removes one cursor item's pending trigger (and lease); its cursor value stays.
    async fn forget_cursor(&self, child: &PipelineId, sk: String) -> StoreResult<()> {
        let forgotten = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(child_pk(child), sk)))
            .update_expression(
                "REMOVE pendingTriggerId, pendingTrigger, pendingIndex, pendingSince, leaseHolder, leaseUntil, decideAgain",
            )
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        // A failed condition: gone since the Query: nothing to forget.
        unless_condition_failed(forgotten, "UpdateItem (forget pending)", &self.table)
    }
}

/// The send lease lives on the cursor item, beside the pending trigger it guards.
impl baton_core::ports::SendLease for DynamoLedger {
    async fn take_send_lease(
        &self,
        child: &PipelineId,
        run_key: Option<&RunKey>,
        trigger_id: &TriggerId,
        lease: &Lease,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let taken = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(child_pk(child), cursor_sk(run_key))))
            .update_expression("SET leaseHolder = :holder, leaseUntil = :until")
            .condition_expression(
                "pendingTriggerId = :id AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now OR leaseHolder = :holder)",
            )
            .expression_attribute_values(":id", s(trigger_id.as_str()))
            .expression_attribute_values(":holder", s(&lease.holder))
            .expression_attribute_values(":until", n(lease.until.0))
            .expression_attribute_values(":now", n(now.0))
            .send()
            .await;
        match taken {
            Ok(_) => Ok(true),
            // Sent already, or another delivery holds a lease that has not ended.
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(store_error("UpdateItem (take send lease)", &self.table, e)),
        }
    }

    async fn ask_to_decide_again(
        &self,
        child: &PipelineId,
        run_key: Option<&RunKey>,
        trigger_id: &TriggerId,
    ) -> StoreResult<bool> {
        let asked = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(child_pk(child), cursor_sk(run_key))))
            .update_expression("SET decideAgain = :yes")
            .condition_expression("pendingTriggerId = :id")
            .expression_attribute_values(":id", s(trigger_id.as_str()))
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .send()
            .await;
        match asked {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(store_error("UpdateItem (decide again)", &self.table, e)),
        }
    }

    async fn release_send_lease(
        &self,
        child: &PipelineId,
        run_key: Option<&RunKey>,
        trigger_id: &TriggerId,
        holder: &str,
    ) -> StoreResult<()> {
        let released = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(child_pk(child), cursor_sk(run_key))))
            .update_expression("REMOVE leaseHolder, leaseUntil")
            .condition_expression("pendingTriggerId = :id AND leaseHolder = :holder")
            .expression_attribute_values(":id", s(trigger_id.as_str()))
            .expression_attribute_values(":holder", s(holder))
            .send()
            .await;
        unless_condition_failed(released, "UpdateItem (release send lease)", &self.table)
    }
}

impl PendingTriggers for DynamoLedger {
    /// One Query of the sparse index (paginated up to `limit`). The index is eventually
    /// consistent: a trigger sent a moment ago may still be listed, and re-sending it finds it
    /// no longer pending (its send lease is refused), so that is harmless.
    async fn pending_before(
        &self,
        claimed_before: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<(PipelineId, Option<RunKey>)>> {
        let operation = "Query (pending triggers index)";
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(PENDING_INDEX)
            .key_condition_expression("pendingIndex = :pending AND pendingSince < :before")
            .expression_attribute_values(":pending", s(PENDING_INDEX_KEY))
            .expression_attribute_values(":before", n(claimed_before.0))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX));
        let items = query_items(query, &self.table, operation, Some(limit)).await?;
        let mut children = Vec::new();
        for item in &items {
            let reader = Reader {
                table: &self.table,
                item,
            };
            let pk = reader.string("pk")?;
            // `cursor`, or `cursor#<k>` for an aligned child's key k (the index holds the
            // table's keys).
            let sk = reader.string("sk")?;
            let run_key = sk.strip_prefix("cursor#").map(|k| RunKey(k.to_owned()));
            let child = pk
                .strip_prefix("child#")
                .and_then(|k| PipelineId::from_key(k).ok())
                .ok_or_else(|| StoreError::Malformed {
                    table: self.table.clone(),
                    key: pk.clone(),
                    detail: "a cursor item's key is not child#<pipeline key>".into(),
                })?;
            children.push((child, run_key));
        }
        Ok(children)
    }
}
