//! Slack threads in DynamoDB.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | a run's thread root in a channel | `<execution ARN>` | `root#<channel>` |
//! | a status posted to a channel | `<execution ARN>` | `post#<STATUS>#<channel>` |
//!
//! Items expire with the run log's retention (TTL `expiresAt`).

use aws_sdk_dynamodb::Client;
use baton_core::ports::{RootClaim, SlackThreads, StoreResult};
use baton_core::Span;

use super::{create_or_read, is_condition_failed, key, n, s, store_error, Creation, Reader};

/// [`SlackThreads`] over the Slack threads table.
#[derive(Clone, Debug)]
pub struct DynamoSlackThreads {
    client: Client,
    table: String,
    retention: Span,
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl DynamoSlackThreads {
    pub fn new(client: Client, table: impl Into<String>, retention: Span) -> DynamoSlackThreads {
        DynamoSlackThreads {
            client,
            table: table.into(),
            retention,
        }
    }

    fn expires_at(&self) -> aws_sdk_dynamodb::types::AttributeValue {
        n(now_seconds() + self.retention.0 / 1000)
    }
}

impl SlackThreads for DynamoSlackThreads {
    async fn claim_root(&self, execution_arn: &str, channel: &str) -> StoreResult<RootClaim> {
        let mut item = key(execution_arn, format!("root#{channel}"));
        item.insert(super::schema::TTL_ATTRIBUTE.into(), self.expires_at());
        let found = create_or_read(
            &self.client,
            &self.table,
            item,
            None,
            ("PutItem (thread root)", "GetItem (thread root)"),
        )
        .await?;
        match found {
            Creation::Created => Ok(RootClaim::Won),
            Creation::Exists(item) => {
                let ts = Reader {
                    table: &self.table,
                    item: &item,
                }
                .opt_string("ts")?;
                Ok(RootClaim::Taken { ts })
            }
        }
    }

    async fn set_root_ts(&self, execution_arn: &str, channel: &str, ts: &str) -> StoreResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(execution_arn, format!("root#{channel}"))))
            .update_expression("SET ts = :ts")
            .expression_attribute_values(":ts", s(ts))
            .send()
            .await
            .map_err(|e| store_error("UpdateItem (thread root ts)", &self.table, e))?;
        Ok(())
    }

    async fn release_root(&self, execution_arn: &str, channel: &str) -> StoreResult<()> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(execution_arn, format!("root#{channel}"))))
            .condition_expression("attribute_not_exists(ts)")
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(store_error("DeleteItem (thread root)", &self.table, e)),
        }
    }

    async fn delivered(
        &self,
        execution_arn: &str,
        status: &str,
        channel: &str,
    ) -> StoreResult<bool> {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(execution_arn, format!("post#{status}#{channel}"))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem (post)", &self.table, e))?;
        Ok(got.item().is_some())
    }

    async fn mark_delivered(
        &self,
        execution_arn: &str,
        status: &str,
        channel: &str,
    ) -> StoreResult<bool> {
        let mut item = key(execution_arn, format!("post#{status}#{channel}"));
        item.insert(super::schema::TTL_ATTRIBUTE.into(), self.expires_at());
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(store_error("PutItem (post)", &self.table, e)),
        }
    }
}
