//! The Slack thread ledger: which posts of a run's story exist, who is posting one right now, and
//! what was recorded after a post.
//!
//! Every post that must happen once is a [`PostSlot`]: a run's thread root in a channel, a
//! status's place in that thread, a trigger notice. A delivery *claims* a slot under a [`Lease`]
//! before it posts, *records* what it posted, and marks the slot *done* when its part of the story
//! is complete. A claim is granted when the slot is new, or when it is not done and the previous
//! holder's lease has ended: a holder that crashed between its post and its record leaves a slot
//! that the next delivery can finish, and never one that blocks the run's later statuses.
//!
//! The lease outlasts the holder's invocation by [`LEASE_MARGIN`] (see [`Lease::until_after`]), so a live holder is
//! never overtaken: two deliveries never post for one slot at once. Slack has no idempotency key,
//! so the one case no ordering closes is a post Slack accepted whose answer (or the holder) was
//! lost before its record: the next holder posts it again, once.

use std::future::Future;

use crate::ports::{Lease, StoreResult};
use crate::status::RunStatus;
use crate::time::{Span, Timestamp};

/// How long after its holder's invocation deadline a lease still holds: room for clocks that
/// disagree by a second or two between Lambda hosts.
pub const LEASE_MARGIN: Span = Span(5_000);

/// One post of a run's story that must happen once.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PostSlot {
    /// The run's thread root in a channel: its first announced status.
    Root {
        execution_arn: String,
        channel: String,
    },
    /// A status of the run in a channel: the root itself, or a reply under it (and, for a final
    /// status, the edit of the root).
    Status {
        execution_arn: String,
        status: RunStatus,
        channel: String,
    },
    /// The notice that baton started a pipeline, in a channel.
    TriggerNotice { trigger_id: String, channel: String },
    /// A part of a deadline alert's story in a channel.
    Alert {
        alert_key: String,
        part: AlertPart,
        channel: String,
    },
    /// The e-mail announcing a status of the run, published once to the pipeline's topic.
    Email {
        execution_arn: String,
        status: RunStatus,
    },
}

impl PostSlot {
    /// The slot's name in logs and errors.
    pub fn describe(&self) -> String {
        match self {
            PostSlot::Root {
                execution_arn,
                channel,
            } => format!("thread root of {execution_arn} in {channel}"),
            PostSlot::Status {
                execution_arn,
                status,
                channel,
            } => format!("{status} of {execution_arn} in {channel}"),
            PostSlot::TriggerNotice {
                trigger_id,
                channel,
            } => format!("notice of trigger {trigger_id} in {channel}"),
            PostSlot::Alert {
                alert_key,
                part,
                channel,
            } => format!("{part} of alert {alert_key} in {channel}"),
            PostSlot::Email {
                execution_arn,
                status,
            } => format!("e-mail of {status} of {execution_arn}"),
        }
    }
}

/// The parts of a deadline alert's story, each posted once per channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AlertPart {
    /// The alert, in the late pipeline's channels.
    Root,
    /// The note to a blocking parent's owners, in its channels.
    Note,
    /// The follow-up, in the alert's thread.
    Reply,
}

impl AlertPart {
    /// The part's name in slot keys and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertPart::Root => "root",
            AlertPart::Note => "note",
            AlertPart::Reply => "reply",
        }
    }
}

impl std::fmt::Display for AlertPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a slot holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlotState {
    /// The posted message's `ts` (a root's is stored with its channel id).
    pub ts: Option<String>,
    /// For a root: the status its first post announced.
    pub shows: Option<RunStatus>,
}

/// The answer to a claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotClaim {
    /// This delivery holds the slot now; `state` is what an earlier holder recorded.
    Won(SlotState),
    /// The slot's part of the story is complete.
    Done(SlotState),
    /// Another delivery holds the slot until `until`.
    Held { until: Timestamp },
}

/// What a holder records after a post. Absent fields keep what is stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlotRecord {
    pub ts: Option<String>,
    pub shows: Option<RunStatus>,
    /// Completes the slot: no later claim is granted.
    pub done: bool,
}

impl SlotRecord {
    /// Only completes the slot.
    pub fn done() -> SlotRecord {
        SlotRecord {
            done: true,
            ..SlotRecord::default()
        }
    }
}

/// The thread ledger's storage: one conditional write per call.
pub trait SlackThreads {
    /// Claims `slot` for `lease.holder` when it has never been claimed, or is not done and its
    /// lease ended before `now` or is already the holder's (a repeated claim is granted again).
    /// Otherwise says whether it is done or held, and until when.
    fn claim(
        &self,
        slot: &PostSlot,
        lease: &Lease,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<SlotClaim>> + Send;

    /// Records what `holder` posted, only while it holds the slot; `false` when it no longer does
    /// (its lease ended and another delivery took the slot).
    fn record(
        &self,
        slot: &PostSlot,
        holder: &str,
        record: &SlotRecord,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Ends `holder`'s lease on a slot that is not done (its post failed), keeping what was
    /// recorded, so the next delivery can claim it at once.
    fn release(
        &self,
        slot: &PostSlot,
        holder: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_parts_keep_the_names_their_slots_are_stored_under() {
        let names: Vec<String> = [AlertPart::Root, AlertPart::Note, AlertPart::Reply]
            .iter()
            .map(|part| part.to_string())
            .collect();
        assert_eq!(names, ["root", "note", "reply"]);
        let slot = PostSlot::Alert {
            alert_key: "k".into(),
            part: AlertPart::Note,
            channel: "c".into(),
        };
        assert_eq!(slot.describe(), "note of alert k in c");
    }
}
