//! Delivering a claimed or pending trigger: the send lease, the put on the child's bus, the
//! sent mark and the trigger notice.

use super::{FlowError, Invocation};
use crate::events::{PipelineTrigger, RunEvent};
use crate::ports::{Ledger, RunEvents, SendLease, TriggerBus};

/// What delivering a trigger did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Sent to the bus, marked sent and announced. `decide_again`: while it was pending, another
    /// delivery found it and asked this sender to decide the child again afterwards.
    Sent { decide_again: bool },
    /// Another delivery holds the send lease; it was asked to decide the child again once it has
    /// sent the trigger.
    SentElsewhere,
    /// The trigger stopped being pending before this delivery could take its lease (another
    /// delivery just sent it): this one decides again itself.
    NoLongerPending,
}

/// Sends a claimed or pending trigger to `bus_arn` once: take the send lease (unless `leased`:
/// this invocation's claim took it), put the event, mark it sent, publish the trigger notice. A
/// failed put gives the lease back and leaves the trigger pending for the next delivery.
pub async fn deliver<G, B, E>(
    ledger: &G,
    bus: &B,
    events: &E,
    bus_arn: &str,
    trigger: &PipelineTrigger,
    invocation: &Invocation,
    leased: bool,
) -> Result<Delivery, FlowError>
where
    G: Ledger + SendLease + Sync,
    B: TriggerBus + Sync,
    E: RunEvents + Sync,
{
    let child = trigger.target.id();
    let key = trigger.run_key.as_ref();
    let id = &trigger.trigger_id;
    let lease = &invocation.lease;
    // A fresh reading: another holder's lease may have ended since the invocation started.
    if !leased
        && !ledger
            .take_send_lease(&child, key, id, lease, invocation.read_clock())
            .await?
    {
        // A run this delivery was woken by may have come after the holder read the log: the
        // holder decides again (for the same key) after sending, or, if it already has, this
        // delivery does.
        return Ok(if ledger.ask_to_decide_again(&child, key, id).await? {
            Delivery::SentElsewhere
        } else {
            Delivery::NoLongerPending
        });
    }
    if let Err(sent) = bus.send(bus_arn, trigger).await {
        // Best effort: if giving the lease back fails too, it ends on its own.
        let _ = ledger
            .release_send_lease(&child, key, id, &lease.holder)
            .await;
        return Err(sent.into());
    }
    let decide_again = ledger.mark_sent(&child, key, id).await?;
    events.publish(&RunEvent::trigger_notice(trigger)).await?;
    Ok(Delivery::Sent { decide_again })
}
