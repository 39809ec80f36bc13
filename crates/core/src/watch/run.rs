//! One watchdog run at one instant, over the ports: schedule changed registrations, judge the
//! due checks, follow up open alerts, re-send pending triggers. Every step is idempotent (due
//! checks are re-read, alerts claimed once per key, triggers sent under their send lease), so
//! two overlapping runs, or a run retried by Lambda, do no harm.

use super::{
    DeadlineAlert, DeadlineInbox, DeadlineWatch, ExecutionLookup, PendingTriggers, RunningRuns,
};

use crate::pipeline::PipelineId;
use crate::ports::{Ledger, Registry, RunEvents, RunLog, SendLease, TriggerBus};
use crate::run::Run;
use crate::time::{Span, Timestamp};
use crate::trigger::{wake_child, ChildReport, FlowSettings, Invocation, Ports};

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

/// The ports of one watchdog run, each with what the watchdog needs of it: the bounds are
/// written here once, and every step takes a `P: WatchStores`.
pub trait WatchStores: Sync {
    type RunLog: RunLog + RunningRuns + Sync;
    type Registry: Registry + DeadlineInbox + Sync;
    type Ledger: Ledger + SendLease + PendingTriggers + Sync;
    type Bus: TriggerBus + Sync;
    type Events: RunEvents + Sync;
    type Watch: DeadlineWatch + Sync;
    type Lookup: ExecutionLookup + Sync;

    /// The trigger flow's ports: recording recovered statuses, re-sending pending triggers.
    fn flow(&self) -> &FlowOf<'_, Self>;
    fn watch(&self) -> &Self::Watch;
    fn lookup(&self) -> &Self::Lookup;
}

/// The trigger flow's ports of a [`WatchStores`].
pub type FlowOf<'a, P> = Ports<
    'a,
    <P as WatchStores>::RunLog,
    <P as WatchStores>::Registry,
    <P as WatchStores>::Ledger,
    <P as WatchStores>::Bus,
    <P as WatchStores>::Events,
>;

impl<L, R, G, B, E, W, X> WatchStores for WatchPorts<'_, L, R, G, B, E, W, X>
where
    L: RunLog + RunningRuns + Sync,
    R: Registry + DeadlineInbox + Sync,
    G: Ledger + SendLease + PendingTriggers + Sync,
    B: TriggerBus + Sync,
    E: RunEvents + Sync,
    W: DeadlineWatch + Sync,
    X: ExecutionLookup + Sync,
{
    type RunLog = L;
    type Registry = R;
    type Ledger = G;
    type Bus = B;
    type Events = E;
    type Watch = W;
    type Lookup = X;

    fn flow(&self) -> &Ports<'_, L, R, G, B, E> {
        &self.flow
    }

    fn watch(&self) -> &W {
        self.watch
    }

    fn lookup(&self) -> &X {
        self.lookup
    }
}

/// One watchdog run at `invocation.now`.
pub async fn watch_once<P: WatchStores>(
    ports: &P,
    invocation: &Invocation,
    settings: &WatchSettings,
) -> WatchReport {
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
pub(super) const CATCH_UP_ROUNDS: usize = 8;

/// A run's failure, as the report shows it.
pub(super) type Failure = String;

/// Open alerts are followed up on the minutes divisible by this (UTC).
pub const FOLLOW_UP_EVERY: i64 = 5;

pub(super) struct Watcher<'p, P> {
    pub(super) ports: &'p P,
    pub(super) settings: &'p WatchSettings,
    pub(super) now: Timestamp,
}

/// Re-sends every trigger pending longer than the grace, through the trigger flow (same id,
/// under its send lease), so a failed send never waits for the parent's next run.
async fn resend_pending<P: WatchStores>(
    ports: &P,
    invocation: &Invocation,
    settings: &WatchSettings,
    report: &mut WatchReport,
) {
    let before = invocation.read_clock().minus(settings.pending_grace);
    let children = match ports
        .flow()
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
    for (child, run_key) in children {
        let woken = wake_child(
            ports.flow(),
            &child,
            run_key.as_ref(),
            invocation,
            &settings.flow,
            None,
        )
        .await;
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

pub(super) fn next_utc_day(day: &str) -> Option<String> {
    let date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    Some(date.succ_opt()?.format("%Y-%m-%d").to_string())
}
