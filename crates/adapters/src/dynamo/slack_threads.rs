//! The Slack thread ledger in DynamoDB (rules in `baton_core::slack::ledger`).
//!
//! | slot | pk | sk |
//! |---|---|---|
//! | a run's thread root in a channel | `<execution ARN>` | `root#<channel>` |
//! | a status of a run in a channel | `<execution ARN>` | `post#<STATUS>#<channel>` |
//! | a trigger notice in a channel | `trigger#<trigger id>` | `notice#<channel>` |
//! | a deadline alert's root, note or reply in a channel | `alert#<alert key>` | `<root, note or reply>#<channel>` |
//!
//! Attributes: `holder` and `leaseUntil` (epoch ms) of the current claim, `ts` of the recorded
//! post, `shows` (a root's status), `done` once the slot's part is complete. Items expire with the
//! run log's retention (TTL `expiresAt`).

use aws_sdk_dynamodb::types::ReturnValue;
use aws_sdk_dynamodb::Client;
use baton_core::ports::Lease;
use baton_core::ports::{StoreError, StoreResult};
use baton_core::slack::ledger::{PostSlot, SlackThreads, SlotClaim, SlotRecord, SlotState};
use baton_core::{RunStatus, Span, Timestamp};

use super::{is_condition_failed, key, n, s, store_error, Item, Reader};

/// [`SlackThreads`] over the Slack threads table.
#[derive(Clone, Debug)]
pub struct DynamoSlackThreads {
    client: Client,
    table: String,
    retention: Span,
}

impl DynamoSlackThreads {
    pub fn new(client: Client, table: impl Into<String>, retention: Span) -> DynamoSlackThreads {
        DynamoSlackThreads {
            client,
            table: table.into(),
            retention,
        }
    }

    fn slot_key(slot: &PostSlot) -> Item {
        match slot {
            PostSlot::Root {
                execution_arn,
                channel,
            } => key(execution_arn, format!("root#{channel}")),
            PostSlot::Status {
                execution_arn,
                status,
                channel,
            } => key(execution_arn, format!("post#{status}#{channel}")),
            PostSlot::TriggerNotice {
                trigger_id,
                channel,
            } => key(format!("trigger#{trigger_id}"), format!("notice#{channel}")),
            PostSlot::Alert {
                alert_key,
                part,
                channel,
            } => key(format!("alert#{alert_key}"), format!("{part}#{channel}")),
            PostSlot::Email {
                execution_arn,
                status,
            } => key(execution_arn, format!("email#{status}")),
        }
    }

    fn state(&self, item: &Item) -> StoreResult<SlotState> {
        let reader = Reader {
            table: &self.table,
            item,
        };
        let shows = match reader.opt_string("shows")? {
            None => None,
            Some(text) => Some(
                RunStatus::parse(&text).ok_or_else(|| StoreError::Malformed {
                    table: self.table.clone(),
                    key: reader.opt_string("pk").ok().flatten().unwrap_or_default(),
                    detail: format!("attribute `shows` is not a status: {text}"),
                })?,
            ),
        };
        Ok(SlotState {
            ts: reader.opt_string("ts")?,
            shows,
        })
    }

    /// Reads a slot whose claim was refused: done, or held until its lease ends.
    async fn refused(&self, slot: &PostSlot) -> StoreResult<SlotClaim> {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::slot_key(slot)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem (Slack post)", &self.table, e))?;
        let item = got.item.unwrap_or_default();
        let reader = Reader {
            table: &self.table,
            item: &item,
        };
        if reader.bool("done") {
            return Ok(SlotClaim::Done(self.state(&item)?));
        }
        // Between the refused claim and this read the lease may have ended: the caller's next
        // claim then wins.
        Ok(SlotClaim::Held {
            until: Timestamp(reader.opt_number("leaseUntil")?.unwrap_or(0)),
        })
    }
}

impl SlackThreads for DynamoSlackThreads {
    async fn claim(
        &self,
        slot: &PostSlot,
        lease: &Lease,
        now: Timestamp,
    ) -> StoreResult<SlotClaim> {
        let expires_at = now.plus(self.retention).millis() / 1000;
        let claimed = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::slot_key(slot)))
            .update_expression("SET holder = :holder, leaseUntil = :until, expiresAt = :expires")
            .condition_expression(
                // The holder's own claim again is granted: the SDK's retry of a claim whose answer
                // was lost must not find the slot held by itself.
                "attribute_not_exists(pk) OR (attribute_not_exists(done) AND (leaseUntil < :now OR holder = :holder))",
            )
            .expression_attribute_values(":holder", s(&lease.holder))
            .expression_attribute_values(":until", n(lease.until.millis()))
            .expression_attribute_values(":expires", n(expires_at))
            .expression_attribute_values(":now", n(now.millis()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match claimed {
            Ok(out) => Ok(SlotClaim::Won(
                self.state(&out.attributes.unwrap_or_default())?,
            )),
            Err(e) if is_condition_failed(&e) => self.refused(slot).await,
            Err(e) => Err(store_error("UpdateItem (claim Slack post)", &self.table, e)),
        }
    }

    async fn record(
        &self,
        slot: &PostSlot,
        holder: &str,
        record: &SlotRecord,
    ) -> StoreResult<bool> {
        let mut sets = Vec::new();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::slot_key(slot)))
            .condition_expression("holder = :holder")
            .expression_attribute_values(":holder", s(holder));
        if let Some(ts) = &record.ts {
            sets.push("ts = :ts");
            update = update.expression_attribute_values(":ts", s(ts));
        }
        if let Some(shows) = record.shows {
            sets.push("shows = :shows");
            update = update.expression_attribute_values(":shows", s(shows.as_str()));
        }
        if record.done {
            sets.push("done = :done");
            update = update.expression_attribute_values(
                ":done",
                aws_sdk_dynamodb::types::AttributeValue::Bool(true),
            );
        }
        if sets.is_empty() {
            return Ok(true);
        }
        let recorded = update
            .update_expression(format!("SET {}", sets.join(", ")))
            .send()
            .await;
        match recorded {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(store_error(
                "UpdateItem (record Slack post)",
                &self.table,
                e,
            )),
        }
    }

    async fn release(&self, slot: &PostSlot, holder: &str) -> StoreResult<()> {
        let released = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::slot_key(slot)))
            .update_expression("SET leaseUntil = :ended")
            .condition_expression("holder = :holder AND attribute_not_exists(done)")
            .expression_attribute_values(":holder", s(holder))
            .expression_attribute_values(":ended", n(0))
            .send()
            .await;
        match released {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(store_error(
                "UpdateItem (release Slack post)",
                &self.table,
                e,
            )),
        }
    }
}
