//! One watchdog run at one instant, over the ports: schedule changed registrations, judge the
//! due checks, follow up open alerts, re-send pending triggers. Every step is idempotent (due
//! checks are re-read, alerts claimed once per key, triggers sent under their send lease), so
//! two overlapping runs, or a run retried by Lambda, do no harm.

use super::{
    alert_key, finish_reasons, judge, start_reasons, statuses_for, AlertEvent, AlertNews,
    DeadlineAlert, DeadlineInbox, DeadlineWatch, DueCheck, ExecutionLookup, PendingTriggers,
    RunningRuns, Verdict,
};
use futures::stream::{self, StreamExt};

use crate::deadlines::{DeadlineKind, Deadlines, DueDeadline};
use crate::events::RunEvent;
use crate::flow::{inspect_child, wake_child, ChildReport, FlowSettings, Invocation, Ports};
use crate::pipeline::PipelineId;
use crate::ports::{Ledger, Registry, RunEvents, RunLog, SendLease, TriggerBus};
use crate::run::Run;
use crate::time::{Span, Timestamp};

/// The watchdog's bounds, from its configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchSettings {
    pub flow: FlowSettings,
    /// Runs of a pipeline's day read to judge a deadline (newest first, per status).
    pub runs_per_day: usize,
    /// A trigger pending longer than this since its claim is re-sent (its sender had its chance:
    /// Lambda's own retries come after about one and two minutes).
    pub pending_grace: Span,
    /// At most this many pending triggers re-sent per run.
    pub pending_limit: usize,
    /// At most this many newly started runs looked at per run.
    pub runs_sighted: usize,
    /// A run the log shows RUNNING this long after its start (or its pipeline's `maxDuration`)
    /// is looked up in Step Functions, and again each such period while it runs.
    pub reconcile_after: Span,
}

impl WatchSettings {
    pub fn new(flow: FlowSettings) -> WatchSettings {
        WatchSettings {
            flow,
            runs_per_day: 100,
            pending_grace: Span::minutes(3),
            pending_limit: 100,
            runs_sighted: 1_000,
            reconcile_after: Span::hours(24),
        }
    }
}

/// What a run did, for its log line and for tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchReport {
    /// Pipelines whose next due check was (re)scheduled from the inbox.
    pub scheduled: Vec<PipelineId>,
    /// Due checks judged.
    pub checked: usize,
    /// Alerts raised by this run.
    pub raised: Vec<DeadlineAlert>,
    /// Keys of alerts this run followed up and closed.
    pub resolved: Vec<String>,
    /// Children whose pending trigger was re-sent (or found being sent).
    pub resent: Vec<ChildReport>,
    /// Final statuses recovered from Step Functions and recorded (their events never came).
    pub recovered: Vec<Run>,
    /// Read-only roles that refused, to log (once per account and day).
    pub refusals: Vec<String>,
    /// Accounts whose role refused in this run: not asked again until the next run.
    pub refused_accounts: std::collections::BTreeSet<String>,
    /// What failed; each is retried by the next run.
    pub errors: Vec<String>,
}

/// Everything the watchdog reaches.
pub struct WatchPorts<'a, L, R, G, B, E, W, X> {
    pub flow: Ports<'a, L, R, G, B, E>,
    pub watch: &'a W,
    /// Step Functions in the member accounts, through their read-only roles.
    pub lookup: &'a X,
}

/// One watchdog run at `invocation.now`.
pub async fn watch_once<L, R, G, B, E, W, X>(
    ports: &WatchPorts<'_, L, R, G, B, E, W, X>,
    invocation: &Invocation,
    settings: &WatchSettings,
) -> WatchReport
where
    L: RunLog + RunningRuns + Sync,
    R: Registry + DeadlineInbox + Sync,
    G: Ledger + SendLease + PendingTriggers + Sync,
    B: TriggerBus + Sync,
    E: RunEvents + Sync,
    W: DeadlineWatch + Sync,
    X: ExecutionLookup + Sync,
{
    let mut report = WatchReport::default();
    let watcher = Watcher {
        ports,
        settings,
        now: invocation.read_clock(),
    };
    if let Err(e) = watcher.schedule_changed(&mut report).await {
        report
            .errors
            .push(format!("reading the deadline inbox: {e}"));
    }
    if let Err(e) = watcher.sight_runs(&mut report).await {
        report
            .errors
            .push(format!("reading the running executions: {e}"));
    }
    if let Err(e) = watcher.due_checks(&mut report).await {
        report.errors.push(format!("reading the due checks: {e}"));
    }
    if let Err(e) = watcher.follow_up(&mut report).await {
        report.errors.push(format!("reading the open alerts: {e}"));
    }
    resend_pending(ports, invocation, settings, &mut report).await;
    report
}

/// How many times one UTC day's due checks are read in one run (each read judges what is due;
/// a judged check moves to its next deadline, two per day at most).
const CATCH_UP_ROUNDS: usize = 8;

/// A run's failure, as the report shows it.
pub(super) type Failure = String;

/// Open alerts are followed up on the minutes divisible by this (UTC).
pub const FOLLOW_UP_EVERY: i64 = 5;

pub(super) struct Watcher<'p, 'a, L, R, G, B, E, W, X> {
    pub(super) ports: &'p WatchPorts<'a, L, R, G, B, E, W, X>,
    pub(super) settings: &'p WatchSettings,
    pub(super) now: Timestamp,
}

impl<L, R, G, B, E, W, X> Watcher<'_, '_, L, R, G, B, E, W, X>
where
    L: RunLog + RunningRuns + Sync,
    R: Registry + DeadlineInbox + Sync,
    G: Ledger + SendLease + PendingTriggers + Sync,
    B: TriggerBus + Sync,
    E: RunEvents + Sync,
    W: DeadlineWatch + Sync,
    X: ExecutionLookup + Sync,
{
    /// Registrations written since the last run get their next due check.
    async fn schedule_changed(&self, report: &mut WatchReport) -> Result<(), Failure> {
        let changed = self
            .ports
            .flow
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
                    .flow
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
            .flow
            .registry
            .get(pipeline)
            .await
            .map_err(|e| e.to_string())?;
        Ok(registration.and_then(|r| r.definition.deadlines))
    }

    async fn schedule_after(
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
                .watch
                .schedule(&check)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Judges every due check from the watermark's day to today; moves the watermark to the
    /// first day that still holds a check (or today).
    async fn due_checks(&self, report: &mut WatchReport) -> Result<(), Failure> {
        let today = utc_day(self.now);
        let watermark = self
            .ports
            .watch
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
                    .watch
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
                .watch
                .advance_watermark(watermark.as_deref(), &new_mark)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// One due check: judge each deadline due at its instant, raise what was missed, schedule the
    /// next check, remove this one.
    async fn judge_check(&self, check: &DueCheck, report: &mut WatchReport) -> Result<(), Failure> {
        if let Some(execution_arn) = &check.execution_arn {
            // Every run is reconciled, whether its pipeline has deadlines (or a registration) or not.
            self.judge_run(check, execution_arn, report).await?;
            return self
                .ports
                .watch
                .unschedule(check)
                .await
                .map_err(|e| e.to_string());
        }
        let registration = self
            .ports
            .flow
            .registry
            .get(&check.pipeline)
            .await
            .map_err(|e| e.to_string())?;
        let Some(deadlines) = registration.and_then(|r| r.definition.deadlines) else {
            // Unregistered, or its deadlines removed: nothing to watch.
            return self
                .ports
                .watch
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
            .watch
            .unschedule(check)
            .await
            .map_err(|e| e.to_string())
    }

    async fn judge_deadline(
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

    /// Runs of `pipeline` that may have started on the local day beginning at `day_start`.
    async fn day_runs(
        &self,
        pipeline: &PipelineId,
        kind: DeadlineKind,
        day_start: Timestamp,
    ) -> Result<Vec<Run>, Failure> {
        self.ports
            .flow
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

    async fn reasons(
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
        let flow = &self.ports.flow;
        let inspection = inspect_child(
            flow.registry,
            flow.run_log,
            flow.ledger,
            pipeline,
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

    /// Publishes an alert to its pipeline's channels and a note to each parent it waits on, then
    /// marks it announced (a crash before that publishes again: slack-notifier posts each once).
    pub(super) async fn announce(&self, alert: &DeadlineAlert) -> Result<(), Failure> {
        let events = self.ports.flow.events;
        let raised = AlertEvent {
            alert: alert.clone(),
            news: AlertNews::Raised,
        };
        events
            .publish(&RunEvent::alert(&alert.pipeline, raised))
            .await
            .map_err(|e| e.to_string())?;
        for parent in &alert.waiting_on {
            let note = AlertEvent {
                alert: alert.clone(),
                news: AlertNews::WaitingOnYou {
                    parent: parent.clone(),
                },
            };
            events
                .publish(&RunEvent::alert(parent, note))
                .await
                .map_err(|e| e.to_string())?;
        }
        self.ports
            .watch
            .mark_announced(&alert.key())
            .await
            .map_err(|e| e.to_string())
    }

    /// Open alerts: announce those a crash left unannounced; follow up those the run log shows
    /// caught up, and close them.
    async fn follow_up(&self, report: &mut WatchReport) -> Result<(), Failure> {
        let open = self
            .ports
            .watch
            .open_alerts()
            .await
            .map_err(|e| e.to_string())?;
        // Open alerts are looked at every FOLLOW_UP_EVERY minutes: a reply says how late from
        // the run's own times, so it is exact whenever it comes, and the watchdog's requests per
        // run stay bounded by the alerts open (docs/watchdog.md, "Cost").
        let follow_up_now = (self.now.0 / Span::MINUTE.0) % FOLLOW_UP_EVERY == 0;
        // Each alert is independent and every write is conditional or idempotent, so several
        // are followed up at once: the run's duration is the store's latency times the alerts
        // open divided by the concurrency, not times the alerts open.
        let outcomes: Vec<(String, Result<bool, Failure>)> = stream::iter(open)
            .map(|open| async move {
                let key = open.alert.key();
                if !open.announced {
                    if let Err(e) = self.announce(&open.alert).await {
                        return (key, Err(e));
                    }
                }
                if !follow_up_now {
                    return (key, Ok(false));
                }
                (key, self.resolve(&open.alert).await)
            })
            .buffered(self.settings.flow.child_concurrency.max(1))
            .collect()
            .await;
        for (key, outcome) in outcomes {
            match outcome {
                Ok(true) => report.resolved.push(key),
                Ok(false) => {}
                Err(e) => report.errors.push(format!("alert {key}: {e}")),
            }
        }
        Ok(())
    }

    async fn resolve(&self, alert: &DeadlineAlert) -> Result<bool, Failure> {
        let key = alert_key(&alert.pipeline, &alert.day, alert.kind);
        // A day after its deadline an alert stops waiting (the next day has its own): what
        // never happened by then is not followed up, and open alerts stay few.
        let expired = self.now > alert.due.plus(Span::DAY);
        let deadlines = self.deadlines_of(&alert.pipeline).await?;
        let Some(deadlines) = deadlines.filter(|_| !expired) else {
            self.ports
                .watch
                .close(&key)
                .await
                .map_err(|e| e.to_string())?;
            return Ok(false);
        };
        let verdict = match &alert.execution_arn {
            Some(arn) => self.run_verdict(arn, alert.due).await?,
            None => {
                let (_, day_start) = deadlines.day_of(alert.due).map_err(|e| e.to_string())?;
                let runs = self
                    .day_runs(&alert.pipeline, alert.kind, day_start)
                    .await?;
                judge(alert.kind, day_start, alert.due, &runs)
            }
        };
        let (at, late_by, execution_name) = match verdict {
            Verdict::Missed => return Ok(false),
            // Its status arrived after the alert, but it was on time.
            Verdict::Met => (alert.due, Span(0), None),
            Verdict::Late {
                at,
                late_by,
                execution_name,
            } => (at, late_by, Some(execution_name)),
        };
        let news = AlertNews::Resolved {
            at,
            late_by,
            execution_name,
        };
        let event = AlertEvent {
            alert: alert.clone(),
            news,
        };
        self.ports
            .flow
            .events
            .publish(&RunEvent::alert(&alert.pipeline, event))
            .await
            .map_err(|e| e.to_string())?;
        self.ports
            .watch
            .close(&key)
            .await
            .map_err(|e| e.to_string())?;
        Ok(true)
    }
}

/// Re-sends every trigger pending longer than the grace, through the trigger flow (same id,
/// under its send lease), so a failed send never waits for the parent's next run.
async fn resend_pending<L, R, G, B, E, W, X>(
    ports: &WatchPorts<'_, L, R, G, B, E, W, X>,
    invocation: &Invocation,
    settings: &WatchSettings,
    report: &mut WatchReport,
) where
    L: RunLog + Sync,
    R: Registry + Sync,
    G: Ledger + SendLease + PendingTriggers + Sync,
    B: TriggerBus + Sync,
    E: RunEvents + Sync,
{
    let before = invocation.read_clock().minus(settings.pending_grace);
    let children = match ports
        .flow
        .ledger
        .pending_before(before, settings.pending_limit)
        .await
    {
        Ok(children) => children,
        Err(e) => {
            report
                .errors
                .push(format!("reading the pending triggers: {e}"));
            return;
        }
    };
    for child in children {
        let woken = wake_child(&ports.flow, &child, invocation, &settings.flow).await;
        if let Some(e) = &woken.error {
            report.errors.push(format!(
                "re-sending the pending trigger of {}: {e}",
                child.key()
            ));
        }
        report.resent.push(woken);
    }
}

/// The UTC day of `t`, `YYYY-MM-DD` (the due checks' partition).
pub fn utc_day(t: Timestamp) -> String {
    chrono::DateTime::from_timestamp_millis(t.0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn next_utc_day(day: &str) -> Option<String> {
    let date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    Some(date.succ_opt()?.format("%Y-%m-%d").to_string())
}
