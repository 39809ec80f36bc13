//! The commands, one file per command group, and what they share: the stores read from the
//! central stack's tables, and how a PIPELINE argument is read.

pub mod deadlines;
pub mod dlq;
pub mod explain;
pub mod graph;
pub mod impact;
pub mod project;
pub mod runs;
pub mod validate;

use baton_adapters::{DynamoLedger, DynamoRegistry, DynamoRunLog};
use baton_core::{PipelineId, Span};

use crate::stack;
use crate::Failure;

/// The stores, read-only, from the same configuration as the functions.
pub struct Stores {
    pub dynamo: aws_sdk_dynamodb::Client,
    pub registry: DynamoRegistry,
    pub run_log: DynamoRunLog,
    pub ledger: DynamoLedger,
    pub region: String,
}

pub async fn stores(source: &stack::Source) -> Result<Stores, Failure> {
    let (aws, tables) = stack::locate(source).await?;
    let region = aws.region().map(|r| r.to_string()).ok_or_else(|| {
        Failure::env("no AWS region configured: set AWS_REGION (or a profile with a region)")
    })?;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    Ok(Stores {
        registry: DynamoRegistry::new(dynamo.clone(), &tables.registry),
        // Read-only here: the retention only matters for writes.
        run_log: DynamoRunLog::new(dynamo.clone(), &tables.runs, Span::DAY),
        ledger: DynamoLedger::new(dynamo.clone(), &tables.ledger),
        dynamo,
        region,
    })
}

pub fn pipeline_arg(text: &str, region: &str) -> Result<PipelineId, Failure> {
    let parsed = if text.starts_with("arn:") {
        PipelineId::from_state_machine_arn(text)
    } else {
        match text.split(':').count() {
            3 => PipelineId::from_key(text),
            2 => {
                let (account, name) = text.split_once(':').unwrap_or_default();
                PipelineId::new(account, region, name)
            }
            _ => {
                return Err(Failure {
                    code: 2,
                    message: format!("`{text}` is not a pipeline: give a state machine ARN, account:region:name, or account:name"),
                })
            }
        }
    };
    parsed.map_err(|e| Failure {
        code: 2,
        message: e.to_string(),
    })
}

/// Every status: what the commands that show runs ask the run log for.
pub fn every_status() -> std::collections::BTreeSet<baton_core::RunStatus> {
    baton_core::RunStatus::ALL.into_iter().collect()
}
