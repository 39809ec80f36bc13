//! The watch table in memory, as `DynamoWatch` keeps it: due checks by UTC day and instant, the
//! watermark item, one alert item per (pipeline, day, kind) and the open-alert items.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use baton_core::ports::StoreResult;
use baton_core::watch::run::utc_day;
use baton_core::watch::{DeadlineAlert, DeadlineWatch, DueCheck, OpenAlert};
use baton_core::Timestamp;

use super::{lock, unavailable, Effect, Op, Requests};

const TABLE: &str = "watch (memory)";

#[derive(Default)]
struct Tables {
    /// UTC day -> due checks.
    due: BTreeMap<String, BTreeSet<DueCheck>>,
    watermark: Option<String>,
    sighted_until: Option<Timestamp>,
    /// account -> when its refusal was last noted.
    refusals: BTreeMap<String, Timestamp>,
    /// Every alert ever raised, by key.
    alerts: BTreeMap<String, DeadlineAlert>,
    /// Open alerts: key -> announced.
    open: BTreeMap<String, bool>,
}

/// [`DeadlineWatch`] in memory.
pub struct MemoryWatch {
    requests: Arc<Requests>,
    tables: Mutex<Tables>,
}

impl MemoryWatch {
    pub fn new(requests: Arc<Requests>) -> MemoryWatch {
        MemoryWatch {
            requests,
            tables: Mutex::new(Tables::default()),
        }
    }

    /// Every due check, for tests.
    pub fn scheduled(&self) -> Vec<DueCheck> {
        self.tables
            .lock()
            .map(|t| t.due.values().flatten().cloned().collect())
            .unwrap_or_default()
    }

    /// How many alerts are open, for tests.
    pub fn open_alerts_count(&self) -> usize {
        self.tables.lock().map(|t| t.open.len()).unwrap_or_default()
    }

    /// Every alert ever raised, for tests.
    pub fn alerts(&self) -> Vec<DeadlineAlert> {
        self.tables
            .lock()
            .map(|t| t.alerts.values().cloned().collect())
            .unwrap_or_default()
    }

    /// One request changing the tables.
    async fn write<T>(
        &self,
        operation: &'static str,
        change: impl FnOnce(&mut Tables) -> (T, Effect),
    ) -> StoreResult<T> {
        self.requests
            .request(Op::Watch(operation), || {
                match lock(&self.tables, TABLE, operation) {
                    Ok(mut t) => {
                        let (value, effect) = change(&mut t);
                        (Ok(value), effect)
                    }
                    Err(e) => (Err(e), Effect::Read),
                }
            })
            .await
            .map_err(|f| unavailable(operation, TABLE, f))?
    }
}

impl DeadlineWatch for MemoryWatch {
    async fn schedule(&self, check: &DueCheck) -> StoreResult<()> {
        self.write("PutItem (due check)", |t| {
            t.due
                .entry(utc_day(check.at))
                .or_default()
                .insert(check.clone());
            ((), Effect::Written)
        })
        .await
    }

    async fn unschedule(&self, check: &DueCheck) -> StoreResult<()> {
        self.write("DeleteItem (due check)", |t| {
            if let Some(day) = t.due.get_mut(&utc_day(check.at)) {
                day.remove(check);
            }
            ((), Effect::Written)
        })
        .await
    }

    async fn due_on(&self, day: &str, up_to: Timestamp) -> StoreResult<Vec<DueCheck>> {
        self.write("Query (due checks of a day)", |t| {
            let got = t
                .due
                .get(day)
                .into_iter()
                .flatten()
                .filter(|c| c.at <= up_to)
                .cloned()
                .collect();
            (got, Effect::Read)
        })
        .await
    }

    async fn watermark(&self) -> StoreResult<Option<String>> {
        self.write("GetItem (watermark)", |t| {
            (t.watermark.clone(), Effect::Read)
        })
        .await
    }

    async fn advance_watermark(&self, read: Option<&str>, day: &str) -> StoreResult<()> {
        self.write("PutItem (watermark)", |t| {
            if t.watermark.as_deref() != read {
                return ((), Effect::ConditionFailed);
            }
            t.watermark = Some(day.to_owned());
            ((), Effect::Written)
        })
        .await
    }

    async fn sighted_until(&self) -> StoreResult<Option<Timestamp>> {
        self.write("GetItem (runs sighted until)", |t| {
            (t.sighted_until, Effect::Read)
        })
        .await
    }

    async fn set_sighted_until(&self, read: Option<Timestamp>, to: Timestamp) -> StoreResult<()> {
        self.write("PutItem (runs sighted until)", |t| {
            if t.sighted_until != read {
                return ((), Effect::ConditionFailed);
            }
            t.sighted_until = Some(to);
            ((), Effect::Written)
        })
        .await
    }

    async fn note_refusal(&self, account: &str, now: Timestamp) -> StoreResult<bool> {
        self.write("UpdateItem (role refusal)", |t| {
            // `attribute_not_exists(pk) OR notedAt < :dayAgo`
            if t.refusals
                .get(account)
                .is_some_and(|noted| *noted > now.minus(baton_core::Span::DAY))
            {
                return (false, Effect::ConditionFailed);
            }
            t.refusals.insert(account.to_owned(), now);
            (true, Effect::Written)
        })
        .await
    }

    async fn raise(&self, alert: &DeadlineAlert) -> StoreResult<bool> {
        self.write("TransactWriteItems (raise alert)", |t| {
            let key = alert.key();
            if t.alerts.contains_key(&key) {
                return (false, Effect::ConditionFailed);
            }
            t.alerts.insert(key.clone(), alert.clone());
            t.open.insert(key, false);
            (true, Effect::Written)
        })
        .await
    }

    async fn open_alerts(&self) -> StoreResult<Vec<OpenAlert>> {
        self.write("Query (open alerts)", |t| {
            let got = t
                .open
                .iter()
                .filter_map(|(key, announced)| {
                    Some(OpenAlert {
                        alert: t.alerts.get(key)?.clone(),
                        announced: *announced,
                    })
                })
                .collect();
            (got, Effect::Read)
        })
        .await
    }

    async fn mark_announced(&self, key: &str) -> StoreResult<()> {
        self.write("UpdateItem (alert announced)", |t| {
            match t.open.get_mut(key) {
                Some(announced) => {
                    *announced = true;
                    ((), Effect::Written)
                }
                None => ((), Effect::ConditionFailed),
            }
        })
        .await
    }

    async fn close(&self, key: &str) -> StoreResult<()> {
        self.write("DeleteItem (open alert)", |t| {
            t.open.remove(key);
            ((), Effect::Written)
        })
        .await
    }
}
