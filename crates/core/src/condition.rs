//! The trigger condition language: leaves naming a parent pipeline and the statuses wanted, grouped
//! by `allOf` / `anyOf` (combined by `operator`) or `atLeast: K` of `of`, each group with an
//! optional `within` freshness bound, and the whole condition optionally aligned on run keys.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::pipeline::PipelineId;
use crate::status::RunStatus;
use crate::time::Span;

/// A pipeline's `trigger` block, validated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", from = "StoredTrigger")]
pub struct Trigger {
    /// The `executions` block: the top-level group.
    pub executions: Group,
    /// `alignOn: runKey` (written inside `executions`): the condition is decided per run key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub align_on: Option<AlignOn>,
}

/// What runs are aligned on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AlignOn {
    /// Only runs with the same run key fire together, once per key.
    RunKey,
}

/// A trigger as registrations stored it: before `within` moved into the groups, it sat beside
/// `executions`. Reading such a registration keeps its bound (on the top group), never drops it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredTrigger {
    executions: Group,
    #[serde(default)]
    align_on: Option<AlignOn>,
    #[serde(default)]
    within: Option<Span>,
}

impl From<StoredTrigger> for Trigger {
    fn from(stored: StoredTrigger) -> Trigger {
        let mut executions = stored.executions;
        executions.within = executions.within.or(stored.within);
        Trigger {
            executions,
            align_on: stored.align_on,
        }
    }
}

impl Trigger {
    /// Whether the condition is decided per run key.
    pub fn is_aligned(&self) -> bool {
        self.align_on == Some(AlignOn::RunKey)
    }
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
/// `operator` combines them. Or `atLeast: K` of `of`: holds when K of those entries do.
/// Validation guarantees either at least one of `allOf`/`anyOf` (none empty) or `atLeast` alone,
/// with 1 <= K <= its entries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub all_of: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub any_of: Vec<Condition>,
    #[serde(default)]
    pub operator: Operator,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<AtLeast>,
    /// A parent run older than this at decision time does not count for the leaves beneath this
    /// group (nested bounds all apply: the tightest wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<Span>,
}

/// `atLeast: K` with `of: [...]`: K of the entries must hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtLeast {
    pub count: usize,
    pub of: Vec<Condition>,
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
    let k_of = group.at_least.iter().flat_map(|k| k.of.iter());
    for entry in group.all_of.iter().chain(group.any_of.iter()).chain(k_of) {
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
