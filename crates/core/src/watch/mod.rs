//! The watchdog's rules: deadline alerts that say why, and the sweep that re-sends triggers left
//! pending. Storage is reached through the ports below; the procedures are in [`run`].
//!
//! Deadlines (DESIGN "watchdog"): each pipeline with a daily deadline has one *due check* in the
//! watch store at the next deadline instant. At that instant the watchdog judges the pipeline's
//! local day from the run log ([`judge`]); a missed deadline raises one alert per (pipeline,
//! local day, kind), claimed with a conditional write, so overlapping watchdog runs raise it once.
//! An alert stays *open* until the run log shows the start (or success) it was waiting for; then
//! a follow-up says how late it was, in the alert's thread.

mod alerts;
mod due;
mod explain;
pub mod message;
pub mod run;
mod runs;

use std::future::Future;

use serde::{Deserialize, Serialize};

pub use explain::{finish_reasons, start_reasons};

use crate::deadlines::DeadlineKind;
use crate::pipeline::PipelineId;
use crate::ports::StoreResult;
use crate::run::Run;
use crate::status::RunStatus;
use crate::time::{Span, Timestamp};

/// A missed deadline: what was promised, and why it was missed, as the run log showed it when
/// the alert was raised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadlineAlert {
    pub pipeline: PipelineId,
    pub kind: DeadlineKind,
    /// The pipeline's local day, `YYYY-MM-DD`.
    pub day: String,
    /// The deadline instant.
    pub due: Timestamp,
    /// The deadline as its owners wrote it, e.g. `07:00 Europe/Berlin`.
    pub due_local: String,
    /// When it was raised.
    pub raised_at: Timestamp,
    /// Why: one line per thing the pipeline is waiting on.
    pub reasons: Vec<String>,
    /// The parents it waits on (their owners get a note).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting_on: Vec<PipelineId>,
    /// The run that took too long (`tooLong` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
}

impl DeadlineAlert {
    /// `<pipeline key>#<day>#<kind>`: one alert per (pipeline, day, kind).
    pub fn key(&self) -> String {
        alert_key(&self.pipeline, &self.day, self.kind)
    }
}

/// The key of the alert of `kind` for `pipeline` on local `day`.
pub fn alert_key(pipeline: &PipelineId, day: &str, kind: DeadlineKind) -> String {
    format!("{}#{day}#{}", pipeline.key(), kind.as_str())
}

/// What an alert event tells a channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "news", rename_all = "camelCase")]
pub enum AlertNews {
    /// The deadline was missed (to the pipeline's own channels).
    Raised,
    /// The late pipeline waits on the receiving pipeline (to a parent's channels).
    #[serde(rename_all = "camelCase")]
    WaitingOnYou { parent: PipelineId },
    /// What the alert waited for happened, `late_by` after the deadline.
    #[serde(rename_all = "camelCase")]
    Resolved {
        at: Timestamp,
        late_by: Span,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        execution_name: Option<String>,
    },
}

/// The `alert` part of a `RunEvent` of kind `alert`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertEvent {
    #[serde(flatten)]
    pub alert: DeadlineAlert,
    #[serde(flatten)]
    pub news: AlertNews,
}

/// A pipeline whose next daily deadline must be checked at `at`, or, with `execution_arn`, one
/// of its runs whose `maxDuration` ends at `at`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DueCheck {
    pub at: Timestamp,
    pub pipeline: PipelineId,
    pub execution_arn: Option<String>,
}

/// An alert raised and not yet resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenAlert {
    pub alert: DeadlineAlert,
    /// Whether its `Raised` events were published (a crash can leave it raised, unannounced).
    pub announced: bool,
}

/// The watch store: due checks, the watermark of the days read, alerts.
pub trait DeadlineWatch {
    /// Adds a due check (idempotent: the same check twice is one).
    fn schedule(&self, check: &DueCheck) -> impl Future<Output = StoreResult<()>> + Send;

    /// Removes a due check once handled.
    fn unschedule(&self, check: &DueCheck) -> impl Future<Output = StoreResult<()>> + Send;

    /// Due checks of UTC day `day` (`YYYY-MM-DD`) at or before `up_to`, earliest first, all of them.
    fn due_on(
        &self,
        day: &str,
        up_to: Timestamp,
    ) -> impl Future<Output = StoreResult<Vec<DueCheck>>> + Send;

    /// The earliest UTC day that may still hold due checks; `None` before the first run.
    fn watermark(&self) -> impl Future<Output = StoreResult<Option<String>>> + Send;

    /// Moves the watermark to `day` if it is still `read` (an overlapping run may have moved it).
    fn advance_watermark(
        &self,
        read: Option<&str>,
        day: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Runs started after this instant have not been looked at yet (`None` before the first run).
    fn sighted_until(&self) -> impl Future<Output = StoreResult<Option<Timestamp>>> + Send;

    /// Moves [`DeadlineWatch::sighted_until`] to `to` if it is still `read`.
    fn set_sighted_until(
        &self,
        read: Option<Timestamp>,
        to: Timestamp,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Notes that `account`'s read-only role refused at `now`. `true` when no refusal was noted
    /// in the day before: only then is it logged, so a missing role is logged once per account
    /// and day, not once per run.
    fn note_refusal(
        &self,
        account: &str,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Records `alert` raised and open, once per key. `false`: it was raised before.
    fn raise(&self, alert: &DeadlineAlert) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Every open alert (few: only pipelines late right now).
    fn open_alerts(&self) -> impl Future<Output = StoreResult<Vec<OpenAlert>>> + Send;

    /// Notes that the open alert's `Raised` events were published.
    fn mark_announced(&self, key: &str) -> impl Future<Output = StoreResult<()>> + Send;

    /// Closes an open alert (its follow-up was published).
    fn close(&self, key: &str) -> impl Future<Output = StoreResult<()>> + Send;
}

/// Registrations whose deadlines changed since the watchdog last scheduled them: written with
/// the registration itself (one transaction), so no registration's deadlines go unwatched.
pub trait DeadlineInbox {
    /// Pipelines (with the fingerprint of the registration that put them here) to schedule.
    fn changed(&self) -> impl Future<Output = StoreResult<Vec<(PipelineId, String)>>> + Send;

    /// Removes the inbox entry if it is still for `fingerprint` (a newer registration keeps it).
    fn acknowledge(
        &self,
        pipeline: &PipelineId,
        fingerprint: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;
}

/// Children with a pending trigger claimed before `claimed_before`, each with the run key of the
/// cursor item that holds it (none for an unaligned child): found through an index of pending
/// triggers, never by reading every child.
pub trait PendingTriggers {
    fn pending_before(
        &self,
        claimed_before: Timestamp,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<(PipelineId, Option<crate::RunKey>)>>> + Send;
}

/// Executions the run log holds as RUNNING, found through an index of running executions
/// (their latest state), never by reading every run.
pub trait RunningRuns {
    /// Executions still RUNNING that started after `after`, earliest first, at most `limit`:
    /// (execution ARN, start).
    fn started_since(
        &self,
        after: Timestamp,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<(String, Timestamp)>>> + Send;
}

/// Why Step Functions could not be asked about an execution.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("the read-only role in account {account} is missing or refused DescribeExecution (deploy the member-account template there): {message}")]
    Refused { account: String, message: String },
    #[error("DescribeExecution of {execution_arn} failed and may succeed if retried: {message}")]
    Unavailable {
        execution_arn: String,
        message: String,
    },
}

/// Step Functions in the member accounts, asked through the read-only role each member-account
/// stack creates (trusted by the central account only).
pub trait ExecutionLookup {
    /// The execution as Step Functions describes it now (its status, start, stop, error, cause
    /// and the trigger id in its input); `None` when it no longer exists.
    fn describe(
        &self,
        execution_arn: &str,
    ) -> impl Future<Output = Result<Option<Run>, LookupError>> + Send;
}

/// What the run log says about one deadline of one local day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Kept: started (or succeeded) by the deadline.
    Met,
    /// Nothing yet.
    Missed,
    /// It happened, `late_by` after the deadline.
    Late {
        at: Timestamp,
        late_by: Span,
        execution_name: String,
    },
}

/// Judges deadline `kind` due at `due` on the local day that began at `day_start`, over the
/// pipeline's runs (any order, duplicates allowed). A start counts when the run started that
/// day; a finish when a run that started that day SUCCEEDED.
pub fn judge(kind: DeadlineKind, day_start: Timestamp, due: Timestamp, runs: &[Run]) -> Verdict {
    let first = runs
        .iter()
        .filter(|r| r.started_at >= day_start)
        .filter_map(|r| match kind {
            DeadlineKind::LateStart => Some((r.started_at, r)),
            DeadlineKind::LateFinish if r.status == RunStatus::Succeeded => {
                Some((r.stopped_at.unwrap_or(r.started_at), r))
            }
            _ => None,
        })
        .min_by_key(|(at, _)| *at);
    match first {
        None => Verdict::Missed,
        Some((at, _)) if at <= due => Verdict::Met,
        Some((at, run)) => Verdict::Late {
            at,
            late_by: at.since(due),
            execution_name: run.execution_name.clone(),
        },
    }
}

/// The statuses a judgement of `kind` reads.
pub fn statuses_for(kind: DeadlineKind) -> std::collections::BTreeSet<RunStatus> {
    match kind {
        DeadlineKind::LateFinish => [RunStatus::Succeeded].into(),
        _ => RunStatus::ALL.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(status: RunStatus, started: i64, stopped: Option<i64>) -> Run {
        Run {
            pipeline: PipelineId::new("333333333333", "eu-west-1", "pipeline-x").unwrap(),
            execution_arn: format!(
                "arn:aws:states:eu-west-1:333333333333:execution:pipeline-x:r{started}"
            ),
            execution_name: format!("r{started}"),
            status,
            started_at: Timestamp(started),
            stopped_at: stopped.map(Timestamp),
            error: None,
            cause: None,
            trigger_id: None,
            run_key: None,
        }
    }

    #[test]
    fn a_start_is_on_time_late_or_missing_and_yesterdays_runs_do_not_count() {
        let (day, due) = (Timestamp(1_000), Timestamp(5_000));
        let yesterday = run(RunStatus::Succeeded, 500, Some(1_500));
        assert_eq!(
            judge(
                DeadlineKind::LateStart,
                day,
                due,
                std::slice::from_ref(&yesterday)
            ),
            Verdict::Missed
        );
        let on_time = run(RunStatus::Running, 4_000, None);
        assert_eq!(
            judge(
                DeadlineKind::LateStart,
                day,
                due,
                &[yesterday.clone(), on_time]
            ),
            Verdict::Met
        );
        let late = run(RunStatus::Running, 7_000, None);
        assert_eq!(
            judge(
                DeadlineKind::LateStart,
                day,
                due,
                &[late.clone(), yesterday]
            ),
            Verdict::Late {
                at: Timestamp(7_000),
                late_by: Span(2_000),
                execution_name: "r7000".into()
            }
        );
        // A run that is still running has not finished; a failed one has not either.
        let failed = run(RunStatus::Failed, 2_000, Some(3_000));
        assert_eq!(
            judge(DeadlineKind::LateFinish, day, due, &[late, failed]),
            Verdict::Missed
        );
        let done = run(RunStatus::Succeeded, 2_000, Some(6_000));
        assert!(matches!(
            judge(DeadlineKind::LateFinish, day, due, &[done]),
            Verdict::Late {
                late_by: Span(1_000),
                ..
            }
        ));
    }
}
