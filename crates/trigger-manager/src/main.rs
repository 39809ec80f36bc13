//! Wiring only: tracing, configuration, clients, the Lambda runtime.

use baton_adapters::{
    lambda, DynamoLedger, DynamoRegistry, DynamoRunLog, EventBridgeTriggerBus, SnsRunEvents,
};
use baton_core::trigger::Ports;
use baton_core::Span;
use trigger_manager::{Config, TriggerManager};

// One thread: a Lambda function below 1,769 MB has at most one vCPU, so worker threads would only
// add start-up time and cross-thread wake-ups; requests still overlap on the one thread.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda::Error> {
    let (config, aws) = lambda::start(Config::from_env).await?;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    // The trigger-manager only reads runs; retention applies to writes.
    let run_log = DynamoRunLog::new(dynamo.clone(), &config.runs_table, Span::DAY);
    let registry = DynamoRegistry::new(dynamo.clone(), &config.registry_table);
    let ledger = DynamoLedger::new(dynamo, &config.ledger_table);
    let bus = EventBridgeTriggerBus::new(&aws);
    let events = SnsRunEvents::new(aws_sdk_sns::Client::new(&aws), &config.run_events_topic_arn);
    lambda::run(TriggerManager {
        ports: Ports {
            run_log: &run_log,
            registry: &registry,
            ledger: &ledger,
            bus: &bus,
            events: &events,
        },
        settings: &config.flow,
    })
    .await
}
