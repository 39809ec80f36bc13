//! Child accounts' pipeline buses: [`TriggerBus`] over `events:PutEvents` on the bus ARN
//! (cross-account; the member account's bus policy admits the central account).
//!
//! PutEvents goes to one regional endpoint, and EventBridge documents cross-Region delivery only
//! as a rule target, not as a PutEvents to another Region's bus ARN. So a trigger for a child in
//! another Region is sent with a client for the bus's own Region, built on first use and kept.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_config::SdkConfig;
use aws_sdk_eventbridge::config::Region;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use baton_core::events::{PipelineTrigger, TRIGGER_DETAIL_TYPE, TRIGGER_SOURCE};
use baton_core::ports::{PublishError, TriggerBus};

use crate::aws_error::is_retryable_code;
use crate::sns::{classify, publish_error};

/// [`TriggerBus`] over EventBridge, one client per Region a bus lives in.
#[derive(Debug)]
pub struct EventBridgeTriggerBus {
    config: SdkConfig,
    home: Client,
    by_region: Mutex<HashMap<String, Client>>,
}

impl EventBridgeTriggerBus {
    /// Sends with `config`'s Region for buses there (and buses named without an ARN), and with
    /// the same settings in the bus's Region otherwise.
    pub fn new(config: &SdkConfig) -> EventBridgeTriggerBus {
        EventBridgeTriggerBus {
            config: config.clone(),
            home: Client::new(config),
            by_region: Mutex::new(HashMap::new()),
        }
    }

    /// The client for the Region of `bus_arn`.
    pub fn client_for(&self, bus_arn: &str) -> Client {
        let home_region = self.config.region().map(|r| r.as_ref());
        let Some(region) = region_of(bus_arn).filter(|r| Some(*r) != home_region) else {
            return self.home.clone();
        };
        // A poisoned lock only means another send panicked mid-insert; the map is still usable.
        let mut clients = self.by_region.lock().unwrap_or_else(|p| p.into_inner());
        clients
            .entry(region.to_owned())
            .or_insert_with(|| {
                let config = aws_sdk_eventbridge::config::Builder::from(&self.config)
                    .region(Region::new(region.to_owned()))
                    .build();
                Client::from_conf(config)
            })
            .clone()
    }
}

/// The Region of `arn:<partition>:events:<region>:<account>:event-bus/<name>`.
fn region_of(bus_arn: &str) -> Option<&str> {
    match bus_arn.splitn(6, ':').collect::<Vec<_>>().as_slice() {
        ["arn", _, "events", region, _, _] if !region.is_empty() => Some(region),
        _ => None,
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
            .client_for(bus_arn)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bus_is_reached_through_its_own_region() {
        let config = SdkConfig::builder()
            .region(Region::new("eu-west-1"))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let bus = EventBridgeTriggerBus::new(&config);
        let region = |arn: &str| bus.client_for(arn).config().region().map(|r| r.to_string());
        let west = "arn:aws:events:us-west-2:333333333333:event-bus/baton-pipelines";
        assert_eq!(region(west).as_deref(), Some("us-west-2"));
        assert_eq!(
            region("arn:aws:events:eu-west-1:333333333333:event-bus/b").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(region("baton-pipelines").as_deref(), Some("eu-west-1"));
        region(west);
        assert_eq!(bus.by_region.lock().unwrap().len(), 1, "built once, kept");
    }
}
