//! slack-notifier's Lambda entry point: wiring only.

use baton_adapters::sns::SnsEmailTopics;
use baton_adapters::{
    lambda, DynamoRegistry, DynamoSlackThreads, SecretsManagerToken, SlackWebApi,
};
use slack_notifier::{Config, Notifier};

// One thread: a Lambda function below 1,769 MB has at most one vCPU, so worker threads would only
// add start-up time and cross-thread wake-ups; requests still overlap on the one thread.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda::Error> {
    let (config, aws) = lambda::start(Config::from_env).await?;
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
    lambda::run(notifier).await
}
