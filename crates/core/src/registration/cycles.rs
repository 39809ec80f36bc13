//! The cycle check: a registration that would close a dependency cycle, across accounts, is
//! refused, naming the cycle.

use std::collections::BTreeSet;

use super::{Refusal, Registration};
use crate::graph::load_downstream;
use crate::pipeline::PipelineId;
use crate::ports::Registry;

/// How many pipelines downstream of a registering pipeline are loaded to look for a cycle. A
/// registration whose downstream is larger is refused rather than stored unchecked.
pub const MAX_CHECKED_DOWNSTREAM: usize = 10_000;

/// Refuses `registration` if giving its pipeline these parents would close a dependency cycle,
/// naming the cycle. Reads only the pipeline's downstream (one `children` query per pipeline),
/// never the whole registry. [`register`](super::register) makes it hold under concurrent registrations.
pub async fn check_cycles<R: Registry>(
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
