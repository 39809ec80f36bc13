//! The thread protocol: one thread per run and channel, over the slot ledger
//! ([`super::ledger`]) and Slack's Web API.
//!
//! For a status S of a run, in a channel:
//! 1. claim the slot of S (done: nothing to do; held by another delivery: wait briefly, then let
//!    the event be retried);
//! 2. claim the run's root slot. Won: post the root announcing S, record its `ts` together with
//!    "shows S" in one write, then mark S done. Done: if the root shows S, S only needs marking
//!    done; otherwise
//! 3. reply with S in the thread unless an earlier holder of S recorded its reply, record the
//!    reply's `ts`, edit the root for a final status (an edit is idempotent), mark S done.
//!
//! Every write follows the Slack call it records, and every slot is claimed before its post: a
//! crash between any two steps leaves a slot that the next delivery (after the lease) finishes
//! from what was recorded. Only a post whose record was lost is made again, once.
//!
//! Trigger notices and deadline alerts are slots of their own ([`PostSlot::TriggerNotice`],
//! [`PostSlot::Alert`]), posted once each; an alert's follow-up replies in the alert's thread.

use super::delivery::{Delivery, DeliveryError, Hold, Outcome, Pause, Poster, Target};
use super::ledger::{AlertPart, PostSlot, SlackThreads, SlotRecord, SlotState};
use super::message::{self, FailureContext, SlackMessage};
use super::{Posted, SlackApi};
use crate::events::PipelineTrigger;
use crate::ports::StoreError;
use crate::run::Run;
use crate::watch::message::alert_message;
use crate::watch::{AlertEvent, AlertNews};

/// The thread root as stored: the channel's id (which `chat.update` needs) and the root's `ts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadRoot {
    pub channel_id: String,
    pub ts: String,
}

impl ThreadRoot {
    pub fn encode(&self) -> String {
        format!("{} {}", self.channel_id, self.ts)
    }

    /// Reads a stored root; a bare `ts` (no channel id) is taken to be in `channel`.
    pub fn decode(stored: &str, channel: &str) -> ThreadRoot {
        match stored.split_once(' ') {
            Some((id, ts)) => ThreadRoot {
                channel_id: id.to_owned(),
                ts: ts.to_owned(),
            },
            None => ThreadRoot {
                channel_id: channel.to_owned(),
                ts: stored.to_owned(),
            },
        }
    }

    /// The root a done root slot recorded.
    fn stored(slot: &PostSlot, state: SlotState, channel: &str) -> Result<ThreadRoot, StoreError> {
        let stored = state.ts.ok_or_else(|| StoreError::Malformed {
            table: "slack threads".to_owned(),
            key: slot.describe(),
            detail: "the root is done but has no ts".to_owned(),
        })?;
        Ok(ThreadRoot::decode(&stored, channel))
    }
}

impl From<Posted> for ThreadRoot {
    fn from(posted: Posted) -> ThreadRoot {
        ThreadRoot {
            channel_id: posted.channel_id,
            ts: posted.ts,
        }
    }
}

/// A status of a run to tell in one channel.
#[derive(Clone, Copy, Debug)]
pub struct StatusPost<'a> {
    pub run: &'a Run,
    /// The watchdog found the status in Step Functions; the messages say so.
    pub recovered: bool,
    pub failure: Option<&'a FailureContext>,
    pub channel: &'a str,
}

impl StatusPost<'_> {
    fn root_message(&self, failure: Option<&FailureContext>, env: Option<&str>) -> SlackMessage {
        noted(
            message::root(self.run, failure).in_environment(env),
            self.recovered,
        )
    }

    fn reply_message(&self, env: Option<&str>) -> SlackMessage {
        noted(
            message::reply(self.run, self.failure).in_environment(env),
            self.recovered,
        )
    }

    fn root_slot(&self) -> PostSlot {
        PostSlot::Root {
            execution_arn: self.run.execution_arn.clone(),
            channel: self.channel.to_owned(),
        }
    }
}

impl<T, S, P> Poster<'_, T, S, P>
where
    T: SlackThreads + Sync,
    S: SlackApi + Sync,
    P: Pause + Sync,
{
    /// Delivers the status of `post.run` to `post.channel`, once (see the module doc).
    pub async fn deliver_status(
        &self,
        post: &StatusPost<'_>,
        delivery: &Delivery,
    ) -> Result<Outcome, DeliveryError> {
        let slot = PostSlot::Status {
            execution_arn: post.run.execution_arn.clone(),
            status: post.run.status,
            channel: post.channel.to_owned(),
        };
        let earlier = match self.hold(&slot, delivery).await? {
            Hold::Done(_) => return Ok(Outcome::AlreadyDelivered),
            Hold::Mine(state) => state,
        };
        let told = self.tell_status(post, &slot, &earlier, delivery).await;
        if told.is_err() {
            self.give_back(&slot, delivery).await;
        }
        told
    }

    /// With the status slot held: the root, or a reply and the root's edit; then S is done.
    async fn tell_status(
        &self,
        post: &StatusPost<'_>,
        slot: &PostSlot,
        earlier: &SlotState,
        delivery: &Delivery,
    ) -> Result<Outcome, DeliveryError> {
        let root_slot = post.root_slot();
        let root = match self.hold(&root_slot, delivery).await? {
            Hold::Mine(_) => {
                self.post_root(post, &root_slot, delivery).await?;
                self.record(slot, delivery, &SlotRecord::done()).await?;
                return Ok(Outcome::Posted);
            }
            Hold::Done(state) if state.shows == Some(post.run.status) => {
                // The root announced S; an earlier holder died before marking S done.
                self.record(slot, delivery, &SlotRecord::done()).await?;
                return Ok(Outcome::AlreadyDelivered);
            }
            Hold::Done(state) => ThreadRoot::stored(&root_slot, state, post.channel)?,
        };
        let outcome = self
            .reply_and_edit(post, slot, earlier, &root, delivery)
            .await?;
        self.record(slot, delivery, &SlotRecord::done()).await?;
        Ok(outcome)
    }

    /// Posts the run's root announcing its status and records it, "shows S" with it.
    async fn post_root(
        &self,
        post: &StatusPost<'_>,
        root_slot: &PostSlot,
        delivery: &Delivery,
    ) -> Result<(), DeliveryError> {
        let target = Target {
            channel: post.channel,
            thread_ts: None,
        };
        let message = post.root_message(post.failure, self.environment);
        let posted = self
            .post_claimed(root_slot, target, &message, delivery)
            .await?;
        let record = SlotRecord {
            ts: Some(ThreadRoot::from(posted).encode()),
            shows: Some(post.run.status),
            done: true,
        };
        self.record(root_slot, delivery, &record).await
    }

    /// Replies with the status in the thread (unless an earlier holder did) and, for a final
    /// status, edits the root to show it.
    async fn reply_and_edit(
        &self,
        post: &StatusPost<'_>,
        slot: &PostSlot,
        earlier: &SlotState,
        root: &ThreadRoot,
        delivery: &Delivery,
    ) -> Result<Outcome, DeliveryError> {
        let mut outcome = Outcome::AlreadyDelivered;
        if earlier.ts.is_none() {
            let target = Target {
                channel: post.channel,
                thread_ts: Some(&root.ts),
            };
            let reply = post.reply_message(self.environment);
            let posted = self.post(target, &reply, delivery.deadline()).await?;
            let record = SlotRecord {
                ts: Some(posted.ts),
                ..SlotRecord::default()
            };
            self.record(slot, delivery, &record).await?;
            outcome = Outcome::Posted;
        }
        if post.run.status.is_final() {
            // The root shows the final status and duration (an edit is idempotent).
            let edited = post.root_message(None, self.environment);
            super::delivery::retrying(&self.pause, delivery.deadline(), || {
                self.slack.update(&root.channel_id, &root.ts, &edited)
            })
            .await?;
            outcome = Outcome::Posted;
        }
        Ok(outcome)
    }

    /// Delivers the notice of `trigger` to `channel`, once.
    pub async fn deliver_trigger_notice(
        &self,
        trigger: &PipelineTrigger,
        channel: &str,
        delivery: &Delivery,
    ) -> Result<Outcome, DeliveryError> {
        let slot = PostSlot::TriggerNotice {
            trigger_id: trigger.trigger_id.0.clone(),
            channel: channel.to_owned(),
        };
        let notice = message::trigger_notice(trigger).in_environment(self.environment);
        let target = Target {
            channel,
            thread_ts: None,
        };
        self.post_once(&slot, target, &notice, delivery, false)
            .await
    }

    /// Delivers one alert event to `channel`, once. `mention`: the late pipeline's
    /// `mentionOnFailure`, shown with the alert itself.
    pub async fn deliver_alert(
        &self,
        event: &AlertEvent,
        mention: Option<&str>,
        channel: &str,
        delivery: &Delivery,
    ) -> Result<Outcome, DeliveryError> {
        let alert_key = event.alert.key();
        let slot = |part: AlertPart| PostSlot::Alert {
            alert_key: alert_key.clone(),
            part,
            channel: channel.to_owned(),
        };
        let env = self.environment;
        let mut target = Target {
            channel,
            thread_ts: None,
        };
        match &event.news {
            AlertNews::Raised => {
                let message = alert_message(event, mention).in_environment(env);
                self.post_once(&slot(AlertPart::Root), target, &message, delivery, true)
                    .await
            }
            AlertNews::WaitingOnYou { .. } => {
                let message = alert_message(event, None).in_environment(env);
                self.post_once(&slot(AlertPart::Note), target, &message, delivery, false)
                    .await
            }
            AlertNews::Resolved { .. } => {
                let thread = self
                    .alert_thread(&slot(AlertPart::Root), channel, delivery)
                    .await?;
                let message = alert_message(event, None).in_environment(env);
                target.thread_ts = thread.as_ref().map(|root| root.ts.as_str());
                self.post_once(&slot(AlertPart::Reply), target, &message, delivery, false)
                    .await
            }
        }
    }

    /// The alert's root in `channel`, if it was posted there (a channel added after the alert
    /// has none: the follow-up is then a message of its own).
    async fn alert_thread(
        &self,
        root: &PostSlot,
        channel: &str,
        delivery: &Delivery,
    ) -> Result<Option<ThreadRoot>, DeliveryError> {
        match self.hold(root, delivery).await? {
            Hold::Done(state) => Ok(state.ts.map(|ts| ThreadRoot::decode(&ts, channel))),
            Hold::Mine(_) => {
                self.give_back(root, delivery).await;
                Ok(None)
            }
        }
    }
}

/// A recovered status says how baton learned it.
fn noted(m: SlackMessage, recovered: bool) -> SlackMessage {
    if recovered {
        message::recovered(m)
    } else {
        m
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::slack::ledger::LEASE_MARGIN;
    use crate::time::{Span, Timestamp};

    #[test]
    fn a_stored_root_keeps_the_channel_id_for_edits() {
        let root = ThreadRoot {
            channel_id: "C123".into(),
            ts: "1700000000.000100".into(),
        };
        assert_eq!(ThreadRoot::decode(&root.encode(), "alerts"), root);
        assert_eq!(ThreadRoot::decode("1.2", "C9").channel_id, "C9".to_owned());
    }

    #[test]
    fn a_delivery_lease_outlasts_its_deadline() {
        let deadline = Instant::now() + Duration::from_secs(60);
        let ends = Timestamp::now().plus(Span(60_000));
        let delivery = Delivery::new(deadline, ends);
        assert_eq!(delivery.lease().until, ends.plus(LEASE_MARGIN));
        assert_ne!(
            Delivery::new(deadline, ends).lease().holder,
            delivery.lease().holder
        );
    }
}
