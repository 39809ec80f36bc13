//! The central account's storage, created fresh in the emulator for one test or demo.

use aws_config::SdkConfig;
use baton_adapters::dynamo::schema::{create_tables, create_watch_table};
use baton_adapters::{
    DynamoLedger, DynamoRegistry, DynamoRunLog, DynamoSlackThreads, DynamoWatch, TableNames,
};
use baton_core::Span;

use crate::moto::{unique, Moto};

/// Uniquely named tables in the shared emulator, and adapters over them.
pub struct Central {
    pub config: SdkConfig,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub tables: TableNames,
    /// The watchdog's table (`BATON_WATCH_TABLE`).
    pub watch_table: String,
}

/// Run history kept in tests and the demo.
pub const RETENTION: Span = Span(90 * 86_400_000);

impl Central {
    /// New tables (prefix made unique) in `moto`.
    pub async fn create(moto: &Moto, prefix: &str) -> anyhow::Result<Central> {
        let config = moto.sdk_config().await;
        let dynamo = aws_sdk_dynamodb::Client::new(&config);
        let tables = TableNames::with_prefix(&unique(prefix));
        create_tables(&dynamo, &tables).await?;
        let watch_table = format!("{}-watch", tables.runs.trim_end_matches("-runs"));
        create_watch_table(&dynamo, &watch_table).await?;
        Ok(Central {
            config,
            dynamo,
            tables,
            watch_table,
        })
    }

    /// New tables in the process-wide shared emulator.
    pub async fn shared(prefix: &str) -> Central {
        match Central::create(Moto::shared(), prefix).await {
            Ok(c) => c,
            Err(e) => panic!("creating tables in the emulator: {e:#}"),
        }
    }

    pub fn run_log(&self) -> DynamoRunLog {
        DynamoRunLog::new(self.dynamo.clone(), &self.tables.runs, RETENTION)
    }

    pub fn registry(&self) -> DynamoRegistry {
        DynamoRegistry::new(self.dynamo.clone(), &self.tables.registry)
    }

    pub fn ledger(&self) -> DynamoLedger {
        DynamoLedger::new(self.dynamo.clone(), &self.tables.ledger)
    }

    pub fn watch(&self) -> DynamoWatch {
        DynamoWatch::new(self.dynamo.clone(), &self.watch_table, RETENTION)
    }

    pub fn slack_threads(&self) -> DynamoSlackThreads {
        DynamoSlackThreads::new(self.dynamo.clone(), &self.tables.slack_threads, RETENTION)
    }
}
