//! Wiring only: tracing, configuration, clients, the Lambda runtime.

use baton_adapters::{lambda, DynamoWatch, FlowAdapters, RoleExecutionLookup};
use baton_core::watch::run::WatchPorts;
use baton_core::Span;
use watchdog::{Config, Watchdog};

/// How long an alert's key is kept (it stops a second alert for the same day and kind).
const ALERT_RETENTION: Span = Span::days(35);

// One thread: a function below 1,769 MB has at most one vCPU.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda::Error> {
    let (config, aws) = lambda::start(Config::from_env).await?;
    let adapters = FlowAdapters::new(&aws, &config.targets);
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let watch = DynamoWatch::new(dynamo, &config.watch_table, ALERT_RETENTION);
    let lookup = RoleExecutionLookup::new(&aws, &config.read_only_role_name);
    let ports = WatchPorts {
        flow: adapters.ports(),
        watch: &watch,
        lookup: &lookup,
    };
    lambda::run(Watchdog {
        ports,
        settings: &config.watch,
    })
    .await
}
