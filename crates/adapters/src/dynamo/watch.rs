//! The watch table in DynamoDB: the watchdog's due checks, its watermark and the deadline alerts
//! (rules in `baton_core::watch`).
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | a due check | `due#<UTC day>` | `<13-digit epoch ms>#<pipeline key>[#<execution ARN>]` | pipeline, executionArn? |
//! | the watermark of the due checks read | `watermark` | `due` | day |
//! | runs started up to here were looked at | `watermark` | `runs` | until |
//! | an alert (one per pipeline, local day, kind) | `alert#<pipeline key>#<day>#<kind>` | `alert` | alert (JSON), expiresAt |
//! | an open alert | `alerts#open` | `<alert key>` | alert (JSON), announced |
//! | a member account's read-only role refused | `refusal#<account>` | `role` | notedAt, expiresAt |
//!
//! "What is due now" is one Query per UTC day from the watermark to today, `sk <= now`: it reads
//! only checks that are due. Raising an alert is one transaction: the alert item must not exist,
//! and the open item is put beside it, so two overlapping watchdog runs raise it once.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use baton_core::ports::{StoreError, StoreResult};
use baton_core::watch::run::utc_day;
use baton_core::watch::{DeadlineAlert, DeadlineWatch, DueCheck, OpenAlert};
use baton_core::{PipelineId, Span, Timestamp};

use super::{
    get_item, is_condition_failed, key, n, partition_items, query_items, s, store_error,
    transacted, unless_condition_failed, Item, Reader,
};

const OPEN_PK: &str = "alerts#open";

/// [`DeadlineWatch`] over the watch table.
#[derive(Clone, Debug)]
pub struct DynamoWatch {
    client: Client,
    table: String,
    /// How long an alert item is kept (its key stops a second alert for the same day).
    retention: Span,
}

fn due_key(check: &DueCheck) -> Item {
    let mut sk = format!("{:013}#{}", check.at.0, check.pipeline.key());
    if let Some(arn) = &check.execution_arn {
        sk.push('#');
        sk.push_str(arn);
    }
    key(format!("due#{}", utc_day(check.at)), sk)
}

impl DynamoWatch {
    pub fn new(client: Client, table: impl Into<String>, retention: Span) -> DynamoWatch {
        DynamoWatch {
            client,
            table: table.into(),
            retention,
        }
    }

    fn malformed(&self, key: &str, detail: impl Into<String>) -> StoreError {
        StoreError::Malformed {
            table: self.table.clone(),
            key: key.to_owned(),
            detail: detail.into(),
        }
    }

    fn alert_json(&self, alert: &DeadlineAlert) -> StoreResult<String> {
        serde_json::to_string(alert).map_err(|e| self.malformed(&alert.key(), e.to_string()))
    }
}

impl DynamoWatch {
    /// Moves the mark `watermark/<sk>` (its `attribute`) from `read` (`None`: never set) to `to`.
    async fn move_mark(
        &self,
        sk: &str,
        attribute: &str,
        read: Option<AttributeValue>,
        to: AttributeValue,
        operation: &'static str,
    ) -> StoreResult<()> {
        let mut item = key("watermark", sk);
        item.insert(attribute.into(), to);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let put = match read {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(read) => put
                .condition_expression("#mark = :read")
                .expression_attribute_names("#mark", attribute)
                .expression_attribute_values(":read", read),
        };
        // A failed condition: an overlapping run moved it first.
        unless_condition_failed(put.send().await, operation, &self.table)
    }
}

impl DeadlineWatch for DynamoWatch {
    async fn schedule(&self, check: &DueCheck) -> StoreResult<()> {
        let mut item = due_key(check);
        item.insert("pipeline".into(), s(check.pipeline.key()));
        if let Some(arn) = &check.execution_arn {
            item.insert("executionArn".into(), s(arn));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| store_error("PutItem (due check)", &self.table, e))?;
        Ok(())
    }

    async fn unschedule(&self, check: &DueCheck) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(due_key(check)))
            .send()
            .await
            .map_err(|e| store_error("DeleteItem (due check)", &self.table, e))?;
        Ok(())
    }

    async fn due_on(&self, day: &str, up_to: Timestamp) -> StoreResult<Vec<DueCheck>> {
        let operation = "Query (due checks of a day)";
        let mut out = Vec::new();
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk <= :upto")
            .expression_attribute_values(":pk", s(format!("due#{day}")))
            // `~` sorts after every pipeline key: every check at `up_to` is included.
            .expression_attribute_values(":upto", s(format!("{:013}#~", up_to.0)))
            .consistent_read(true);
        let items = query_items(query, &self.table, operation, None).await?;
        for item in &items {
            let r = Reader {
                table: &self.table,
                item,
            };
            let sk = r.string("sk")?;
            let at = sk
                .split_once('#')
                .and_then(|(ms, _)| ms.parse().ok())
                .ok_or_else(|| self.malformed(&sk, "sort key is not <epoch ms>#<pipeline key>"))?;
            let pipeline = PipelineId::from_key(&r.string("pipeline")?)
                .map_err(|e| self.malformed(&sk, e.to_string()))?;
            out.push(DueCheck {
                at: Timestamp(at),
                pipeline,
                execution_arn: r.opt_string("executionArn")?,
            });
        }
        Ok(out)
    }

    async fn watermark(&self) -> StoreResult<Option<String>> {
        let key = key("watermark", "due");
        let got = get_item(&self.client, &self.table, key, "GetItem (watermark)").await?;
        match &got {
            None => Ok(None),
            Some(item) => Reader {
                table: &self.table,
                item,
            }
            .opt_string("day"),
        }
    }

    async fn advance_watermark(&self, read: Option<&str>, day: &str) -> StoreResult<()> {
        let operation = "PutItem (watermark)";
        self.move_mark("due", "day", read.map(s), s(day), operation)
            .await
    }

    async fn sighted_until(&self) -> StoreResult<Option<Timestamp>> {
        let key = key("watermark", "runs");
        let operation = "GetItem (runs sighted until)";
        let got = get_item(&self.client, &self.table, key, operation).await?;
        match &got {
            None => Ok(None),
            Some(item) => Ok(Reader {
                table: &self.table,
                item,
            }
            .opt_number("until")?
            .map(Timestamp)),
        }
    }

    async fn set_sighted_until(&self, read: Option<Timestamp>, to: Timestamp) -> StoreResult<()> {
        let operation = "PutItem (runs sighted until)";
        self.move_mark("runs", "until", read.map(|t| n(t.0)), n(to.0), operation)
            .await
    }

    async fn note_refusal(&self, account: &str, now: Timestamp) -> StoreResult<bool> {
        let noted = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("refusal#{account}"), "role")))
            .update_expression("SET notedAt = :now, expiresAt = :expires")
            .condition_expression("attribute_not_exists(pk) OR notedAt < :dayAgo")
            .expression_attribute_values(":now", n(now.0))
            .expression_attribute_values(":dayAgo", n(now.minus(Span::DAY).0))
            .expression_attribute_values(":expires", n(now.plus(Span::DAY).0 / 1000 + 3600))
            .send()
            .await;
        match noted {
            Ok(_) => Ok(true),
            // Noted within the day: already logged.
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(store_error("UpdateItem (role refusal)", &self.table, e)),
        }
    }

    async fn raise(&self, alert: &DeadlineAlert) -> StoreResult<bool> {
        let json = self.alert_json(alert)?;
        let mut claim = key(format!("alert#{}", alert.key()), "alert");
        claim.insert("alert".into(), s(&json));
        let expires = alert.raised_at.plus(self.retention).0 / 1000;
        claim.insert("expiresAt".into(), n(expires));
        let mut open = key(OPEN_PK, alert.key());
        open.insert("alert".into(), s(&json));
        open.insert("announced".into(), AttributeValue::Bool(false));
        let build = |item: Item, condition: Option<&str>| {
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .set_condition_expression(condition.map(str::to_owned))
                .build()
                .map_err(|e| self.malformed(&alert.key(), e.to_string()))
        };
        let result = self
            .client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .put(build(claim, Some("attribute_not_exists(pk)"))?)
                    .build(),
            )
            .transact_items(TransactWriteItem::builder().put(build(open, None)?).build())
            .send()
            .await;
        transacted(result, "TransactWriteItems (raise alert)", &self.table)
    }

    async fn open_alerts(&self) -> StoreResult<Vec<OpenAlert>> {
        let mut out = Vec::new();
        let pk = OPEN_PK.to_owned();
        let items = partition_items(&self.client, &self.table, pk, "Query (open alerts)").await?;
        for item in &items {
            let r = Reader {
                table: &self.table,
                item,
            };
            out.push(OpenAlert {
                alert: r.json("alert")?,
                announced: r.bool("announced"),
            });
        }
        Ok(out)
    }

    async fn mark_announced(&self, alert_key: &str) -> StoreResult<()> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(OPEN_PK, alert_key)))
            .update_expression("SET announced = :yes")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .send()
            .await;
        // A failed condition: closed meanwhile by an overlapping run.
        unless_condition_failed(updated, "UpdateItem (alert announced)", &self.table)
    }

    async fn close(&self, alert_key: &str) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(OPEN_PK, alert_key)))
            .send()
            .await
            .map_err(|e| store_error("DeleteItem (open alert)", &self.table, e))?;
        Ok(())
    }
}
