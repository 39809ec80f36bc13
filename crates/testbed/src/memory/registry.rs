//! The registry in memory, as `DynamoRegistry` stores it: registration items keyed by pipeline,
//! reverse edges keyed by (parent, child), a registration and its edges written together in one
//! transaction guarded by the owning stack.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use baton_core::ports::{
    ChildEdge, Deleted, Registration, Registry, StoreError, StoreResult, Upserted,
};
use baton_core::{PipelineId, RunStatus};

use super::{lock, unavailable, Effect, Op, Requests};

const TABLE: &str = "registry (memory)";

#[derive(Default)]
struct Tables {
    registrations: BTreeMap<PipelineId, Registration>,
    /// parent -> child -> statuses.
    edges: BTreeMap<PipelineId, BTreeMap<PipelineId, BTreeSet<RunStatus>>>,
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

    /// Stores a registration and its edges directly, without requests or rules: for loading a
    /// generated organisation in bulk.
    pub fn load(&self, registration: Registration) {
        if let Ok(mut t) = self.tables.lock() {
            for (parent, statuses) in registration.parents() {
                t.edges
                    .entry(parent)
                    .or_default()
                    .insert(registration.pipeline.clone(), statuses);
            }
            t.registrations
                .insert(registration.pipeline.clone(), registration);
        }
    }

    /// Every registration, in pipeline order: for checks over the whole registry.
    pub fn all(&self) -> Vec<Registration> {
        self.tables
            .lock()
            .map(|t| t.registrations.values().cloned().collect())
            .unwrap_or_default()
    }

    /// One TransactWriteItems: the registration, `attribute_not_exists(pk) OR ownerStackId =
    /// :owner`, its edges put, the edges of parents it no longer has deleted. `false`: the
    /// condition failed.
    async fn write(
        &self,
        registration: &Registration,
        old_parents: &BTreeSet<PipelineId>,
    ) -> StoreResult<bool> {
        let child = &registration.pipeline;
        let operation = "TransactWriteItems (upsert registration)";
        self.requests
            .request(Op::WriteRegistration(child), || {
                let mut t = match lock(&self.tables, TABLE, operation) {
                    Ok(t) => t,
                    Err(e) => return (Err(e), Effect::Read),
                };
                let owned = t
                    .registrations
                    .get(child)
                    .is_none_or(|r| r.owner_stack_id == registration.owner_stack_id);
                if !owned {
                    return (Ok(false), Effect::ConditionFailed);
                }
                let parents = registration.parents();
                for parent in old_parents.iter().filter(|p| !parents.contains_key(*p)) {
                    remove_edge(&mut t, parent, child);
                }
                for (parent, statuses) in parents {
                    t.edges
                        .entry(parent)
                        .or_default()
                        .insert(child.clone(), statuses);
                }
                t.registrations.insert(child.clone(), registration.clone());
                (Ok(true), Effect::Written)
            })
            .await
            .map_err(|f| unavailable(operation, TABLE, f))?
    }

    /// One TransactWriteItems: the registration deleted, `ownerStackId = :owner`, and its edges.
    async fn remove(&self, old: &Registration, owner_stack_id: &str) -> StoreResult<bool> {
        let pipeline = &old.pipeline;
        let operation = "TransactWriteItems (delete registration)";
        self.requests
            .request(Op::DeleteRegistration(pipeline), || {
                let mut t = match lock(&self.tables, TABLE, operation) {
                    Ok(t) => t,
                    Err(e) => return (Err(e), Effect::Read),
                };
                let owned = t
                    .registrations
                    .get(pipeline)
                    .is_some_and(|r| r.owner_stack_id == owner_stack_id);
                if !owned {
                    return (Ok(false), Effect::ConditionFailed);
                }
                t.registrations.remove(pipeline);
                for parent in old.parents().keys() {
                    remove_edge(&mut t, parent, pipeline);
                }
                (Ok(true), Effect::Written)
            })
            .await
            .map_err(|f| unavailable(operation, TABLE, f))?
    }
}

impl Registry for MemoryRegistry {
    async fn get(&self, pipeline: &PipelineId) -> StoreResult<Option<Registration>> {
        self.requests
            .request(Op::GetRegistration(pipeline), || {
                let got = lock(&self.tables, TABLE, "GetItem (registration)")
                    .map(|t| t.registrations.get(pipeline).cloned());
                (got, Effect::Read)
            })
            .await
            .map_err(|f| unavailable("GetItem (registration)", TABLE, f))?
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

    async fn upsert(&self, registration: &Registration) -> StoreResult<Upserted> {
        let child = &registration.pipeline;
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
        let mut stored = registration.clone();
        if let Some(old) = &old {
            stored.registered_at = old.registered_at;
        }
        let old_parents: BTreeSet<PipelineId> = old
            .as_ref()
            .map(|o| o.parents().into_keys().collect())
            .unwrap_or_default();
        if self.write(&stored, &old_parents).await? {
            return Ok(if old.is_some() {
                Upserted::Updated
            } else {
                Upserted::Created
            });
        }
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
        if self.remove(&old, owner_stack_id).await? {
            return Ok(Deleted::Removed);
        }
        match self.get(pipeline).await? {
            None => Ok(Deleted::NotFound),
            Some(now) => Err(StoreError::NotOwner {
                pipeline: pipeline.clone(),
                owner: now.owner_stack_id,
            }),
        }
    }
}
