//! Step Functions in the member accounts, as the watchdog's read-only roles see them: what each
//! execution is now, and which accounts' roles refuse (missing, or not trusting the central
//! account).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use baton_core::watch::{ExecutionLookup, LookupError};
use baton_core::Run;

use super::{Effect, Op, Requests};

/// [`ExecutionLookup`] in memory.
pub struct MemoryExecutions {
    requests: Arc<Requests>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    executions: BTreeMap<String, Run>,
    refusing: BTreeSet<String>,
    asked: usize,
}

impl MemoryExecutions {
    pub fn new(requests: Arc<Requests>) -> MemoryExecutions {
        MemoryExecutions {
            requests,
            state: Mutex::new(State::default()),
        }
    }

    /// Step Functions now describes `run`'s execution as `run`.
    pub fn set(&self, run: &Run) {
        if let Ok(mut s) = self.state.lock() {
            s.executions.insert(run.execution_arn.clone(), run.clone());
        }
    }

    /// `account`'s read-only role refuses (or is missing).
    pub fn refuse(&self, account: &str) {
        if let Ok(mut s) = self.state.lock() {
            s.refusing.insert(account.to_owned());
        }
    }

    /// `account`'s read-only role works again.
    pub fn admit(&self, account: &str) {
        if let Ok(mut s) = self.state.lock() {
            s.refusing.remove(account);
        }
    }

    /// How many DescribeExecution calls were made.
    pub fn asked(&self) -> usize {
        self.state.lock().map(|s| s.asked).unwrap_or_default()
    }
}

impl ExecutionLookup for MemoryExecutions {
    async fn describe(&self, execution_arn: &str) -> Result<Option<Run>, LookupError> {
        let unavailable = |message: String| LookupError::Unavailable {
            execution_arn: execution_arn.to_owned(),
            message,
        };
        self.requests
            .request(Op::Watch("DescribeExecution"), || {
                let Ok(mut s) = self.state.lock() else {
                    return (Err(unavailable("poisoned".into())), Effect::Read);
                };
                s.asked += 1;
                let account = execution_arn.split(':').nth(4).unwrap_or_default();
                if s.refusing.contains(account) {
                    let refused = LookupError::Refused {
                        account: account.to_owned(),
                        message: "AccessDenied: not authorized to perform sts:AssumeRole".into(),
                    };
                    return (Err(refused), Effect::Read);
                }
                (Ok(s.executions.get(execution_arn).cloned()), Effect::Read)
            })
            .await
            .map_err(|f| unavailable(f.0))?
    }
}
