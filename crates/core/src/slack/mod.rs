//! Slack, in one place: the messages baton posts ([`message`]), why Slack refused one
//! ([`error`]), the ledger of posts that must happen once ([`ledger`]), posting once under a
//! lease with retries ([`delivery`]), one thread per run and channel ([`thread`]), and the port
//! to Slack's Web API ([`SlackApi`]).

use std::future::Future;

pub mod delivery;
pub mod error;
pub mod ledger;
pub mod message;
pub mod thread;

use error::SlackError;
use message::SlackMessage;

/// A message Slack accepted: the channel's id (Slack answers with it even when posted by name;
/// `chat.update` needs it) and the message's `ts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posted {
    pub channel_id: String,
    pub ts: String,
}

/// Slack's Web API: `chat.postMessage` and `chat.update`, with the bot token.
pub trait SlackApi {
    /// Posts `message` to `channel` (a name or an id), in the thread `thread_ts` if given.
    fn post(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        message: &SlackMessage,
    ) -> impl Future<Output = Result<Posted, SlackError>> + Send;

    /// Replaces the message `ts` in `channel_id` (an id: `chat.update` does not take names).
    fn update(
        &self,
        channel_id: &str,
        ts: &str,
        message: &SlackMessage,
    ) -> impl Future<Output = Result<(), SlackError>> + Send;

    /// Readies the client for its first call (the bot token read), so that a caller can overlap
    /// it with other work; what fails here is left for the call itself to report. None by default.
    fn prepare(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}
