//! The run log in memory, laid out and queried as `DynamoRunLog` does: run items keyed by
//! (`run#<pipeline>`, `<STATUS>#<status time, 13 digits>#<execution name>`), an execution's
//! latest state keyed by its ARN and guarded by its rank, a run with a run key also under
//! (`runkey#<pipeline>#<key>`, the same sort key), and one Query per wanted status that
//! stops at `Limit` items or 1 MB of items, whichever comes first, as DynamoDB's does.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use baton_core::ports::{Recorded, RunLog, StoreResult};
use baton_core::{PipelineId, Run, RunKey, RunStatus, Timestamp};

use baton_adapters::dynamo::run_log::keys::{rank, run_key_pk, run_pk, run_sk, sort_time};

use super::{lock, unavailable, Effect, Op, Requests};

/// DynamoDB stops a Query page after 1 MB of items.
pub const PAGE_BYTES: usize = 1 << 20;

const TABLE: &str = "runs (memory)";

#[derive(Clone, Debug)]
struct RunItem {
    run: Run,
    announced: bool,
    /// `recoveredBy`: the watchdog found this status with DescribeExecution.
    recovered: bool,
}

#[derive(Default)]
struct Tables {
    /// (partition key, sort key) -> run item.
    runs: BTreeMap<(String, String), RunItem>,
    /// execution ARN -> (rank, latest state).
    latest: HashMap<String, (i64, Run)>,
    /// (`runkey#<pipeline>#<key>`, run sort key) -> the run, under its key.
    keyed: BTreeMap<(String, String), Run>,
}

/// [`RunLog`] in memory.
pub struct MemoryRunLog {
    requests: Arc<Requests>,
    tables: Mutex<Tables>,
}

/// The size DynamoDB counts for a run item: attribute names and values.
fn item_bytes(pk: &str, sk: &str, run: &Run) -> usize {
    let texts = [
        ("pk", Some(pk)),
        ("sk", Some(sk)),
        ("pipeline", Some(pk)),
        ("executionArn", Some(run.execution_arn.as_str())),
        ("executionName", Some(run.execution_name.as_str())),
        ("status", Some(run.status.as_str())),
        ("error", run.error.as_deref()),
        ("cause", run.cause.as_deref()),
        ("triggerId", run.trigger_id.as_deref()),
        ("runKey", run.run_key.as_ref().map(RunKey::as_str)),
    ];
    let text: usize = texts
        .iter()
        .filter_map(|(name, value)| value.map(|v| name.len() + v.len()))
        .sum();
    // startedAt, stoppedAt, expiresAt, announced.
    text + 3 * 21 + 10
}

impl MemoryRunLog {
    pub fn new(requests: Arc<Requests>) -> MemoryRunLog {
        MemoryRunLog {
            requests,
            tables: Mutex::new(Tables::default()),
        }
    }

    /// Every run item, in key order: for checks over the whole log.
    pub fn all_runs(&self) -> Vec<Run> {
        self.tables
            .lock()
            .map(|t| t.runs.values().map(|item| item.run.clone()).collect())
            .unwrap_or_default()
    }

    /// The runs the watchdog recovered (marked `recoveredBy`), for tests.
    pub fn recovered_runs(&self) -> Vec<Run> {
        self.tables
            .lock()
            .map(|t| {
                t.runs
                    .values()
                    .filter(|item| item.recovered)
                    .map(|item| item.run.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One PutItem, `attribute_not_exists(pk)`: `true` when the key was free.
    async fn put_run(&self, run: &Run) -> StoreResult<bool> {
        let key = (run_pk(&run.pipeline), run_sk(run));
        self.requests
            .request(Op::PutRun(run), || {
                match lock(&self.tables, TABLE, "PutItem (run)") {
                    Ok(mut t) if !t.runs.contains_key(&key) => {
                        let item = RunItem {
                            run: run.clone(),
                            announced: false,
                            recovered: false,
                        };
                        t.runs.insert(key, item);
                        (Ok(true), Effect::Written)
                    }
                    Ok(_) => (Ok(false), Effect::ConditionFailed),
                    Err(e) => (Err(e), Effect::Read),
                }
            })
            .await
            .map_err(|f| unavailable("PutItem (run)", TABLE, f))?
    }

    /// One PutItem of the run under `run_key`, `attribute_not_exists(pk)`, a failed condition
    /// being success (none without a key).
    async fn put_key_item(&self, run: &Run, run_key: Option<&RunKey>) -> StoreResult<()> {
        let Some(run_key) = run_key else {
            return Ok(());
        };
        let run = Run {
            run_key: Some(run_key.clone()),
            ..run.clone()
        };
        let key = (run_key_pk(&run.pipeline, run_key), run_sk(&run));
        self.requests
            .request(Op::PutRunKey(&run), || {
                match lock(&self.tables, TABLE, "PutItem (run under its key)") {
                    Ok(mut t) if !t.keyed.contains_key(&key) => {
                        t.keyed.insert(key, run.clone());
                        (Ok(()), Effect::Written)
                    }
                    Ok(_) => (Ok(()), Effect::ConditionFailed),
                    Err(e) => (Err(e), Effect::Read),
                }
            })
            .await
            .map_err(|f| unavailable("PutItem (run under its key)", TABLE, f))?
    }

    /// One consistent GetItem of the run item's `announced` and `runKey` (empty if it vanished).
    async fn announced(&self, run: &Run) -> StoreResult<(bool, Option<RunKey>)> {
        let key = (run_pk(&run.pipeline), run_sk(run));
        self.requests
            .request(Op::GetRun(run), || {
                let got = lock(&self.tables, TABLE, "GetItem (run)").map(|t| {
                    t.runs.get(&key).map_or((false, None), |item| {
                        (item.announced, item.run.run_key.clone())
                    })
                });
                (got, Effect::Read)
            })
            .await
            .map_err(|f| unavailable("GetItem (run)", TABLE, f))?
    }

    /// One PutItem, `attribute_not_exists(pk) OR rank < :rank`; a failed condition is success.
    async fn update_latest(&self, run: &Run) -> StoreResult<()> {
        let mine = rank(run);
        self.requests
            .request(Op::PutLatest(run), || {
                match lock(&self.tables, TABLE, "PutItem (latest state)") {
                    Ok(mut t) => match t.latest.get(&run.execution_arn) {
                        Some((stored, _)) if *stored >= mine => (Ok(()), Effect::ConditionFailed),
                        _ => {
                            t.latest
                                .insert(run.execution_arn.clone(), (mine, run.clone()));
                            (Ok(()), Effect::Written)
                        }
                    },
                    Err(e) => (Err(e), Effect::Read),
                }
            })
            .await
            .map_err(|f| unavailable("PutItem (latest state)", TABLE, f))?
    }
}

impl RunLog for MemoryRunLog {
    async fn record(&self, run: &Run) -> StoreResult<Recorded> {
        // As the adapter: the run item (put, or read back when taken) and the latest state are
        // independent requests, in flight together; the item under the run's key follows the run
        // item, with the key the run item has.
        let run_item = async {
            let recorded = if self.put_run(run).await? {
                Recorded::New
            } else {
                match self.announced(run).await? {
                    (true, _) => Recorded::AlreadyAnnounced,
                    (false, run_key) => Recorded::Unannounced { run_key },
                }
            };
            let run_key = match &recorded {
                Recorded::New => run.run_key.as_ref(),
                Recorded::Unannounced { run_key } => run_key.as_ref(),
                Recorded::AlreadyAnnounced => None,
            };
            self.put_key_item(run, run_key).await?;
            Ok(recorded)
        };
        let (recorded, ()) = futures::future::try_join(run_item, self.update_latest(run)).await?;
        Ok(recorded)
    }

    async fn mark_announced(&self, run: &Run) -> StoreResult<()> {
        let key = (run_pk(&run.pipeline), run_sk(run));
        let outcome = self
            .requests
            .request(Op::MarkAnnounced(run), || {
                match lock(&self.tables, TABLE, "UpdateItem (announced)") {
                    Ok(mut t) => match t.runs.get_mut(&key) {
                        Some(item) => {
                            item.announced = true;
                            (Ok(true), Effect::Written)
                        }
                        None => (Ok(false), Effect::ConditionFailed),
                    },
                    Err(e) => (Err(e), Effect::Read),
                }
            })
            .await
            .map_err(|f| unavailable("UpdateItem (announced)", TABLE, f))??;
        if outcome {
            Ok(())
        } else {
            // The adapter's `attribute_exists(pk)` fails as a refused request.
            Err(baton_core::ports::StoreError::Rejected {
                operation: "UpdateItem (announced)",
                table: TABLE.to_owned(),
                message: "ConditionalCheckFailedException: the run item does not exist".into(),
            })
        }
    }

    async fn mark_recovered(&self, run: &Run) -> StoreResult<()> {
        let key = (run_pk(&run.pipeline), run_sk(run));
        let operation = "UpdateItem (recovered)";
        self.requests
            .request(Op::Watch(operation), || {
                match lock(&self.tables, TABLE, operation) {
                    Ok(mut t) => match t.runs.get_mut(&key) {
                        Some(item) => {
                            item.recovered = true;
                            (Ok(()), Effect::Written)
                        }
                        None => (
                            Err(baton_core::ports::StoreError::Rejected {
                                operation,
                                table: TABLE.to_owned(),
                                message:
                                    "ConditionalCheckFailedException: the run item does not exist"
                                        .into(),
                            }),
                            Effect::ConditionFailed,
                        ),
                    },
                    Err(e) => (Err(e), Effect::Read),
                }
            })
            .await
            .map_err(|f| unavailable(operation, TABLE, f))?
    }

    async fn latest(&self, execution_arn: &str) -> StoreResult<Option<Run>> {
        self.requests
            .request(Op::GetLatest(execution_arn), || {
                let got = lock(&self.tables, TABLE, "GetItem (latest state)")
                    .map(|t| t.latest.get(execution_arn).map(|(_, run)| run.clone()));
                (got, Effect::Read)
            })
            .await
            .map_err(|f| unavailable("GetItem (latest state)", TABLE, f))?
    }

    async fn runs_since(
        &self,
        pipeline: &PipelineId,
        statuses: &BTreeSet<RunStatus>,
        after: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Run>> {
        self.query(pipeline, None, statuses, after, limit).await
    }

    async fn runs_of_key(
        &self,
        pipeline: &PipelineId,
        key: &RunKey,
        statuses: &BTreeSet<RunStatus>,
        after: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Run>> {
        self.query(pipeline, Some(key), statuses, after, limit)
            .await
    }
}

impl MemoryRunLog {
    /// One Query per status, all in flight together, as the adapter makes them: of the
    /// pipeline's run items, or of its runs under `key`.
    async fn query(
        &self,
        pipeline: &PipelineId,
        key: Option<&RunKey>,
        statuses: &BTreeSet<RunStatus>,
        after: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Run>> {
        let per_status = futures::future::try_join_all(
            statuses
                .iter()
                .map(|status| self.query_status(pipeline, key, *status, after, limit)),
        )
        .await?;
        let mut runs: Vec<Run> = per_status.into_iter().flatten().collect();
        runs.sort_by_key(|r| std::cmp::Reverse(r.status_time()));
        Ok(runs)
    }

    /// One Query page of `pipeline`'s runs (of `key`, when given) with `status` later than
    /// `after`, newest first: `Limit` items or 1 MB.
    async fn query_status(
        &self,
        pipeline: &PipelineId,
        key: Option<&RunKey>,
        status: RunStatus,
        after: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Run>> {
        let pk = match key {
            Some(k) => run_key_pk(pipeline, k),
            None => run_pk(pipeline),
        };
        let from = format!(
            "{status}#{}",
            sort_time(Timestamp(after.0.saturating_add(1)))
        );
        let to = format!("{status}#~");
        let limit = limit.max(1);
        self.requests
            .request(
                Op::QueryRuns {
                    pipeline,
                    key,
                    status,
                    after,
                },
                || {
                    let page = lock(&self.tables, TABLE, "Query (runs of a pipeline)").map(|t| {
                        let range = (pk.clone(), from.clone())..=(pk.clone(), to.clone());
                        let items: Box<dyn Iterator<Item = (&(String, String), &Run)>> = match key {
                            Some(_) => Box::new(t.keyed.range(range).rev()),
                            None => {
                                Box::new(t.runs.range(range).rev().map(|(k, item)| (k, &item.run)))
                            }
                        };
                        let mut bytes = 0;
                        let mut page = Vec::new();
                        for ((item_pk, sk), run) in items {
                            bytes += item_bytes(item_pk, sk, run);
                            if page.len() == limit || (bytes > PAGE_BYTES && !page.is_empty()) {
                                break;
                            }
                            page.push(run.clone());
                        }
                        page
                    });
                    (page, Effect::Read)
                },
            )
            .await
            .map_err(|f| unavailable("Query (runs of a pipeline)", TABLE, f))?
    }
}

impl baton_core::watch::RunningRuns for MemoryRunLog {
    /// The running index as DynamoDB's sparse GSI holds it: latest states that are RUNNING, by
    /// start, earliest first.
    async fn started_since(
        &self,
        after: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<(String, Timestamp)>> {
        let operation = "Query (running index)";
        self.requests
            .request(Op::Watch(operation), || {
                let got = lock(&self.tables, TABLE, operation).map(|t| {
                    let mut running: Vec<(Timestamp, String)> = t
                        .latest
                        .values()
                        .filter(|(_, run)| {
                            run.status == baton_core::RunStatus::Running && run.started_at > after
                        })
                        .map(|(_, run)| (run.started_at, run.execution_arn.clone()))
                        .collect();
                    running.sort();
                    running
                        .into_iter()
                        .take(limit)
                        .map(|(at, arn)| (arn, at))
                        .collect()
                });
                (got, Effect::Read)
            })
            .await
            .map_err(|f| unavailable(operation, TABLE, f))?
    }
}
