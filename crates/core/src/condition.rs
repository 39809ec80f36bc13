//! The trigger condition language: leaves naming a parent pipeline and the statuses wanted, grouped
//! by `allOf` / `anyOf` and combined by `operator`, with an optional `within` freshness bound.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::pipeline::PipelineId;
use crate::status::RunStatus;
use crate::time::Span;

/// A pipeline's `trigger` block, validated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    /// The `executions` block: the top-level group.
    pub executions: Group,
    /// A parent run older than this at decision time does not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<Span>,
}

/// How a group combines its `allOf` and `anyOf` blocks when it has both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operator {
    #[default]
    And,
    Or,
}

/// A group: `allOf` holds when every entry holds, `anyOf` when one does; with both present,
/// `operator` combines them. Validation guarantees at least one block, none empty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub all_of: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub any_of: Vec<Condition>,
    #[serde(default)]
    pub operator: Operator,
}

/// An entry of a group: a leaf, or a nested group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Condition {
    Leaf(Leaf),
    Group(Group),
}

/// "A run of pipeline `name` in `account` (and `region`) with one of `status`."
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Leaf {
    pub name: String,
    /// Defaults to the child's own account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Defaults to the child's own region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub status: BTreeSet<RunStatus>,
}

impl Leaf {
    /// The parent this leaf names, resolved against the child that owns the condition.
    pub fn parent(&self, child: &PipelineId) -> PipelineId {
        PipelineId {
            account: self
                .account
                .clone()
                .unwrap_or_else(|| child.account.clone()),
            region: self.region.clone().unwrap_or_else(|| child.region.clone()),
            name: self.name.clone(),
        }
    }
}

impl Group {
    /// Every leaf, depth first, in definition order.
    pub fn leaves(&self) -> Vec<&Leaf> {
        let mut out = Vec::new();
        collect_leaves(self, &mut out);
        out
    }
}

fn collect_leaves<'a>(group: &'a Group, out: &mut Vec<&'a Leaf>) {
    for entry in group.all_of.iter().chain(group.any_of.iter()) {
        match entry {
            Condition::Leaf(leaf) => out.push(leaf),
            Condition::Group(g) => collect_leaves(g, out),
        }
    }
}

impl Trigger {
    /// The parents this condition mentions, each with the statuses any of its leaves wants.
    /// This is what the registry stores as reverse edges, so that a run event only wakes the
    /// children that can care about its status.
    pub fn parents(&self, child: &PipelineId) -> BTreeMap<PipelineId, BTreeSet<RunStatus>> {
        let mut parents: BTreeMap<PipelineId, BTreeSet<RunStatus>> = BTreeMap::new();
        for leaf in self.executions.leaves() {
            parents
                .entry(leaf.parent(child))
                .or_default()
                .extend(leaf.status.iter().copied());
        }
        parents
    }
}
