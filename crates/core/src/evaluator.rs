//! The trigger condition evaluator: given a child's condition, its cursor, the decision time and
//! the parent runs the run log holds, decide whether the child fires, which runs that firing
//! consumes, and explain why.
//!
//! Rules (DESIGN "Trigger semantics"):
//! - A run *qualifies* for a leaf when it belongs to the leaf's parent, its status is one the leaf
//!   lists, its status time is later than the cursor and, with `within` on any group above the
//!   leaf, it is no older than that bound at decision time (nested bounds all apply).
//! - `atLeast: K` holds when K of its entries hold, and consumes the runs of every holding entry.
//! - Aligned on run keys ([`evaluate_key`]), the tree is read over the runs of one key k later
//!   than the floor, and the child fires for k when it holds and at least one consumed run is
//!   later than the cursor for k: a re-run or backfill for k fires the child again for k alone.
//! - A leaf holds with its latest qualifying run (ties broken by execution ARN, then status, so the
//!   choice never depends on the order runs are given).
//! - `allOf` holds when every entry holds; `anyOf` when one does; `operator` combines the two.
//! - A firing consumes the runs of every holding leaf that contributes to the truth of the tree
//!   (every entry of a holding `allOf`, every holding entry of a holding `anyOf`, every holding
//!   block under `operator`). The cursor moves to the latest status time among them. Every
//!   contributing leaf's qualifying runs are then at or before the cursor, so the same runs can
//!   never fire the child again.

use std::cmp::Ordering;
use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::condition::{AtLeast, Condition, Group, Leaf, Operator, Trigger};
use crate::pipeline::PipelineId;
use crate::run::RunRef;
use crate::run_key::RunKey;
use crate::time::{Span, Timestamp};

/// A trigger's identity: 32 hex digits, the first 128 bits of SHA-256 over
///
/// ```text
/// baton-trigger-v1\n
/// <child account>:<child region>:<child name>\n
/// <execution ARN>\t<STATUS>\t<status time, epoch millis>\n    (one line per consumed run,
///                                                             sorted bytewise, duplicates removed)
/// ```
///
/// It depends on nothing else (no clock, no process, no order), so every evaluation that reaches
/// the same firing names it the same way, and the ledger's conditional write can refuse a second.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TriggerId(pub String);

impl TriggerId {
    /// The id of the firing of `child` that consumes `consumed`.
    pub fn of(child: &PipelineId, consumed: &[RunRef]) -> TriggerId {
        Self::of_key(child, None, consumed)
    }

    /// The id of the firing of `child` for run key `key` (aligned triggers) that consumes
    /// `consumed`: the key is hashed on its own line after the child's, so two keys never share
    /// an id. Without a key, the id is [`TriggerId::of`]'s.
    pub fn of_key(child: &PipelineId, key: Option<&RunKey>, consumed: &[RunRef]) -> TriggerId {
        let mut lines: Vec<String> = consumed
            .iter()
            .map(|r| format!("{}\t{}\t{}\n", r.execution_arn, r.status, r.status_time.0))
            .collect();
        lines.sort();
        lines.dedup();
        let mut hash = Sha256::new();
        hash.update(b"baton-trigger-v1\n");
        hash.update(child.key().as_bytes());
        hash.update(b"\n");
        if let Some(key) = key {
            hash.update(b"runKey\t");
            hash.update(key.as_str().as_bytes());
            hash.update(b"\n");
        }
        for line in &lines {
            hash.update(line.as_bytes());
        }
        let digest = hash.finalize();
        let mut hex = String::with_capacity(32);
        for byte in &digest[..16] {
            let _ = write!(hex, "{byte:02x}");
        }
        TriggerId(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TriggerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an evaluation decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "camelCase")]
pub enum Decision {
    Fire(Firing),
    Wait,
}

/// A firing: the trigger id, the runs it consumes (sorted) and where the cursor goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Firing {
    pub trigger_id: TriggerId,
    /// The run key it fires for (aligned triggers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_key: Option<RunKey>,
    pub consumed: Vec<RunRef>,
    pub cursor_after: Timestamp,
}

impl Firing {
    /// One line: which parent runs started the child (and, aligned, for which run key).
    pub fn reason(&self) -> String {
        let runs = self.runs_line();
        match &self.run_key {
            Some(key) => format!("run key {key}: {runs}"),
            None => runs,
        }
    }

    fn runs_line(&self) -> String {
        let parts: Vec<String> = self
            .consumed
            .iter()
            .map(|r| {
                format!(
                    "{} {} ({} at {})",
                    r.pipeline.name,
                    r.status,
                    r.execution_name(),
                    r.status_time
                )
            })
            .collect();
        parts.join(" + ")
    }
}

pub use explanation::{Explanation, LeafOutcome};

/// The full result of one evaluation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    pub child: PipelineId,
    /// The run key decided (aligned triggers); `cursor` is then the cursor for this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_key: Option<RunKey>,
    /// Aligned: the tree holds, but every run it would consume is at or before the cursor for
    /// the key (the child already fired for the key with these runs).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub already_fired: bool,
    pub cursor: Timestamp,
    pub decided_at: Timestamp,
    pub decision: Decision,
    pub explanation: Explanation,
}

impl Evaluation {
    /// The firing, if the child fires.
    pub fn firing(&self) -> Option<&Firing> {
        match &self.decision {
            Decision::Fire(f) => Some(f),
            Decision::Wait => None,
        }
    }

    /// The explanation as indented text: a headline, then one line per node.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let key = match &self.run_key {
            Some(k) => format!(" for key {k}"),
            None => String::new(),
        };
        match &self.decision {
            Decision::Fire(f) => {
                let _ = writeln!(
                    out,
                    "{}{key} FIRES: trigger {} consumes {} run{}; cursor {} -> {}",
                    self.child,
                    f.trigger_id,
                    f.consumed.len(),
                    if f.consumed.len() == 1 { "" } else { "s" },
                    self.cursor,
                    f.cursor_after
                );
            }
            Decision::Wait if self.already_fired => {
                let _ = writeln!(
                    out,
                    "{}{key} WAITS: it already fired for these runs; a new run of a parent for the key fires it again (cursor {}, decided at {})",
                    self.child, self.cursor, self.decided_at
                );
            }
            Decision::Wait => {
                let _ = writeln!(
                    out,
                    "{}{key} WAITS (cursor {}, decided at {})",
                    self.child, self.cursor, self.decided_at
                );
            }
        }
        self.explanation.render(1, &mut out);
        out
    }
}

impl fmt::Display for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.render().trim_end())
    }
}

/// Evaluates `trigger` for `child` at `now`, with the child's `cursor`, over `runs` (runs of any
/// pipeline, in any order, duplicates allowed). Pure: the answer depends on nothing else.
/// An aligned trigger is decided per key with [`evaluate_key`].
pub fn evaluate(
    child: &PipelineId,
    trigger: &Trigger,
    cursor: Timestamp,
    now: Timestamp,
    runs: &[RunRef],
) -> Evaluation {
    let ctx = Context {
        child,
        after: cursor,
        now,
        key: None,
        runs,
    };
    conclude(ctx, trigger, cursor)
}

/// Evaluates an aligned `trigger` for `child` and run key `key` at `now` (DESIGN "Alignment"):
/// each leaf holds with its latest qualifying run of key `key` later than `floor` (runs of other
/// keys, and runs without a key, never count); the child fires when the tree holds and at least
/// one run it consumes is later than `cursor`, the child's cursor for `key`. Pure, like
/// [`evaluate`].
pub fn evaluate_key(
    child: &PipelineId,
    trigger: &Trigger,
    key: &RunKey,
    floor: Timestamp,
    cursor: Timestamp,
    now: Timestamp,
    runs: &[RunRef],
) -> Evaluation {
    let ctx = Context {
        child,
        after: floor,
        now,
        key: Some(key),
        runs,
    };
    conclude(ctx, trigger, cursor.max(floor))
}

fn conclude(ctx: Context<'_>, trigger: &Trigger, cursor: Timestamp) -> Evaluation {
    let node = ctx.group(&trigger.executions, None);
    let mut consumed = node.consumed;
    consumed.sort();
    consumed.dedup();
    // Invariant: a firing consumes a run later than the cursor, so the cursor only moves forward
    // (unaligned, every qualifying run is later than the cursor).
    let news = consumed.iter().any(|r| r.status_time > cursor);
    let decision = if node.holds && news {
        let cursor_after = consumed
            .iter()
            .map(|r| r.status_time)
            .max()
            .unwrap_or(cursor);
        Decision::Fire(Firing {
            trigger_id: TriggerId::of_key(ctx.child, ctx.key, &consumed),
            run_key: ctx.key.cloned(),
            consumed,
            cursor_after,
        })
    } else {
        Decision::Wait
    };
    Evaluation {
        child: ctx.child.clone(),
        run_key: ctx.key.cloned(),
        already_fired: node.holds && !news,
        cursor,
        decided_at: ctx.now,
        decision,
        explanation: node.explanation,
    }
}

struct Context<'a> {
    child: &'a PipelineId,
    /// Runs at or before this never qualify: the cursor, or (aligned) the floor.
    after: Timestamp,
    now: Timestamp,
    /// Aligned: only runs of this key qualify.
    key: Option<&'a RunKey>,
    runs: &'a [RunRef],
}

/// A node's verdict: whether it holds, the runs it would consume, its explanation.
struct Node {
    holds: bool,
    consumed: Vec<RunRef>,
    explanation: Explanation,
}

/// Total order for "latest": status time, then execution ARN, then status.
fn later(a: &&RunRef, b: &&RunRef) -> Ordering {
    (a.status_time, &a.execution_arn, a.status).cmp(&(b.status_time, &b.execution_arn, b.status))
}

impl Context<'_> {
    /// `within`: the bound of the groups above; this group's own bound applies too.
    fn group(&self, group: &Group, within: Option<Span>) -> Node {
        let within = match (within, group.within) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(at_least) = &group.at_least {
            return self.at_least(at_least, within);
        }
        let all = (!group.all_of.is_empty()).then(|| self.block(&group.all_of, true, within));
        let any = (!group.any_of.is_empty()).then(|| self.block(&group.any_of, false, within));
        match (all, any) {
            (Some(block), None) | (None, Some(block)) => block,
            (Some(all), Some(any)) => {
                let holds = match group.operator {
                    Operator::And => all.holds && any.holds,
                    Operator::Or => all.holds || any.holds,
                };
                let mut consumed = Vec::new();
                if holds {
                    for block in [&all, &any] {
                        if block.holds {
                            consumed.extend(block.consumed.iter().cloned());
                        }
                    }
                }
                Node {
                    holds,
                    consumed,
                    explanation: Explanation::Operator {
                        operator: group.operator,
                        holds,
                        blocks: vec![all.explanation, any.explanation],
                    },
                }
            }
            // Validation never yields a group without blocks; such a group holds nothing.
            (None, None) => Node {
                holds: false,
                consumed: Vec::new(),
                explanation: Explanation::AllOf {
                    holds: false,
                    entries: Vec::new(),
                },
            },
        }
    }

    /// K of the entries hold; a holding group consumes every holding entry's runs.
    fn at_least(&self, at_least: &AtLeast, within: Option<Span>) -> Node {
        let (holds, consumed, entries) =
            self.entries(&at_least.of, within, |held, _| held >= at_least.count);
        Node {
            holds,
            consumed,
            explanation: Explanation::AtLeast {
                count: at_least.count,
                holds,
                entries,
            },
        }
    }

    fn block(&self, entries: &[Condition], every: bool, within: Option<Span>) -> Node {
        let (holds, consumed, entries) =
            self.entries(
                entries,
                within,
                |held, all| {
                    if every {
                        held == all
                    } else {
                        held > 0
                    }
                },
            );
        let explanation = if every {
            Explanation::AllOf { holds, entries }
        } else {
            Explanation::AnyOf { holds, entries }
        };
        Node {
            holds,
            consumed,
            explanation,
        }
    }

    /// Judges each entry; the group holds when `holds(entries that hold, entries)` says so, and
    /// then consumes the runs of every entry that holds. Returns the entries' explanations too.
    fn entries(
        &self,
        entries: &[Condition],
        within: Option<Span>,
        holds: impl Fn(usize, usize) -> bool,
    ) -> (bool, Vec<RunRef>, Vec<Explanation>) {
        let nodes: Vec<Node> = entries.iter().map(|c| self.condition(c, within)).collect();
        let holds = holds(nodes.iter().filter(|n| n.holds).count(), nodes.len());
        let mut consumed = Vec::new();
        let mut explanations = Vec::with_capacity(nodes.len());
        for node in nodes {
            if holds && node.holds {
                consumed.extend(node.consumed);
            }
            explanations.push(node.explanation);
        }
        (holds, consumed, explanations)
    }

    fn condition(&self, condition: &Condition, within: Option<Span>) -> Node {
        match condition {
            Condition::Leaf(leaf) => self.leaf(leaf, within),
            Condition::Group(group) => self.group(group, within),
        }
    }

    fn leaf(&self, leaf: &Leaf, within: Option<Span>) -> Node {
        let parent = leaf.parent(self.child);
        let of_key = |r: &&RunRef| self.key.is_none_or(|k| r.run_key.as_ref() == Some(k));
        let since_cursor: Vec<&RunRef> = self
            .runs
            .iter()
            .filter(|r| r.pipeline == parent && r.status_time > self.after)
            .filter(of_key)
            .collect();
        let wanted: Vec<&RunRef> = since_cursor
            .iter()
            .copied()
            .filter(|r| leaf.status.contains(&r.status))
            .collect();
        let fresh = |r: &&RunRef| match within {
            Some(within) => self.now.since(r.status_time) <= within,
            None => true,
        };
        let outcome = if let Some(run) = wanted.iter().copied().filter(fresh).max_by(later) {
            LeafOutcome::Holds { run: run.clone() }
        } else if let Some(run) = wanted.iter().copied().max_by(later) {
            LeafOutcome::TooOld {
                run: run.clone(),
                age: self.now.since(run.status_time),
                within: within.unwrap_or(Span(0)),
            }
        } else if let Some(run) = since_cursor.iter().copied().max_by(later) {
            LeafOutcome::OtherStatus { run: run.clone() }
        } else {
            LeafOutcome::NoRunSinceCursor
        };
        let (holds, consumed) = match &outcome {
            LeafOutcome::Holds { run } => (true, vec![run.clone()]),
            _ => (false, Vec::new()),
        };
        Node {
            holds,
            consumed,
            explanation: Explanation::Leaf {
                parent,
                statuses: leaf.status.iter().copied().collect(),
                outcome: Box::new(outcome),
            },
        }
    }
}

mod explanation;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod group_tests;
