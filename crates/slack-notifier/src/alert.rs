//! Deadline alerts in Slack: the alert in the late pipeline's channels (with its owners'
//! mention), a note in each blocking parent's channels, and the follow-up as a reply in the
//! alert's thread. Each is a slot of the thread ledger, posted once per channel, like a run's
//! statuses (`delivery.rs`).

use baton_core::email::EmailTopics;
use baton_core::ports::Registry;
use baton_core::slack::thread::SlackThreads;
use baton_core::slack::thread::{PostSlot, SlotRecord};
use baton_core::slack::SlackApi;
use baton_core::watch::message::alert_message;
use baton_core::watch::{AlertEvent, AlertNews};

use crate::delivery::{Delivery, Hold, ThreadRoot};
use crate::{DeliveryError, Notifier, Outcome};

impl<R, T, S, E> Notifier<R, T, S, E>
where
    R: Registry + Sync,
    T: SlackThreads + Sync,
    S: SlackApi + Sync,
    E: EmailTopics + Sync,
{
    /// Delivers one alert event to `channel`, once. `mention`: the late pipeline's
    /// `mentionOnFailure`, shown with the alert itself.
    pub(crate) async fn deliver_alert(
        &self,
        event: &AlertEvent,
        mention: Option<&str>,
        channel: &str,
        delivery: &Delivery,
    ) -> Result<Outcome, DeliveryError> {
        let alert_key = event.alert.key();
        let slot = |part: &'static str| PostSlot::Alert {
            alert_key: alert_key.clone(),
            part,
            channel: channel.to_owned(),
        };
        match &event.news {
            AlertNews::Raised => {
                let message = alert_message(event, mention).in_environment(self.env());
                self.post_once(&slot("root"), channel, None, &message, delivery, true)
                    .await
            }
            AlertNews::WaitingOnYou { .. } => {
                let message = alert_message(event, None).in_environment(self.env());
                self.post_once(&slot("note"), channel, None, &message, delivery, false)
                    .await
            }
            AlertNews::Resolved { .. } => {
                let thread = self.alert_thread(&slot("root"), channel, delivery).await?;
                let message = alert_message(event, None).in_environment(self.env());
                let ts = thread.as_ref().map(|root| root.ts.as_str());
                self.post_once(&slot("reply"), channel, ts, &message, delivery, false)
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

    /// Claims `slot`, posts `message` unless an earlier holder did, records it and completes
    /// the slot. `as_root`: the `ts` is stored with the channel id, for replies.
    async fn post_once(
        &self,
        slot: &PostSlot,
        channel: &str,
        thread_ts: Option<&str>,
        message: &baton_core::slack::message::SlackMessage,
        delivery: &Delivery,
        as_root: bool,
    ) -> Result<Outcome, DeliveryError> {
        let earlier = match self.hold(slot, delivery).await? {
            Hold::Done(_) => return Ok(Outcome::AlreadyDelivered),
            Hold::Mine(state) => state,
        };
        let mut record = SlotRecord::done();
        let mut outcome = Outcome::AlreadyDelivered;
        if earlier.ts.is_none() {
            let posted = self
                .post_claimed(slot, channel, thread_ts, message, delivery)
                .await?;
            record.ts = Some(if as_root {
                ThreadRoot {
                    channel_id: posted.channel_id,
                    ts: posted.ts,
                }
                .encode()
            } else {
                posted.ts
            });
            outcome = Outcome::Posted;
        }
        self.record(slot, delivery, &record).await?;
        Ok(outcome)
    }
}
