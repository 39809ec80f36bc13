//! The run-events topic and the pipeline buses in memory: one Publish or PutEvents request per
//! message, kept in order for whoever delivers them onwards (a simulation's subscriptions, a
//! benchmark's member accounts).

use std::sync::{Arc, Mutex};

use baton_core::ports::{PublishError, RunEvents, TriggerBus};
use baton_core::{PipelineTrigger, RunEvent};

use super::{Effect, Op, Requests};

/// Messages published and not yet taken, oldest first.
struct Outbox<T>(Mutex<Vec<T>>);

impl<T> Outbox<T> {
    fn push(&self, item: T) -> bool {
        self.0.lock().map(|mut v| v.push(item)).is_ok()
    }

    fn take(&self) -> Vec<T> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

fn failed(destination: &str, message: String) -> PublishError {
    PublishError::Unavailable {
        destination: destination.to_owned(),
        message,
    }
}

/// [`RunEvents`] in memory: the SNS run-events topic.
pub struct MemoryTopic {
    requests: Arc<Requests>,
    published: Outbox<RunEvent>,
}

impl MemoryTopic {
    pub fn new(requests: Arc<Requests>) -> MemoryTopic {
        MemoryTopic {
            requests,
            published: Outbox(Mutex::new(Vec::new())),
        }
    }

    /// Messages published since the last call, oldest first.
    pub fn take_published(&self) -> Vec<RunEvent> {
        self.published.take()
    }
}

impl RunEvents for MemoryTopic {
    async fn publish(&self, event: &RunEvent) -> Result<(), PublishError> {
        let destination = "run-events topic (memory)";
        let kept = self
            .requests
            .request(Op::Publish(event), || {
                (self.published.push(event.clone()), Effect::Written)
            })
            .await
            .map_err(|f| failed(destination, f.0))?;
        if kept {
            Ok(())
        } else {
            Err(failed(destination, "the outbox was poisoned".into()))
        }
    }
}

/// [`TriggerBus`] in memory: every member account's pipeline bus.
pub struct MemoryTriggerBus {
    requests: Arc<Requests>,
    sent: Outbox<(String, PipelineTrigger)>,
}

impl MemoryTriggerBus {
    pub fn new(requests: Arc<Requests>) -> MemoryTriggerBus {
        MemoryTriggerBus {
            requests,
            sent: Outbox(Mutex::new(Vec::new())),
        }
    }

    /// Triggers put on a bus since the last call, with the bus ARN, oldest first.
    pub fn take_sent(&self) -> Vec<(String, PipelineTrigger)> {
        self.sent.take()
    }
}

impl TriggerBus for MemoryTriggerBus {
    async fn send(&self, bus_arn: &str, trigger: &PipelineTrigger) -> Result<(), PublishError> {
        let kept = self
            .requests
            .request(Op::PutTrigger { bus_arn, trigger }, || {
                (
                    self.sent.push((bus_arn.to_owned(), trigger.clone())),
                    Effect::Written,
                )
            })
            .await
            .map_err(|f| failed(bus_arn, f.0))?;
        if kept {
            Ok(())
        } else {
            Err(failed(bus_arn, "the outbox was poisoned".into()))
        }
    }
}
