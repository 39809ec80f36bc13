//! Runs the log holds as RUNNING: each newly started run (found on the running index) gets a due
//! check at its start plus its pipeline's `maxDuration`, or the reconciliation period. A run the
//! log still shows RUNNING then is looked up in Step Functions through the member account's
//! read-only role: a final status EventBridge never delivered is recorded through the one
//! recording path (so triggers and Slack follow), marked recovered; one still running past
//! `maxDuration` raises `tooLong`, followed up when it stops.

use super::run::{Failure, WatchReport, WatchStores, Watcher};
use super::{
    DeadlineAlert, DeadlineWatch, DueCheck, ExecutionLookup, LookupError, RunningRuns, Verdict,
};
use crate::deadlines::{DeadlineKind, Deadlines};
use crate::pipeline::PipelineId;
use crate::ports::{RunLog, StoreError};
use crate::recording::record_status;
use crate::run::Run;
use crate::time::{Span, Timestamp};

/// How far before the last mark each look at the running index goes back: the index is
/// eventually consistent (typically well under a second behind).
const SIGHTING_LAG: Span = Span(30_000);

impl<P: WatchStores> Watcher<'_, P> {
    /// Runs started since the last look each get a due check. The index is eventually
    /// consistent, so each look goes back [`SIGHTING_LAG`] before the mark; a run sighted twice
    /// gets the same check (one item).
    pub(super) async fn sight_runs(&self, report: &mut WatchReport) -> Result<(), Failure> {
        let watch = self.ports.watch();
        let read = watch.sighted_until().await.map_err(text)?;
        // The first look ever goes back a whole reconciliation period: runs already running
        // when the watchdog was deployed are watched too.
        let after = match read {
            Some(mark) => mark.minus(SIGHTING_LAG),
            None => self.now.minus(self.settings.reconcile_after),
        };
        let started = self
            .ports
            .flow()
            .run_log
            .started_since(after, self.settings.runs_sighted)
            .await
            .map_err(text)?;
        // Runs started before `now - SIGHTING_LAG` are in the index by now: the mark moves at
        // least that far, so a run is sighted in a few consecutive looks, not forever.
        let mut mark = read.unwrap_or(self.now).max(self.now.minus(SIGHTING_LAG));
        // A check earlier than today (UTC) would fall before the due scan's watermark.
        let today = utc_midnight(self.now);
        let mut limits: std::collections::BTreeMap<PipelineId, Option<Span>> = Default::default();
        for (arn, started_at) in started {
            let Ok((pipeline, _)) = PipelineId::from_execution_arn(&arn) else {
                report.errors.push(format!(
                    "`{arn}` in the running index is not an execution ARN"
                ));
                continue;
            };
            let limit = match limits.get(&pipeline) {
                Some(limit) => *limit,
                None => {
                    let limit = self.max_duration_of(&pipeline).await?;
                    limits.insert(pipeline.clone(), limit);
                    limit
                }
            };
            let wait = limit.unwrap_or(self.settings.reconcile_after);
            let check = DueCheck {
                // The same run sighted twice gets the same check (one item).
                at: started_at.plus(wait).max(today),
                pipeline,
                execution_arn: Some(arn),
            };
            watch.schedule(&check).await.map_err(text)?;
            mark = mark.max(started_at);
        }
        if read != Some(mark) {
            watch.set_sighted_until(read, mark).await.map_err(text)?;
        }
        Ok(())
    }

    async fn max_duration_of(&self, pipeline: &PipelineId) -> Result<Option<Span>, Failure> {
        Ok(self
            .deadlines_of(pipeline)
            .await?
            .and_then(|d| d.max_duration))
    }

    /// A run check is due: a run the log still shows RUNNING is looked up; recovered, or
    /// reported too long and checked again a reconciliation period later.
    pub(super) async fn judge_run(
        &self,
        check: &DueCheck,
        execution_arn: &str,
        report: &mut WatchReport,
    ) -> Result<(), Failure> {
        let run_log = self.ports.flow().run_log;
        let latest = run_log.latest(execution_arn).await.map_err(text)?;
        let Some(run) = latest.filter(|r| !r.status.is_final()) else {
            return Ok(());
        };
        if let Some(mut found) = self.look_up(&run, report).await? {
            // The run's key is the one its RUNNING state was recorded with.
            if found.run_key.is_none() {
                found.run_key.clone_from(&run.run_key);
            }
            let events = self.ports.flow().events;
            let (_, announced) =
                record_status::<_, _, RecordFailure>(&mut found, true, run_log, events)
                    .await
                    .map_err(|e| e.0)?;
            if announced {
                report.recovered.push(found);
            }
            return Ok(());
        }
        let deadlines = self.deadlines_of(&check.pipeline).await?;
        if let Some(deadlines) = &deadlines {
            self.too_long(check, &run, deadlines, report).await?;
        }
        let next = DueCheck {
            at: self.now.plus(self.settings.reconcile_after),
            ..check.clone()
        };
        self.ports.watch().schedule(&next).await.map_err(text)
    }

    /// The run's final status from Step Functions, when it has one. A refusing role is noted
    /// (logged once per account and day) and its account skipped for the rest of this run.
    async fn look_up(&self, run: &Run, report: &mut WatchReport) -> Result<Option<Run>, Failure> {
        let account = &run.pipeline.account;
        if report.refused_accounts.contains(account) {
            return Ok(None);
        }
        match self.ports.lookup().describe(&run.execution_arn).await {
            Ok(found) => Ok(found.filter(|f| f.status.is_final())),
            Err(LookupError::Refused { account, message }) => {
                if self
                    .ports
                    .watch()
                    .note_refusal(&account, self.now)
                    .await
                    .map_err(text)?
                {
                    report.refusals.push(format!("{account}: {message}"));
                }
                report.refused_accounts.insert(account);
                Ok(None)
            }
            Err(e @ LookupError::Unavailable { .. }) => Err(e.to_string()),
        }
    }

    /// Raises `tooLong` for a run still running past its pipeline's `maxDuration`.
    async fn too_long(
        &self,
        check: &DueCheck,
        run: &Run,
        deadlines: &Deadlines,
        report: &mut WatchReport,
    ) -> Result<(), Failure> {
        let Some(limit) = deadlines.max_duration else {
            return Ok(());
        };
        let due = run.started_at.plus(limit);
        if self.now < due {
            return Ok(());
        }
        let (date, _) = deadlines.day_of(run.started_at).map_err(text)?;
        let alert = DeadlineAlert {
            pipeline: check.pipeline.clone(),
            kind: DeadlineKind::TooLong,
            day: date.to_string(),
            due,
            due_local: format!(
                "{} {} ({limit} after its start)",
                deadlines.local_time(due),
                deadlines.timezone
            ),
            raised_at: self.now,
            reasons: vec![format!(
                "run {} has been running since {}, longer than its maxDuration {limit}",
                run.execution_name,
                deadlines.local_time(run.started_at)
            )],
            waiting_on: Vec::new(),
            execution_arn: Some(run.execution_arn.clone()),
        };
        if self.ports.watch().raise(&alert).await.map_err(text)? {
            self.announce(&alert).await?;
            report.raised.push(alert);
        }
        Ok(())
    }

    /// Whether a run that was too long has stopped, and how long after its limit.
    pub(super) async fn run_verdict(
        &self,
        execution_arn: &str,
        due: Timestamp,
    ) -> Result<Verdict, Failure> {
        let latest = self
            .ports
            .flow()
            .run_log
            .latest(execution_arn)
            .await
            .map_err(text)?;
        Ok(match latest {
            Some(run) if run.status.is_final() => {
                let at = run.stopped_at.unwrap_or(self.now);
                Verdict::Late {
                    at,
                    late_by: at.since(due),
                    execution_name: run.execution_name,
                }
            }
            _ => Verdict::Missed,
        })
    }
}

fn utc_midnight(t: Timestamp) -> Timestamp {
    Timestamp(t.0 - t.0.rem_euclid(Span::DAY.0))
}

fn text(e: impl std::fmt::Display) -> Failure {
    e.to_string()
}

/// A store or publish failure while recording a recovered status, as the report shows it.
struct RecordFailure(Failure);

impl From<StoreError> for RecordFailure {
    fn from(e: StoreError) -> RecordFailure {
        RecordFailure(e.to_string())
    }
}

impl From<crate::ports::PublishError> for RecordFailure {
    fn from(e: crate::ports::PublishError) -> RecordFailure {
        RecordFailure(e.to_string())
    }
}
