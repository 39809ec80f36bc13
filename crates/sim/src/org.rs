//! A small generated organisation for one schedule: a few pipelines over a few accounts, trigger
//! conditions in every shape a definition takes (allOf, anyOf, nesting, operator OR, atLeast, a
//! fallback on FAILED, `within` in the top or a nested group), registrations and Updates during
//! the day, and the roots' runs. In half of the schedules runs carry run keys (two business
//! days, the roots' runs of either day in any order, re-runs keeping their day) and some
//! children are aligned on them.

use baton_core::registration::Registration;
use baton_core::{PipelineDefinition, PipelineId, Timestamp};
use baton_testbed::rng::Rng;
use serde_json::{json, Value};

/// Midnight UTC, 2026-11-22: the simulated day starts here.
pub const DAY0: i64 = 1_795_305_600_000;
pub const SECOND: i64 = 1_000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;
pub const REGION: &str = "eu-west-1";

/// A stack's request to `Custom::BatonPipeline`: Create or Update (a registration), or Delete.
#[derive(Clone, Debug)]
pub struct Change {
    pub at: i64,
    pub registration: Registration,
    pub delete: bool,
    /// After a Delete has succeeded: the stack created again, with this registration.
    pub then: Option<Registration>,
}

/// What a root runs: when, and whether it fails (and how loudly).
#[derive(Clone, Debug)]
pub struct PlannedRun {
    pub pipeline: PipelineId,
    pub start: i64,
    pub fails: bool,
    /// Bytes of `cause` on a failure (Step Functions allows 32 KB).
    pub cause_bytes: usize,
    /// Whether its owners may re-run it when it fails.
    pub may_rerun: bool,
    /// From start to final status.
    pub duration: i64,
    /// The run key in its input (`{"runKey": ...}`), in keyed schedules.
    pub key: Option<String>,
}

/// One schedule's organisation.
#[derive(Clone, Debug)]
pub struct Organisation {
    pub pipelines: Vec<PipelineId>,
    /// Registered the day before.
    pub initial: Vec<Registration>,
    /// Creates and Updates during the day, some racing each other.
    pub changes: Vec<Change>,
    pub roots: Vec<PlannedRun>,
}

/// The run keys of a keyed schedule: two business days.
pub const KEYS: [&str; 2] = ["2026-11-21", "2026-11-22"];

fn account(a: u64) -> String {
    format!("{:012}", 100_000_000_000_u64 + a)
}

fn stack(p: &PipelineId, n: usize) -> String {
    format!(
        "arn:aws:cloudformation:{REGION}:{}:stack/{}-{n}/x",
        p.account, p.name
    )
}

fn leaf(p: &PipelineId, statuses: &[&str]) -> Value {
    json!({"name": p.name, "account": p.account, "status": statuses})
}

/// A trigger over `parents` in one of the shapes definitions take.
fn trigger(parents: &[&PipelineId], rng: &mut Rng) -> Value {
    let ok = ["SUCCEEDED"];
    let leaves: Vec<Value> = parents.iter().map(|p| leaf(p, &ok)).collect();
    let k = leaves.len();
    let roll = rng.below(100);
    let executions = if k == 1 || roll < 40 {
        match rng.below(10) {
            // A fallback: runs when its parent failed.
            0 => json!({"allOf": [leaf(parents[0], &["FAILED"])]}),
            1 => json!({"allOf": [leaf(parents[0], &["SUCCEEDED", "FAILED"])]}),
            _ => json!({"allOf": leaves}),
        }
    } else if roll < 60 {
        json!({"anyOf": leaves})
    } else if roll < 70 && k >= 3 {
        json!({"allOf": [leaves[0], {"anyOf": leaves[1..]}]})
    } else if roll < 80 && k >= 2 {
        json!({"atLeast": k - 1, "of": leaves})
    } else {
        json!({"allOf": [leaves[0]], "anyOf": leaves[1..], "operator": "OR"})
    };
    let mut executions = executions;
    if rng.chance(0.3) {
        let within = json!(format!("{}h", 1 + rng.below(4)));
        // In the top group, or in the nested one when there is one (it bounds only its leaves).
        match executions.get_mut("allOf").and_then(|a| a.get_mut(1)) {
            Some(nested) if nested.get("anyOf").is_some() && rng.chance(0.5) => {
                nested["within"] = within
            }
            _ => executions["within"] = within,
        }
    }
    json!({"executions": executions})
}

fn definition(trigger: Option<Value>) -> anyhow::Result<PipelineDefinition> {
    let mut doc = json!({
        "notifications": {"type": "FAILURES", "targets": [{"channel": "SLACK", "addresses": ["data-alerts"]}]}
    });
    if let Some(t) = trigger {
        doc["trigger"] = t;
    }
    PipelineDefinition::from_document(&doc)
        .map_err(|e| anyhow::anyhow!("generated definition: {e}"))
}

fn registration(
    pipeline: &PipelineId,
    trigger: Option<Value>,
    at: i64,
) -> anyhow::Result<Registration> {
    Ok(Registration {
        pipeline: pipeline.clone(),
        owner_stack_id: stack(pipeline, 0),
        definition: definition(trigger)?,
        bus_arn: None,
        registered_at: Timestamp(at),
        trigger_floor: Timestamp(at),
    })
}

/// Draws an organisation: `2..4` roots, `3..8` children over them (parents always earlier, so
/// the intended graph has no cycle), some registered during the day, some gaining a trigger or a
/// parent by an Update, now and then two Creates racing to close a cycle, and the roots' runs.
pub fn generate(rng: &mut Rng) -> anyhow::Result<Organisation> {
    let accounts = 1 + rng.below(3);
    let roots = 2 + rng.below(3) as usize;
    let total = roots + 3 + rng.below(6) as usize;
    let mut pipelines = Vec::with_capacity(total + 2);
    for i in 0..total {
        let id = PipelineId::new(&account(rng.below(accounts)), REGION, &format!("p{i}"))
            .map_err(|e| anyhow::anyhow!("generated pipeline {i}: {e}"))?;
        pipelines.push(id);
    }
    let mut org = Organisation {
        pipelines: pipelines.clone(),
        initial: Vec::new(),
        changes: Vec::new(),
        roots: Vec::new(),
    };
    let before = DAY0 - 24 * HOUR;
    // Now and then every root finishes within the same two seconds, after all its other runs.
    let together = rng
        .chance(0.3)
        .then(|| DAY0 + 150 * MINUTE + rng.between(0, 20 * MINUTE));
    for (i, child) in pipelines.iter().enumerate().skip(roots) {
        let k = 1 + rng.below(3.min(i as u64)) as usize;
        let mut parents: Vec<&PipelineId> = Vec::new();
        while parents.len() < k {
            let p = &pipelines[rng.below(i as u64) as usize];
            if !parents.contains(&p) {
                parents.push(p);
            }
        }
        let block = trigger(&parents, rng);
        match rng.below(10) {
            // Registered during the day.
            0 | 1 => org.changes.push(Change {
                at: DAY0 + rng.between(0, 90 * MINUTE),
                registration: registration(child, Some(block), 0)?,
                delete: false,
                then: None,
            }),
            // Registered for notifications only; an Update adds the trigger.
            2 => {
                org.initial.push(registration(child, None, before)?);
                org.changes.push(Change {
                    at: DAY0 + rng.between(20 * MINUTE, 90 * MINUTE),
                    registration: registration(child, Some(block), 0)?,
                    delete: false,
                    then: None,
                });
            }
            // An Update gives it one more parent.
            // (Only when the parents really change: an Update that changes statuses alone keeps
            // the floor, and no run event wakes the child for runs that now qualify.)
            3 if parents.len() >= 2 => {
                let first: Vec<&PipelineId> = parents[..parents.len() - 1].to_vec();
                let old = registration(child, Some(trigger(&first, rng)), before)?;
                let mut new = registration(child, Some(block), 0)?;
                if old.parents().keys().eq(new.parents().keys()) {
                    new.registered_at = Timestamp(before);
                    new.trigger_floor = Timestamp(before);
                    org.initial.push(new);
                } else {
                    org.initial.push(old);
                    org.changes.push(Change {
                        at: DAY0 + rng.between(20 * MINUTE, 90 * MINUTE),
                        registration: new,
                        delete: false,
                        then: None,
                    });
                }
            }
            // Its stack is deleted during the day (when the roots finish together, while their
            // triggers are in flight) and created again (a new stack) later.
            4 => {
                let first = registration(child, Some(block), before)?;
                let deleted = match together {
                    Some(end) => end + rng.between(0, 90 * SECOND),
                    None => DAY0 + rng.between(20 * MINUTE, 100 * MINUTE),
                };
                let mut again = first.clone();
                again.owner_stack_id = stack(child, 1);
                org.changes.push(Change {
                    at: deleted,
                    registration: first.clone(),
                    delete: true,
                    then: Some(again),
                });
                org.initial.push(first);
            }
            _ => org.initial.push(registration(child, Some(block), before)?),
        }
    }
    if rng.chance(0.15) {
        racing_cycle(&mut org, rng)?;
    }
    plan_roots(&mut org, roots, together, rng);
    if rng.chance(0.5) {
        keyed(&mut org, roots, rng)?;
    }
    Ok(org)
}

/// Run keys: every pipeline declares `runKey: $.runKey` (the roots are registered for it; a
/// child started by an aligned trigger finds the key in its input), each root run belongs to
/// one of two days, and some children are aligned on the key.
fn keyed(org: &mut Organisation, roots: usize, rng: &mut Rng) -> anyhow::Result<()> {
    let path = baton_core::RunKeyPath::parse("$.runKey")
        .map_err(|e| anyhow::anyhow!("generated run key path: {e}"))?;
    for root in &org.pipelines[..roots] {
        let mut r = registration(root, None, DAY0 - 48 * HOUR)?;
        r.definition.run_key = Some(path.clone());
        org.initial.push(r);
    }
    let aligned: Vec<PipelineId> = org.pipelines[roots..]
        .iter()
        .filter(|_| rng.chance(0.5))
        .cloned()
        .collect();
    let every = org.initial.iter_mut().chain(
        org.changes
            .iter_mut()
            .flat_map(|c| std::iter::once(&mut c.registration).chain(c.then.iter_mut())),
    );
    for r in every {
        r.definition.run_key = Some(path.clone());
        if let Some(t) = r.definition.trigger.as_mut() {
            if aligned.contains(&r.pipeline) {
                t.align_on = Some(baton_core::AlignOn::RunKey);
            }
        }
    }
    for run in &mut org.roots {
        run.key = Some(KEYS[rng.below(2) as usize].to_owned());
    }
    Ok(())
}

/// Two new pipelines, each naming the other as a parent, registered at the same moment: each
/// cycle check alone passes against a registry without the other.
fn racing_cycle(org: &mut Organisation, rng: &mut Rng) -> anyhow::Result<()> {
    let root = org.pipelines[0].clone();
    let x = PipelineId::new(&root.account, REGION, "cycle-x")
        .map_err(|e| anyhow::anyhow!("generated pipeline: {e}"))?;
    let y = PipelineId::new(&root.account, REGION, "cycle-y")
        .map_err(|e| anyhow::anyhow!("generated pipeline: {e}"))?;
    let at = DAY0 + rng.between(0, 30 * MINUTE);
    let ok = ["SUCCEEDED"];
    let x_trigger = json!({"executions": {"anyOf": [leaf(&root, &ok), leaf(&y, &ok)]}});
    let y_trigger = json!({"executions": {"anyOf": [leaf(&x, &ok)]}});
    org.changes.push(Change {
        at,
        registration: registration(&x, Some(x_trigger), 0)?,
        delete: false,
        then: None,
    });
    org.changes.push(Change {
        at: at + rng.between(0, 200),
        registration: registration(&y, Some(y_trigger), 0)?,
        delete: false,
        then: None,
    });
    org.pipelines.extend([x, y]);
    Ok(())
}

/// Each root runs one to three times over two hours; some runs fail. Now and then a root
/// succeeds once and then fails many times with long causes (a parent's history that fills a
/// Query page).
fn plan_roots(org: &mut Organisation, roots: usize, together: Option<i64>, rng: &mut Rng) {
    for i in 0..roots {
        let pipeline = org.pipelines[i].clone();
        for _ in 0..1 + rng.below(3) {
            org.roots.push(PlannedRun {
                pipeline: pipeline.clone(),
                start: DAY0 + rng.between(0, 2 * HOUR),
                fails: rng.chance(0.2),
                cause_bytes: 200,
                may_rerun: true,
                duration: rng.between(MINUTE, 20 * MINUTE),
                key: None,
            });
        }
    }
    if rng.chance(0.1) {
        let pipeline = org.pipelines[rng.below(roots as u64) as usize].clone();
        let mut start = DAY0 + rng.between(0, 5 * MINUTE);
        org.roots.push(PlannedRun {
            pipeline: pipeline.clone(),
            start,
            fails: false,
            cause_bytes: 0,
            may_rerun: false,
            duration: rng.between(MINUTE, 20 * MINUTE),
            key: None,
        });
        let cause_bytes = if rng.chance(0.5) { 32 * 1024 } else { 200 };
        for _ in 0..40 + rng.below(30) {
            start += rng.between(20 * SECOND, 40 * SECOND);
            org.roots.push(PlannedRun {
                pipeline: pipeline.clone(),
                start,
                fails: true,
                cause_bytes,
                may_rerun: false,
                duration: rng.between(MINUTE, 20 * MINUTE),
                key: None,
            });
        }
    }
    // Every root finishing within the same two seconds, after all its other runs: the children
    // of several parents are decided by concurrent invocations, and a firing missed there is not
    // made good by a later run.
    if let Some(end) = together {
        for i in 0..roots {
            let duration = rng.between(MINUTE, 20 * MINUTE);
            org.roots.push(PlannedRun {
                pipeline: org.pipelines[i].clone(),
                start: end + rng.between(0, 2 * SECOND) - duration,
                fails: rng.chance(0.1),
                cause_bytes: 200,
                may_rerun: true,
                duration,
                key: None,
            });
        }
    }
}
