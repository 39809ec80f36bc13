//! Core's flow over the in-memory ports: what a pending trigger of an earlier registration does
//! to the child's other keys, and how a trigger decided under a registration is stamped.

use baton_core::ports::{ClaimOutcome, Ledger, RunLog};
use baton_core::registration::Registration;
use baton_core::trigger::{decide_child, ChildDecision, FlowSettings};
use baton_core::{
    PipelineDefinition, PipelineId, PipelineTrigger, Run, RunKey, RunStatus, Timestamp,
};
use futures::executor::block_on;

use super::Memory;

fn child() -> PipelineId {
    PipelineId::new("333333333333", "eu-west-1", "x").unwrap()
}

fn register(mem: &Memory, yaml: &str, at: i64) {
    mem.registry.load(Registration {
        pipeline: child(),
        owner_stack_id: "stack".into(),
        definition: PipelineDefinition::from_yaml(yaml).unwrap(),
        bus_arn: None,
        registered_at: Timestamp(at),
        trigger_floor: Timestamp(at),
    });
}

fn trigger(id: &str, key: &str, fired_at: i64) -> PipelineTrigger {
    serde_json::from_value(serde_json::json!({
        "batonTriggerId": id, "runKey": key,
        "target": {"account": "333333333333", "region": "eu-west-1", "name": "x",
                   "stateMachineArn": child().state_machine_arn()},
        "consumed": [], "reason": "test", "firedAt": fired_at
    }))
    .unwrap()
}

const ALIGNED: &str =
    "trigger:\n  executions:\n    alignOn: runKey\n    allOf: [{name: a, status: [SUCCEEDED]}]\n";

#[test]
fn a_stale_pending_trigger_of_one_key_is_dropped_alone() {
    let mem = Memory::new(None);
    // Claimed for the name's earlier registration (deleted, its ledger never forgotten) ...
    let stale = trigger("stale", "d1", 500);
    assert_eq!(
        block_on(
            mem.ledger
                .claim(&stale, None, Timestamp(400), &crate::ended_lease())
        )
        .unwrap(),
        ClaimOutcome::Claimed
    );
    // ... and, under the registration of today, a trigger of another day, not yet sent.
    register(&mem, ALIGNED, 1_000);
    let fresh = trigger("fresh", "d2", 2_000);
    block_on(
        mem.ledger
            .claim(&fresh, None, Timestamp(1_900), &crate::ended_lease()),
    )
    .unwrap();

    let d1 = RunKey("d1".into());
    let settings = FlowSettings::with_default_bus("bus");
    let decided = block_on(decide_child(
        mem.ports().stores(),
        &child(),
        Some(&d1),
        Timestamp(3_000),
        &crate::ended_lease(),
        &settings,
        None,
    ))
    .unwrap();
    assert!(
        matches!(decided, ChildDecision::Waiting { .. }),
        "{decided:?}"
    );
    let pending = |key: &str| {
        block_on(mem.ledger.cursor(&child(), Some(&RunKey(key.into()))))
            .unwrap()
            .and_then(|s| s.pending)
            .map(|p| p.trigger_id.0)
    };
    assert_eq!(pending("d1"), None, "the stale trigger is never sent");
    assert_eq!(
        pending("d2").as_deref(),
        Some("fresh"),
        "day 2's trigger stays"
    );
}

#[test]
fn a_trigger_is_never_stamped_before_the_registration_it_was_decided_under() {
    let mem = Memory::new(None);
    register(
        &mem,
        "trigger:\n  executions:\n    allOf: [{name: x-parent, status: [SUCCEEDED]}]\n",
        1_000,
    );
    let parent = PipelineId::new("333333333333", "eu-west-1", "x-parent").unwrap();
    let run = Run {
        pipeline: parent.clone(),
        execution_arn: format!(
            "{}:r1",
            parent
                .state_machine_arn()
                .replace("stateMachine", "execution")
        ),
        execution_name: "r1".into(),
        status: RunStatus::Succeeded,
        started_at: Timestamp(1_200),
        stopped_at: Some(Timestamp(1_500)),
        error: None,
        cause: None,
        trigger_id: None,
        run_key: None,
    };
    block_on(mem.run_log.record(&run)).unwrap();
    let settings = FlowSettings::with_default_bus("bus");
    // The deciding invocation read its clock (900) before it read the registration (1,000):
    // a registration created in between, or a clock behind the registering host's.
    let decide = |now: i64| {
        block_on(decide_child(
            mem.ports().stores(),
            &child(),
            None,
            Timestamp(now),
            &crate::ended_lease(),
            &settings,
            None,
        ))
        .unwrap()
    };
    let ChildDecision::Claimed { trigger, .. } = decide(900) else {
        panic!("the run after the floor fires the child")
    };
    assert_eq!(trigger.fired_at, Timestamp(1_000));
    // Still this registration's trigger: re-sent, not dropped as an earlier registration's.
    assert!(
        matches!(decide(950), ChildDecision::Pending { .. }),
        "the claimed trigger must stay pending until sent"
    );
}
