//! The registry in DynamoDB.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | a registration | `pipeline#<account:region:name>` | `registration` |
//! | a reverse edge (child of a parent) | `children#<parent key>` | `<child key>` |
//! | the dependency graph's version | `graph` | `version` |
//! | a registration with deadlines the watchdog has not scheduled yet | `deadlines#inbox` | `<pipeline key>` |
//!
//! "Children of a parent" is one Query. A registration and its edges change together in one
//! transaction, conditioned on the registration's version (and, when edges are added, the graph's
//! version). The rules (owner, floor, cycles) are `baton_core::registration`'s; this only stores.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use baton_core::definition::PipelineDefinition;
use baton_core::ports::{ChildEdge, Registry, RegistryWrite, StoreError, StoreResult, Versioned};
use baton_core::registration::Registration;
use baton_core::{PipelineId, RunStatus, Timestamp};

use baton_core::watch::DeadlineInbox;

use super::{
    batch_get_items, batch_put_items, get_item, key, n, partition_items, s, store_error,
    unless_condition_failed, Item, Reader,
};

/// The partition of the deadline inbox.
const INBOX_PK: &str = "deadlines#inbox";

/// At most this many parents per pipeline: a registration and its edges fit one transaction.
pub const MAX_PARENTS: usize = 90;

/// [`Registry`] over the registry table.
#[derive(Clone, Debug)]
pub struct DynamoRegistry {
    client: Client,
    table: String,
}

/// The deadline inbox entry of a registration with deadlines.
fn inbox_item(registration: &Registration) -> Item {
    let mut entry = key(INBOX_PK, registration.pipeline.key());
    entry.insert("fingerprint".into(), s(registration.fingerprint()));
    entry
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
            trigger_floor: Timestamp(r.opt_number("triggerFloor")?.unwrap_or(0)),
        })
    }

    fn put(&self, item: Item) -> StoreResult<Put> {
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .map_err(|e| self.malformed("(request)", e.to_string()))
    }

    /// A put of the registration item only over the version that was read.
    fn put_versioned(&self, item: Item, expect: Option<u64>) -> StoreResult<Put> {
        let put = Put::builder().table_name(&self.table).set_item(Some(item));
        let put = match expect {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(v) => put
                .condition_expression("#version = :read")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":read", n(v as i64)),
        };
        put.build()
            .map_err(|e| self.malformed("(request)", e.to_string()))
    }

    /// Moves the graph version from `read` to `read + 1`, or fails the transaction.
    fn bump_graph(&self, read: u64) -> StoreResult<TransactWriteItem> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key("graph", "version")))
            .update_expression("SET #version = :next")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":next", n(read as i64 + 1));
        let update = if read == 0 {
            update.condition_expression("attribute_not_exists(pk)")
        } else {
            update
                .condition_expression("#version = :read")
                .expression_attribute_values(":read", n(read as i64))
        };
        let update = update
            .build()
            .map_err(|e| self.malformed("(request)", e.to_string()))?;
        Ok(TransactWriteItem::builder().update(update).build())
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

    /// The registration's item at `version`, as a write stores it.
    fn registration_item(
        &self,
        registration: &Registration,
        parents: &BTreeMap<PipelineId, BTreeSet<RunStatus>>,
        version: i64,
    ) -> StoreResult<Item> {
        let child = &registration.pipeline;
        let definition = serde_json::to_string(&registration.definition).map_err(|e| {
            self.malformed(&child.key(), format!("definition does not serialize: {e}"))
        })?;
        let mut item = registration_key(child);
        item.insert("pipeline".into(), s(child.key()));
        item.insert("ownerStackId".into(), s(&registration.owner_stack_id));
        item.insert("definition".into(), s(definition));
        item.insert("registeredAt".into(), n(registration.registered_at.0));
        item.insert("triggerFloor".into(), n(registration.trigger_floor.0));
        item.insert("fingerprint".into(), s(registration.fingerprint()));
        item.insert("version".into(), n(version));
        item.insert(
            "parents".into(),
            AttributeValue::L(parents.keys().map(|p| s(p.key())).collect()),
        );
        if let Some(bus) = &registration.bus_arn {
            item.insert("busArn".into(), s(bus));
        }
        Ok(item)
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
        super::transacted(result, operation, &self.table)
    }
}

impl DynamoRegistry {
    /// Stores registrations (version 1) with their edges and deadline inbox entries directly,
    /// by BatchWriteItem, without the registration rules (ownership, cycles, versions) or the
    /// graph version: for loading a generated organisation in bulk (benchmarks), never for a
    /// pipeline's own registration, which goes through `baton_core::registration::register`.
    pub async fn load(&self, registrations: &[Registration]) -> StoreResult<()> {
        let mut items = Vec::new();
        for registration in registrations {
            let parents = registration.parents();
            items.push(self.registration_item(registration, &parents, 1)?);
            for (parent, statuses) in &parents {
                items.push(self.edge_item(parent, &registration.pipeline, statuses));
            }
            if registration.definition.deadlines.is_some() {
                items.push(inbox_item(registration));
            }
        }
        batch_put_items(
            &self.client,
            &self.table,
            items,
            "BatchWriteItem (load registrations)",
        )
        .await
    }

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
        Ok(self.read(pipeline).await?.map(|v| v.registration))
    }

    async fn get_many(
        &self,
        pipelines: &[PipelineId],
    ) -> StoreResult<BTreeMap<PipelineId, Registration>> {
        let keys = pipelines.iter().map(registration_key).collect();
        let items = batch_get_items(
            &self.client,
            &self.table,
            keys,
            "BatchGetItem (registrations)",
        )
        .await?;
        let mut registrations = BTreeMap::new();
        for item in &items {
            let registration = self.read_registration(item)?;
            registrations.insert(registration.pipeline.clone(), registration);
        }
        Ok(registrations)
    }

    async fn children(&self, parent: &PipelineId) -> StoreResult<Vec<ChildEdge>> {
        let mut edges = Vec::new();
        // Strongly consistent: the cycle check must see every edge written up to the graph
        // version it read, or two registrations could close a cycle one after the other.
        let pk = format!("children#{}", parent.key());
        let items = partition_items(
            &self.client,
            &self.table,
            pk,
            "Query (children of a parent)",
        )
        .await?;
        for item in &items {
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
        Ok(edges)
    }

    async fn read(&self, pipeline: &PipelineId) -> StoreResult<Option<Versioned>> {
        let key = registration_key(pipeline);
        let got = get_item(&self.client, &self.table, key, "GetItem (registration)").await?;
        let Some(item) = &got else {
            return Ok(None);
        };
        let version = Reader {
            table: &self.table,
            item,
        }
        .opt_number("version")?
        .unwrap_or(0);
        Ok(Some(Versioned {
            registration: self.read_registration(item)?,
            version: u64::try_from(version).unwrap_or(0),
        }))
    }

    async fn graph_version(&self) -> StoreResult<u64> {
        let key = key("graph", "version");
        let got = get_item(&self.client, &self.table, key, "GetItem (graph version)").await?;
        let version = match &got {
            Some(item) => Reader {
                table: &self.table,
                item,
            }
            .number("version")?,
            None => 0,
        };
        Ok(u64::try_from(version).unwrap_or(0))
    }

    async fn write(&self, write: &RegistryWrite) -> StoreResult<bool> {
        let registration = &write.registration;
        let child = &registration.pipeline;
        let parents = registration.parents();
        if parents.len() > MAX_PARENTS {
            return Err(StoreError::TooManyParents {
                pipeline: child.clone(),
                parents: parents.len(),
                max: MAX_PARENTS,
            });
        }
        let version = write.expect.map_or(1, |v| v as i64 + 1);
        let item = self.registration_item(registration, &parents, version)?;
        let put = self.put_versioned(item, write.expect)?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        for (parent, statuses) in &parents {
            items.push(
                TransactWriteItem::builder()
                    .put(self.put(self.edge_item(parent, child, statuses))?)
                    .build(),
            );
        }
        for parent in &write.removed_parents {
            items.push(self.delete_edge(parent, child)?);
        }
        if let Some(graph) = write.graph {
            items.push(self.bump_graph(graph)?);
        }
        if registration.definition.deadlines.is_some() {
            // In the same transaction: no registration's deadlines go unwatched.
            let entry = inbox_item(registration);
            items.push(TransactWriteItem::builder().put(self.put(entry)?).build());
        }
        self.transact("TransactWriteItems (write registration)", items)
            .await
    }

    async fn remove(&self, stored: &Versioned) -> StoreResult<bool> {
        let pipeline = &stored.registration.pipeline;
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(registration_key(pipeline)))
            .condition_expression("attribute_not_exists(#version) OR #version = :read")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":read", n(stored.version as i64))
            .build()
            .map_err(|e| self.malformed("(request)", e.to_string()))?;
        let mut items = vec![TransactWriteItem::builder().delete(delete).build()];
        for parent in stored.registration.parents().keys() {
            items.push(self.delete_edge(parent, pipeline)?);
        }
        self.transact("TransactWriteItems (remove registration)", items)
            .await
    }
}

impl DeadlineInbox for DynamoRegistry {
    async fn changed(&self) -> StoreResult<Vec<(PipelineId, String)>> {
        let mut out = Vec::new();
        let pk = INBOX_PK.to_owned();
        let items =
            partition_items(&self.client, &self.table, pk, "Query (deadline inbox)").await?;
        for item in &items {
            let r = Reader {
                table: &self.table,
                item,
            };
            let sk = r.string("sk")?;
            let pipeline = PipelineId::from_key(&sk)
                .map_err(|e| self.malformed(&format!("{INBOX_PK} / {sk}"), e.to_string()))?;
            out.push((pipeline, r.string("fingerprint")?));
        }
        Ok(out)
    }

    async fn acknowledge(&self, pipeline: &PipelineId, fingerprint: &str) -> StoreResult<()> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(INBOX_PK, pipeline.key())))
            .condition_expression("fingerprint = :seen")
            .expression_attribute_values(":seen", s(fingerprint))
            .send()
            .await;
        // A failed condition: a newer registration put its own entry: it stays for the next run.
        unless_condition_failed(deleted, "DeleteItem (deadline inbox)", &self.table)
    }
}
