//! Registering and unregistering a pipeline: the rules, over a registry that only stores.
//!
//! - Only the stack that registered a pipeline may change or remove it.
//! - An Update that changes nothing the registration means (its fingerprint) writes nothing.
//! - The first registration time is kept; the trigger floor moves to the Update's time when the
//!   trigger is added, its set of parents changes (DESIGN "Floor") or it starts or stops being
//!   aligned on run keys (the runs it consumed unaligned were never consumed per key, and per-key
//!   cursors would not know them), so no child fires on runs from before its condition existed.
//! - No registration closes a dependency cycle, across accounts, even when two race: a write that
//!   adds an edge expects the graph version its cycle check was made at, so of two racing
//!   registrations the second is refused by the store, reads again, and is checked against the
//!   first.
//!
//! Shared by every way a pipeline can be registered (the CloudFormation custom resource, tools,
//! tests, the simulation), so they all refuse the same things.

use std::collections::BTreeSet;

use thiserror::Error;

use crate::graph::{load_downstream, Cycle};
use crate::pipeline::PipelineId;
use crate::ports::{Deleted, Ledger, Registration, Registry, RegistryWrite, StoreError, Upserted};

/// How many pipelines downstream of a registering pipeline are loaded to look for a cycle. A
/// registration whose downstream is larger is refused rather than stored unchecked.
pub const MAX_CHECKED_DOWNSTREAM: usize = 10_000;

/// How many times a registration reads again after another registration wrote first.
pub const WRITE_ATTEMPTS: usize = 8;

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
            check(registry, &write, max_downstream).await?;
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

/// Refuses `registration` if giving its pipeline these parents would close a dependency cycle,
/// naming the cycle. Reads only the pipeline's downstream (one `children` query per pipeline),
/// never the whole registry. [`register`] makes it hold under concurrent registrations.
pub async fn check<R: Registry>(
    registry: &R,
    registration: &Registration,
    max_downstream: usize,
) -> Result<(), Refusal> {
    let pipeline = &registration.pipeline;
    let parents: BTreeSet<PipelineId> = registration.parents().into_keys().collect();
    if parents.is_empty() {
        return Ok(());
    }
    let (graph, truncated) = load_downstream(registry, pipeline, max_downstream).await?;
    if let Some(cycle) = graph.cycle_if_parents(pipeline, &parents) {
        return Err(Refusal::Cycle {
            pipeline: pipeline.clone(),
            cycle,
        });
    }
    if truncated {
        return Err(Refusal::TooLargeToCheck {
            pipeline: pipeline.clone(),
            max: max_downstream,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;
    use crate::definition::PipelineDefinition;
    use crate::ports::{ChildEdge, StoreResult, Versioned};
    use crate::time::Timestamp;

    /// The registry's reverse edges in memory: enough for the check, which only reads children.
    #[derive(Default)]
    struct Edges(Mutex<BTreeMap<PipelineId, Vec<ChildEdge>>>);

    impl Edges {
        fn add(&self, parent: &PipelineId, child: &PipelineId) {
            let mut edges = self.0.lock().unwrap();
            edges.entry(parent.clone()).or_default().push(ChildEdge {
                child: child.clone(),
                statuses: BTreeSet::new(),
            });
        }
    }

    impl Registry for Edges {
        async fn get(&self, _: &PipelineId) -> StoreResult<Option<Registration>> {
            Ok(None)
        }
        async fn get_many(
            &self,
            _: &[PipelineId],
        ) -> StoreResult<BTreeMap<PipelineId, Registration>> {
            Ok(BTreeMap::new())
        }
        async fn children(&self, parent: &PipelineId) -> StoreResult<Vec<ChildEdge>> {
            Ok(self
                .0
                .lock()
                .unwrap()
                .get(parent)
                .cloned()
                .unwrap_or_default())
        }
        async fn read(&self, _: &PipelineId) -> StoreResult<Option<Versioned>> {
            Ok(None)
        }
        async fn graph_version(&self) -> StoreResult<u64> {
            Ok(0)
        }
        async fn write(&self, _: &RegistryWrite) -> StoreResult<bool> {
            Ok(true)
        }
        async fn remove(&self, _: &Versioned) -> StoreResult<bool> {
            Ok(true)
        }
    }

    fn p(name: &str) -> PipelineId {
        PipelineId::new("111111111111", "eu-west-1", name).unwrap()
    }

    fn registration(child: &str, parent: &str) -> Registration {
        let yaml = format!(
            "trigger: {{executions: {{allOf: [{{name: {parent}, account: '111111111111', status: [SUCCEEDED]}}]}}}}"
        );
        Registration {
            pipeline: p(child),
            owner_stack_id: "stack".into(),
            definition: PipelineDefinition::from_yaml(&yaml).unwrap(),
            bus_arn: None,
            registered_at: Timestamp(0),
            trigger_floor: Timestamp(0),
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        // The in-memory registry never pends, so one poll finishes the check.
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(out) => out,
            std::task::Poll::Pending => panic!("the in-memory registry pended"),
        }
    }

    #[test]
    fn refuses_a_cycle_through_the_downstream_and_names_it() {
        let edges = Edges::default();
        edges.add(&p("a"), &p("b"));
        edges.add(&p("b"), &p("c"));
        let refusal = block_on(check(&edges, &registration("a", "c"), 100)).unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "registering a (111111111111/eu-west-1) with these parents would close a dependency cycle: a (111111111111/eu-west-1) -> b (111111111111/eu-west-1) -> c (111111111111/eu-west-1) -> a (111111111111/eu-west-1); remove one of those parents from its trigger"
        );
        assert_eq!(
            block_on(check(&edges, &registration("d", "c"), 100)),
            Ok(())
        );
    }

    #[test]
    fn refuses_what_it_cannot_check_completely() {
        let edges = Edges::default();
        for i in 0..5 {
            edges.add(&p("a"), &p(&format!("child-{i}")));
        }
        assert_eq!(
            block_on(check(&edges, &registration("a", "elsewhere"), 3)),
            Err(Refusal::TooLargeToCheck {
                pipeline: p("a"),
                max: 3
            })
        );
        assert_eq!(
            block_on(check(&edges, &registration("a", "elsewhere"), 10)),
            Ok(())
        );
    }

    fn at(registration: Registration, t: i64) -> Registration {
        Registration {
            registered_at: Timestamp(t),
            ..registration
        }
    }

    fn written(plan: Result<Plan, Refusal>) -> Registration {
        match plan {
            Ok(Plan::Write(r)) => *r,
            other => panic!("expected a write, got {other:?}"),
        }
    }

    #[test]
    fn an_update_moves_the_floor_only_when_the_trigger_is_added_or_reparented() {
        let first = written(plan(None, &at(registration("x", "a"), 100)));
        assert_eq!(
            (first.registered_at, first.floor()),
            (Timestamp(100), Timestamp(100))
        );

        // Same parents, other statuses: the floor stays, the first registration time too.
        let mut statuses = at(registration("x", "a"), 200);
        statuses.definition = PipelineDefinition::from_yaml(
            "trigger: {executions: {allOf: [{name: a, account: '111111111111', status: [SUCCEEDED, FAILED]}]}}",
        )
        .unwrap();
        let same_parents = written(plan(Some(&first), &statuses));
        assert_eq!(same_parents.registered_at, Timestamp(100));
        assert_eq!(same_parents.floor(), Timestamp(100));

        // Another parent: runs before the Update never count.
        let reparented = written(plan(Some(&same_parents), &at(registration("x", "b"), 300)));
        assert_eq!(reparented.registered_at, Timestamp(100));
        assert_eq!(reparented.floor(), Timestamp(300));

        // A pipeline registered for notifications only gains a trigger.
        let mut quiet = at(registration("y", "a"), 100);
        quiet.definition = PipelineDefinition::default();
        let quiet = written(plan(None, &quiet));
        let gained = written(plan(Some(&quiet), &at(registration("y", "a"), 500)));
        assert_eq!(gained.floor(), Timestamp(500));

        // The same parents, now aligned on run keys: runs before the Update never count.
        let mut aligned = at(registration("y", "a"), 700);
        if let Some(t) = aligned.definition.trigger.as_mut() {
            t.align_on = Some(crate::condition::AlignOn::RunKey);
        }
        let aligned = written(plan(Some(&gained), &aligned));
        assert_eq!(aligned.floor(), Timestamp(700));
    }

    #[test]
    fn only_the_owner_changes_a_registration_and_an_unchanged_one_writes_nothing() {
        let first = written(plan(None, &at(registration("x", "a"), 100)));
        assert_eq!(
            plan(Some(&first), &at(registration("x", "a"), 900)),
            Ok(Plan::Unchanged)
        );
        let mut other = at(registration("x", "b"), 900);
        other.owner_stack_id = "someone-else".into();
        assert_eq!(
            plan(Some(&first), &other),
            Err(Refusal::NotOwner {
                pipeline: p("x"),
                owner: "stack".into()
            })
        );
    }
}
