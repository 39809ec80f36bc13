//! Wiring only: tracing, configuration, clients, the Lambda runtime.

use aws_lambda_events::sns::SnsEvent;
use baton_adapters::{
    DynamoLedger, DynamoRegistry, DynamoRunLog, Env, EventBridgeTriggerBus, SnsRunEvents,
};
use baton_core::trigger::{Invocation, Ports};
use baton_core::{Span, Timestamp};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use trigger_manager::{handle, Config};

// One thread: a Lambda function below 1,769 MB has at most one vCPU, so worker threads would only
// add start-up time and cross-thread wake-ups; requests still overlap on the one thread.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    baton_adapters::logging::init();
    let config = Config::from_env(&Env::from_process())?;
    let aws = aws_config::load_from_env().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    // The trigger-manager only reads runs; retention applies to writes.
    let run_log = DynamoRunLog::new(dynamo.clone(), &config.runs_table, Span::DAY);
    let registry = DynamoRegistry::new(dynamo.clone(), &config.registry_table);
    let ledger = DynamoLedger::new(dynamo, &config.ledger_table);
    let bus = EventBridgeTriggerBus::new(&aws);
    let events = SnsRunEvents::new(aws_sdk_sns::Client::new(&aws), &config.run_events_topic_arn);
    let ports = Ports {
        run_log: &run_log,
        registry: &registry,
        ledger: &ledger,
        bus: &bus,
        events: &events,
    };
    let (ports, settings) = (&ports, &config.flow);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SnsEvent>| async move {
        // The deadline (epoch ms) bounds this invocation's send leases; every decision and lease
        // check reads the wall clock afresh.
        let deadline = Timestamp(i64::try_from(event.context.deadline).unwrap_or(i64::MAX));
        let invocation = Invocation::new(
            event.context.request_id,
            Timestamp::now(),
            deadline,
            settings,
        )
        .with_clock(Timestamp::now);
        // Boxed: nested in `main`'s future, the handler's passes rustc's query depth limit on a
        // build without an incremental cache.
        Box::pin(handle(event.payload, ports, settings, &invocation)).await
    }))
    .await
}
