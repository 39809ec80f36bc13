//! Wiring only: tracing, configuration, clients, the Lambda runtime.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use baton_adapters::{DynamoRegistry, DynamoRunLog, Env, SnsRunEvents};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use run_log_writer::{handle, Config};
use serde_json::Value;

// One thread: a Lambda function below 1,769 MB has at most one vCPU, so worker threads would only
// add start-up time and cross-thread wake-ups; requests still overlap on the one thread.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    baton_adapters::logging::init();
    let config = Config::from_env(&Env::from_process())?;
    let aws = aws_config::load_from_env().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let run_log = DynamoRunLog::new(dynamodb.clone(), &config.runs_table, config.retention);
    // Read only: a run's `runKey` path is in its pipeline's registration.
    let registry = DynamoRegistry::new(dynamodb, &config.registry_table);
    let run_events =
        SnsRunEvents::new(aws_sdk_sns::Client::new(&aws), &config.run_events_topic_arn);
    let (run_log, registry, run_events) = (&run_log, &registry, &run_events);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<EventBridgeEvent<Value>>| async move {
            // Boxed: nested in `main`'s future, the handler's passes rustc's query depth limit on a
            // build without an incremental cache.
            Box::pin(handle(event.payload, run_log, registry, run_events)).await
        },
    ))
    .await
}
