//! Wiring only: tracing, configuration, clients, the Lambda runtime.

use baton_adapters::{
    lambda, DynamoLedger, DynamoRegistry, DynamoRunLog, DynamoWatch, EventBridgeTriggerBus,
    RoleExecutionLookup, SnsRunEvents,
};
use baton_core::trigger::Ports;
use baton_core::watch::run::WatchPorts;
use baton_core::Span;
use watchdog::{Config, Watchdog};

/// How long an alert's key is kept (it stops a second alert for the same day and kind).
const ALERT_RETENTION: Span = Span::days(35);

// One thread: a function below 1,769 MB has at most one vCPU.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda::Error> {
    let (config, aws) = lambda::start(Config::from_env).await?;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    // The watchdog only reads runs; retention applies to writes.
    let run_log = DynamoRunLog::new(dynamo.clone(), &config.runs_table, Span::DAY);
    let registry = DynamoRegistry::new(dynamo.clone(), &config.registry_table);
    let ledger = DynamoLedger::new(dynamo.clone(), &config.ledger_table);
    let watch = DynamoWatch::new(dynamo, &config.watch_table, ALERT_RETENTION);
    let bus = EventBridgeTriggerBus::new(&aws);
    let events = SnsRunEvents::new(aws_sdk_sns::Client::new(&aws), &config.run_events_topic_arn);
    let lookup = RoleExecutionLookup::new(&aws, &config.read_only_role_name);
    let ports = WatchPorts {
        flow: Ports {
            run_log: &run_log,
            registry: &registry,
            ledger: &ledger,
            bus: &bus,
            events: &events,
        },
        watch: &watch,
        lookup: &lookup,
    };
    lambda::run(Watchdog {
        ports,
        settings: &config.watch,
    })
    .await
}
