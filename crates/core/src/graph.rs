//! The dependency graph across accounts: edges parent -> child from registered trigger conditions.
//! Used to refuse a registration that would close a cycle, and to list what is downstream of a
//! pipeline ("N pipelines downstream will not start").

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use thiserror::Error;

use crate::pipeline::PipelineId;
use crate::ports::ChildEdge;
use crate::status::RunStatus;

/// A cycle a registration would close: `path[0] -> path[1] -> ... -> path[0]`.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub struct Cycle {
    pub path: Vec<PipelineId>,
}

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("dependency cycle: ")?;
        for p in &self.path {
            write!(f, "{p} -> ")?;
        }
        match self.path.first() {
            Some(first) => write!(f, "{first}"),
            None => Ok(()),
        }
    }
}

/// Parent -> children adjacency (and the reverse), over any number of accounts.
#[derive(Clone, Debug, Default)]
pub struct DependencyGraph {
    children: BTreeMap<PipelineId, BTreeSet<PipelineId>>,
    parents: BTreeMap<PipelineId, BTreeSet<PipelineId>>,
}

impl DependencyGraph {
    pub fn new() -> DependencyGraph {
        DependencyGraph::default()
    }

    /// Records `parent -> child` without checking for cycles (for loading stored edges).
    pub fn add_edge(&mut self, parent: PipelineId, child: PipelineId) {
        self.parents
            .entry(child.clone())
            .or_default()
            .insert(parent.clone());
        self.children.entry(parent).or_default().insert(child);
    }

    /// Replaces `child`'s parents, refusing (and changing nothing) if that would close a cycle.
    pub fn set_parents(
        &mut self,
        child: &PipelineId,
        parents: &BTreeSet<PipelineId>,
    ) -> Result<(), Cycle> {
        if let Some(cycle) = self.cycle_if_parents(child, parents) {
            return Err(cycle);
        }
        self.remove_pipeline_edges_to(child);
        for p in parents {
            self.add_edge(p.clone(), child.clone());
        }
        Ok(())
    }

    fn remove_pipeline_edges_to(&mut self, child: &PipelineId) {
        if let Some(old) = self.parents.remove(child) {
            for p in old {
                if let Some(set) = self.children.get_mut(&p) {
                    set.remove(child);
                }
            }
        }
    }

    /// The cycle that giving `child` these `parents` would close, if any: a parent that is `child`
    /// itself or downstream of it. The path runs child -> ... -> parent (-> child).
    pub fn cycle_if_parents(
        &self,
        child: &PipelineId,
        parents: &BTreeSet<PipelineId>,
    ) -> Option<Cycle> {
        if parents.contains(child) {
            return Some(Cycle {
                path: vec![child.clone()],
            });
        }
        // Breadth first from the child, remembering how each pipeline was reached, so the cycle
        // named is a shortest one. The child's current edges are ignored only where they would be
        // replaced; its downstream stays as it is.
        let mut came_from: BTreeMap<&PipelineId, &PipelineId> = BTreeMap::new();
        let mut queue = VecDeque::from([child]);
        while let Some(node) = queue.pop_front() {
            for next in self.children.get(node).into_iter().flatten() {
                if next == child || came_from.contains_key(next) {
                    continue;
                }
                came_from.insert(next, node);
                if parents.contains(next) {
                    let mut path = vec![next.clone()];
                    let mut at = next;
                    while let Some(prev) = came_from.get(at) {
                        path.push((*prev).clone());
                        at = prev;
                    }
                    path.reverse();
                    return Some(Cycle { path });
                }
                queue.push_back(next);
            }
        }
        None
    }

    /// The direct children of `parent`.
    pub fn children(&self, parent: &PipelineId) -> impl Iterator<Item = &PipelineId> {
        self.children.get(parent).into_iter().flatten()
    }

    /// The direct parents of `child`.
    pub fn parents(&self, child: &PipelineId) -> impl Iterator<Item = &PipelineId> {
        self.parents.get(child).into_iter().flatten()
    }

    /// Everything downstream of `pipeline` (transitively), nearest first, each once.
    pub fn downstream(&self, pipeline: &PipelineId) -> Vec<PipelineId> {
        let mut seen: BTreeSet<&PipelineId> = BTreeSet::from([pipeline]);
        let mut order = Vec::new();
        let mut queue = VecDeque::from([pipeline]);
        while let Some(node) = queue.pop_front() {
            for next in self.children(node) {
                if seen.insert(next) {
                    order.push(next.clone());
                    queue.push_back(next);
                }
            }
        }
        order
    }

    /// Every pipeline with an edge.
    pub fn pipelines(&self) -> BTreeSet<&PipelineId> {
        self.children.keys().chain(self.parents.keys()).collect()
    }
}

/// Loads the part of the registry's graph downstream of `start` (following reverse edges with
/// one `Registry::children` query per pipeline), at most `max_pipelines` pipelines. Enough to
/// check a registration for cycles (a cycle through `start` must pass through its downstream)
/// and to list what will not start when `start` fails. Returns the graph and whether it was cut
/// short by the limit.
pub async fn load_downstream<R: crate::ports::Registry>(
    registry: &R,
    start: &PipelineId,
    max_pipelines: usize,
) -> Result<(DependencyGraph, bool), crate::ports::StoreError> {
    let mut graph = DependencyGraph::new();
    let mut seen = BTreeSet::from([start.clone()]);
    let mut queue = VecDeque::from([start.clone()]);
    let mut truncated = false;
    while let Some(node) = queue.pop_front() {
        for edge in registry.children(&node).await? {
            graph.add_edge(node.clone(), edge.child.clone());
            if seen.insert(edge.child.clone()) {
                if seen.len() > max_pipelines {
                    truncated = true;
                    return Ok((graph, truncated));
                }
                queue.push_back(edge.child);
            }
        }
    }
    Ok((graph, truncated))
}

/// The pipelines that will not start because `pipeline` reached the failure `status`: the
/// direct children not waiting for that status, and everything downstream of them.
pub fn blocked_by(
    pipeline: &PipelineId,
    status: RunStatus,
    direct: &[ChildEdge],
    graph: &DependencyGraph,
) -> Vec<PipelineId> {
    let mut seen = BTreeSet::from([pipeline.clone()]);
    let mut out = Vec::new();
    let blocked: Vec<&PipelineId> = direct
        .iter()
        .filter(|e| !e.statuses.contains(&status))
        .map(|e| &e.child)
        .collect();
    for child in &blocked {
        if seen.insert((*child).clone()) {
            out.push((*child).clone());
        }
    }
    for child in blocked {
        for next in graph.downstream(child) {
            if seen.insert(next.clone()) {
                out.push(next);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(account: &str, name: &str) -> PipelineId {
        PipelineId::new(account, "eu-west-1", name).unwrap()
    }

    #[test]
    fn refuses_a_cycle_across_accounts_and_names_it() {
        let (a, b, c) = (
            p("111111111111", "listings"),
            p("222222222222", "searches"),
            p("333333333333", "pipeline-x"),
        );
        let mut g = DependencyGraph::new();
        g.set_parents(&b, &BTreeSet::from([a.clone()])).unwrap();
        g.set_parents(&c, &BTreeSet::from([b.clone()])).unwrap();
        let cycle = g.set_parents(&a, &BTreeSet::from([c.clone()])).unwrap_err();
        assert_eq!(cycle.path, vec![a.clone(), b.clone(), c.clone()]);
        assert_eq!(
            cycle.to_string(),
            "dependency cycle: listings (111111111111/eu-west-1) -> searches (222222222222/eu-west-1) -> pipeline-x (333333333333/eu-west-1) -> listings (111111111111/eu-west-1)"
        );
        // Refused means unchanged.
        assert_eq!(g.parents(&a).count(), 0);
        assert!(g.set_parents(&a, &BTreeSet::from([a.clone()])).is_err());
    }

    #[test]
    fn replacing_parents_can_remove_a_would_be_cycle() {
        let (a, b) = (p("111111111111", "a"), p("111111111111", "b"));
        let mut g = DependencyGraph::new();
        g.set_parents(&b, &BTreeSet::from([a.clone()])).unwrap();
        g.set_parents(&b, &BTreeSet::new()).unwrap();
        g.set_parents(&a, &BTreeSet::from([b.clone()])).unwrap();
        assert_eq!(g.downstream(&b), vec![a]);
    }

    #[test]
    fn downstream_is_transitive_nearest_first_and_once() {
        let names = ["root", "x", "y", "z", "w"];
        let ids: Vec<PipelineId> = names.iter().map(|n| p("111111111111", n)).collect();
        let mut g = DependencyGraph::new();
        g.add_edge(ids[0].clone(), ids[1].clone());
        g.add_edge(ids[0].clone(), ids[2].clone());
        g.add_edge(ids[1].clone(), ids[3].clone());
        g.add_edge(ids[2].clone(), ids[3].clone());
        g.add_edge(ids[3].clone(), ids[4].clone());
        let down: Vec<String> = g.downstream(&ids[0]).into_iter().map(|p| p.name).collect();
        assert_eq!(down, ["x", "y", "z", "w"]);
        assert!(g.downstream(&ids[4]).is_empty());
    }
    #[test]
    fn a_child_waiting_for_the_failure_is_not_blocked() {
        let acct = "111111111111";
        let (a, b, c, d) = (
            p(acct, "a"),
            p(acct, "b"),
            p(acct, "on-failure"),
            p(acct, "d"),
        );
        let mut graph = DependencyGraph::new();
        graph.add_edge(a.clone(), b.clone());
        graph.add_edge(a.clone(), c.clone());
        graph.add_edge(b.clone(), d.clone());
        let direct = vec![
            ChildEdge {
                child: b.clone(),
                statuses: BTreeSet::from([RunStatus::Succeeded]),
            },
            ChildEdge {
                child: c.clone(),
                statuses: BTreeSet::from([RunStatus::Failed]),
            },
        ];
        assert_eq!(
            blocked_by(&a, RunStatus::Failed, &direct, &graph),
            vec![b, d]
        );
    }
}
