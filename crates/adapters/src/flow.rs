//! The trigger flow's adapters, for the functions that run the flow (trigger-manager, and the
//! watchdog re-sending pending triggers): where each lives, read from the environment, and the
//! clients built once at start-up.

use aws_config::SdkConfig;
use baton_core::trigger::Ports;
use baton_core::Span;

use crate::config::{ConfigError, Env};
use crate::{DynamoLedger, DynamoRegistry, DynamoRunLog, EventBridgeTriggerBus, SnsRunEvents};

/// Where the flow's stores and topic are: `BATON_RUNS_TABLE`, `BATON_REGISTRY_TABLE`,
/// `BATON_LEDGER_TABLE`, `BATON_RUN_EVENTS_TOPIC_ARN` (where trigger notices, and the
/// watchdog's alerts, go).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowTargets {
    pub runs_table: String,
    pub registry_table: String,
    pub ledger_table: String,
    pub run_events_topic_arn: String,
}

impl FlowTargets {
    pub fn from_env(env: &Env) -> Result<FlowTargets, ConfigError> {
        Ok(FlowTargets {
            runs_table: env.required("BATON_RUNS_TABLE")?,
            registry_table: env.required("BATON_REGISTRY_TABLE")?,
            ledger_table: env.required("BATON_LEDGER_TABLE")?,
            run_events_topic_arn: env.required("BATON_RUN_EVENTS_TOPIC_ARN")?,
        })
    }
}

/// The flow's ports over DynamoDB, EventBridge and SNS.
pub struct FlowAdapters {
    pub run_log: DynamoRunLog,
    pub registry: DynamoRegistry,
    pub ledger: DynamoLedger,
    pub bus: EventBridgeTriggerBus,
    pub events: SnsRunEvents,
}

impl FlowAdapters {
    pub fn new(aws: &SdkConfig, targets: &FlowTargets) -> FlowAdapters {
        let dynamo = aws_sdk_dynamodb::Client::new(aws);
        FlowAdapters {
            // The flow only reads runs; retention applies to writes.
            run_log: DynamoRunLog::new(dynamo.clone(), &targets.runs_table, Span::DAY),
            registry: DynamoRegistry::new(dynamo.clone(), &targets.registry_table),
            ledger: DynamoLedger::new(dynamo, &targets.ledger_table),
            bus: EventBridgeTriggerBus::new(aws),
            events: SnsRunEvents::new(aws_sdk_sns::Client::new(aws), &targets.run_events_topic_arn),
        }
    }

    pub fn ports(
        &self,
    ) -> Ports<'_, DynamoRunLog, DynamoRegistry, DynamoLedger, EventBridgeTriggerBus, SnsRunEvents>
    {
        Ports {
            run_log: &self.run_log,
            registry: &self.registry,
            ledger: &self.ledger,
            bus: &self.bus,
            events: &self.events,
        }
    }
}
