//! Wiring only: tracing, configuration, clients, the Lambda runtime.

use baton_adapters::{lambda, DynamoRegistry, DynamoRunLog, SnsRunEvents};
use run_log_writer::{Config, RunLogWriter};

// One thread: a Lambda function below 1,769 MB has at most one vCPU, so worker threads would only
// add start-up time and cross-thread wake-ups; requests still overlap on the one thread.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda::Error> {
    let (config, aws) = lambda::start(Config::from_env).await?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let run_log = DynamoRunLog::new(dynamodb.clone(), &config.runs_table, config.retention);
    // Read only: a run's `runKey` path is in its pipeline's registration.
    let registry = DynamoRegistry::new(dynamodb, &config.registry_table);
    let run_events =
        SnsRunEvents::new(aws_sdk_sns::Client::new(&aws), &config.run_events_topic_arn);
    lambda::run(RunLogWriter {
        run_log: &run_log,
        registry: &registry,
        run_events: &run_events,
    })
    .await
}
