//! The explanation of an evaluation: a tree shaped like the condition, each leaf with the run it
//! holds with or why it waits, rendered as indented text for logs and tools and serialized as
//! JSON.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::condition::Operator;
use crate::pipeline::PipelineId;
use crate::run::RunRef;
use crate::status::RunStatus;
use crate::time::Span;

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
        /// Boxed: a leaf's outcome carries a whole run, the groups only their entries.
        #[serde(flatten)]
        outcome: Box<LeafOutcome>,
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
    /// `atLeast: count` of the entries.
    AtLeast {
        count: usize,
        holds: bool,
        entries: Vec<Explanation>,
    },
}

impl Explanation {
    /// Whether this node holds.
    pub fn holds(&self) -> bool {
        match self {
            Explanation::Leaf { outcome, .. } => {
                matches!(outcome.as_ref(), LeafOutcome::Holds { .. })
            }
            Explanation::AllOf { holds, .. }
            | Explanation::AnyOf { holds, .. }
            | Explanation::Operator { holds, .. }
            | Explanation::AtLeast { holds, .. } => *holds,
        }
    }

    pub(super) fn render(&self, depth: usize, out: &mut String) {
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
            Explanation::AtLeast {
                count,
                holds,
                entries,
            } => {
                let held = entries.iter().filter(|e| e.holds()).count();
                let _ = writeln!(
                    out,
                    "{pad}atLeast {count} of {}: {} ({held} hold)",
                    entries.len(),
                    verdict(*holds)
                );
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
                let (mark, why) = outcome.describe();
                let _ = writeln!(out, "{pad}{mark} {parent} {wanted}: {why}");
            }
        }
    }
}

impl LeafOutcome {
    /// The leaf's mark (`[x]` holds, `[ ]` waits) and why, as the rendered explanation shows it.
    fn describe(&self) -> (&'static str, String) {
        match self {
            LeafOutcome::Holds { run } => (
                "[x]",
                format!(
                    "holds with run {} {} at {}",
                    run.execution_name(),
                    run.status,
                    run.status_time
                ),
            ),
            LeafOutcome::NoRunSinceCursor => ("[ ]", "waits: no run since the cursor".to_owned()),
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
        }
    }
}
