//! The floor of the cold-start benchmark: a minimal Rust Lambda function, `lambda_runtime` and the
//! AWS SDK with their defaults, whose handler writes each Step Functions status change with one
//! conditional DynamoDB `PutItem`: the same work as the Python and Node.js baselines
//! (`crates/bench/python`, `crates/bench/node`) and the least any of baton's functions can cost.
//! No logging set-up, no configuration beyond the table's name, no other client.
//!
//! Reads `AWS_LAMBDA_RUNTIME_API` (through lambda_runtime), `AWS_ENDPOINT_URL` (the SDK honours
//! it) and `BATON_RUNS_TABLE`.

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let table = std::env::var("BATON_RUNS_TABLE").map_err(|_| "BATON_RUNS_TABLE is not set")?;
    let aws = aws_config::load_from_env().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let (table, dynamodb) = (&table, &dynamodb);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        Box::pin(record(dynamodb, table, &event.payload)).await
    }))
    .await
}

/// One status change, one conditional PutItem (the baselines' item: `run#<state machine>` and
/// `<stamp>#<execution>#<status>`).
async fn record(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
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
    dynamodb
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(format!("run#{machine}")))
        .item(
            "sk",
            AttributeValue::S(format!("{stamp:013}#{execution}#{status}")),
        )
        .item("status", AttributeValue::S(status.clone()))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await?;
    Ok(json!({ "recorded": execution, "status": status }))
}
