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
