//! slack-notifier's Lambda entry point: wiring only.

use aws_lambda_events::event::sns::SnsEvent;
use baton_adapters::deadline::deadline_from_epoch_millis;
use baton_adapters::sns::SnsEmailTopics;
use baton_adapters::{DynamoRegistry, DynamoSlackThreads, Env, SecretsManagerToken, SlackWebApi};
use lambda_runtime::{service_fn, LambdaEvent};
use slack_notifier::{Config, Notifier, NotifyError, Report};

// One thread: a Lambda function below 1,769 MB has at most one vCPU, so worker threads would only
// add start-up time and cross-thread wake-ups; requests still overlap on the one thread.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    baton_adapters::logging::init();

    let config = Config::from_env(&Env::from_process())?;
    let aws = aws_config::load_from_env().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let tokens = SecretsManagerToken::new(
        aws_sdk_secretsmanager::Client::new(&aws),
        &config.token_secret_id,
    );
    let notifier = Notifier {
        registry: DynamoRegistry::new(dynamo.clone(), &config.tables.registry),
        threads: DynamoSlackThreads::new(dynamo, &config.tables.slack_threads, config.retention),
        slack: SlackWebApi::new(&config.slack_api_url, tokens)?,
        email: SnsEmailTopics::new(&aws),
        environment: config.environment.clone(),
    };
    let notifier = &notifier;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SnsEvent>| async move {
        let deadline = deadline_from_epoch_millis(event.context.deadline);
        // Boxed: nested in `main`'s future, the handler's passes rustc's query depth limit on a
        // build without an incremental cache.
        let report: Result<Report, NotifyError> =
            Box::pin(notifier.handle(&event.payload, deadline)).await;
        report.map(|_| ())
    }))
    .await
}
