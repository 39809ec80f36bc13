//! Runs of pipelines with `maxDuration`: each newly started run (found on the running index)
//! gets a due check at its start plus `maxDuration`; a run still RUNNING then raises `tooLong`,
//! followed up when it stops.

use super::run::{Failure, WatchReport, Watcher};
use super::{
    DeadlineAlert, DeadlineInbox, DeadlineWatch, DueCheck, PendingTriggers, RunningRuns, Verdict,
};
use crate::deadlines::{DeadlineKind, Deadlines};
use crate::pipeline::PipelineId;
use crate::ports::{Ledger, Registry, RunEvents, RunLog, SendLease, TriggerBus};
use crate::status::RunStatus;
use crate::time::{Span, Timestamp};

impl<L, R, G, B, E, W> Watcher<'_, '_, L, R, G, B, E, W>
where
    L: RunLog + RunningRuns + Sync,
    R: Registry + DeadlineInbox + Sync,
    G: Ledger + SendLease + PendingTriggers + Sync,
    B: TriggerBus + Sync,
    E: RunEvents + Sync,
    W: DeadlineWatch + Sync,
{
    /// Runs started since the last look: each of a pipeline with `maxDuration` gets a due check
    /// at its start plus `maxDuration` (or now, if that has passed). The index is eventually
    /// consistent, so each look goes back [`SIGHTING_LAG`] before the mark; a check scheduled
    /// twice is one item.
    pub(super) async fn sight_runs(&self, report: &mut WatchReport) -> Result<(), Failure> {
        let read = self
            .ports
            .watch
            .sighted_until()
            .await
            .map_err(|e| e.to_string())?;
        let after = read.unwrap_or(self.now).minus(SIGHTING_LAG);
        let started = self
            .ports
            .flow
            .run_log
            .started_since(after, self.settings.runs_sighted)
            .await
            .map_err(|e| e.to_string())?;
        let mut mark = read.unwrap_or(self.now).max(after);
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
                    let limit = self
                        .deadlines_of(&pipeline)
                        .await?
                        .and_then(|d| d.max_duration);
                    limits.insert(pipeline.clone(), limit);
                    limit
                }
            };
            if let Some(limit) = limit {
                let check = DueCheck {
                    at: started_at.plus(limit).max(self.now),
                    pipeline,
                    execution_arn: Some(arn),
                };
                self.ports
                    .watch
                    .schedule(&check)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            mark = mark.max(started_at);
        }
        if read != Some(mark) {
            self.ports
                .watch
                .set_sighted_until(read, mark)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// A run's `maxDuration` ended at `check.at`: still running raises `tooLong`.
    pub(super) async fn judge_run(
        &self,
        check: &DueCheck,
        execution_arn: &str,
        deadlines: &Deadlines,
        report: &mut WatchReport,
    ) -> Result<(), Failure> {
        let Some(limit) = deadlines.max_duration else {
            return Ok(());
        };
        let latest = self
            .ports
            .flow
            .run_log
            .latest(execution_arn)
            .await
            .map_err(|e| e.to_string())?;
        let Some(run) = latest.filter(|r| r.status == RunStatus::Running) else {
            return Ok(());
        };
        let due = run.started_at.plus(limit);
        let (date, _) = deadlines
            .day_of(run.started_at)
            .map_err(|e| e.to_string())?;
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
            execution_arn: Some(execution_arn.to_owned()),
        };
        if self
            .ports
            .watch
            .raise(&alert)
            .await
            .map_err(|e| e.to_string())?
        {
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
            .flow
            .run_log
            .latest(execution_arn)
            .await
            .map_err(|e| e.to_string())?;
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

/// How far before the last mark each look at the running index goes back: the index is
/// eventually consistent (typically well under a second behind).
const SIGHTING_LAG: Span = Span(120_000);
