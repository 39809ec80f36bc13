//! slack-notifier: tells a pipeline's owners, in the Slack channels they registered, what its runs
//! do, one thread per (run, channel), each (execution, status, channel) posted once.
//!
//! Each post that must happen once (a run's thread root in a channel, a status's reply in that
//! thread, a trigger notice) is a slot of the thread ledger (`baton_core::slack::ledger`), claimed
//! under a lease that outlasts the invocation before anything is posted; the protocol is core's
//! (`baton_core::slack::thread`), which says why a crash between any two steps neither loses nor
//! repeats a status. This crate wires it to the event, the registry and the e-mail topics.
//!
//! A failed post gives its claim back, so a redelivery can post it. Slack errors are sorted:
//! retryable ones are retried until shortly before the Lambda deadline; channel-level refusals
//! (`channel_not_found`, `not_in_channel`...) are logged and that channel skipped; a refused token
//! and exhausted retries fail the invocation after the other channels were served, so SNS/Lambda
//! retry it and the DLQ finally keeps it.

pub mod config;
mod email;

use std::time::{Duration, Instant};

use aws_lambda_events::event::sns::SnsEvent;
use baton_adapters::lambda::{Call, Deadline, Function, FunctionError};
use baton_core::definition::Notifications;
use baton_core::email::EmailTopics;
use baton_core::events::{AlertNotice, RunEvent, TriggerNotice};
use baton_core::graph::{blocked_by, load_downstream};
use baton_core::ports::Registry;
use baton_core::slack::delivery::{Delivery, DeliveryError, Pause, Poster};
use baton_core::slack::error::SlackError;
use baton_core::slack::ledger::SlackThreads;
use baton_core::slack::message::FailureContext;
use baton_core::slack::thread::StatusPost;
use baton_core::slack::SlackApi;
use baton_core::{PipelineId, Run, RunStatus};
use thiserror::Error;

pub use baton_core::slack::delivery::{Outcome, DEADLINE_RESERVE};
pub use config::Config;

/// How many pipelines of the dependency graph are read to list what a failure stops.
pub const DOWNSTREAM_LIMIT: usize = 200;

/// What the function needs, built once.
pub struct Notifier<R, T, S, E> {
    pub registry: R,
    pub threads: T,
    pub slack: S,
    /// Pipelines' own topics, for EMAIL targets.
    pub email: E,
    /// The baton environment named in every message (`BATON_ENVIRONMENT`).
    pub environment: Option<String>,
}

/// Why (part of) an invocation must be retried. The Lambda `errorType` says which.
#[derive(Debug, Error)]
pub enum NotifyError {
    #[error("{failed} of {total} Slack deliveries must be retried (the first: {first})")]
    Incomplete {
        failed: usize,
        total: usize,
        first: String,
    },
    #[error("SNS message {message_id} is not a baton RunEvent: {reason}")]
    Unreadable { message_id: String, reason: String },
}

impl FunctionError for NotifyError {
    fn kind(&self) -> &'static str {
        match self {
            NotifyError::Incomplete { .. } => "DeliveryIncomplete",
            NotifyError::Unreadable { .. } => "MalformedEvent",
        }
    }

    fn is_retryable(&self) -> bool {
        matches!(self, NotifyError::Incomplete { .. })
    }
}

impl<R, T, S, E> Function for Notifier<R, T, S, E>
where
    R: Registry + Sync,
    T: SlackThreads + Sync,
    S: SlackApi + Sync,
    E: EmailTopics + Sync,
{
    type Event = SnsEvent;
    type Output = ();
    type Error = NotifyError;

    async fn invoke(&self, event: SnsEvent, call: &Call) -> Result<(), NotifyError> {
        self.handle(&event, call.deadline.instant())
            .await
            .map(|_| ())
    }
}

/// A summary of an invocation, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub posted: usize,
    pub already_delivered: usize,
    pub refused: usize,
}

impl<R, T, S, E> Notifier<R, T, S, E>
where
    R: Registry + Sync,
    T: SlackThreads + Sync,
    S: SlackApi + Sync,
    E: EmailTopics + Sync,
{
    /// Handles one SNS batch. Every record and channel is served before an error is returned.
    pub async fn handle(&self, event: &SnsEvent, deadline: Instant) -> Result<Report, NotifyError> {
        let mut report = Report::default();
        let mut retry: Vec<String> = Vec::new();
        let mut total = 0;
        let mut unreadable = None;
        let delivery = Delivery::new(deadline, Deadline::from_instant(deadline).timestamp());
        for record in &event.records {
            let message_id = record.sns.message_id.clone();
            let run_event = match RunEvent::from_message(&record.sns.message) {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(message_id = %message_id, error = %e, "SNS message is not a RunEvent");
                    unreadable.get_or_insert(NotifyError::Unreadable {
                        message_id,
                        reason: e.problem,
                    });
                    continue;
                }
            };
            let results = self.deliver_event(&run_event, &delivery).await;
            for result in results {
                total += 1;
                match result {
                    Ok(Outcome::Posted) => report.posted += 1,
                    Ok(Outcome::AlreadyDelivered) => report.already_delivered += 1,
                    Ok(Outcome::Refused(_)) => report.refused += 1,
                    Err(e) => retry.push(e),
                }
            }
        }
        if let Some(first) = retry.first() {
            return Err(NotifyError::Incomplete {
                failed: retry.len(),
                total,
                first: first.clone(),
            });
        }
        if let Some(e) = unreadable {
            return Err(e);
        }
        Ok(report)
    }

    /// Delivers one event to each of its channels; an error is a message for the retry summary.
    async fn deliver_event(
        &self,
        event: &RunEvent,
        delivery: &Delivery,
    ) -> Vec<Result<Outcome, String>> {
        let pipeline = event.pipeline().id();
        // The bot token is read (on a cold start) while the registration is: one round trip
        // less before the first post.
        let (registration, ()) = tokio::join!(self.registry.get(&pipeline), self.slack.prepare());
        let notifications = match registration {
            Ok(Some(reg)) => reg.definition.notifications,
            Ok(None) => {
                tracing::info!(pipeline = %pipeline.key(), "pipeline is not registered; nothing to post");
                return Vec::new();
            }
            Err(e) => {
                tracing::error!(pipeline = %pipeline.key(), error = %e, "reading the registration failed");
                return vec![Err(e.to_string())];
            }
        };
        let Some(notifications) = notifications else {
            return Vec::new();
        };
        let channels = notifications.slack_channels();
        if channels.is_empty() && notifications.email_topic_arn.is_none() {
            return Vec::new();
        }
        match event {
            RunEvent::Status(status) => {
                let run = status.run();
                self.deliver_status(&run, status.recovered, &notifications, &channels, delivery)
                    .await
            }
            RunEvent::Alert(AlertNotice { alert, .. }) => {
                // Only the alert itself carries the owners' mention, in their own channels.
                let mention = match alert.news {
                    baton_core::watch::AlertNews::Raised => {
                        notifications.mention_on_failure.as_deref()
                    }
                    _ => None,
                };
                let mut out = Vec::new();
                for channel in &channels {
                    let result = self
                        .poster()
                        .deliver_alert(alert, mention, channel, delivery)
                        .await;
                    out.push(self.settle(&pipeline, None, channel, result));
                }
                out
            }
            RunEvent::Trigger(TriggerNotice { trigger, .. }) => {
                // A trigger notice announces a start: shown where RUNNING would be.
                if !notifications.kind.announces(RunStatus::Running) {
                    return Vec::new();
                }
                let mut out = Vec::new();
                for channel in &channels {
                    let result = self
                        .poster()
                        .deliver_trigger_notice(trigger, channel, delivery)
                        .await;
                    out.push(self.settle(&pipeline, None, channel, result));
                }
                out
            }
        }
    }

    async fn deliver_status(
        &self,
        run: &Run,
        recovered: bool,
        notifications: &Notifications,
        channels: &[&str],
        delivery: &Delivery,
    ) -> Vec<Result<Outcome, String>> {
        if !notifications.kind.announces(run.status) {
            tracing::debug!(pipeline = %run.pipeline.key(), execution = %run.execution_arn, status = %run.status, "status not announced by the pipeline's notification type");
            return Vec::new();
        }
        let failure = match run.status.is_failure() {
            true => Some(self.failure_context(run, notifications).await),
            false => None,
        };
        let mut out = Vec::new();
        for channel in channels {
            let post = StatusPost {
                run,
                recovered,
                failure: failure.as_ref(),
                channel,
            };
            let result = self.poster().deliver_status(&post, delivery).await;
            out.push(self.settle(&run.pipeline, Some(run), channel, result));
        }
        if let Some(topic) = &notifications.email_topic_arn {
            let result = self
                .deliver_email(run, failure.as_ref(), topic, delivery)
                .await;
            out.push(self.settle(&run.pipeline, Some(run), topic, result));
        }
        out
    }

    /// Logs a channel's outcome; channel-level refusals become `Refused`, the rest stay errors.
    fn settle(
        &self,
        pipeline: &PipelineId,
        run: Option<&Run>,
        channel: &str,
        result: Result<Outcome, DeliveryError>,
    ) -> Result<Outcome, String> {
        let execution = run.map(|r| r.execution_arn.as_str()).unwrap_or_default();
        let status = run.map(|r| r.status.as_str()).unwrap_or("TRIGGER");
        match result {
            Ok(outcome) => {
                tracing::info!(pipeline = %pipeline.key(), execution, status, channel, outcome = ?outcome, "slack delivery");
                Ok(outcome)
            }
            Err(DeliveryError::Slack(e @ SlackError::Rejected { .. })) => {
                tracing::error!(pipeline = %pipeline.key(), execution, status, channel, error = %e, "Slack refused the message; not retried");
                Ok(Outcome::Refused(e.code().unwrap_or_default().to_owned()))
            }
            Err(DeliveryError::Email(e)) if !e.is_retryable() => {
                tracing::error!(pipeline = %pipeline.key(), execution, status, topic = channel, error = %e, "SNS refused the e-mail; not retried");
                Ok(Outcome::Refused(e.to_string()))
            }
            Err(e) => {
                tracing::error!(pipeline = %pipeline.key(), execution, status, channel, error = %e, "Slack delivery must be retried");
                Err(format!("{} in {channel}: {e}", pipeline.key()))
            }
        }
    }

    /// The thread protocol over this notifier's ledger and Slack client.
    pub(crate) fn poster(&self) -> Poster<'_, T, S, TokioPause> {
        Poster {
            threads: &self.threads,
            slack: &self.slack,
            pause: TokioPause,
            environment: self.environment.as_deref(),
        }
    }

    async fn failure_context(&self, run: &Run, notifications: &Notifications) -> FailureContext {
        let mut context = FailureContext {
            mention: notifications.mention_on_failure.clone(),
            ..FailureContext::default()
        };
        let direct = self.registry.children(&run.pipeline).await;
        let loaded = load_downstream(&self.registry, &run.pipeline, DOWNSTREAM_LIMIT).await;
        match (direct, loaded) {
            (Ok(direct), Ok((graph, truncated))) => {
                context.downstream = blocked_by(&run.pipeline, run.status, &direct, &graph);
                context.downstream_truncated = truncated;
            }
            (Err(e), _) | (_, Err(e)) => {
                // The failure is still worth announcing without its impact.
                tracing::warn!(pipeline = %run.pipeline.key(), execution = %run.execution_arn, error = %e, "could not read the downstream pipelines");
            }
        }
        context
    }
}

/// Waits with tokio's timer.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioPause;

impl Pause for TokioPause {
    async fn pause(&self, wait: Duration) {
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_core::slack::delivery::retrying;

    #[tokio::test]
    async fn retries_stop_before_the_deadline() {
        let mut calls = 0;
        let deadline = Instant::now() + DEADLINE_RESERVE + Duration::from_millis(600);
        let result: Result<(), SlackError> = retrying(&TokioPause, deadline, || {
            calls += 1;
            async {
                Err(SlackError::Unavailable {
                    method: "chat.postMessage",
                    detail: "HTTP 500".into(),
                })
            }
        })
        .await;
        assert!(result.is_err());
        // 250 ms then 500 ms would cross the deadline: two calls.
        assert_eq!(calls, 2);
    }
}
