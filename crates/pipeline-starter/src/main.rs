//! Wiring only: tracing, configuration, the Step Functions client, the Lambda runtime.

use aws_sdk_sfn::config::retry::RetryConfig;
use baton_adapters::deadline::deadline_from_epoch_millis;
use baton_adapters::{Env, StepFunctionsStarter};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use pipeline_starter::{handle, Config, TriggerEvent};

// One thread: a Lambda function below 1,769 MB has at most one vCPU.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    baton_adapters::logging::init();
    let config = Config::from_env(&Env::from_process())?;
    let aws = aws_config::load_from_env().await;
    // The handler retries with backoff up to the Lambda deadline; SDK retries on top of it would
    // only blur when to give up.
    let sfn = aws_sdk_sfn::config::Builder::from(&aws)
        .retry_config(RetryConfig::disabled())
        .build();
    let starter = StepFunctionsStarter::new(aws_sdk_sfn::Client::from_conf(sfn));
    let (starter, config) = (&starter, &config);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<TriggerEvent>| async move {
            let deadline = deadline_from_epoch_millis(event.context.deadline);
            // Boxed: nested in `main`'s future, the handler's passes rustc's query depth limit on a
            // build without an incremental cache.
            Box::pin(handle(event.payload, starter, config, deadline)).await
        },
    ))
    .await
}
