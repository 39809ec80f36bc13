//! One delivery to one channel: the thread protocol over the slot ledger
//! (`baton_core::slack::thread`).
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

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use baton_adapters::lambda::Deadline;
use baton_core::email::EmailTopics;
use baton_core::events::PipelineTrigger;
use baton_core::ports::Lease;
use baton_core::ports::{Registry, StoreError};
use baton_core::slack::error::SlackError;
use baton_core::slack::message::{self, FailureContext, SlackMessage};
use baton_core::slack::thread::{PostSlot, SlackThreads, SlotClaim, SlotRecord, SlotState};
use baton_core::slack::{Posted, SlackApi};
use baton_core::{Run, Timestamp};

use crate::{retrying, DeliveryError, Notifier, Outcome, DEADLINE_RESERVE};

/// How long to wait for another delivery that holds a slot to finish posting.
const CLAIM_WAIT: Duration = Duration::from_secs(5);
/// How often a held slot is looked at again while waiting.
const CLAIM_POLL: Duration = Duration::from_millis(200);

/// The thread root as stored: the channel's id (which `chat.update` needs) and the root's `ts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ThreadRoot {
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
}

/// A delivery's identity and time budget: its lease on every slot it claims.
pub(crate) struct Delivery {
    lease: Lease,
    deadline: Instant,
}

impl Delivery {
    /// A delivery ending at `deadline`; its leases outlast it (`Lease::until_after`).
    pub fn new(deadline: Instant) -> Delivery {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let now = Timestamp::now();
        let holder = format!(
            "{}-{}-{}",
            std::process::id(),
            now.millis(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Delivery {
            lease: Lease::until_after(
                holder,
                Deadline::from_instant(deadline).timestamp(),
                baton_core::slack::thread::LEASE_MARGIN,
            ),
            deadline,
        }
    }

    fn holder(&self) -> &str {
        &self.lease.holder
    }
}

/// What claiming a slot came to for this delivery.
pub(crate) enum Hold {
    /// This delivery holds the slot; what an earlier holder recorded.
    Mine(SlotState),
    /// The slot is done.
    Done(SlotState),
}

impl<R, T, S, E> Notifier<R, T, S, E>
where
    R: Registry + Sync,
    T: SlackThreads + Sync,
    S: SlackApi + Sync,
    E: EmailTopics + Sync,
{
    pub(crate) fn env(&self) -> Option<&str> {
        self.environment.as_deref()
    }

    /// Delivers status `run.status` to `channel`, once. `recovered`: the watchdog found the
    /// status in Step Functions; the messages say so.
    pub(crate) async fn deliver_status_to(
        &self,
        run: &Run,
        recovered: bool,
        failure: Option<&FailureContext>,
        channel: &str,
        delivery: &Delivery,
    ) -> Result<Outcome, DeliveryError> {
        let slot = PostSlot::Status {
            execution_arn: run.execution_arn.clone(),
            status: run.status,
            channel: channel.to_owned(),
        };
        let earlier = match self.hold(&slot, delivery).await? {
            Hold::Done(_) => return Ok(Outcome::AlreadyDelivered),
            Hold::Mine(state) => state,
        };
        let told = self
            .tell_status(run, recovered, failure, channel, &slot, earlier, delivery)
            .await;
        if told.is_err() {
            self.give_back(&slot, delivery).await;
        }
        told
    }

    /// With the status slot held: the root, or a reply and the root's edit; then S is done.
    #[allow(clippy::too_many_arguments)]
    async fn tell_status(
        &self,
        run: &Run,
        recovered: bool,
        failure: Option<&FailureContext>,
        channel: &str,
        slot: &PostSlot,
        earlier: SlotState,
        delivery: &Delivery,
    ) -> Result<Outcome, DeliveryError> {
        let root_slot = PostSlot::Root {
            execution_arn: run.execution_arn.clone(),
            channel: channel.to_owned(),
        };
        let root = match self.hold(&root_slot, delivery).await? {
            Hold::Mine(_) => {
                let posted = self
                    .post_claimed(
                        &root_slot,
                        channel,
                        None,
                        &noted(
                            message::root(run, failure).in_environment(self.env()),
                            recovered,
                        ),
                        delivery,
                    )
                    .await?;
                let root = ThreadRoot {
                    channel_id: posted.channel_id,
                    ts: posted.ts,
                };
                let record = SlotRecord {
                    ts: Some(root.encode()),
                    shows: Some(run.status),
                    done: true,
                };
                self.record(&root_slot, delivery, &record).await?;
                self.record(slot, delivery, &SlotRecord::done()).await?;
                return Ok(Outcome::Posted);
            }
            Hold::Done(state) if state.shows == Some(run.status) => {
                // The root announced S; an earlier holder died before marking S done.
                self.record(slot, delivery, &SlotRecord::done()).await?;
                return Ok(Outcome::AlreadyDelivered);
            }
            Hold::Done(state) => {
                let stored = state.ts.ok_or_else(|| StoreError::Malformed {
                    table: "slack threads".to_owned(),
                    key: root_slot.describe(),
                    detail: "the root is done but has no ts".to_owned(),
                })?;
                ThreadRoot::decode(&stored, channel)
            }
        };

        let mut outcome = Outcome::AlreadyDelivered;
        if earlier.ts.is_none() {
            let reply = noted(
                message::reply(run, failure).in_environment(self.env()),
                recovered,
            );
            let posted = self
                .post(channel, Some(&root.ts), &reply, delivery.deadline)
                .await?;
            let record = SlotRecord {
                ts: Some(posted.ts),
                ..SlotRecord::default()
            };
            self.record(slot, delivery, &record).await?;
            outcome = Outcome::Posted;
        }
        if run.status.is_final() {
            // The root shows the final status and duration (an edit is idempotent).
            let edited = noted(
                message::root(run, None).in_environment(self.env()),
                recovered,
            );
            retrying(delivery.deadline, || {
                self.slack.update(&root.channel_id, &root.ts, &edited)
            })
            .await?;
            outcome = Outcome::Posted;
        }
        self.record(slot, delivery, &SlotRecord::done()).await?;
        Ok(outcome)
    }

    /// Delivers the notice of `trigger` to `channel`, once.
    pub(crate) async fn deliver_trigger(
        &self,
        trigger: &PipelineTrigger,
        channel: &str,
        delivery: &Delivery,
    ) -> Result<Outcome, DeliveryError> {
        let slot = PostSlot::TriggerNotice {
            trigger_id: trigger.trigger_id.0.clone(),
            channel: channel.to_owned(),
        };
        let earlier = match self.hold(&slot, delivery).await? {
            Hold::Done(_) => return Ok(Outcome::AlreadyDelivered),
            Hold::Mine(state) => state,
        };
        let mut record = SlotRecord::done();
        let mut outcome = Outcome::AlreadyDelivered;
        if earlier.ts.is_none() {
            let notice = message::trigger_notice(trigger).in_environment(self.env());
            let posted = self
                .post_claimed(&slot, channel, None, &notice, delivery)
                .await?;
            record.ts = Some(posted.ts);
            outcome = Outcome::Posted;
        }
        self.record(&slot, delivery, &record).await?;
        Ok(outcome)
    }

    /// Claims `slot`, waiting a little while another delivery holds it.
    pub(crate) async fn hold(
        &self,
        slot: &PostSlot,
        delivery: &Delivery,
    ) -> Result<Hold, DeliveryError> {
        let until = (Instant::now() + CLAIM_WAIT).min(
            delivery
                .deadline
                .checked_sub(DEADLINE_RESERVE)
                .unwrap_or(delivery.deadline),
        );
        loop {
            match self
                .threads
                .claim(slot, &delivery.lease, Timestamp::now())
                .await?
            {
                SlotClaim::Won(state) => return Ok(Hold::Mine(state)),
                SlotClaim::Done(state) => return Ok(Hold::Done(state)),
                SlotClaim::Held { until: lease_end } if Instant::now() >= until => {
                    return Err(DeliveryError::Busy {
                        slot: slot.describe(),
                        until: lease_end,
                    });
                }
                SlotClaim::Held { .. } => tokio::time::sleep(CLAIM_POLL).await,
            }
        }
    }

    /// Posts for a slot this delivery holds; a failed post gives the slot back at once.
    pub(crate) async fn post_claimed(
        &self,
        slot: &PostSlot,
        channel: &str,
        thread_ts: Option<&str>,
        message: &SlackMessage,
        delivery: &Delivery,
    ) -> Result<Posted, DeliveryError> {
        match self
            .post(channel, thread_ts, message, delivery.deadline)
            .await
        {
            Ok(posted) => Ok(posted),
            Err(e) => {
                self.give_back(slot, delivery).await;
                Err(e.into())
            }
        }
    }

    /// Records after a post. A lost lease means another delivery took the slot after this one's
    /// lease ended; this post then stands beside its post (logged, nothing else to do).
    pub(crate) async fn record(
        &self,
        slot: &PostSlot,
        delivery: &Delivery,
        record: &SlotRecord,
    ) -> Result<(), DeliveryError> {
        if !self.threads.record(slot, delivery.holder(), record).await? {
            tracing::warn!(slot = %slot.describe(), "the slot's lease ended before its record; another delivery holds it now");
        }
        Ok(())
    }

    /// Releases a slot after a failure; a failed release only delays the retry until the lease ends.
    pub(crate) async fn give_back(&self, slot: &PostSlot, delivery: &Delivery) {
        if let Err(e) = self.threads.release(slot, delivery.holder()).await {
            tracing::warn!(slot = %slot.describe(), error = %e, "could not give the slot back; the next delivery takes it when the lease ends");
        }
    }

    /// Posts with retries; a message whose blocks Slack refuses is posted again as plain text.
    async fn post(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        message: &SlackMessage,
        deadline: Instant,
    ) -> Result<Posted, SlackError> {
        match retrying(deadline, || self.slack.post(channel, thread_ts, message)).await {
            Err(SlackError::Rejected { code, .. })
                if matches!(
                    code.as_str(),
                    "invalid_blocks" | "invalid_blocks_format" | "msg_too_long"
                ) =>
            {
                tracing::warn!(channel, error = %code, "Slack refused the blocks; posting the plain text");
                let plain = message.text_only();
                retrying(deadline, || self.slack.post(channel, thread_ts, &plain)).await
            }
            other => other,
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
    use super::*;

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
        let delivery = Delivery::new(deadline);
        let ends = Timestamp::now().plus(baton_core::Span(60_000));
        assert!(
            delivery.lease.until
                >= ends
                    .plus(baton_core::slack::thread::LEASE_MARGIN)
                    .minus(baton_core::Span(1_000))
        );
        assert_ne!(Delivery::new(deadline).lease.holder, delivery.lease.holder);
    }
}
