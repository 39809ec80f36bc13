//! Wiring only: tracing, configuration, clients, the Lambda runtime.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use baton_adapters::{
    DynamoLedger, DynamoRegistry, DynamoRunLog, DynamoWatch, Env, EventBridgeTriggerBus,
    RoleExecutionLookup, SnsRunEvents,
};
use baton_core::trigger::{Invocation, Ports};
use baton_core::watch::run::WatchPorts;
use baton_core::{Span, Timestamp};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use watchdog::{handle, Config};

/// How long an alert's key is kept (it stops a second alert for the same day and kind).
const ALERT_RETENTION: Span = Span(35 * 86_400_000);

// One thread: a function below 1,769 MB has at most one vCPU.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    baton_adapters::logging::init();
    let config = Config::from_env(&Env::from_process())?;
    let aws = aws_config::load_from_env().await;
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
    let (ports, settings) = (&ports, &config.watch);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<EventBridgeEvent<serde_json::Value>>| async move {
            // The deadline bounds the send leases of re-sent triggers.
            let deadline = Timestamp(i64::try_from(event.context.deadline).unwrap_or(i64::MAX));
            let invocation = Invocation::new(
                event.context.request_id,
                Timestamp::now(),
                deadline,
                &settings.flow,
            )
            .with_clock(Timestamp::now);
            // Boxed: the handler's future is deep, and nested in `main`'s it passes rustc's
            // query depth limit on a build without an incremental cache.
            Box::pin(handle(ports, settings, &invocation)).await
        },
    ))
    .await
}
