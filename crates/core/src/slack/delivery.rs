//! Posting once under a lease: a delivery claims a slot of the thread ledger before it posts,
//! records what it posted, and gives the slot back when the post fails (see [`super::ledger`]).
//! Slack calls are retried while Slack says a retry can help, honouring Retry-After, until
//! shortly before the delivery's deadline (DESIGN "Slack").

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use thiserror::Error;

use super::error::SlackError;
use super::ledger::{PostSlot, SlackThreads, SlotClaim, SlotRecord, SlotState, LEASE_MARGIN};
use super::message::SlackMessage;
use super::{Posted, SlackApi};
use crate::ports::{Lease, PublishError, StoreError};
use crate::time::Timestamp;

/// Time kept free before the Lambda deadline for the bookkeeping after a post.
pub const DEADLINE_RESERVE: Duration = Duration::from_secs(2);
/// How long to wait for another delivery that holds a slot to finish posting.
const CLAIM_WAIT: Duration = Duration::from_secs(5);
/// How often a held slot is looked at again while waiting.
const CLAIM_POLL: Duration = Duration::from_millis(200);

/// Waiting between attempts: the function passes its runtime's timer.
pub trait Pause {
    fn pause(&self, wait: Duration) -> impl Future<Output = ()> + Send;
}

/// What one delivery to one channel came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Something was posted or edited.
    Posted,
    /// Already delivered (a redelivery, or another delivery did it).
    AlreadyDelivered,
    /// Slack refused it for good (channel-level); logged, not retried.
    Refused(String),
}

/// Why a delivery to one channel must be retried later.
#[derive(Debug, Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Slack(#[from] SlackError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Email(#[from] PublishError),
    #[error("another delivery holds the {slot} until {until} and has not finished posting")]
    Busy { slot: String, until: Timestamp },
}

/// A delivery's identity and time budget: its lease on every slot it claims.
pub struct Delivery {
    lease: Lease,
    deadline: Instant,
}

impl Delivery {
    /// A delivery ending at `deadline`, the instant `ends_at` on the clock leases are judged by
    /// (the function converts one to the other once); its leases outlast it
    /// (`Lease::until_after`).
    pub fn new(deadline: Instant, ends_at: Timestamp) -> Delivery {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let holder = format!(
            "{}-{}-{}",
            std::process::id(),
            Timestamp::now().millis(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Delivery {
            lease: Lease::until_after(holder, ends_at, LEASE_MARGIN),
            deadline,
        }
    }

    /// The lease this delivery claims slots under.
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// When the invocation ends.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    fn holder(&self) -> &str {
        &self.lease.holder
    }
}

/// What claiming a slot came to for this delivery.
pub enum Hold {
    /// This delivery holds the slot; what an earlier holder recorded.
    Mine(SlotState),
    /// The slot is done.
    Done(SlotState),
}

/// The ports a delivery posts through, and the environment named in every message.
pub struct Poster<'a, T, S, P> {
    pub threads: &'a T,
    pub slack: &'a S,
    pub pause: P,
    /// The baton environment (`BATON_ENVIRONMENT`).
    pub environment: Option<&'a str>,
}

impl<T, S, P> Poster<'_, T, S, P>
where
    T: SlackThreads + Sync,
    S: SlackApi + Sync,
    P: Pause + Sync,
{
    /// Claims `slot`, waiting a little while another delivery holds it.
    pub async fn hold(&self, slot: &PostSlot, delivery: &Delivery) -> Result<Hold, DeliveryError> {
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
                SlotClaim::Held { .. } => self.pause.pause(CLAIM_POLL).await,
            }
        }
    }

    /// Claims `slot`, posts `message` unless an earlier holder did, records it (`as_root`: the
    /// `ts` with the channel id, for replies and edits) and completes the slot.
    pub async fn post_once(
        &self,
        slot: &PostSlot,
        target: Target<'_>,
        message: &SlackMessage,
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
            let posted = self.post_claimed(slot, target, message, delivery).await?;
            record.ts = Some(if as_root {
                super::thread::ThreadRoot::from(posted).encode()
            } else {
                posted.ts
            });
            outcome = Outcome::Posted;
        }
        self.record(slot, delivery, &record).await?;
        Ok(outcome)
    }

    /// Posts for a slot this delivery holds; a failed post gives the slot back at once.
    pub async fn post_claimed(
        &self,
        slot: &PostSlot,
        target: Target<'_>,
        message: &SlackMessage,
        delivery: &Delivery,
    ) -> Result<Posted, DeliveryError> {
        match self.post(target, message, delivery.deadline).await {
            Ok(posted) => Ok(posted),
            Err(e) => {
                self.give_back(slot, delivery).await;
                Err(e.into())
            }
        }
    }

    /// Records after a post. A lost lease means another delivery took the slot after this one's
    /// lease ended; this post then stands beside its post (logged, nothing else to do).
    pub async fn record(
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

    /// Releases a slot after a failure; a failed release only delays the retry until the lease
    /// ends.
    pub async fn give_back(&self, slot: &PostSlot, delivery: &Delivery) {
        if let Err(e) = self.threads.release(slot, delivery.holder()).await {
            tracing::warn!(slot = %slot.describe(), error = %e, "could not give the slot back; the next delivery takes it when the lease ends");
        }
    }

    /// Posts with retries; a message whose blocks Slack refuses is posted again as plain text.
    pub async fn post(
        &self,
        target: Target<'_>,
        message: &SlackMessage,
        deadline: Instant,
    ) -> Result<Posted, SlackError> {
        let Target { channel, thread_ts } = target;
        let pause = &self.pause;
        match retrying(pause, deadline, || {
            self.slack.post(channel, thread_ts, message)
        })
        .await
        {
            Err(SlackError::Rejected { code, .. }) if refuses_blocks(&code) => {
                tracing::warn!(channel, error = %code, "Slack refused the blocks; posting the plain text");
                let plain = message.text_only();
                retrying(pause, deadline, || {
                    self.slack.post(channel, thread_ts, &plain)
                })
                .await
            }
            other => other,
        }
    }
}

/// Where a message goes: a channel (a name or an id), in the thread `thread_ts` if given.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    pub channel: &'a str,
    pub thread_ts: Option<&'a str>,
}

/// Slack refused the message's blocks (not the channel): the plain text may still go.
fn refuses_blocks(code: &str) -> bool {
    matches!(
        code,
        "invalid_blocks" | "invalid_blocks_format" | "msg_too_long"
    )
}

/// Calls `call` until it succeeds, fails for good, or the next wait would run into the deadline
/// (less [`DEADLINE_RESERVE`]). Honours Retry-After; otherwise backs off from 250 ms to 4 s.
pub async fn retrying<T, F, Fut, P>(
    pause: &P,
    deadline: Instant,
    mut call: F,
) -> Result<T, SlackError>
where
    P: Pause,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SlackError>>,
{
    let mut backoff = Duration::from_millis(250);
    loop {
        match call().await {
            Err(e) if e.is_retryable() => {
                let wait = e.retry_after().unwrap_or(backoff);
                if Instant::now() + wait + DEADLINE_RESERVE >= deadline {
                    return Err(e);
                }
                tracing::warn!(error = %e, wait_ms = wait.as_millis() as u64, "Slack call will be retried");
                pause.pause(wait).await;
                backoff = (backoff * 2).min(Duration::from_secs(4));
            }
            other => return other,
        }
    }
}
