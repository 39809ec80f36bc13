//! watchdog: run every minute by an EventBridge schedule. Judges the deadlines due now and raises
//! an alert that says why for each one missed, follows up open alerts once the pipeline caught
//! up, and re-sends triggers left pending, all through core's rules (`baton_core::watch`).
//!
//! Every step is idempotent, so a retried or overlapping invocation does no harm; a step that
//! failed is retried by the next minute's run, and the invocation fails (`WatchIncomplete`) so
//! the failure shows in the function's error alarm (`WatchIncomplete.Retryable`).

use aws_lambda_events::eventbridge::EventBridgeEvent;
use baton_adapters::lambda::{Call, Function, FunctionError};
use baton_adapters::{ConfigError, Env, FlowTargets};
use baton_core::trigger::{FlowSettings, Invocation, Step};
use baton_core::watch::run::{watch_once, WatchReport, WatchSettings, WatchStores};
use baton_core::Span;
use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

/// The watchdog's configuration, read once at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The trigger flow's tables and the run-events topic, where alerts and trigger notices go.
    pub targets: FlowTargets,
    /// `BATON_WATCH_TABLE`: due checks and alerts.
    pub watch_table: String,
    /// `BATON_DEFAULT_PIPELINE_BUS` (name); `BATON_PENDING_GRACE_SECONDS` (default 180): a
    /// trigger pending longer than this since its claim is re-sent; `BATON_RECONCILE_AFTER_HOURS`
    /// (default 24): a run RUNNING this long (or past its `maxDuration`) is looked up in Step
    /// Functions; `BATON_READ_ONLY_ROLE_NAME` (default `baton-watchdog-read-only`): the role the
    /// member-account template creates.
    pub watch: WatchSettings,
    /// `BATON_READ_ONLY_ROLE_NAME`
    pub read_only_role_name: String,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        let flow = FlowSettings::with_default_bus(env.required("BATON_DEFAULT_PIPELINE_BUS")?);
        let mut watch = WatchSettings::new(flow);
        let grace = env.positive_or("BATON_PENDING_GRACE_SECONDS", 180)?;
        watch.pending_grace = Span(i64::try_from(grace).unwrap_or(i64::MAX / 1000) * 1000);
        let reconcile = env.positive_or("BATON_RECONCILE_AFTER_HOURS", 24)?;
        watch.reconcile_after = Span::hours(i64::try_from(reconcile).unwrap_or(24 * 365));
        Ok(Config {
            targets: FlowTargets::from_env(env)?,
            watch_table: env.required("BATON_WATCH_TABLE")?,
            read_only_role_name: env
                .optional("BATON_READ_ONLY_ROLE_NAME")
                .unwrap_or_else(|| baton_adapters::READ_ONLY_ROLE_NAME.to_owned()),
            watch,
        })
    }
}

/// Some steps of the run failed; the next run retries them.
#[derive(Debug, Error)]
#[error("{} step(s) of the watchdog run failed and are retried by the next run: {}", errors.len(), errors.join("; "))]
pub struct WatchIncomplete {
    pub errors: Vec<String>,
}

impl FunctionError for WatchIncomplete {
    fn kind(&self) -> &'static str {
        "WatchIncomplete"
    }

    /// The next minute's run retries every step.
    fn is_retryable(&self) -> bool {
        true
    }
}

/// What one run did: the function's response.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Watched {
    pub scheduled: usize,
    pub checked: usize,
    /// Keys of the alerts raised (`<pipeline key>#<day>#<kind>`).
    pub raised: Vec<String>,
    pub resolved: Vec<String>,
    /// Trigger ids re-sent.
    pub resent: Vec<String>,
    /// Executions whose lost final status was recovered (`<execution ARN> <STATUS>`).
    pub recovered: Vec<String>,
    /// Read-only roles that refused (each account once a day).
    pub refused: Vec<String>,
}

/// The function: core's watch rules over its ports (a
/// [`WatchPorts`](baton_core::watch::run::WatchPorts)).
pub struct Watchdog<'a, P> {
    pub ports: P,
    pub settings: &'a WatchSettings,
}

impl<P: WatchStores> Function for Watchdog<'_, P> {
    /// The schedule's event carries nothing the run needs.
    type Event = EventBridgeEvent<Value>;
    type Output = Watched;
    type Error = WatchIncomplete;

    async fn invoke(&self, _event: Self::Event, call: &Call) -> Result<Watched, WatchIncomplete> {
        self.handle(&call.invocation(&self.settings.flow)).await
    }
}

impl<P: WatchStores> Watchdog<'_, P> {
    /// One watchdog run at `invocation`'s time.
    pub async fn handle(&self, invocation: &Invocation) -> Result<Watched, WatchIncomplete> {
        watched(watch_once(&self.ports, invocation, self.settings).await)
    }
}

fn watched(report: WatchReport) -> Result<Watched, WatchIncomplete> {
    log(&report);
    if !report.errors.is_empty() {
        return Err(WatchIncomplete {
            errors: report.errors,
        });
    }
    Ok(Watched {
        scheduled: report.scheduled.len(),
        checked: report.checked,
        raised: report.raised.iter().map(|a| a.key()).collect(),
        resent: resent_ids(&report),
        recovered: report
            .recovered
            .iter()
            .map(|r| format!("{} {}", r.execution_arn, r.status))
            .collect(),
        refused: report.refusals,
        resolved: report.resolved,
    })
}

fn resent_ids(report: &WatchReport) -> Vec<String> {
    report
        .resent
        .iter()
        .flat_map(|r| &r.steps)
        .filter_map(|step| match step {
            Step::Delivered { trigger, .. } => Some(trigger.trigger_id.0.clone()),
            _ => None,
        })
        .collect()
}

/// One log event per decision, with the pipeline as a field.
fn log(report: &WatchReport) {
    for alert in &report.raised {
        tracing::warn!(pipeline = %alert.pipeline.key(), day = %alert.day, kind = alert.kind.as_str(), due = %alert.due, reasons = ?alert.reasons, "deadline missed; alert raised");
    }
    for key in &report.resolved {
        tracing::info!(alert = %key, "late pipeline caught up; follow-up sent");
    }
    for woken in &report.resent {
        tracing::info!(child = %woken.child.key(), steps = ?woken.steps, error = ?woken.error, "pending trigger swept");
    }
    for run in &report.recovered {
        tracing::warn!(pipeline = %run.pipeline.key(), execution = %run.execution_arn, status = %run.status, "status change event never arrived; recovered with DescribeExecution and recorded");
    }
    for refusal in &report.refusals {
        tracing::error!(refusal = %refusal, "a member account's read-only role refused; its runs are not reconciled (logged once per account and day)");
    }
    for error in &report.errors {
        tracing::error!(error = %error, "watchdog step failed; the next run retries it");
    }
    tracing::info!(
        scheduled = report.scheduled.len(),
        checked = report.checked,
        raised = report.raised.len(),
        resolved = report.resolved.len(),
        resent = report.resent.len(),
        "watchdog run"
    );
}
