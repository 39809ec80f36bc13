//! The registry in DynamoDB.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | a registration | `pipeline#<account:region:name>` | `registration` |
//! | a reverse edge (child of a parent) | `children#<parent key>` | `<child key>` |
//!
//! "Children of a parent" is one Query. A registration and its edges change together in one
//! transaction, guarded by the owning stack id.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use baton_core::definition::PipelineDefinition;
use baton_core::ports::{
    ChildEdge, Deleted, Registration, Registry, StoreError, StoreResult, Upserted,
};
use baton_core::{PipelineId, RunStatus, Timestamp};

use super::{key, n, s, store_error, Item, Reader};

/// At most this many parents per pipeline: a registration and its edges fit one transaction.
pub const MAX_PARENTS: usize = 90;

/// [`Registry`] over the registry table.
#[derive(Clone, Debug)]
pub struct DynamoRegistry {
    client: Client,
    table: String,
}

fn registration_key(pipeline: &PipelineId) -> Item {
    key(format!("pipeline#{}", pipeline.key()), "registration")
}

fn edge_key(parent: &PipelineId, child: &PipelineId) -> Item {
    key(format!("children#{}", parent.key()), child.key())
}

impl DynamoRegistry {
    pub fn new(client: Client, table: impl Into<String>) -> DynamoRegistry {
        DynamoRegistry {
            client,
            table: table.into(),
        }
    }

    fn malformed(&self, key: &str, detail: impl Into<String>) -> StoreError {
        StoreError::Malformed {
            table: self.table.clone(),
            key: key.to_owned(),
            detail: detail.into(),
        }
    }

    fn pipeline_from_key(&self, text: &str) -> StoreResult<PipelineId> {
        PipelineId::from_key(text).map_err(|e| self.malformed(text, e.to_string()))
    }

    fn read_registration(&self, item: &Item) -> StoreResult<Registration> {
        let r = Reader {
            table: &self.table,
            item,
        };
        let definition: PipelineDefinition = r.json("definition")?;
        Ok(Registration {
            pipeline: self.pipeline_from_key(&r.string("pipeline")?)?,
            owner_stack_id: r.string("ownerStackId")?,
            definition,
            bus_arn: r.opt_string("busArn")?,
            registered_at: Timestamp(r.number("registeredAt")?),
        })
    }

    fn put(&self, item: Item) -> StoreResult<Put> {
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .map_err(|e| self.malformed("(request)", e.to_string()))
    }

    fn put_owned(&self, item: Item, owner: &str) -> StoreResult<Put> {
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR ownerStackId = :owner")
            .expression_attribute_values(":owner", s(owner))
            .build()
            .map_err(|e| self.malformed("(request)", e.to_string()))
    }

    fn delete_edge(
        &self,
        parent: &PipelineId,
        child: &PipelineId,
    ) -> StoreResult<TransactWriteItem> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(edge_key(parent, child)))
            .build()
            .map_err(|e| self.malformed("(request)", e.to_string()))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    fn edge_item(
        &self,
        parent: &PipelineId,
        child: &PipelineId,
        statuses: &BTreeSet<RunStatus>,
    ) -> Item {
        let mut item = edge_key(parent, child);
        item.insert("child".into(), s(child.key()));
        item.insert(
            "statuses".into(),
            AttributeValue::L(statuses.iter().map(|st| s(st.as_str())).collect()),
        );
        item
    }

    async fn transact(
        &self,
        operation: &'static str,
        items: Vec<TransactWriteItem>,
    ) -> StoreResult<bool> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("TransactionCanceledException") => {
                let conditional = match e.as_service_error() {
                    Some(TransactWriteItemsError::TransactionCanceledException(c)) => c
                        .cancellation_reasons()
                        .iter()
                        .any(|r| r.code() == Some("ConditionalCheckFailed")),
                    _ => false,
                };
                if conditional {
                    Ok(false)
                } else {
                    Err(store_error(operation, &self.table, e))
                }
            }
            Err(e) => Err(store_error(operation, &self.table, e)),
        }
    }
}

impl DynamoRegistry {
    /// Every registration, for operators' tools (the `baton graph` command). This is the only
    /// Scan in baton and no event's path uses it: functions reach registrations by key.
    pub async fn list(&self) -> StoreResult<Vec<Registration>> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("sk = :registration")
                .expression_attribute_values(":registration", s("registration"))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| store_error("Scan (list registrations)", &self.table, e))?;
            for item in page.items() {
                out.push(self.read_registration(item)?);
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.pipeline.cmp(&b.pipeline));
        Ok(out)
    }
}

impl Registry for DynamoRegistry {
    async fn get(&self, pipeline: &PipelineId) -> StoreResult<Option<Registration>> {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(registration_key(pipeline)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem (registration)", &self.table, e))?;
        got.item()
            .map(|item| self.read_registration(item))
            .transpose()
    }

    async fn children(&self, parent: &PipelineId) -> StoreResult<Vec<ChildEdge>> {
        let mut edges = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(format!("children#{}", parent.key())))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| store_error("Query (children of a parent)", &self.table, e))?;
            for item in out.items() {
                let r = Reader {
                    table: &self.table,
                    item,
                };
                let child = self.pipeline_from_key(&r.string("child")?)?;
                let mut statuses = BTreeSet::new();
                for word in r.string_list("statuses")? {
                    let status = RunStatus::parse(&word).ok_or_else(|| {
                        self.malformed(&child.key(), format!("unknown status `{word}` on an edge"))
                    })?;
                    statuses.insert(status);
                }
                edges.push(ChildEdge { child, statuses });
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        Ok(edges)
    }

    async fn upsert(&self, registration: &Registration) -> StoreResult<Upserted> {
        let child = &registration.pipeline;
        let parents = registration.parents();
        if parents.len() > MAX_PARENTS {
            return Err(StoreError::TooManyParents {
                pipeline: child.clone(),
                parents: parents.len(),
                max: MAX_PARENTS,
            });
        }
        let old = self.get(child).await?;
        if let Some(old) = &old {
            if old.owner_stack_id != registration.owner_stack_id {
                return Err(StoreError::NotOwner {
                    pipeline: child.clone(),
                    owner: old.owner_stack_id.clone(),
                });
            }
            if old.fingerprint() == registration.fingerprint() {
                return Ok(Upserted::Unchanged);
            }
        }
        // A replacement keeps the first registration time: the cursor's floor never moves back.
        let registered_at = old
            .as_ref()
            .map(|o| o.registered_at)
            .unwrap_or(registration.registered_at);
        let old_parents: BTreeMap<PipelineId, BTreeSet<RunStatus>> =
            old.as_ref().map(|o| o.parents()).unwrap_or_default();

        let definition = serde_json::to_string(&registration.definition).map_err(|e| {
            self.malformed(&child.key(), format!("definition does not serialize: {e}"))
        })?;
        let mut item = registration_key(child);
        item.insert("pipeline".into(), s(child.key()));
        item.insert("ownerStackId".into(), s(&registration.owner_stack_id));
        item.insert("definition".into(), s(definition));
        item.insert("registeredAt".into(), n(registered_at.0));
        item.insert("fingerprint".into(), s(registration.fingerprint()));
        item.insert(
            "parents".into(),
            AttributeValue::L(parents.keys().map(|p| s(p.key())).collect()),
        );
        if let Some(bus) = &registration.bus_arn {
            item.insert("busArn".into(), s(bus));
        }
        let put = self.put_owned(item, &registration.owner_stack_id)?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        for (parent, statuses) in &parents {
            items.push(
                TransactWriteItem::builder()
                    .put(self.put(self.edge_item(parent, child, statuses))?)
                    .build(),
            );
        }
        for parent in old_parents.keys().filter(|p| !parents.contains_key(*p)) {
            items.push(self.delete_edge(parent, child)?);
        }
        if self
            .transact("TransactWriteItems (upsert registration)", items)
            .await?
        {
            Ok(if old.is_some() {
                Upserted::Updated
            } else {
                Upserted::Created
            })
        } else {
            // Another stack registered the same pipeline between our read and write.
            let owner = self
                .get(child)
                .await?
                .map(|r| r.owner_stack_id)
                .unwrap_or_default();
            Err(StoreError::NotOwner {
                pipeline: child.clone(),
                owner,
            })
        }
    }

    async fn delete(&self, pipeline: &PipelineId, owner_stack_id: &str) -> StoreResult<Deleted> {
        let Some(old) = self.get(pipeline).await? else {
            return Ok(Deleted::NotFound);
        };
        if old.owner_stack_id != owner_stack_id {
            return Err(StoreError::NotOwner {
                pipeline: pipeline.clone(),
                owner: old.owner_stack_id,
            });
        }
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(registration_key(pipeline)))
            .condition_expression("ownerStackId = :owner")
            .expression_attribute_values(":owner", s(owner_stack_id))
            .build()
            .map_err(|e| self.malformed("(request)", e.to_string()))?;
        let mut items = vec![TransactWriteItem::builder().delete(delete).build()];
        for parent in old.parents().keys() {
            items.push(self.delete_edge(parent, pipeline)?);
        }
        if self
            .transact("TransactWriteItems (delete registration)", items)
            .await?
        {
            Ok(Deleted::Removed)
        } else {
            match self.get(pipeline).await? {
                None => Ok(Deleted::NotFound),
                Some(now) => Err(StoreError::NotOwner {
                    pipeline: pipeline.clone(),
                    owner: now.owner_stack_id,
                }),
            }
        }
    }
}
