//! What the children one run wakes need for their first decision, read together instead of child
//! by child: their registrations and cursors in batches of 100 keys, and each parent's runs once
//! for all the children that name it.
//!
//! A parent with n waiting children, each with p parents, cost 2n + pn requests read child by
//! child (a registration and a cursor each, one query per parent and wanted status). Read together
//! it costs about 2n/100 batch reads and one query per distinct parent and status: the CPU of a
//! 1,000-child fan-out, nearly all of it the SDK's per-request work, shrinks with the requests.
//!
//! The runs read once for all children give each child exactly what its own query would have:
//! a parent's runs of each status are read newest first from the earliest cursor among the
//! children that name it, `runs_per_parent` of them (or a page) per status, and the runs a
//! child's own query returns (the newest after its later cursor) are a prefix of those, cut at its
//! cursor. [`Prefetch::runs_for`] cuts them so, for the statuses the child wants.
//!
//! Only a child's first decision uses what was read here; after a lost claim or a delivery that
//! asks for a new decision, the child reads its own state again. Reading here keeps the order a
//! single child reads in (registration and cursor, then runs), so a decision never sees runs read
//! before its cursor.

use std::collections::{BTreeMap, BTreeSet};

use futures::stream::{self, StreamExt, TryStreamExt};

use super::{effective_cursor, FlowSettings};
use crate::pipeline::PipelineId;
use crate::ports::{CursorSlot, CursorState, Ledger, Registry, RunLog, StoreError};
use crate::registration::Registration;
use crate::run::{Run, RunRef};
use crate::run_key::RunKey;
use crate::status::RunStatus;
use crate::time::Timestamp;

/// One child's registration and cursors as read together with its siblings'.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirstRead {
    pub registration: Option<Registration>,
    /// The child's cursor state without a run key.
    pub cursor: Option<CursorState>,
    /// For a run with a key: the child's cursor state for that key (`Some(None)`: never fired
    /// for it). `None` when the run has no key.
    pub keyed_cursor: Option<Option<CursorState>>,
}

/// A parent's runs read once for several children: of `statuses`, later than `after`.
#[derive(Clone, Debug)]
struct SharedRuns {
    statuses: BTreeSet<RunStatus>,
    after: Timestamp,
    /// Newest first, as [`RunLog::runs_since`] answers.
    runs: Vec<Run>,
}

/// The first reads of the children of one run (see the module doc).
#[derive(Clone, Debug, Default)]
pub struct Prefetch {
    run_key: Option<RunKey>,
    registrations: BTreeMap<PipelineId, Registration>,
    cursors: BTreeMap<CursorSlot, CursorState>,
    /// By parent (and the run's key, for aligned children).
    runs: BTreeMap<(PipelineId, Option<RunKey>), SharedRuns>,
}

impl Prefetch {
    /// Reads the registrations and cursors of `children` (and their cursors for `run_key`), then
    /// the runs of every parent they name from the earliest cursor that parent is read from.
    pub async fn read<R, G, L>(
        registry: &R,
        ledger: &G,
        run_log: &L,
        children: &[PipelineId],
        run_key: Option<&RunKey>,
        settings: &FlowSettings,
    ) -> Result<Prefetch, StoreError>
    where
        R: Registry + Sync,
        G: Ledger + Sync,
        L: RunLog + Sync,
    {
        let mut slots: Vec<CursorSlot> = children.iter().map(|c| (c.clone(), None)).collect();
        if let Some(k) = run_key {
            slots.extend(children.iter().map(|c| (c.clone(), Some(k.clone()))));
        }
        let (registrations, cursors) =
            futures::future::try_join(registry.get_many(children), ledger.cursors(&slots)).await?;
        let mut prefetch = Prefetch {
            run_key: run_key.cloned(),
            registrations,
            cursors,
            runs: BTreeMap::new(),
        };
        let wanted = prefetch.runs_wanted(children);
        let limit = settings.runs_per_parent;
        let read = stream::iter(wanted)
            .map(|((parent, key), (statuses, after))| async move {
                let runs = match &key {
                    Some(k) => {
                        run_log
                            .runs_of_key(&parent, k, &statuses, after, limit)
                            .await?
                    }
                    None => run_log.runs_since(&parent, &statuses, after, limit).await?,
                };
                let shared = SharedRuns {
                    statuses,
                    after,
                    runs,
                };
                Ok::<_, StoreError>(((parent, key), shared))
            })
            .buffer_unordered(settings.child_concurrency.max(1))
            .try_collect::<Vec<_>>()
            .await?;
        prefetch.runs = read.into_iter().collect();
        Ok(prefetch)
    }

    /// Per parent (and key), the statuses any child wants of it and the earliest time a child
    /// reads it from: for each child with a trigger, the cursor its first evaluation uses.
    fn runs_wanted(
        &self,
        children: &[PipelineId],
    ) -> BTreeMap<(PipelineId, Option<RunKey>), (BTreeSet<RunStatus>, Timestamp)> {
        let mut wanted: BTreeMap<_, (BTreeSet<RunStatus>, Timestamp)> = BTreeMap::new();
        for child in children {
            let Some(registration) = self.registrations.get(child) else {
                continue;
            };
            let Some((key, after)) = self.reads_from(registration) else {
                continue;
            };
            for (parent, statuses) in registration.parents() {
                let entry = wanted
                    .entry((parent, key.clone()))
                    .or_insert_with(|| (BTreeSet::new(), after));
                entry.0.extend(statuses);
                entry.1 = entry.1.min(after);
            }
        }
        wanted
    }

    /// Where a child's first evaluation reads its parents' runs: the run key (aligned children)
    /// and the time after which runs count. `None`: no trigger, or aligned and the run has no key.
    fn reads_from(&self, registration: &Registration) -> Option<(Option<RunKey>, Timestamp)> {
        let trigger = registration.definition.trigger.as_ref()?;
        if trigger.is_aligned() {
            // Aligned: the runs of the key since the floor (the cursor for the key decides news).
            let key = self.run_key.clone()?;
            return Some((Some(key), registration.floor()));
        }
        let stored = self
            .cursors
            .get(&(registration.pipeline.clone(), None))
            .map(|s| s.cursor);
        Some((None, effective_cursor(stored, registration)))
    }

    /// `child`'s registration and cursors as read here.
    pub fn first_read(&self, child: &PipelineId) -> FirstRead {
        FirstRead {
            registration: self.registrations.get(child).cloned(),
            cursor: self.cursors.get(&(child.clone(), None)).cloned(),
            keyed_cursor: self
                .run_key
                .as_ref()
                .map(|k| self.cursors.get(&(child.clone(), Some(k.clone()))).cloned()),
        }
    }

    /// The runs a child's own queries would answer: of each parent in `parents`, the wanted
    /// statuses' runs (of `key`, when given) later than `after`, in the order its queries give
    /// them. `None` when a parent's runs were not read here from `after` or earlier, or not for
    /// every status wanted: the child then queries them itself. (The shared read holds at most
    /// `runs_per_parent` runs a status, newest first; the child's are those after its cursor.)
    pub fn runs_for(
        &self,
        parents: &BTreeMap<PipelineId, BTreeSet<RunStatus>>,
        key: Option<&RunKey>,
        after: Timestamp,
    ) -> Option<Vec<RunRef>> {
        let mut out = Vec::new();
        for (parent, statuses) in parents {
            let shared = self.runs.get(&(parent.clone(), key.cloned()))?;
            if shared.after > after || !statuses.is_subset(&shared.statuses) {
                return None;
            }
            out.extend(
                shared
                    .runs
                    .iter()
                    .filter(|run| statuses.contains(&run.status) && run.status_time() > after)
                    .map(Run::reference),
            );
        }
        Some(out)
    }
}
