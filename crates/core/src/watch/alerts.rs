//! Alerts of one watchdog run: announcing a raised alert (to its pipeline's channels, and a note
//! to each parent it waits on), and following up open alerts once the run log shows what they
//! waited for.

use futures::stream::{self, StreamExt};

use super::run::FOLLOW_UP_EVERY;
use super::run::{Failure, WatchReport, WatchStores, Watcher};
use super::DeadlineWatch;
use super::{alert_key, judge, AlertEvent, AlertNews, DeadlineAlert, Verdict};
use crate::events::RunEvent;
use crate::ports::RunEvents;
use crate::time::Span;

impl<P: WatchStores> Watcher<'_, P> {
    /// Publishes an alert to its pipeline's channels and a note to each parent it waits on, then
    /// marks it announced (a crash before that publishes again: slack-notifier posts each once).
    pub(super) async fn announce(&self, alert: &DeadlineAlert) -> Result<(), Failure> {
        let events = self.ports.flow().events;
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
            .watch()
            .mark_announced(&alert.key())
            .await
            .map_err(|e| e.to_string())
    }

    /// Open alerts: announce those a crash left unannounced; follow up those the run log shows
    /// caught up, and close them.
    pub(super) async fn follow_up(&self, report: &mut WatchReport) -> Result<(), Failure> {
        let open = self
            .ports
            .watch()
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

    pub(super) async fn resolve(&self, alert: &DeadlineAlert) -> Result<bool, Failure> {
        let key = alert_key(&alert.pipeline, &alert.day, alert.kind);
        // A day after its deadline an alert stops waiting (the next day has its own): what
        // never happened by then is not followed up, and open alerts stay few.
        let expired = self.now > alert.due.plus(Span::DAY);
        let deadlines = self.deadlines_of(&alert.pipeline).await?;
        let Some(deadlines) = deadlines.filter(|_| !expired) else {
            self.ports
                .watch()
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
            .flow()
            .events
            .publish(&RunEvent::alert(&alert.pipeline, event))
            .await
            .map_err(|e| e.to_string())?;
        self.ports
            .watch()
            .close(&key)
            .await
            .map_err(|e| e.to_string())?;
        Ok(true)
    }
}
