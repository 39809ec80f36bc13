//! Child accounts' pipeline buses: [`TriggerBus`] over `events:PutEvents` on the bus ARN
//! (cross-account; the member account's bus policy admits the central account).

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use baton_core::events::{PipelineTrigger, TRIGGER_DETAIL_TYPE, TRIGGER_SOURCE};
use baton_core::ports::{PublishError, TriggerBus};

use crate::sns::{classify, is_retryable_code, publish_error};

/// [`TriggerBus`] over EventBridge.
#[derive(Clone, Debug)]
pub struct EventBridgeTriggerBus {
    client: Client,
}

impl EventBridgeTriggerBus {
    pub fn new(client: Client) -> EventBridgeTriggerBus {
        EventBridgeTriggerBus { client }
    }
}

impl TriggerBus for EventBridgeTriggerBus {
    async fn send(&self, bus_arn: &str, trigger: &PipelineTrigger) -> Result<(), PublishError> {
        let detail = serde_json::to_string(trigger)
            .map_err(|e| classify(bus_arn, false, format!("serialising the trigger: {e}")))?;
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(bus_arn)
            .source(TRIGGER_SOURCE)
            .detail_type(TRIGGER_DETAIL_TYPE)
            .detail(detail)
            .resources(trigger.target.state_machine_arn.clone())
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| publish_error(bus_arn, e))?;
        // PutEvents answers 200 with per-entry failures.
        if out.failed_entry_count() > 0 {
            let failed = out.entries().iter().find(|e| e.error_code().is_some());
            let code = failed.and_then(|e| e.error_code()).unwrap_or("unknown");
            let message = failed
                .and_then(|e| e.error_message())
                .unwrap_or("no message");
            return Err(classify(
                bus_arn,
                is_retryable_code(code),
                format!("{code}: {message}"),
            ));
        }
        Ok(())
    }
}
