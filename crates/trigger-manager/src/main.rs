//! Wiring only: tracing, configuration, clients, the Lambda runtime.

use baton_adapters::{lambda, FlowAdapters};
use trigger_manager::{Config, TriggerManager};

// One thread: a Lambda function below 1,769 MB has at most one vCPU, so worker threads would only
// add start-up time and cross-thread wake-ups; requests still overlap on the one thread.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda::Error> {
    let (config, aws) = lambda::start(Config::from_env).await?;
    let adapters = FlowAdapters::new(&aws, &config.targets);
    lambda::run(TriggerManager {
        ports: adapters.ports(),
        settings: &config.flow,
    })
    .await
}
