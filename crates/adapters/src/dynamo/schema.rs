//! The tables' shapes, shared by tests, the demo and (by hand, kept equal) `template.yaml`:
//! every table has `pk` (S, partition) and `sk` (S, sort); runs and Slack threads expire through
//! the TTL attribute `expiresAt` (epoch seconds).

use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;

use super::TableNames;

/// The TTL attribute of tables whose items expire.
pub const TTL_ATTRIBUTE: &str = "expiresAt";

/// Creates one table with baton's key schema (on-demand), and TTL when `expires`.
pub async fn create_table(
    client: &Client,
    name: &str,
    expires: bool,
) -> Result<(), aws_sdk_dynamodb::Error> {
    keyed_table(client, name)?.send().await?;
    if expires {
        enable_ttl(client, name).await?;
    }
    Ok(())
}

/// Creates the runs table with its sparse index of running executions (partition
/// `runningIndex`, sort `runningSince`, keys only) and TTL, as `template.yaml` declares it.
pub async fn create_runs_table(client: &Client, name: &str) -> Result<(), aws_sdk_dynamodb::Error> {
    create_indexed(client, name, "running", ("runningIndex", "runningSince")).await?;
    enable_ttl(client, name).await
}

/// Creates a table with baton's keys and one keys-only global secondary index (a string
/// partition key and a number sort key).
async fn create_indexed(
    client: &Client,
    name: &str,
    index: &str,
    (partition, sort): (&str, &str),
) -> Result<(), aws_sdk_dynamodb::Error> {
    keyed_table(client, name)?
        .attribute_definitions(attribute(partition)?)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(sort)
                .attribute_type(ScalarAttributeType::N)
                .build()?,
        )
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index)
                .key_schema(key_element(partition, KeyType::Hash)?)
                .key_schema(key_element(sort, KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::KeysOnly)
                        .build(),
                )
                .build()?,
        )
        .send()
        .await?;
    Ok(())
}

/// A CreateTable request with baton's key schema (string `pk` and `sk`), on demand.
fn keyed_table(client: &Client, name: &str) -> Result<CreateTableFluentBuilder, BuildError> {
    Ok(client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk")?)
        .attribute_definitions(attribute("sk")?)
        .key_schema(key_element("pk", KeyType::Hash)?)
        .key_schema(key_element("sk", KeyType::Range)?))
}

async fn enable_ttl(client: &Client, name: &str) -> Result<(), aws_sdk_dynamodb::Error> {
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(TTL_ATTRIBUTE)
                .enabled(true)
                .build()?,
        )
        .send()
        .await?;
    Ok(())
}

/// Creates the ledger table with its sparse index of pending triggers (partition
/// `pendingIndex`, sort `pendingSince`, keys only), as `template.yaml` declares it.
pub async fn create_ledger_table(
    client: &Client,
    name: &str,
) -> Result<(), aws_sdk_dynamodb::Error> {
    create_indexed(
        client,
        name,
        super::PENDING_INDEX,
        ("pendingIndex", "pendingSince"),
    )
    .await
}

/// Creates the watchdog's watch table (its alert items expire).
pub async fn create_watch_table(
    client: &Client,
    name: &str,
) -> Result<(), aws_sdk_dynamodb::Error> {
    create_table(client, name, true).await
}

/// Creates all four tables.
pub async fn create_tables(
    client: &Client,
    names: &TableNames,
) -> Result<(), aws_sdk_dynamodb::Error> {
    create_runs_table(client, &names.runs).await?;
    create_table(client, &names.registry, false).await?;
    create_ledger_table(client, &names.ledger).await?;
    create_table(client, &names.slack_threads, true).await?;
    Ok(())
}

fn attribute(name: &str) -> Result<AttributeDefinition, BuildError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
}

fn key_element(name: &str, kind: KeyType) -> Result<KeySchemaElement, BuildError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
}
