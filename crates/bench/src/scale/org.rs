//! A generated organisation: pipelines spread over accounts, a random DAG of trigger conditions
//! (at most 5 parents each, every parent earlier in a topological order, so no cycle can form),
//! in the shapes real definitions take (allOf, anyOf, nested groups, operator OR, atLeast, a leaf
//! that also accepts FAILED, `within`), a fifth of them aligned on run keys.

use baton_core::registration::Registration;
use baton_core::{PipelineDefinition, PipelineId, Timestamp};
use serde_json::{json, Value};

pub use baton_testbed::rng::Rng;

/// The organisation: every pipeline, and the registrations of those with a trigger.
pub struct Organisation {
    pub pipelines: Vec<PipelineId>,
    /// Indices of pipelines without a trigger (started on a schedule).
    pub roots: Vec<usize>,
    pub registrations: Vec<Registration>,
    /// Each pipeline's parents, by index (empty for roots).
    pub parents: Vec<Vec<usize>>,
}

/// The region every generated pipeline lives in.
pub const REGION: &str = "eu-west-1";

fn account(a: usize) -> String {
    format!("{:012}", 100_000_000_000_u64 + a as u64)
}

/// How far back in the topological order a pipeline's parents are drawn from: a window keeps
/// chains long (deep DAGs) instead of everything hanging off the first pipelines.
const PARENT_WINDOW: usize = 5_000;

/// Generates `pipelines` pipelines over `accounts` accounts, about 30% of them roots.
pub fn generate(
    pipelines: usize,
    accounts: usize,
    registered_at: Timestamp,
    rng: &mut Rng,
) -> anyhow::Result<Organisation> {
    let mut org = Organisation {
        pipelines: Vec::with_capacity(pipelines),
        roots: Vec::new(),
        registrations: Vec::new(),
        parents: Vec::with_capacity(pipelines),
    };
    for i in 0..pipelines {
        let a = rng.below(accounts as u64) as usize;
        let id = PipelineId::new(&account(a), REGION, &format!("pipeline-{i:06}"))
            .map_err(|e| anyhow::anyhow!("generated pipeline {i}: {e}"))?;
        org.pipelines.push(id);
        let root = i < 1_000 || rng.chance(0.3);
        if root {
            org.roots.push(i);
            org.parents.push(Vec::new());
            continue;
        }
        let k = match rng.below(100) {
            0..=29 => 1,
            30..=59 => 2,
            60..=79 => 3,
            80..=91 => 4,
            _ => 5,
        };
        let low = i.saturating_sub(PARENT_WINDOW);
        let mut parents: Vec<usize> = Vec::with_capacity(k);
        while parents.len() < k {
            let p = low + rng.below((i - low) as u64) as usize;
            if !parents.contains(&p) {
                parents.push(p);
            }
        }
        let definition = definition(&org.pipelines, &parents, rng)?;
        org.registrations.push(Registration {
            pipeline: org.pipelines[i].clone(),
            owner_stack_id: format!(
                "arn:aws:cloudformation:{REGION}:{}:stack/p{i}/x",
                account(a)
            ),
            definition,
            bus_arn: None,
            registered_at,
            trigger_floor: registered_at,
        });
        org.parents.push(parents);
    }
    Ok(org)
}

fn leaf(p: &PipelineId, statuses: &[&str]) -> Value {
    json!({"name": p.name, "account": p.account, "status": statuses})
}

/// A trigger over `parents` in one of the shapes definitions take, read by core's validator.
fn definition(
    pipelines: &[PipelineId],
    parents: &[usize],
    rng: &mut Rng,
) -> anyhow::Result<PipelineDefinition> {
    let ok = ["SUCCEEDED"];
    let leaves: Vec<Value> = parents.iter().map(|&p| leaf(&pipelines[p], &ok)).collect();
    let k = leaves.len();
    let roll = rng.below(100);
    let mut executions = if roll < 65 || k == 1 {
        if roll >= 95 {
            // Runs after its one parent finishes, whether it succeeded or failed.
            json!({"allOf": [leaf(&pipelines[parents[0]], &["SUCCEEDED", "FAILED"])]})
        } else {
            json!({"allOf": leaves})
        }
    } else if roll < 80 {
        json!({"anyOf": leaves})
    } else if roll < 86 && k >= 2 {
        json!({"atLeast": k - 1, "of": leaves})
    } else if roll < 92 && k >= 3 {
        json!({"allOf": [leaves[0], {"anyOf": leaves[1..]}]})
    } else {
        json!({"allOf": [leaves[0]], "anyOf": leaves[1..], "operator": "OR"})
    };
    if rng.chance(0.25) {
        executions["within"] = json!("6h");
    }
    if rng.chance(0.2) {
        executions["alignOn"] = json!("runKey");
    }
    let trigger = json!({"executions": executions.take()});
    PipelineDefinition::from_document(&json!({"trigger": trigger}))
        .map_err(|e| anyhow::anyhow!("generated definition: {e}"))
}
