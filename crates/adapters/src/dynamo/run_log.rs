//! The run log in DynamoDB.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | a run at a status | `run#<account:region:name>` | `<STATUS>#<status time, 13 digits>#<execution name>` |
//! | an execution's latest state | `execution#<execution ARN>` | `latest` |
//! | a run with a run key, under its key | `runkey#<account:region:name>#<run key>` | as the run item |
//!
//! The status leads the sort key and the status time follows, so "runs of a pipeline with status
//! S newer than T, newest first" is one Query that reads only such runs: however many runs with
//! other statuses came after it, a qualifying run is in the first page. The key is derived from
//! the event alone, so a repeated event maps to the same item and `attribute_not_exists(pk)`
//! detects the first sighting.
//!
//! The latest state of a RUNNING execution also carries `runningIndex` and `runningSince`: the
//! sparse index [`RUNNING_INDEX`] holds exactly the executions still running, by start, for the
//! watchdog's `maxDuration` checks.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::Client;
use baton_core::ports::{Recorded, RunLog, StoreError, StoreResult};
use baton_core::{PipelineId, Run, RunKey, RunStatus, Span, Timestamp};

use super::{
    create_or_read, get_item, key, n, query_items, s, store_error, unless_condition_failed,
    Creation, Item, Reader,
};

/// The runs table's sparse index of running executions (partition `runningIndex`, sort
/// `runningSince`, the start): only latest-state items whose status is RUNNING carry them.
pub const RUNNING_INDEX: &str = "running";
const RUNNING_INDEX_KEY: &str = "running";

/// [`RunLog`] over the runs table.
#[derive(Clone, Debug)]
pub struct DynamoRunLog {
    client: Client,
    table: String,
    retention: Span,
}

/// The run log's keys, shared with the in-memory run log that mirrors this layout.
pub mod keys {
    use baton_core::{PipelineId, Run, RunKey, Timestamp};

    /// Final statuses outrank non-final ones by this much in the latest-state precedence number.
    pub const FINAL_RANK: i64 = 1 << 52;

    /// `run#<pipeline key>`
    pub fn run_pk(pipeline: &PipelineId) -> String {
        format!("run#{}", pipeline.key())
    }

    /// `runkey#<pipeline key>#<run key>`: the runs of one key of a pipeline.
    pub fn run_key_pk(pipeline: &PipelineId, key: &RunKey) -> String {
        format!("runkey#{}#{}", pipeline.key(), key)
    }

    /// A status time as the 13-digit epoch milliseconds that sort as text.
    pub fn sort_time(t: Timestamp) -> String {
        format!("{:013}", t.0.max(0))
    }

    /// `<STATUS>#<status time>#<execution name>`
    pub fn run_sk(run: &Run) -> String {
        format!(
            "{}#{}#{}",
            run.status,
            sort_time(run.status_time()),
            run.execution_name
        )
    }

    /// The latest-state precedence number: status time, final statuses above every RUNNING.
    pub fn rank(run: &Run) -> i64 {
        let (is_final, time) = run.precedence();
        time.0.max(0) + if is_final { FINAL_RANK } else { 0 }
    }
}

use keys::{rank, run_key_pk, run_pk, run_sk, sort_time};

impl DynamoRunLog {
    /// `retention`: how long run items live before DynamoDB's TTL removes them.
    pub fn new(client: Client, table: impl Into<String>, retention: Span) -> DynamoRunLog {
        DynamoRunLog {
            client,
            table: table.into(),
            retention,
        }
    }

    fn run_attributes(&self, run: &Run, item: &mut Item) {
        item.insert("pipeline".into(), s(run.pipeline.key()));
        item.insert("executionArn".into(), s(&run.execution_arn));
        item.insert("executionName".into(), s(&run.execution_name));
        item.insert("status".into(), s(run.status.as_str()));
        item.insert("startedAt".into(), n(run.started_at.0));
        if let Some(t) = run.stopped_at {
            item.insert("stoppedAt".into(), n(t.0));
        }
        for (name, value) in [
            ("error", &run.error),
            ("cause", &run.cause),
            ("triggerId", &run.trigger_id),
        ] {
            if let Some(v) = value {
                item.insert(name.into(), s(v));
            }
        }
        if let Some(k) = &run.run_key {
            item.insert("runKey".into(), s(k.as_str()));
        }
        let expires = run.status_time().plus(self.retention).0 / 1000;
        item.insert(super::schema::TTL_ATTRIBUTE.into(), n(expires));
    }

    fn read_run(&self, item: &Item) -> StoreResult<Run> {
        let r = Reader {
            table: &self.table,
            item,
        };
        let pipeline_key = r.string("pipeline")?;
        let pipeline = PipelineId::from_key(&pipeline_key).map_err(|e| StoreError::Malformed {
            table: self.table.clone(),
            key: pipeline_key.clone(),
            detail: e.to_string(),
        })?;
        let status_word = r.string("status")?;
        let status = RunStatus::parse(&status_word).ok_or_else(|| StoreError::Malformed {
            table: self.table.clone(),
            key: pipeline_key.clone(),
            detail: format!("unknown status `{status_word}`"),
        })?;
        Ok(Run {
            pipeline,
            execution_arn: r.string("executionArn")?,
            execution_name: r.string("executionName")?,
            status,
            started_at: Timestamp(r.number("startedAt")?),
            stopped_at: r.opt_number("stoppedAt")?.map(Timestamp),
            error: r.opt_string("error")?,
            cause: r.opt_string("cause")?,
            trigger_id: r.opt_string("triggerId")?,
            run_key: r.opt_string("runKey")?.map(RunKey),
        })
    }

    /// The run's item under its key, put if absent: its content is the run's, fixed by the event,
    /// so a repeat finds it there, and a redelivery writes one that was lost before the run was
    /// announced.
    async fn put_key_item(&self, run: &Run, run_key: Option<&RunKey>) -> StoreResult<()> {
        let Some(run_key) = run_key else {
            return Ok(());
        };
        let run = Run {
            run_key: Some(run_key.clone()),
            ..run.clone()
        };
        let mut item = key(run_key_pk(&run.pipeline, run_key), run_sk(&run));
        self.run_attributes(&run, &mut item);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        // A failed condition: already there: a repeat of the same run.
        unless_condition_failed(put, "PutItem (run under its key)", &self.table)
    }

    /// One Query page per status of the partition `pk`: runs with that status later than
    /// `after`, newest first, at most `limit` each; all in flight together.
    async fn query_runs(
        &self,
        pk: String,
        statuses: &BTreeSet<RunStatus>,
        after: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Run>> {
        let limit = i32::try_from(limit.max(1)).unwrap_or(i32::MAX);
        let pk = &pk;
        let per_status = futures::future::try_join_all(statuses.iter().map(|status| {
            // `<STATUS>#<time>` from just after `after` to the end of that status's runs.
            let from = format!(
                "{status}#{}",
                sort_time(Timestamp(after.0.saturating_add(1)))
            );
            let to = format!("{status}#~");
            async move {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                    .expression_attribute_values(":pk", s(pk))
                    .expression_attribute_values(":from", s(from))
                    .expression_attribute_values(":to", s(to))
                    .scan_index_forward(false)
                    .limit(limit)
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| store_error("Query (runs of a pipeline)", &self.table, e))?;
                out.items()
                    .iter()
                    .map(|item| self.read_run(item))
                    .collect::<StoreResult<Vec<Run>>>()
            }
        }))
        .await?;
        let mut runs: Vec<Run> = per_status.into_iter().flatten().collect();
        runs.sort_by_key(|r| std::cmp::Reverse(r.status_time()));
        Ok(runs)
    }

    async fn update_latest(&self, run: &Run) -> StoreResult<()> {
        let mut item = key(format!("execution#{}", run.execution_arn), "latest");
        self.run_attributes(run, &mut item);
        item.insert("rank".into(), n(rank(run)));
        if run.status == RunStatus::Running {
            // Only a RUNNING latest state is in the running index; a final state's put replaces
            // the item without these, which takes it out.
            item.insert("runningIndex".into(), s(RUNNING_INDEX_KEY));
            item.insert("runningSince".into(), n(run.started_at.0));
        }
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #rank < :rank")
            .expression_attribute_names("#rank", "rank")
            .expression_attribute_values(":rank", n(rank(run)))
            .send()
            .await;
        // A failed condition: an equal or better state is already stored: that is the latest.
        unless_condition_failed(result, "PutItem (latest state)", &self.table)
    }
}

impl RunLog for DynamoRunLog {
    async fn record(&self, run: &Run) -> StoreResult<Recorded> {
        let mut item = key(run_pk(&run.pipeline), run_sk(run));
        self.run_attributes(run, &mut item);
        item.insert(
            "announced".into(),
            aws_sdk_dynamodb::types::AttributeValue::Bool(false),
        );
        // The run item and the latest state are independent writes: both in flight together.
        // The latest state is written always, also on a repeat, so a failure of either is
        // repaired by the redelivery.
        let run_item = async {
            let found = create_or_read(
                &self.client,
                &self.table,
                item,
                Some("announced, runKey"),
                ("PutItem (run)", "GetItem (run)"),
            )
            .await?;
            let recorded = match found {
                Creation::Created => Recorded::New,
                Creation::Exists(item) => {
                    let reader = Reader {
                        table: &self.table,
                        item: &item,
                    };
                    if reader.bool("announced") {
                        Recorded::AlreadyAnnounced
                    } else {
                        Recorded::Unannounced {
                            run_key: reader.opt_string("runKey")?.map(RunKey),
                        }
                    }
                }
            };
            // Then the item under the run's key, as the run item has it (the first recording
            // decides the key, as it decides everything else of the run): before the run is
            // announced, so an announced run is always found under its key.
            let run_key = match &recorded {
                Recorded::New => run.run_key.as_ref(),
                Recorded::Unannounced { run_key } => run_key.as_ref(),
                Recorded::AlreadyAnnounced => None,
            };
            self.put_key_item(run, run_key).await?;
            Ok(recorded)
        };
        // The run item and the latest state are independent: in flight together. Requests per
        // event stay constant.
        let (recorded, ()) = futures::future::try_join(run_item, self.update_latest(run)).await?;
        Ok(recorded)
    }

    async fn mark_announced(&self, run: &Run) -> StoreResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(run_pk(&run.pipeline), run_sk(run))))
            .update_expression("SET announced = :yes")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(
                ":yes",
                aws_sdk_dynamodb::types::AttributeValue::Bool(true),
            )
            .send()
            .await
            .map_err(|e| store_error("UpdateItem (announced)", &self.table, e))?;
        Ok(())
    }

    async fn mark_recovered(&self, run: &Run) -> StoreResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(run_pk(&run.pipeline), run_sk(run))))
            .update_expression("SET recoveredBy = :watchdog")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":watchdog", s("watchdog"))
            .send()
            .await
            .map_err(|e| store_error("UpdateItem (recovered)", &self.table, e))?;
        Ok(())
    }

    async fn latest(&self, execution_arn: &str) -> StoreResult<Option<Run>> {
        let key = key(format!("execution#{execution_arn}"), "latest");
        let got = get_item(&self.client, &self.table, key, "GetItem (latest state)").await?;
        got.as_ref().map(|item| self.read_run(item)).transpose()
    }

    async fn runs_since(
        &self,
        pipeline: &PipelineId,
        statuses: &BTreeSet<RunStatus>,
        after: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Run>> {
        self.query_runs(run_pk(pipeline), statuses, after, limit)
            .await
    }

    async fn runs_of_key(
        &self,
        pipeline: &PipelineId,
        run_key: &RunKey,
        statuses: &BTreeSet<RunStatus>,
        after: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Run>> {
        self.query_runs(run_key_pk(pipeline, run_key), statuses, after, limit)
            .await
    }
}

impl baton_core::watch::RunningRuns for DynamoRunLog {
    /// One Query of the sparse index, paginated up to `limit`. The index is eventually
    /// consistent: the watchdog looks back a little before its mark.
    async fn started_since(
        &self,
        after: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<(String, Timestamp)>> {
        let operation = "Query (running index)";
        let mut out = Vec::new();
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(RUNNING_INDEX)
            .key_condition_expression("runningIndex = :running AND runningSince > :after")
            .expression_attribute_values(":running", s(RUNNING_INDEX_KEY))
            .expression_attribute_values(":after", n(after.0))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX));
        let items = query_items(query, &self.table, operation, Some(limit)).await?;
        for item in &items {
            let r = Reader {
                table: &self.table,
                item,
            };
            let pk = r.string("pk")?;
            let arn = pk.strip_prefix("execution#").unwrap_or(&pk).to_owned();
            out.push((arn, Timestamp(r.number("runningSince")?)));
        }
        out.truncate(limit);
        Ok(out)
    }
}
