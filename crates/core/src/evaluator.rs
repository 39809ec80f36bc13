//! The trigger condition evaluator: given a child's condition, its cursor, the decision time and
//! the parent runs the run log holds, decide whether the child fires, which runs that firing
//! consumes, and explain why.
//!
//! Rules (DESIGN "Trigger semantics"):
//! - A run *qualifies* for a leaf when it belongs to the leaf's parent, its status is one the leaf
//!   lists, its status time is later than the cursor and, with `within`, it is no older than
//!   `within` at decision time.
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

use crate::condition::{Condition, Group, Leaf, Operator, Trigger};
use crate::pipeline::PipelineId;
use crate::run::RunRef;
use crate::status::RunStatus;
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
    pub consumed: Vec<RunRef>,
    pub cursor_after: Timestamp,
}

impl Firing {
    /// One line: which parent runs started the child.
    pub fn reason(&self) -> String {
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

/// Why a leaf holds or waits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum LeafOutcome {
    /// Holds with this run (its latest qualifying run).
    Holds { run: RunRef },
    /// The parent has no run after the cursor.
    NoRunSinceCursor,
    /// The parent has runs after the cursor, none with a wanted status; this is the latest.
    OtherStatus { run: RunRef },
    /// A run with a wanted status exists after the cursor but is older than `within`.
    TooOld {
        run: RunRef,
        age: Span,
        within: Span,
    },
}

/// The explanation tree of one evaluation, shaped like the condition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Explanation {
    Leaf {
        parent: PipelineId,
        statuses: Vec<RunStatus>,
        #[serde(flatten)]
        outcome: LeafOutcome,
    },
    AllOf {
        holds: bool,
        entries: Vec<Explanation>,
    },
    AnyOf {
        holds: bool,
        entries: Vec<Explanation>,
    },
    /// A group with both blocks, combined by its operator.
    Operator {
        operator: Operator,
        holds: bool,
        blocks: Vec<Explanation>,
    },
}

impl Explanation {
    /// Whether this node holds.
    pub fn holds(&self) -> bool {
        match self {
            Explanation::Leaf { outcome, .. } => matches!(outcome, LeafOutcome::Holds { .. }),
            Explanation::AllOf { holds, .. }
            | Explanation::AnyOf { holds, .. }
            | Explanation::Operator { holds, .. } => *holds,
        }
    }

    fn render(&self, depth: usize, out: &mut String) {
        let pad = "  ".repeat(depth);
        let verdict = |holds: bool| if holds { "holds" } else { "waits" };
        match self {
            Explanation::AllOf { holds, entries } => {
                let _ = writeln!(out, "{pad}allOf: {}", verdict(*holds));
                entries.iter().for_each(|e| e.render(depth + 1, out));
            }
            Explanation::AnyOf { holds, entries } => {
                let _ = writeln!(out, "{pad}anyOf: {}", verdict(*holds));
                entries.iter().for_each(|e| e.render(depth + 1, out));
            }
            Explanation::Operator {
                operator,
                holds,
                blocks,
            } => {
                let op = match operator {
                    Operator::And => "AND",
                    Operator::Or => "OR",
                };
                let _ = writeln!(out, "{pad}allOf {op} anyOf: {}", verdict(*holds));
                blocks.iter().for_each(|e| e.render(depth + 1, out));
            }
            Explanation::Leaf {
                parent,
                statuses,
                outcome,
            } => {
                let wanted: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
                let wanted = wanted.join("|");
                let (mark, why) = match outcome {
                    LeafOutcome::Holds { run } => (
                        "[x]",
                        format!(
                            "holds with run {} {} at {}",
                            run.execution_name(),
                            run.status,
                            run.status_time
                        ),
                    ),
                    LeafOutcome::NoRunSinceCursor => {
                        ("[ ]", "waits: no run since the cursor".to_owned())
                    }
                    LeafOutcome::OtherStatus { run } => (
                        "[ ]",
                        format!(
                            "waits: latest run since the cursor is {} {} at {}",
                            run.execution_name(),
                            run.status,
                            run.status_time
                        ),
                    ),
                    LeafOutcome::TooOld { run, age, within } => (
                        "[ ]",
                        format!(
                            "waits: run {} {} at {} is {} old, more than within {}",
                            run.execution_name(),
                            run.status,
                            run.status_time,
                            age,
                            within
                        ),
                    ),
                };
                let _ = writeln!(out, "{pad}{mark} {parent} {wanted}: {why}");
            }
        }
    }
}

/// The full result of one evaluation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    pub child: PipelineId,
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
        match &self.decision {
            Decision::Fire(f) => {
                let _ = writeln!(
                    out,
                    "{} FIRES: trigger {} consumes {} run{}; cursor {} -> {}",
                    self.child,
                    f.trigger_id,
                    f.consumed.len(),
                    if f.consumed.len() == 1 { "" } else { "s" },
                    self.cursor,
                    f.cursor_after
                );
            }
            Decision::Wait => {
                let _ = writeln!(
                    out,
                    "{} WAITS (cursor {}, decided at {})",
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
pub fn evaluate(
    child: &PipelineId,
    trigger: &Trigger,
    cursor: Timestamp,
    now: Timestamp,
    runs: &[RunRef],
) -> Evaluation {
    let ctx = Context {
        child,
        cursor,
        now,
        within: trigger.within,
        runs,
    };
    let node = ctx.group(&trigger.executions);
    let decision = if node.holds {
        let mut consumed = node.consumed;
        consumed.sort();
        consumed.dedup();
        // Invariant: consumed runs are all later than the cursor, so the cursor only moves forward.
        let cursor_after = consumed
            .iter()
            .map(|r| r.status_time)
            .max()
            .unwrap_or(cursor);
        Decision::Fire(Firing {
            trigger_id: TriggerId::of(child, &consumed),
            consumed,
            cursor_after,
        })
    } else {
        Decision::Wait
    };
    Evaluation {
        child: child.clone(),
        cursor,
        decided_at: now,
        decision,
        explanation: node.explanation,
    }
}

struct Context<'a> {
    child: &'a PipelineId,
    cursor: Timestamp,
    now: Timestamp,
    within: Option<Span>,
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
    fn group(&self, group: &Group) -> Node {
        let all = (!group.all_of.is_empty()).then(|| self.block(&group.all_of, true));
        let any = (!group.any_of.is_empty()).then(|| self.block(&group.any_of, false));
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

    fn block(&self, entries: &[Condition], every: bool) -> Node {
        let nodes: Vec<Node> = entries.iter().map(|c| self.condition(c)).collect();
        let holds = if every {
            nodes.iter().all(|n| n.holds)
        } else {
            nodes.iter().any(|n| n.holds)
        };
        let mut consumed = Vec::new();
        let mut explanations = Vec::with_capacity(nodes.len());
        for node in nodes {
            if holds && node.holds {
                consumed.extend(node.consumed);
            }
            explanations.push(node.explanation);
        }
        let explanation = if every {
            Explanation::AllOf {
                holds,
                entries: explanations,
            }
        } else {
            Explanation::AnyOf {
                holds,
                entries: explanations,
            }
        };
        Node {
            holds,
            consumed,
            explanation,
        }
    }

    fn condition(&self, condition: &Condition) -> Node {
        match condition {
            Condition::Leaf(leaf) => self.leaf(leaf),
            Condition::Group(group) => self.group(group),
        }
    }

    fn leaf(&self, leaf: &Leaf) -> Node {
        let parent = leaf.parent(self.child);
        let since_cursor: Vec<&RunRef> = self
            .runs
            .iter()
            .filter(|r| r.pipeline == parent && r.status_time > self.cursor)
            .collect();
        let wanted: Vec<&RunRef> = since_cursor
            .iter()
            .copied()
            .filter(|r| leaf.status.contains(&r.status))
            .collect();
        let fresh = |r: &&RunRef| match self.within {
            Some(within) => self.now.since(r.status_time) <= within,
            None => true,
        };
        let outcome = if let Some(run) = wanted.iter().copied().filter(fresh).max_by(later) {
            LeafOutcome::Holds { run: run.clone() }
        } else if let Some(run) = wanted.iter().copied().max_by(later) {
            LeafOutcome::TooOld {
                run: run.clone(),
                age: self.now.since(run.status_time),
                within: self.within.unwrap_or(Span(0)),
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
                outcome,
            },
        }
    }
}

#[cfg(test)]
mod tests;
