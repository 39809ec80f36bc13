//! EMAIL targets: a status of a run published once to the pipeline's own SNS topic (its e-mail
//! subscriptions deliver it), under the same leased slot as a Slack post: claimed before the
//! publish, done after it, given back when the publish fails.

use baton_core::email::{self, EmailTopics};
use baton_core::ports::Registry;
use baton_core::slack::delivery::{Delivery, DeliveryError, Hold, Outcome};
use baton_core::slack::ledger::{PostSlot, SlackThreads, SlotRecord};
use baton_core::slack::message::FailureContext;
use baton_core::slack::SlackApi;
use baton_core::Run;

use crate::Notifier;

impl<R, T, S, E> Notifier<R, T, S, E>
where
    R: Registry + Sync,
    T: SlackThreads + Sync,
    S: SlackApi + Sync,
    E: EmailTopics + Sync,
{
    /// Publishes the e-mail of `run.status` to `topic`, once per (execution, status). A publish
    /// whose answer was lost is made again by the retry (SNS standard topics have no
    /// deduplication): at most one duplicate e-mail, never none.
    pub(crate) async fn deliver_email(
        &self,
        run: &Run,
        failure: Option<&FailureContext>,
        topic: &str,
        delivery: &Delivery,
    ) -> Result<Outcome, DeliveryError> {
        let slot = PostSlot::Email {
            execution_arn: run.execution_arn.clone(),
            status: run.status,
        };
        let poster = self.poster();
        if let Hold::Done(_) = poster.hold(&slot, delivery).await? {
            return Ok(Outcome::AlreadyDelivered);
        }
        let message = email::email(run, failure, self.environment.as_deref());
        if let Err(e) = self.email.publish_email(topic, &message).await {
            poster.give_back(&slot, delivery).await;
            return Err(e.into());
        }
        poster.record(&slot, delivery, &SlotRecord::done()).await?;
        Ok(Outcome::Posted)
    }
}
