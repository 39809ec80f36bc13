//! Lambda entry point: reads configuration once, builds the clients once, and hands each
//! invocation to the handler with the invocation's deadline.

use aws_sdk_dynamodb::Client;
use baton_adapters::{lambda, DynamoLedger, DynamoRegistry};
use cfn_responder::{Config, Responder};

// One thread: a Lambda function below 1,769 MB has at most one vCPU, so worker threads would only
// add start-up time and cross-thread wake-ups; requests still overlap on the one thread.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda::Error> {
    let (config, aws) = lambda::start(Config::from_env).await?;
    let dynamo = Client::new(&aws);
    let registry = DynamoRegistry::new(dynamo.clone(), &config.registry_table);
    let ledger = DynamoLedger::new(dynamo, &config.ledger_table);
    let http = match baton_adapters::http::client() {
        Ok(http) => http,
        Err(e) => {
            tracing::error!(error = %e, "building the HTTP client for response URLs");
            return Err(e.into());
        }
    };
    let responder = Responder::new(registry, ledger, config, http);
    lambda::run(responder).await
}
