//! The floor of the cold-start benchmark: a minimal Rust Lambda function, `lambda_runtime` and the
//! AWS SDK with their defaults, whose handler writes each Step Functions status change with one
//! conditional DynamoDB `PutItem`: the same work as the Python and Node.js baselines
//! (`crates/bench/python`, `crates/bench/node`) and the least any of baton's functions can cost.
//! No logging set-up, no configuration beyond the table's name, no other client.
//!
//! Reads `AWS_LAMBDA_RUNTIME_API` (through lambda_runtime), `AWS_ENDPOINT_URL` (the SDK honours
//! it) and `BATON_RUNS_TABLE`. Two settings, for the bench's request-cost section only (unset,
//! the floor is as above):
//! - `BATON_FLOOR_REQUESTS`: how many conditional `PutItem`s each event makes, 0 to 10 (default
//!   1; each writes its own item), so the bench can tell the runtime loop's cost per event from a
//!   request's;
//! - `BATON_FLOOR_CLIENT`: `sdk` (default) or `signed-http`: the same `PutItem` sent by a client
//!   written for the measurement (SigV4 by `aws-sigv4`, hyper, serde_json, no retries, plain HTTP
//!   only; `signed_http.rs`), to weigh the AWS SDK's request pipeline against the least a request
//!   can cost.

mod signed_http;

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

/// How each event's `PutItem`s are sent.
enum Client {
    Sdk(aws_sdk_dynamodb::Client),
    SignedHttp(Box<signed_http::Client>),
}

/// The most `PutItem`s per event `BATON_FLOOR_REQUESTS` may ask for.
const MAX_REQUESTS: u32 = 10;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let table = std::env::var("BATON_RUNS_TABLE").map_err(|_| "BATON_RUNS_TABLE is not set")?;
    let requests = match setting("BATON_FLOOR_REQUESTS")? {
        None => 1,
        Some(n) => n
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= MAX_REQUESTS)
            .ok_or_else(|| {
                format!("BATON_FLOOR_REQUESTS is `{n}`; expected a whole number from 0 to {MAX_REQUESTS}")
            })?,
    };
    let client = match setting("BATON_FLOOR_CLIENT")?.as_deref() {
        None | Some("sdk") => {
            let aws = aws_config::load_from_env().await;
            Client::Sdk(aws_sdk_dynamodb::Client::new(&aws))
        }
        Some("signed-http") => Client::SignedHttp(Box::new(signed_http::Client::from_env()?)),
        Some(other) => {
            return Err(
                format!("BATON_FLOOR_CLIENT is `{other}`; expected `sdk` or `signed-http`").into(),
            )
        }
    };
    let (table, client) = (&table, &client);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        Box::pin(record(client, table, requests, &event.payload)).await
    }))
    .await
}

/// A setting from the environment: `None` when unset, an error when it is not text.
fn setting(name: &str) -> Result<Option<String>, Error> {
    match std::env::var(name) {
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(value)) => {
            Err(format!("{name} is not text: {value:?}").into())
        }
    }
}

/// One status change, `requests` conditional PutItems (the baselines' item: `run#<state machine>`
/// and `<stamp>#<execution>#<status>`; the second and later ones with `#<n>` after it).
async fn record(
    client: &Client,
    table: &str,
    requests: u32,
    event: &Value,
) -> Result<Value, Error> {
    let detail = &event["detail"];
    let field = |name: &str| {
        detail[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("the event's detail has no `{name}` string"))
    };
    let (machine, execution, status) = (
        field("stateMachineArn")?,
        field("executionArn")?,
        field("status")?,
    );
    let stamp = detail["stopDate"]
        .as_i64()
        .or_else(|| detail["startDate"].as_i64())
        .ok_or("the event's detail has neither `stopDate` nor `startDate` as a number")?;
    let pk = format!("run#{machine}");
    for n in 0..requests {
        let mut sk = format!("{stamp:013}#{execution}#{status}");
        if n > 0 {
            sk.push_str(&format!("#{n}"));
        }
        match client {
            Client::Sdk(dynamodb) => {
                dynamodb
                    .put_item()
                    .table_name(table)
                    .item("pk", AttributeValue::S(pk.clone()))
                    .item("sk", AttributeValue::S(sk))
                    .item("status", AttributeValue::S(status.clone()))
                    .condition_expression("attribute_not_exists(pk)")
                    .send()
                    .await?;
            }
            Client::SignedHttp(http) => http.put_item(table, &pk, &sk, &status).await?,
        }
    }
    Ok(json!({ "recorded": execution, "status": status }))
}
