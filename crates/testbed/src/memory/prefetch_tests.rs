//! The reads of a run's children made together ([`Prefetch`]) give each child exactly what its
//! own reads give, over the in-memory ports (which answer as the DynamoDB adapters do).

use std::collections::BTreeSet;

use baton_core::ports::{Ledger, Registry, RunLog};
use baton_core::registration::Registration;
use baton_core::trigger::{effective_cursor, FlowSettings, Prefetch};
use baton_core::{PipelineDefinition, PipelineId, Run, RunStatus, Timestamp};
use futures::executor::block_on;
use proptest::prelude::*;

use super::Memory;

const STATUSES: [RunStatus; 4] = [
    RunStatus::Running,
    RunStatus::Succeeded,
    RunStatus::Failed,
    RunStatus::TimedOut,
];

fn pipeline(account: &str, name: &str) -> PipelineId {
    PipelineId::new(account, "eu-west-1", name).unwrap()
}

fn run(parent: &PipelineId, i: usize, status: RunStatus, at: i64) -> Run {
    Run {
        pipeline: parent.clone(),
        execution_arn: format!("{}:run-{i}", parent.state_machine_arn()),
        execution_name: format!("run-{i}"),
        status,
        started_at: Timestamp(at),
        stopped_at: (status != RunStatus::Running).then_some(Timestamp(at)),
        error: None,
        cause: None,
        trigger_id: None,
        run_key: None,
    }
}

/// A child of `parents`, each wanting `statuses`, registered at `floor`.
fn child(
    i: usize,
    parents: &[PipelineId],
    statuses: &BTreeSet<RunStatus>,
    floor: i64,
) -> Registration {
    let wanted: Vec<String> = statuses.iter().map(ToString::to_string).collect();
    let leaves: Vec<String> = parents
        .iter()
        .map(|p| {
            format!(
                "{{name: {}, account: '{}', status: [{}]}}",
                p.name,
                p.account,
                wanted.join(", ")
            )
        })
        .collect();
    let yaml = format!(
        "trigger: {{executions: {{allOf: [{}]}}}}",
        leaves.join(", ")
    );
    Registration {
        pipeline: pipeline("333333333333", &format!("child-{i}")),
        owner_stack_id: "stack".into(),
        definition: PipelineDefinition::from_yaml(&yaml).unwrap(),
        bus_arn: None,
        registered_at: Timestamp(floor),
        trigger_floor: Timestamp(floor),
    }
}

fn status_set() -> impl Strategy<Value = BTreeSet<RunStatus>> {
    proptest::sample::subsequence(STATUSES.to_vec(), 1..=3).prop_map(|v| v.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn each_child_gets_what_its_own_queries_answer(
        runs in proptest::collection::vec((0..4usize, 0..500i64, 0..2usize), 0..60),
        children in proptest::collection::vec((status_set(), 0..500i64, 0..3usize), 1..6),
        limit in 1..8usize,
    ) {
        let mem = Memory::new(None);
        let parents = [pipeline("111111111111", "a"), pipeline("222222222222", "b")];
        for (i, (status, at, parent)) in runs.iter().enumerate() {
            block_on(mem.run_log.record(&run(&parents[*parent], i, STATUSES[*status], *at))).unwrap();
        }
        let registrations: Vec<Registration> = children
            .iter()
            .enumerate()
            .map(|(i, (statuses, floor, which))| {
                // One parent or both: children share parents, with other statuses and floors.
                let named: &[PipelineId] = match which {
                    0 => &parents[..1],
                    1 => &parents[1..],
                    _ => &parents[..],
                };
                child(i, named, statuses, *floor)
            })
            .collect();
        for r in &registrations {
            mem.registry.load(r.clone());
        }
        let mut settings = FlowSettings::with_default_bus("bus");
        settings.runs_per_parent = limit;
        let ids: Vec<PipelineId> = registrations.iter().map(|r| r.pipeline.clone()).collect();
        let prefetch = block_on(Prefetch::read(&mem.registry, &mem.ledger, &mem.run_log, &ids, None, &settings)).unwrap();
        for r in &registrations {
            let first = prefetch.first_read(&r.pipeline);
            let own_registration = block_on(mem.registry.get(&r.pipeline)).unwrap();
            prop_assert_eq!(first.registration, own_registration);
            prop_assert_eq!(first.cursor, block_on(mem.ledger.cursor(&r.pipeline, None)).unwrap());
            let cursor = effective_cursor(None, r);
            let own: Vec<_> = r
                .parents()
                .iter()
                .flat_map(|(parent, statuses)| {
                    block_on(mem.run_log.runs_since(parent, statuses, cursor, limit)).unwrap()
                })
                .map(|run| run.reference())
                .collect();
            let shared = prefetch.runs_for(&r.parents(), None, cursor);
            prop_assert_eq!(shared, Some(own), "child {}", r.pipeline);
        }
    }
}
