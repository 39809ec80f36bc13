//! DynamoDB adapters for the storage ports. Table keys and access patterns are documented in
//! `docs/tables.md`; every table has a string partition key `pk` and a string sort key `sk`.
//! Every access is GetItem, Query or a conditional write; nothing here scans.

mod ledger;
mod registry;
pub mod run_log;
pub mod schema;
mod slack_threads;
mod watch;

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use baton_core::ports::{StoreError, StoreResult};

use crate::aws_error::{self, Failure};
use crate::config::{ConfigError, Env};

pub use ledger::DynamoLedger;
pub use ledger::PENDING_INDEX;
pub use registry::DynamoRegistry;
pub use run_log::{DynamoRunLog, RUNNING_INDEX};
pub use slack_threads::DynamoSlackThreads;
pub use watch::DynamoWatch;

/// The names of baton's tables, from `BATON_RUNS_TABLE`, `BATON_REGISTRY_TABLE`,
/// `BATON_LEDGER_TABLE` and `BATON_SLACK_THREADS_TABLE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableNames {
    pub runs: String,
    pub registry: String,
    pub ledger: String,
    pub slack_threads: String,
}

impl TableNames {
    pub fn from_env(env: &Env) -> Result<TableNames, ConfigError> {
        Ok(TableNames {
            runs: env.required("BATON_RUNS_TABLE")?,
            registry: env.required("BATON_REGISTRY_TABLE")?,
            ledger: env.required("BATON_LEDGER_TABLE")?,
            slack_threads: env.required("BATON_SLACK_THREADS_TABLE")?,
        })
    }

    /// Names sharing a prefix, as tests and the demo create them.
    pub fn with_prefix(prefix: &str) -> TableNames {
        TableNames {
            runs: format!("{prefix}-runs"),
            registry: format!("{prefix}-registry"),
            ledger: format!("{prefix}-ledger"),
            slack_threads: format!("{prefix}-slack-threads"),
        }
    }
}

pub(crate) type Item = HashMap<String, AttributeValue>;

/// One item by its key, read strongly consistent: every GetItem baton makes decides something
/// and must see the last write.
pub(crate) async fn get_item(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    key: Item,
    operation: &'static str,
) -> StoreResult<Option<Item>> {
    let got = client
        .get_item()
        .table_name(table)
        .set_key(Some(key))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| store_error(operation, table, e))?;
    Ok(got.item)
}

/// Every item of the partition `pk`, page after page, read strongly consistent (an eventually
/// consistent Query can miss an item written a moment ago).
pub(crate) async fn partition_items(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    pk: String,
    operation: &'static str,
) -> StoreResult<Vec<Item>> {
    let query = client
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", s(pk))
        .consistent_read(true);
    query_items(query, table, operation, None).await
}

/// Every item a Query answers, page after page (the SDK's paginator follows `LastEvaluatedKey`),
/// stopping once `limit` items are read (more may come in the last page; they are cut).
pub(crate) async fn query_items(
    query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    table: &str,
    operation: &'static str,
    limit: Option<usize>,
) -> StoreResult<Vec<Item>> {
    let mut pages = query.into_paginator().send();
    let mut items = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| store_error(operation, table, e))?;
        items.extend(page.items.unwrap_or_default());
        if limit.is_some_and(|l| items.len() >= l) {
            break;
        }
    }
    if let Some(l) = limit {
        items.truncate(l);
    }
    Ok(items)
}

/// BatchGetItem's limit of keys per request.
const BATCH_GET_KEYS: usize = 100;
/// How often a batch request is sent with what DynamoDB left unprocessed before it fails.
const BATCH_ATTEMPTS: u32 = 5;

/// The items of `keys` that exist, read with strongly consistent BatchGetItem requests of at most
/// 100 keys each, all in flight together; keys left unprocessed are asked for again after a short
/// exponential backoff, as DynamoDB asks. Duplicate keys are read once. Items come back in no
/// particular order: callers match them by key.
pub(crate) async fn batch_get_items(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    keys: Vec<Item>,
    operation: &'static str,
) -> StoreResult<Vec<Item>> {
    let mut unique: Vec<Item> = Vec::with_capacity(keys.len());
    for key in keys {
        if !unique.contains(&key) {
            unique.push(key);
        }
    }
    let chunks = unique
        .chunks(BATCH_GET_KEYS)
        .map(|chunk| batch_get_chunk(client, table, chunk.to_vec(), operation));
    let pages = futures::future::try_join_all(chunks).await?;
    Ok(pages.into_iter().flatten().collect())
}

async fn batch_get_chunk(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    keys: Vec<Item>,
    operation: &'static str,
) -> StoreResult<Vec<Item>> {
    until_processed(keys, (operation, table), |keys| async move {
        let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(|e| rejected(operation, table, e))?;
        let answer = client
            .batch_get_item()
            .request_items(table, request)
            .send()
            .await
            .map_err(|e| store_error(operation, table, e))?;
        let found = answer.responses.and_then(|mut r| r.remove(table));
        let left = answer.unprocessed_keys.and_then(|mut u| u.remove(table));
        Ok((
            found.unwrap_or_default(),
            left.map(|k| k.keys).unwrap_or_default(),
        ))
    })
    .await
}

/// Sends `pending` with `send`, then what DynamoDB left unprocessed (throttling, a response over
/// 16 MB) again after 50, 100, 200 and 400 ms, as DynamoDB asks; what is still left then fails
/// the request as retryable. Returns what every answer carried.
async fn until_processed<T, O, F, Fut>(
    mut pending: Vec<T>,
    (operation, table): (&'static str, &str),
    mut send: F,
) -> StoreResult<Vec<O>>
where
    F: FnMut(Vec<T>) -> Fut,
    Fut: std::future::Future<Output = StoreResult<(Vec<O>, Vec<T>)>>,
{
    let mut answered = Vec::new();
    for attempt in 0..BATCH_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(25 << attempt)).await;
        }
        let (got, left) = send(std::mem::take(&mut pending)).await?;
        answered.extend(got);
        pending = left;
        if pending.is_empty() {
            return Ok(answered);
        }
    }
    Err(StoreError::Unavailable {
        operation,
        table: table.to_owned(),
        message: format!(
            "{} keys or items still unprocessed after {BATCH_ATTEMPTS} attempts (throttled)",
            pending.len()
        ),
    })
}

fn rejected(operation: &'static str, table: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Rejected {
        operation,
        table: table.to_owned(),
        message: e.to_string(),
    }
}

/// BatchWriteItem's limit of items per request.
const BATCH_WRITE_ITEMS: usize = 25;

/// Puts `items` unconditionally with BatchWriteItem requests of 25, one after another; items left
/// unprocessed are sent again after a short exponential backoff. For bulk loading only: a batch
/// write has no conditions, so no rule can hold over it.
pub(crate) async fn batch_put_items(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    items: Vec<Item>,
    operation: &'static str,
) -> StoreResult<()> {
    let requests = items.into_iter().map(|item| {
        let put = aws_sdk_dynamodb::types::PutRequest::builder()
            .set_item(Some(item))
            .build()
            .map_err(|e| rejected(operation, table, e))?;
        Ok(aws_sdk_dynamodb::types::WriteRequest::builder()
            .put_request(put)
            .build())
    });
    let requests = requests.collect::<StoreResult<Vec<_>>>()?;
    for chunk in requests.chunks(BATCH_WRITE_ITEMS) {
        until_processed(chunk.to_vec(), (operation, table), |pending| async move {
            let answer = client
                .batch_write_item()
                .request_items(table, pending)
                .send()
                .await
                .map_err(|e| store_error(operation, table, e))?;
            let left = answer.unprocessed_items.and_then(|mut u| u.remove(table));
            Ok((Vec::<()>::new(), left.unwrap_or_default()))
        })
        .await?;
    }
    Ok(())
}

/// Sorts an SDK error into retryable or not, keeping the service's message.
pub(crate) fn store_error<E>(
    operation: &'static str,
    table: &str,
    err: SdkError<E, HttpResponse>,
) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    store_failure(operation, table, aws_error::sort(&err))
}

/// A sorted failure as the storage ports tell it.
fn store_failure(operation: &'static str, table: &str, failure: Failure) -> StoreError {
    let Failure { retryable, message } = failure;
    let table = table.to_owned();
    if retryable {
        StoreError::Unavailable {
            operation,
            table,
            message,
        }
    } else {
        StoreError::Rejected {
            operation,
            table,
            message,
        }
    }
}

/// Whether the error is a failed condition (the expected "someone got there first").
pub(crate) fn is_condition_failed<E: ProvideErrorMetadata>(
    err: &SdkError<E, HttpResponse>,
) -> bool {
    aws_error::has_code(err, "ConditionalCheckFailedException")
}

/// The outcome of a conditional write whose failed condition means the write is not needed
/// (another delivery, or an overlapping run, got there first): both are success.
pub(crate) fn unless_condition_failed<T, E>(
    result: Result<T, SdkError<E, HttpResponse>>,
    operation: &'static str,
    table: &str,
) -> StoreResult<()>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_condition_failed(&e) => Ok(()),
        Err(e) => Err(store_error(operation, table, e)),
    }
}

/// What a TransactWriteItems came to: `true` written; `false` cancelled because a condition
/// failed (another writer came first: a lost race, to be re-read and decided again). Cancelled
/// for any other reason (a conflicting transaction, throttling, validation, an item collection
/// too large) is an error naming the reasons, retryable only when every reason is.
pub(crate) fn transacted<T>(
    result: Result<T, SdkError<TransactWriteItemsError, HttpResponse>>,
    operation: &'static str,
    table: &str,
) -> StoreResult<bool> {
    let err = match result {
        Ok(_) => return Ok(true),
        Err(err) => err,
    };
    let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
        err.as_service_error()
    else {
        return Err(store_error(operation, table, err));
    };
    // One reason per item; `None` for the items that were not the cause.
    let reasons: Vec<(&str, &str)> = cancelled
        .cancellation_reasons()
        .iter()
        .filter_map(|r| r.code().map(|code| (code, r.message().unwrap_or(""))))
        .filter(|(code, _)| *code != "None")
        .collect();
    if reasons
        .iter()
        .any(|(code, _)| *code == "ConditionalCheckFailed")
    {
        return Ok(false);
    }
    let described: Vec<String> = reasons
        .iter()
        .map(|(code, message)| match message {
            &"" => (*code).to_owned(),
            message => format!("{code}: {message}"),
        })
        .collect();
    let message = format!(
        "the transaction was cancelled ({}); nothing was written",
        if described.is_empty() {
            "no reason given".to_owned()
        } else {
            described.join("; ")
        }
    );
    // No reason given: nothing says retrying cannot help.
    let retryable = reasons
        .iter()
        .all(|(code, _)| aws_error::is_retryable_code(code));
    Err(store_failure(
        operation,
        table,
        Failure { retryable, message },
    ))
}

/// What [`create_or_read`] found.
pub(crate) enum Creation {
    /// The item was written: its key was free.
    Created,
    /// An item already held the key; here as read back (empty if it vanished in between).
    Exists(Item),
}

/// Writes `item` only if no item holds its key (`pk`, `sk`); otherwise reads the item that does,
/// strongly consistent, only the `projection` attributes when given. `put` and `get` name the
/// two requests in errors.
pub(crate) async fn create_or_read(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    item: Item,
    projection: Option<&str>,
    (put, get): (&'static str, &'static str),
) -> Result<Creation, StoreError> {
    let item_key: Item = item
        .iter()
        .filter(|(name, _)| *name == "pk" || *name == "sk")
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let written = client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await;
    match written {
        Ok(_) => Ok(Creation::Created),
        Err(e) if is_condition_failed(&e) => {
            let got = client
                .get_item()
                .table_name(table)
                .set_key(Some(item_key))
                .consistent_read(true)
                .set_projection_expression(projection.map(str::to_owned))
                .send()
                .await
                .map_err(|e| store_error(get, table, e))?;
            Ok(Creation::Exists(got.item.unwrap_or_default()))
        }
        Err(e) => Err(store_error(put, table, e)),
    }
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// Reads attributes of a stored item, reporting which one is missing or malformed.
pub(crate) struct Reader<'a> {
    pub table: &'a str,
    pub item: &'a Item,
}

impl Reader<'_> {
    fn malformed(&self, detail: String) -> StoreError {
        let pk = self
            .item
            .get("pk")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        let sk = self
            .item
            .get("sk")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        StoreError::Malformed {
            table: self.table.to_owned(),
            key: format!("{pk} / {sk}"),
            detail,
        }
    }

    pub fn string(&self, name: &str) -> Result<String, StoreError> {
        self.opt_string(name)?
            .ok_or_else(|| self.malformed(format!("attribute `{name}` is missing")))
    }

    pub fn opt_string(&self, name: &str) -> Result<Option<String>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
            Some(_) => Err(self.malformed(format!("attribute `{name}` is not a string"))),
        }
    }

    pub fn number(&self, name: &str) -> Result<i64, StoreError> {
        self.opt_number(name)?
            .ok_or_else(|| self.malformed(format!("attribute `{name}` is missing")))
    }

    pub fn opt_number(&self, name: &str) -> Result<Option<i64>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(v)) => v.parse().map(Some).map_err(|_| {
                self.malformed(format!("attribute `{name}` is not a whole number: {v}"))
            }),
            Some(_) => Err(self.malformed(format!("attribute `{name}` is not a number"))),
        }
    }

    pub fn bool(&self, name: &str) -> bool {
        matches!(self.item.get(name), Some(AttributeValue::Bool(true)))
    }

    pub fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, StoreError> {
        let text = self.string(name)?;
        serde_json::from_str(&text).map_err(|e| {
            self.malformed(format!("attribute `{name}` is not the expected JSON: {e}"))
        })
    }

    pub fn string_list(&self, name: &str) -> Result<Vec<String>, StoreError> {
        match self.item.get(name) {
            None => Ok(Vec::new()),
            Some(AttributeValue::L(items)) => items
                .iter()
                .map(|v| {
                    v.as_s().cloned().map_err(|_| {
                        self.malformed(format!("attribute `{name}` holds a non-string"))
                    })
                })
                .collect(),
            Some(AttributeValue::Ss(items)) => Ok(items.clone()),
            Some(_) => Err(self.malformed(format!("attribute `{name}` is not a list"))),
        }
    }
}
