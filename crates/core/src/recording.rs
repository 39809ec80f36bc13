//! Recording a status: the one code path from a run to the run log and the run-events topic,
//! taken by run-log-writer for every status change event and by the watchdog for a final status
//! it recovered from Step Functions (one EventBridge never delivered).

use crate::events::{RunEvent, StatusEvent};
use crate::ports::{PublishError, Recorded, RunEvents, RunLog, StoreError};
use crate::run::Run;

/// Records `run` idempotently; the first time (or while its announcement is unconfirmed)
/// publishes its `RunEvent` and confirms it. `recovered`: the status was found by the watchdog,
/// not delivered by EventBridge; the run item and the event say so. Returns what recording found
/// and whether the run was announced. A run recorded before but not announced keeps the run key
/// of its first recording (`run.run_key` is set to it), whatever the registration says now.
pub async fn record_status<L, E, Err>(
    run: &mut Run,
    recovered: bool,
    run_log: &L,
    events: &E,
) -> Result<(Recorded, bool), Err>
where
    L: RunLog + Sync,
    E: RunEvents + Sync,
    Err: From<StoreError> + From<PublishError>,
{
    let recorded = run_log.record(run).await?;
    if let Recorded::Unannounced { run_key } = &recorded {
        run.run_key.clone_from(run_key);
    }
    let announce = matches!(recorded, Recorded::New | Recorded::Unannounced { .. });
    if announce {
        if recovered {
            run_log.mark_recovered(run).await?;
        }
        let event = RunEvent::Status(StatusEvent::new(run, recovered));
        events.publish(&event).await?;
        run_log.mark_announced(run).await?;
    }
    Ok((recorded, announce))
}
