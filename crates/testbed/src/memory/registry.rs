//! The registry in memory, as `DynamoRegistry` stores it: registration items keyed by pipeline,
//! each with its version; reverse edges keyed by (parent, child); the dependency graph's version
//! item. A registration and its edges change in one transaction conditioned on the registration's
//! version and, when edges are added, on the graph's version. The rules are core's
//! (`baton_core::registration`): this only stores.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use baton_core::ports::{ChildEdge, Registry, RegistryWrite, StoreResult, Versioned};
use baton_core::registration::Registration;
use baton_core::watch::DeadlineInbox;
use baton_core::{PipelineId, RunStatus};

use super::{batch_get, lock, unavailable, Effect, Op, Requests};

const TABLE: &str = "registry (memory)";

#[derive(Default)]
struct Tables {
    registrations: BTreeMap<PipelineId, Versioned>,
    /// parent -> child -> statuses.
    edges: BTreeMap<PipelineId, BTreeMap<PipelineId, BTreeSet<RunStatus>>>,
    /// The graph version item; absent until the first edge-adding write.
    graph: Option<u64>,
    /// The deadline inbox: pipeline -> fingerprint of the registration that put it there.
    inbox: BTreeMap<PipelineId, String>,
}

/// [`Registry`] in memory.
pub struct MemoryRegistry {
    requests: Arc<Requests>,
    tables: Mutex<Tables>,
}

fn remove_edge(t: &mut Tables, parent: &PipelineId, child: &PipelineId) {
    if let Some(children) = t.edges.get_mut(parent) {
        children.remove(child);
    }
}

impl MemoryRegistry {
    pub fn new(requests: Arc<Requests>) -> MemoryRegistry {
        MemoryRegistry {
            requests,
            tables: Mutex::new(Tables::default()),
        }
    }

    /// Stores a registration (version 1) and its edges directly, without requests or rules: for
    /// loading a generated organisation in bulk.
    pub fn load(&self, registration: Registration) {
        if let Ok(mut t) = self.tables.lock() {
            for (parent, statuses) in registration.parents() {
                t.edges
                    .entry(parent)
                    .or_default()
                    .insert(registration.pipeline.clone(), statuses);
            }
            t.registrations.insert(
                registration.pipeline.clone(),
                Versioned {
                    registration,
                    version: 1,
                },
            );
        }
    }

    /// Every registration, in pipeline order: for checks over the whole registry.
    pub fn all(&self) -> Vec<Registration> {
        self.tables
            .lock()
            .map(|t| {
                t.registrations
                    .values()
                    .map(|v| v.registration.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Registry for MemoryRegistry {
    async fn get(&self, pipeline: &PipelineId) -> StoreResult<Option<Registration>> {
        Ok(self.read(pipeline).await?.map(|v| v.registration))
    }

    /// One BatchGetItem per 100 distinct pipelines, all in flight together, as the adapter reads.
    async fn get_many(
        &self,
        pipelines: &[PipelineId],
    ) -> StoreResult<BTreeMap<PipelineId, Registration>> {
        let operation = "BatchGetItem (registrations)";
        batch_get(
            &self.requests,
            pipelines,
            |chunk: &[PipelineId]| Op::BatchGetRegistrations(chunk),
            (operation, TABLE),
            |chunk| {
                let t = lock(&self.tables, TABLE, operation)?;
                Ok(chunk
                    .iter()
                    .filter_map(|p| {
                        let v = t.registrations.get(p)?;
                        Some((p.clone(), v.registration.clone()))
                    })
                    .collect())
            },
        )
        .await
    }

    async fn children(&self, parent: &PipelineId) -> StoreResult<Vec<ChildEdge>> {
        self.requests
            .request(Op::QueryChildren(parent), || {
                let got = lock(&self.tables, TABLE, "Query (children of a parent)").map(|t| {
                    t.edges
                        .get(parent)
                        .into_iter()
                        .flatten()
                        .map(|(child, statuses)| ChildEdge {
                            child: child.clone(),
                            statuses: statuses.clone(),
                        })
                        .collect()
                });
                (got, Effect::Read)
            })
            .await
            .map_err(|f| unavailable("Query (children of a parent)", TABLE, f))?
    }

    async fn read(&self, pipeline: &PipelineId) -> StoreResult<Option<Versioned>> {
        self.requests
            .request(Op::GetRegistration(pipeline), || {
                let got = lock(&self.tables, TABLE, "GetItem (registration)")
                    .map(|t| t.registrations.get(pipeline).cloned());
                (got, Effect::Read)
            })
            .await
            .map_err(|f| unavailable("GetItem (registration)", TABLE, f))?
    }

    async fn graph_version(&self) -> StoreResult<u64> {
        self.requests
            .request(Op::GetGraphVersion, || {
                let got = lock(&self.tables, TABLE, "GetItem (graph version)")
                    .map(|t| t.graph.unwrap_or(0));
                (got, Effect::Read)
            })
            .await
            .map_err(|f| unavailable("GetItem (graph version)", TABLE, f))?
    }

    async fn write(&self, write: &RegistryWrite) -> StoreResult<bool> {
        let child = &write.registration.pipeline;
        let operation = "TransactWriteItems (write registration)";
        self.requests
            .request(Op::WriteRegistration(child), || {
                let mut t = match lock(&self.tables, TABLE, operation) {
                    Ok(t) => t,
                    Err(e) => return (Err(e), Effect::Read),
                };
                // The registration at the version read (absent when none was); with `graph`, the
                // graph version item at that version (absent when 0).
                let stored = t.registrations.get(child).map(|v| v.version);
                let graph_ok = match write.graph {
                    None => true,
                    Some(0) => t.graph.is_none(),
                    Some(g) => t.graph == Some(g),
                };
                if stored != write.expect || !graph_ok {
                    return (Ok(false), Effect::ConditionFailed);
                }
                for (parent, statuses) in write.registration.parents() {
                    t.edges
                        .entry(parent)
                        .or_default()
                        .insert(child.clone(), statuses);
                }
                for parent in &write.removed_parents {
                    remove_edge(&mut t, parent, child);
                }
                if let Some(g) = write.graph {
                    t.graph = Some(g + 1);
                }
                if write.registration.definition.deadlines.is_some() {
                    t.inbox
                        .insert(child.clone(), write.registration.fingerprint());
                }
                let version = write.expect.map_or(1, |v| v + 1);
                t.registrations.insert(
                    child.clone(),
                    Versioned {
                        registration: write.registration.clone(),
                        version,
                    },
                );
                (Ok(true), Effect::Written)
            })
            .await
            .map_err(|f| unavailable(operation, TABLE, f))?
    }

    async fn remove(&self, stored: &Versioned) -> StoreResult<bool> {
        let pipeline = &stored.registration.pipeline;
        let operation = "TransactWriteItems (remove registration)";
        self.requests
            .request(Op::DeleteRegistration(pipeline), || {
                let mut t = match lock(&self.tables, TABLE, operation) {
                    Ok(t) => t,
                    Err(e) => return (Err(e), Effect::Read),
                };
                // `attribute_not_exists(version) OR version = :read`: a missing item passes.
                let current = t.registrations.get(pipeline).map(|v| v.version);
                if current.is_some_and(|v| v != stored.version) {
                    return (Ok(false), Effect::ConditionFailed);
                }
                t.registrations.remove(pipeline);
                for parent in stored.registration.parents().keys() {
                    remove_edge(&mut t, parent, pipeline);
                }
                (Ok(true), Effect::Written)
            })
            .await
            .map_err(|f| unavailable(operation, TABLE, f))?
    }
}

impl DeadlineInbox for MemoryRegistry {
    async fn changed(&self) -> StoreResult<Vec<(PipelineId, String)>> {
        let operation = "Query (deadline inbox)";
        self.requests
            .request(Op::Watch(operation), || {
                let got = lock(&self.tables, TABLE, operation).map(|t| {
                    t.inbox
                        .iter()
                        .map(|(p, f)| (p.clone(), f.clone()))
                        .collect()
                });
                (got, Effect::Read)
            })
            .await
            .map_err(|f| unavailable(operation, TABLE, f))?
    }

    async fn acknowledge(&self, pipeline: &PipelineId, fingerprint: &str) -> StoreResult<()> {
        let operation = "DeleteItem (deadline inbox)";
        self.requests
            .request(Op::Watch(operation), || {
                let mut t = match lock(&self.tables, TABLE, operation) {
                    Ok(t) => t,
                    Err(e) => return (Err(e), Effect::Read),
                };
                // `fingerprint = :seen`: a newer registration's entry stays.
                if t.inbox.get(pipeline).map(String::as_str) != Some(fingerprint) {
                    return (Ok(()), Effect::ConditionFailed);
                }
                t.inbox.remove(pipeline);
                (Ok(()), Effect::Written)
            })
            .await
            .map_err(|f| unavailable(operation, TABLE, f))?
    }
}
