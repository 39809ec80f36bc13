//! The registration rules and the cycle check, over an in-memory registry of edges.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use super::*;
use crate::definition::PipelineDefinition;
use crate::pipeline::PipelineId;
use crate::ports::{ChildEdge, Registry, RegistryWrite, StoreResult, Versioned};
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
    async fn get_many(&self, _: &[PipelineId]) -> StoreResult<BTreeMap<PipelineId, Registration>> {
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
    let refusal = block_on(check_cycles(&edges, &registration("a", "c"), 100)).unwrap_err();
    assert_eq!(
            refusal.to_string(),
            "registering a (111111111111/eu-west-1) with these parents would close a dependency cycle: a (111111111111/eu-west-1) -> b (111111111111/eu-west-1) -> c (111111111111/eu-west-1) -> a (111111111111/eu-west-1); remove one of those parents from its trigger"
        );
    assert_eq!(
        block_on(check_cycles(&edges, &registration("d", "c"), 100)),
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
        block_on(check_cycles(&edges, &registration("a", "elsewhere"), 3)),
        Err(Refusal::TooLargeToCheck {
            pipeline: p("a"),
            max: 3
        })
    );
    assert_eq!(
        block_on(check_cycles(&edges, &registration("a", "elsewhere"), 10)),
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
