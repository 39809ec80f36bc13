//! The daily deadlines of one watchdog run: registrations changed since the last run get their
//! next due check; the checks due now are judged, a missed deadline raises its alert (once per
//! pipeline, day and kind) with why, and the next check is scheduled.

use super::run::{next_utc_day, utc_day, CATCH_UP_ROUNDS};
use super::run::{Failure, WatchReport, WatchStores, Watcher};
use super::{finish_reasons, judge, start_reasons, statuses_for, DeadlineAlert, DueCheck, Verdict};
use super::{DeadlineInbox, DeadlineWatch};
use crate::deadlines::{DeadlineKind, Deadlines, DueDeadline};
use crate::pipeline::PipelineId;
use crate::ports::{Registry, RunLog};
use crate::run::Run;
use crate::time::{Span, Timestamp};
use crate::trigger::inspect_child;

impl<P: WatchStores> Watcher<'_, P> {
    /// Registrations written since the last run get their next due check.
    pub(super) async fn schedule_changed(&self, report: &mut WatchReport) -> Result<(), Failure> {
        let changed = self
            .ports
            .flow()
            .registry
            .changed()
            .await
            .map_err(|e| e.to_string())?;
        for (pipeline, fingerprint) in changed {
            let step = async {
                if let Some(deadlines) = self.deadlines_of(&pipeline).await? {
                    self.schedule_after(&pipeline, &deadlines, self.now).await?;
                }
                self.ports
                    .flow()
                    .registry
                    .acknowledge(&pipeline, &fingerprint)
                    .await
                    .map_err(|e| e.to_string())
            };
            match step.await {
                Ok(()) => report.scheduled.push(pipeline),
                Err(e) => report.errors.push(format!("{}: {e}", pipeline.key())),
            }
        }
        Ok(())
    }

    pub(super) async fn deadlines_of(
        &self,
        pipeline: &PipelineId,
    ) -> Result<Option<Deadlines>, Failure> {
        let registration = self
            .ports
            .flow()
            .registry
            .get(pipeline)
            .await
            .map_err(|e| e.to_string())?;
        Ok(registration.and_then(|r| r.definition.deadlines))
    }

    pub(super) async fn schedule_after(
        &self,
        pipeline: &PipelineId,
        deadlines: &Deadlines,
        after: Timestamp,
    ) -> Result<(), Failure> {
        let next = deadlines.next_due(after).map_err(|e| e.to_string())?;
        if let Some(first) = next.first() {
            let check = DueCheck {
                at: first.at,
                pipeline: pipeline.clone(),
                execution_arn: None,
            };
            self.ports
                .watch()
                .schedule(&check)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Judges every due check from the watermark's day to today; moves the watermark to the
    /// first day that still holds a check (or today).
    pub(super) async fn due_checks(&self, report: &mut WatchReport) -> Result<(), Failure> {
        let today = utc_day(self.now);
        let watermark = self
            .ports
            .watch()
            .watermark()
            .await
            .map_err(|e| e.to_string())?;
        let mut day = watermark.clone().unwrap_or_else(|| today.clone());
        let mut keep: Option<String> = None;
        loop {
            // A check judged late schedules the next one, which may be due already (the watchdog
            // did not run for a while): read the day again until nothing is due.
            let mut rounds = 0;
            loop {
                let checks = self
                    .ports
                    .watch()
                    .due_on(&day, self.now)
                    .await
                    .map_err(|e| e.to_string())?;
                let failed_before = report.errors.len();
                let judged = checks.len();
                for check in checks {
                    report.checked += 1;
                    if let Err(e) = self.judge_check(&check, report).await {
                        report.errors.push(format!(
                            "{} due at {}: {e}",
                            check.pipeline.key(),
                            check.at
                        ));
                    }
                }
                rounds += 1;
                if report.errors.len() > failed_before || rounds >= CATCH_UP_ROUNDS {
                    keep.get_or_insert_with(|| day.clone());
                    break;
                }
                if judged == 0 {
                    break;
                }
            }
            if day >= today {
                break;
            }
            day =
                next_utc_day(&day).ok_or_else(|| format!("watermark day `{day}` is not a date"))?;
        }
        let new_mark = keep.unwrap_or(today);
        if watermark.as_deref() != Some(new_mark.as_str()) {
            self.ports
                .watch()
                .advance_watermark(watermark.as_deref(), &new_mark)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// One due check: judge each deadline due at its instant, raise what was missed, schedule the
    /// next check, remove this one.
    pub(super) async fn judge_check(
        &self,
        check: &DueCheck,
        report: &mut WatchReport,
    ) -> Result<(), Failure> {
        if let Some(execution_arn) = &check.execution_arn {
            // Every run is reconciled, whether its pipeline has deadlines (or a registration) or not.
            self.judge_run(check, execution_arn, report).await?;
            return self
                .ports
                .watch()
                .unschedule(check)
                .await
                .map_err(|e| e.to_string());
        }
        let registration = self
            .ports
            .flow()
            .registry
            .get(&check.pipeline)
            .await
            .map_err(|e| e.to_string())?;
        let Some(deadlines) = registration.and_then(|r| r.definition.deadlines) else {
            // Unregistered, or its deadlines removed: nothing to watch.
            return self
                .ports
                .watch()
                .unschedule(check)
                .await
                .map_err(|e| e.to_string());
        };
        let (date, day_start) = deadlines.day_of(check.at).map_err(|e| e.to_string())?;
        let due: Vec<DueDeadline> = deadlines
            .on_day(date)
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|d| d.at == check.at)
            .collect();
        for deadline in &due {
            self.judge_deadline(&check.pipeline, &deadlines, deadline, day_start, report)
                .await?;
        }
        // A changed definition may have moved its deadlines: the next one after this check.
        self.schedule_after(&check.pipeline, &deadlines, check.at)
            .await?;
        self.ports
            .watch()
            .unschedule(check)
            .await
            .map_err(|e| e.to_string())
    }

    pub(super) async fn judge_deadline(
        &self,
        pipeline: &PipelineId,
        deadlines: &Deadlines,
        deadline: &DueDeadline,
        day_start: Timestamp,
        report: &mut WatchReport,
    ) -> Result<(), Failure> {
        let runs = self.day_runs(pipeline, deadline.kind, day_start).await?;
        if judge(deadline.kind, day_start, deadline.at, &runs) == Verdict::Met {
            return Ok(());
        }
        let (reasons, waiting_on) = self
            .reasons(pipeline, deadlines, deadline.kind, day_start)
            .await?;
        let alert = DeadlineAlert {
            pipeline: pipeline.clone(),
            kind: deadline.kind,
            day: deadline.day.clone(),
            due: deadline.at,
            due_local: format!(
                "{} {}",
                deadlines.local_time(deadline.at),
                deadlines.timezone
            ),
            raised_at: self.now,
            reasons,
            waiting_on,
            execution_arn: None,
        };
        if self
            .ports
            .watch()
            .raise(&alert)
            .await
            .map_err(|e| e.to_string())?
        {
            self.announce(&alert).await?;
            report.raised.push(alert);
        }
        Ok(())
    }

    /// Runs of `pipeline` that may have started on the local day beginning at `day_start`.
    pub(super) async fn day_runs(
        &self,
        pipeline: &PipelineId,
        kind: DeadlineKind,
        day_start: Timestamp,
    ) -> Result<Vec<Run>, Failure> {
        self.ports
            .flow()
            .run_log
            .runs_since(
                pipeline,
                &statuses_for(kind),
                day_start.minus(Span(1)),
                self.settings.runs_per_day,
            )
            .await
            .map_err(|e| e.to_string())
    }

    pub(super) async fn reasons(
        &self,
        pipeline: &PipelineId,
        deadlines: &Deadlines,
        kind: DeadlineKind,
        day_start: Timestamp,
    ) -> Result<(Vec<String>, Vec<PipelineId>), Failure> {
        let today = self
            .day_runs(pipeline, DeadlineKind::LateStart, day_start)
            .await?;
        let today: Vec<Run> = today
            .into_iter()
            .filter(|r| r.started_at >= day_start)
            .collect();
        if kind == DeadlineKind::LateFinish && !today.is_empty() {
            return Ok((finish_reasons(&today, deadlines), Vec::new()));
        }
        let flow = self.ports.flow();
        let inspection = inspect_child(
            flow.registry,
            flow.run_log,
            flow.ledger,
            pipeline,
            // An aligned pipeline's deadline is for its runs of any key; the unaligned reading
            // explains what it waits for.
            None,
            self.now,
            &self.settings.flow,
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(match inspection {
            Some(inspection) => start_reasons(&inspection, deadlines),
            None => (Vec::new(), Vec::new()),
        })
    }
}
