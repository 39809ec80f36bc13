//! Checking a registration against the registry before it is stored: the rules that need the rest
//! of the graph (today: no dependency cycle, across accounts). Shared by every way a pipeline can be
//! registered (the CloudFormation custom resource, tools), so they refuse the same things.

use std::collections::BTreeSet;

use thiserror::Error;

use crate::graph::{load_downstream, Cycle};
use crate::pipeline::PipelineId;
use crate::ports::{Registration, Registry, StoreError};

/// How many pipelines downstream of a registering pipeline are loaded to look for a cycle. A
/// registration whose downstream is larger is refused rather than stored unchecked.
pub const MAX_CHECKED_DOWNSTREAM: usize = 10_000;

/// Why a registration cannot be stored.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum Refusal {
    #[error("registering {pipeline} with these parents would close a {cycle}; remove one of those parents from its trigger")]
    Cycle { pipeline: PipelineId, cycle: Cycle },
    #[error("{pipeline} has more than {max} pipelines downstream, too many to check for a dependency cycle; split the dependency graph")]
    TooLargeToCheck { pipeline: PipelineId, max: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Refuses `registration` if giving its pipeline these parents would close a dependency cycle,
/// naming the cycle. Reads only the pipeline's downstream (one `children` query per pipeline),
/// never the whole registry. Two concurrent registrations can still close a cycle between them;
/// the trigger-manager's exactly-once claims keep such a cycle from firing more than once per run.
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
    use crate::ports::{ChildEdge, Deleted, StoreResult, Upserted};
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
        async fn children(&self, parent: &PipelineId) -> StoreResult<Vec<ChildEdge>> {
            Ok(self
                .0
                .lock()
                .unwrap()
                .get(parent)
                .cloned()
                .unwrap_or_default())
        }
        async fn upsert(&self, _: &Registration) -> StoreResult<Upserted> {
            Ok(Upserted::Created)
        }
        async fn delete(&self, _: &PipelineId, _: &str) -> StoreResult<Deleted> {
            Ok(Deleted::NotFound)
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
}
