//! Deciding a child: read its registration, cursor and parents' runs, evaluate, and commit a
//! firing with one conditional claim in the ledger (steps 1 to 4 of the module doc of
//! [`crate::trigger`]); and the same reads without a claim, for "why hasn't it started?".

use std::collections::{BTreeMap, BTreeSet};

use futures::future::{try_join, try_join_all};

use super::prefetch::Prefetch;
use super::{FlowError, FlowSettings, Stores};
use crate::condition::Trigger;
use crate::evaluator::{evaluate, evaluate_key, Evaluation, Firing};
use crate::events::PipelineTrigger;
use crate::pipeline::PipelineId;
use crate::ports::{ClaimOutcome, CursorState, Ledger, Registry, RunLog, StoreError};
use crate::registration::Registration;
use crate::run::{Run, RunRef};
use crate::run_key::RunKey;
use crate::status::RunStatus;
use crate::time::Timestamp;

/// What deciding one child found.
#[derive(Clone, Debug, PartialEq, Eq)]
// One value per child and decision, returned and consumed at once: boxing a variant would only
// add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum ChildDecision {
    /// The child has no registration (its edge outlived it, or it was just removed).
    NotRegistered,
    /// The child is registered without a trigger condition.
    NoTrigger,
    /// The child's condition is aligned on run keys and the run that woke it has none (its
    /// pipeline declares no `runKey`, or its input did not have one): nothing to decide.
    NoRunKey,
    /// An earlier claim of this child was never confirmed sent: send it (same id) first.
    Pending {
        trigger: PipelineTrigger,
        bus_arn: String,
    },
    /// This evaluation fired the child and committed the claim: send it.
    Claimed {
        trigger: PipelineTrigger,
        bus_arn: String,
        evaluation: Box<Evaluation>,
    },
    /// The condition does not hold (yet).
    Waiting { evaluation: Box<Evaluation> },
}

/// The EventBridge bus ARN a child's triggers go to: the registration's, or the default bus name
/// in the child's own account and region.
pub fn bus_arn(registration: &Registration, default_bus_name: &str) -> String {
    match &registration.bus_arn {
        Some(arn) => arn.clone(),
        None => registration.pipeline.event_bus_arn(default_bus_name),
    }
}

/// The children a run can wake: those with an edge on the run's pipeline that wants its status.
pub async fn children_to_wake<R: Registry>(
    registry: &R,
    run: &RunRef,
) -> Result<Vec<PipelineId>, StoreError> {
    let edges = registry.children(&run.pipeline).await?;
    Ok(edges
        .into_iter()
        .filter(|edge| edge.statuses.contains(&run.status))
        .map(|edge| edge.child)
        .collect())
}

/// Decides one child at `now` and, when it fires, commits the claim (see the module doc). An
/// aligned child is decided for `run_key`, the key of the run that woke it.
pub async fn decide_child<L, R, G>(
    stores: Stores<'_, L, R, G>,
    child: &PipelineId,
    run_key: Option<&RunKey>,
    now: Timestamp,
    settings: &FlowSettings,
    prefetch: Option<&Prefetch>,
) -> Result<ChildDecision, FlowError>
where
    L: RunLog + Sync,
    R: Registry + Sync,
    G: Ledger + Sync,
{
    let ledger = stores.ledger;
    let (registration, unkeyed_state, keyed_state) =
        first_read(&stores, child, run_key, prefetch).await?;
    let Some(registration) = registration else {
        return Ok(ChildDecision::NotRegistered);
    };
    let Some(trigger) = registration.definition.trigger.as_ref() else {
        return Ok(ChildDecision::NoTrigger);
    };
    let (ledger_key, first_state) = match (trigger.is_aligned(), run_key, keyed_state) {
        (false, _, _) => (None, unkeyed_state),
        (true, Some(k), Some(state)) => (Some(k), state),
        (true, _, _) => return Ok(ChildDecision::NoRunKey),
    };
    let bus = bus_arn(&registration, &settings.default_bus_name);
    let subject = Subject {
        child,
        registration: &registration,
        trigger,
        parents: registration.parents(),
        key: ledger_key,
    };
    let attempts = settings.claim_attempts.max(1);
    let mut first_state = Some(first_state);
    // The runs read with the other children serve the first evaluation only: it uses the
    // cursor read with them; a later round reads its cursor, then its runs, again.
    let mut prefetch = prefetch;
    for _ in 0..attempts {
        let shared = prefetch.take();
        // After a lost claim, read the cursor again: the winner moved it.
        let state = match first_state.take() {
            Some(state) => state,
            None => ledger.cursor(child, ledger_key).await?,
        };
        let stored = state.as_ref().map(|s| s.cursor);
        if let Some(pending) = state.and_then(|s| s.pending) {
            if pending.fired_at < registration.registered_at {
                // Claimed for an earlier registration of this name, deleted since (and its
                // ledger not forgotten, the deleting function having died): never sent to
                // this one. Only this trigger goes: another key's, or one claimed since, stays.
                ledger
                    .drop_pending(child, ledger_key, &pending.trigger_id)
                    .await?;
                continue;
            }
            return Ok(ChildDecision::Pending {
                trigger: pending,
                bus_arn: bus,
            });
        }
        let evaluation = subject
            .evaluate(stores.run_log, stored, now, settings, shared)
            .await?;
        let Some(firing) = evaluation.firing() else {
            return Ok(ChildDecision::Waiting {
                evaluation: Box::new(evaluation),
            });
        };
        let pipeline_trigger = stamp(&registration, firing, now, settings);
        match ledger
            .claim(&pipeline_trigger, stored, firing.cursor_after)
            .await?
        {
            ClaimOutcome::Claimed => {
                return Ok(ChildDecision::Claimed {
                    trigger: pipeline_trigger,
                    bus_arn: bus,
                    evaluation: Box::new(evaluation),
                })
            }
            // Someone else moved the cursor or claimed this very firing: what they did is now
            // in the ledger, so reading again decides correctly.
            ClaimOutcome::Lost => continue,
        }
    }
    Err(FlowError::Contended {
        child: child.clone(),
        attempts,
    })
}

/// A child's first reads: its registration, its cursor state and, for a run with a key, its
/// cursor state for the key.
type FirstRead = (
    Option<Registration>,
    Option<CursorState>,
    Option<Option<CursorState>>,
);

/// Reads what deciding `child` starts from: taken from `prefetch` when the child's siblings
/// read it together, else read for this child alone.
async fn first_read<L, R, G>(
    stores: &Stores<'_, L, R, G>,
    child: &PipelineId,
    run_key: Option<&RunKey>,
    prefetch: Option<&Prefetch>,
) -> Result<FirstRead, StoreError>
where
    L: RunLog + Sync,
    R: Registry + Sync,
    G: Ledger + Sync,
{
    if let Some(p) = prefetch {
        // Read together with the other children of the run (crate::prefetch).
        let first = p.first_read(child);
        return Ok((first.registration, first.cursor, first.keyed_cursor));
    }
    // The registration and the cursor do not depend on each other: one round trip for both.
    // Whether the child is aligned is in the registration, so a run with a key reads both the
    // child's cursor and its cursor for the key.
    let keyed = async {
        match run_key {
            Some(k) => stores.ledger.cursor(child, Some(k)).await.map(Some),
            None => Ok(None),
        }
    };
    let (registration, (unkeyed, keyed)) = try_join(
        stores.registry.get(child),
        try_join(stores.ledger.cursor(child, None), keyed),
    )
    .await?;
    Ok((registration, unkeyed, keyed))
}

/// The child being decided: its registration and condition, the parents it names, and the run
/// key it is decided for (aligned children only).
struct Subject<'a> {
    child: &'a PipelineId,
    registration: &'a Registration,
    trigger: &'a Trigger,
    parents: BTreeMap<PipelineId, BTreeSet<RunStatus>>,
    key: Option<&'a RunKey>,
}

impl Subject<'_> {
    /// Evaluates the condition at `now` over the parents' runs after the child's cursor
    /// (`stored`, never before the floor); aligned, over the runs of its key since the floor,
    /// its cursor for the key deciding news. `shared`: the runs read with the siblings, when
    /// they serve.
    async fn evaluate<L: RunLog + Sync>(
        &self,
        run_log: &L,
        stored: Option<Timestamp>,
        now: Timestamp,
        settings: &FlowSettings,
        shared: Option<&Prefetch>,
    ) -> Result<Evaluation, StoreError> {
        let (child, trigger, parents) = (self.child, self.trigger, &self.parents);
        let cursor = effective_cursor(stored, self.registration);
        let since = match self.key {
            None => cursor,
            Some(_) => self.registration.floor(),
        };
        let runs = match shared.and_then(|p| p.runs_for(parents, self.key, since)) {
            Some(runs) => runs,
            None => parent_runs(run_log, parents, self.key, since, settings).await?,
        };
        Ok(match self.key {
            None => evaluate(child, trigger, cursor, now, &runs),
            Some(k) => evaluate_key(child, trigger, k, since, cursor, now, &runs),
        })
    }
}

/// The trigger a firing sends to the registered pipeline (its state machine ARN is the one
/// registered). Decided under this registration, so never stamped before it: `now` was read
/// before the registration, which a re-creation may have written since, and a pending trigger
/// older than its registration is taken for a deleted pipeline's and forgotten, never sent.
fn stamp(
    registration: &Registration,
    firing: &Firing,
    now: Timestamp,
    settings: &FlowSettings,
) -> PipelineTrigger {
    let fired_at = now.max(registration.registered_at);
    let mut trigger = PipelineTrigger::new(&registration.pipeline, firing, fired_at);
    trigger.environment = settings.environment.clone();
    trigger
}

/// The cursor an evaluation uses: the stored one, never earlier than the registration's floor (a
/// new child, or a trigger an Update added or re-parented, never fires on history).
pub fn effective_cursor(stored: Option<Timestamp>, registration: &Registration) -> Timestamp {
    stored.unwrap_or_default().max(registration.floor())
}

/// The runs of each parent (of `run_key` only, when given) later than `cursor` with a status
/// some leaf wants, newest first, bounded per parent and status.
async fn parent_runs<L: RunLog + Sync>(
    run_log: &L,
    parents: &BTreeMap<PipelineId, BTreeSet<RunStatus>>,
    run_key: Option<&RunKey>,
    cursor: Timestamp,
    settings: &FlowSettings,
) -> Result<Vec<RunRef>, StoreError> {
    // One query per parent and status, all in flight together; results in the parents' order.
    let limit = settings.runs_per_parent;
    let per_parent = try_join_all(parents.iter().map(|(parent, statuses)| async move {
        match run_key {
            Some(k) => {
                run_log
                    .runs_of_key(parent, k, statuses, cursor, limit)
                    .await
            }
            None => run_log.runs_since(parent, statuses, cursor, limit).await,
        }
    }))
    .await?;
    Ok(per_parent.iter().flatten().map(Run::reference).collect())
}

/// A child's condition as the stores show it now; nothing is committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspection {
    pub registration: Registration,
    /// The run key inspected (aligned children are decided per key).
    pub run_key: Option<RunKey>,
    pub cursor_state: Option<CursorState>,
    /// The cursor the evaluation used ([`effective_cursor`]; for an aligned child, its cursor
    /// for the key).
    pub cursor: Timestamp,
    /// `None` when the pipeline has no trigger condition, or it is aligned and no key was given.
    pub evaluation: Option<Evaluation>,
}

/// Reads `child`'s registration, cursor and parent runs and evaluates its condition at `now`,
/// exactly as [`decide_child`] would, without claiming anything: "why hasn't it started?" (for
/// run key `run_key`, when the child is aligned). `None` when the pipeline is not registered.
pub async fn inspect_child<L, R, G>(
    registry: &R,
    run_log: &L,
    ledger: &G,
    child: &PipelineId,
    run_key: Option<&RunKey>,
    now: Timestamp,
    settings: &FlowSettings,
) -> Result<Option<Inspection>, StoreError>
where
    L: RunLog + Sync,
    R: Registry + Sync,
    G: Ledger + Sync,
{
    let Some(registration) = registry.get(child).await? else {
        return Ok(None);
    };
    let trigger = registration.definition.trigger.as_ref();
    let run_key = run_key.filter(|_| trigger.is_some_and(|t| t.is_aligned()));
    let cursor_state = ledger.cursor(child, run_key).await?;
    let cursor = effective_cursor(cursor_state.as_ref().map(|s| s.cursor), &registration);
    // Every status, so a waiting leaf's explanation can name the latest run of another.
    let every_status: BTreeMap<PipelineId, BTreeSet<RunStatus>> = registration
        .parents()
        .into_keys()
        .map(|p| (p, RunStatus::ALL.into_iter().collect()))
        .collect();
    let evaluation = match (trigger, run_key) {
        (Some(t), _) if !t.is_aligned() => {
            let runs = parent_runs(run_log, &every_status, None, cursor, settings).await?;
            Some(evaluate(child, t, cursor, now, &runs))
        }
        (Some(t), Some(k)) => {
            let floor = registration.floor();
            let runs = parent_runs(run_log, &every_status, Some(k), floor, settings).await?;
            Some(evaluate_key(child, t, k, floor, cursor, now, &runs))
        }
        _ => None,
    };
    Ok(Some(Inspection {
        registration,
        run_key: run_key.cloned(),
        cursor_state,
        cursor,
        evaluation,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::PipelineDefinition;

    #[test]
    fn triggers_go_to_the_registered_bus_or_the_default_name_in_the_child_account() {
        let mut registration = Registration {
            pipeline: PipelineId::new("333333333333", "eu-central-1", "pipeline-x").unwrap(),
            owner_stack_id: "stack".into(),
            definition: PipelineDefinition::default(),
            bus_arn: None,
            registered_at: Timestamp(0),
            trigger_floor: Timestamp(0),
        };
        assert_eq!(
            bus_arn(&registration, "baton-pipelines"),
            "arn:aws:events:eu-central-1:333333333333:event-bus/baton-pipelines"
        );
        registration.bus_arn = Some("arn:aws:events:eu-central-1:333333333333:event-bus/x".into());
        assert_eq!(
            bus_arn(&registration, "baton-pipelines"),
            "arn:aws:events:eu-central-1:333333333333:event-bus/x"
        );
    }
}
