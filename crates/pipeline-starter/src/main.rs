//! Wiring only: tracing, configuration, the Step Functions client, the Lambda runtime.

use aws_sdk_sfn::config::retry::RetryConfig;
use baton_adapters::{lambda, StepFunctionsStarter};
use pipeline_starter::{Config, PipelineStarter};

// One thread: a Lambda function below 1,769 MB has at most one vCPU.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda::Error> {
    let (config, aws) = lambda::start(Config::from_env).await?;
    // The handler retries with backoff up to the Lambda deadline; SDK retries on top of it would
    // only blur when to give up.
    let sfn = aws_sdk_sfn::config::Builder::from(&aws)
        .retry_config(RetryConfig::disabled())
        .build();
    let starter = StepFunctionsStarter::new(aws_sdk_sfn::Client::from_conf(sfn));
    lambda::run(PipelineStarter {
        starter: &starter,
        config: &config,
    })
    .await
}
