//! The rules of a Create, Update or Delete of a registration (see the module doc of
//! [`crate::registration`]).

use std::collections::BTreeSet;

use thiserror::Error;

use super::{check_cycles, Registration};
use crate::graph::Cycle;
use crate::pipeline::PipelineId;
use crate::ports::{Ledger, Registry, RegistryWrite, StoreError};

/// How many times a registration reads again after another registration wrote first.
pub const WRITE_ATTEMPTS: usize = 8;

/// What an upsert did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upserted {
    Created,
    Updated,
    /// Same fingerprint as stored: nothing written.
    Unchanged,
}

/// What a delete did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deleted {
    Removed,
    /// Nothing was registered under that pipeline.
    NotFound,
}

/// Why a registration cannot be stored.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum Refusal {
    #[error("registering {pipeline} with these parents would close a {cycle}; remove one of those parents from its trigger")]
    Cycle { pipeline: PipelineId, cycle: Cycle },
    #[error("{pipeline} has more than {max} pipelines downstream, too many to check for a dependency cycle; split the dependency graph")]
    TooLargeToCheck { pipeline: PipelineId, max: usize },
    #[error("pipeline {pipeline} is registered by stack `{owner}`; only that stack can change or remove it")]
    NotOwner { pipeline: PipelineId, owner: String },
    #[error("{pipeline}: {attempts} registrations in a row were written first by others; retry the stack operation")]
    Contended {
        pipeline: PipelineId,
        attempts: usize,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a Create or Update must write, decided from what is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Same meaning as stored: nothing to write.
    Unchanged,
    /// Write this registration (registration time and trigger floor settled).
    Write(Box<Registration>),
}

/// The rules of a Create or Update of `incoming` at `incoming.registered_at` (the request's
/// time) over what is `stored`.
pub fn plan(stored: Option<&Registration>, incoming: &Registration) -> Result<Plan, Refusal> {
    let now = incoming.registered_at;
    let Some(old) = stored else {
        let mut new = incoming.clone();
        new.trigger_floor = now;
        return Ok(Plan::Write(Box::new(new)));
    };
    if old.owner_stack_id != incoming.owner_stack_id {
        return Err(Refusal::NotOwner {
            pipeline: incoming.pipeline.clone(),
            owner: old.owner_stack_id.clone(),
        });
    }
    if old.fingerprint() == incoming.fingerprint() {
        return Ok(Plan::Unchanged);
    }
    let mut new = incoming.clone();
    // The cursor's floor never moves back: the first registration time stays.
    new.registered_at = old.registered_at;
    let old_parents: BTreeSet<PipelineId> = old.parents().into_keys().collect();
    let new_parents: BTreeSet<PipelineId> = incoming.parents().into_keys().collect();
    let trigger_added = old.definition.trigger.is_none() && incoming.definition.trigger.is_some();
    let aligned = |r: &Registration| r.definition.trigger.as_ref().map(|t| t.is_aligned());
    let realigned = aligned(old) != aligned(incoming);
    new.trigger_floor = if trigger_added || realigned || old_parents != new_parents {
        now
    } else {
        old.floor()
    };
    Ok(Plan::Write(Box::new(new)))
}

/// Creates or updates a registration under the rules of this module; the store's conditions
/// make it safe against concurrent registrations (see the module doc).
pub async fn register<R: Registry>(
    registry: &R,
    incoming: &Registration,
    max_downstream: usize,
) -> Result<Upserted, Refusal> {
    for _ in 0..WRITE_ATTEMPTS {
        // The graph version first: any edge written after the cycle check's reads moves it.
        let graph = registry.graph_version().await?;
        let stored = registry.read(&incoming.pipeline).await?;
        let write = match plan(stored.as_ref().map(|s| &s.registration), incoming)? {
            Plan::Unchanged => return Ok(Upserted::Unchanged),
            Plan::Write(registration) => *registration,
        };
        let old_parents: BTreeSet<PipelineId> = stored
            .as_ref()
            .map(|s| s.registration.parents().into_keys().collect())
            .unwrap_or_default();
        let new_parents: BTreeSet<PipelineId> = write.parents().into_keys().collect();
        let adds_edge = !new_parents.is_subset(&old_parents);
        if adds_edge {
            check_cycles(registry, &write, max_downstream).await?;
        }
        let request = RegistryWrite {
            expect: stored.as_ref().map(|s| s.version),
            graph: adds_edge.then_some(graph),
            removed_parents: old_parents.difference(&new_parents).cloned().collect(),
            registration: write,
        };
        if registry.write(&request).await? {
            return Ok(if stored.is_some() {
                Upserted::Updated
            } else {
                Upserted::Created
            });
        }
    }
    Err(Refusal::Contended {
        pipeline: incoming.pipeline.clone(),
        attempts: WRITE_ATTEMPTS,
    })
}

/// Removes `pipeline` if `owner_stack_id` owns it, then forgets its cursor and pending trigger in
/// the ledger. Should the function die in between, the flow drops a pending trigger claimed
/// before a later registration of the name, so nothing of the old pipeline is sent to a new one.
pub async fn unregister<R: Registry, L: Ledger>(
    registry: &R,
    ledger: &L,
    pipeline: &PipelineId,
    owner_stack_id: &str,
) -> Result<Deleted, Refusal> {
    for _ in 0..WRITE_ATTEMPTS {
        let Some(stored) = registry.read(pipeline).await? else {
            return Ok(Deleted::NotFound);
        };
        if stored.registration.owner_stack_id != owner_stack_id {
            return Err(Refusal::NotOwner {
                pipeline: pipeline.clone(),
                owner: stored.registration.owner_stack_id,
            });
        }
        if registry.remove(&stored).await? {
            ledger.forget(pipeline).await?;
            return Ok(Deleted::Removed);
        }
    }
    Err(Refusal::Contended {
        pipeline: pipeline.clone(),
        attempts: WRITE_ATTEMPTS,
    })
}
