//! Step Functions execution statuses, as they appear in `Step Functions Execution Status Change`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The status of a Step Functions execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
    PendingRedrive,
}

impl RunStatus {
    /// Every status, in Step Functions' order.
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::TimedOut,
        RunStatus::Aborted,
        RunStatus::PendingRedrive,
    ];

    /// The words a definition may use for a status: Step Functions' own plus the `SUCCESS` alias.
    pub const ACCEPTED_WORDS: &'static str =
        "RUNNING, SUCCEEDED (alias SUCCESS), FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE";

    /// Step Functions' spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Succeeded => "SUCCEEDED",
            RunStatus::Failed => "FAILED",
            RunStatus::TimedOut => "TIMED_OUT",
            RunStatus::Aborted => "ABORTED",
            RunStatus::PendingRedrive => "PENDING_REDRIVE",
        }
    }

    /// Reads a status as written in a definition or an event. `SUCCESS` (the Scout24 spelling) is
    /// an alias of `SUCCEEDED`. Case-sensitive, like Step Functions.
    pub fn parse(word: &str) -> Option<RunStatus> {
        match word {
            "SUCCESS" => Some(RunStatus::Succeeded),
            _ => Self::ALL.into_iter().find(|s| s.as_str() == word),
        }
    }

    /// A final status ends the execution: SUCCEEDED, FAILED, TIMED_OUT, ABORTED.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::TimedOut | RunStatus::Aborted
        )
    }

    /// A failure: FAILED, TIMED_OUT or ABORTED.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            RunStatus::Failed | RunStatus::TimedOut | RunStatus::Aborted
        )
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_is_an_alias_of_succeeded() {
        assert_eq!(RunStatus::parse("SUCCESS"), Some(RunStatus::Succeeded));
        assert_eq!(RunStatus::parse("SUCCEEDED"), Some(RunStatus::Succeeded));
        assert_eq!(RunStatus::parse("succeeded"), None);
        assert_eq!(RunStatus::parse("DONE"), None);
        for s in RunStatus::ALL {
            assert_eq!(RunStatus::parse(s.as_str()), Some(s));
        }
    }
}
