//! run-log-writer on the fixtures in `events/` (the shapes `cargo lambda invoke --data-file`
//! sends), against the local AWS emulator.

mod common;

use aws_lambda_events::sns::SnsEvent;
use baton_core::ports::RunLog;
use baton_core::RunStatus;
use common::*;
use serde_json::Value;

#[tokio::test]
async fn every_status_fixture_is_recorded_and_announced_once_with_filter_attributes() {
    let world = World::new("fixtures").await;
    let fixtures = [
        (
            include_str!("../../events/run-log-writer/running.json"),
            RunStatus::Running,
        ),
        (
            include_str!("../../events/run-log-writer/succeeded.json"),
            RunStatus::Succeeded,
        ),
        (
            include_str!("../../events/run-log-writer/failed.json"),
            RunStatus::Failed,
        ),
        (
            include_str!("../../events/run-log-writer/timed-out.json"),
            RunStatus::TimedOut,
        ),
        (
            include_str!("../../events/run-log-writer/aborted.json"),
            RunStatus::Aborted,
        ),
        (
            include_str!("../../events/run-log-writer/pending-redrive.json"),
            RunStatus::PendingRedrive,
        ),
    ];
    for (text, status) in fixtures {
        let event: Value = serde_json::from_str(text).unwrap();
        let written = world.write(&event).await.unwrap();
        assert_eq!((written.status, written.announced), (status, true));
        // A redelivery is recorded already and announced already.
        assert!(!world.write(&event).await.unwrap().announced);
        let published = world.published().await;
        assert_eq!(published.len(), 1, "{status}");
        let attributes = &published[0]["MessageAttributes"];
        assert_eq!(attributes["account"]["Value"], ACCOUNT_A);
        assert_eq!(attributes["pipeline"]["Value"], "listings");
        assert_eq!(attributes["kind"]["Value"], "status");
        assert_eq!(attributes["status"]["Value"], status.as_str());
        let announced = run_event(&published[0]);
        assert_eq!(announced["schemaVersion"], 1);
        assert_eq!(announced["execution"]["status"], status.as_str());
    }
    // Whatever the order they came in, the execution's latest state is a final one.
    let failed: Value =
        serde_json::from_str(include_str!("../../events/run-log-writer/failed.json")).unwrap();
    let latest = world
        .run_log
        .latest(failed["detail"]["executionArn"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(latest.status.is_final());
    let runs = world
        .run_log
        .runs_since(
            &pipeline(ACCOUNT_A, "listings"),
            &baton_core::RunStatus::ALL.into_iter().collect(),
            baton_core::Timestamp(0),
            10,
        )
        .await
        .unwrap();
    assert_eq!(runs.len(), 6);
    let failed_run = runs.iter().find(|r| r.status == RunStatus::Failed).unwrap();
    assert_eq!(failed_run.error.as_deref(), Some("States.TaskFailed"));
}

#[tokio::test]
async fn the_trigger_manager_fixture_is_a_lambda_sns_event_it_handles() {
    let world = World::new("tm-fixture").await;
    let event: SnsEvent = serde_json::from_str(include_str!(
        "../../events/trigger-manager/run-event-succeeded.json"
    ))
    .unwrap();
    assert_eq!(event.records.len(), 1);
    // No child is registered against listings: handled, nothing sent.
    let handled = world.manage_event(event, at(22, 5, 0)).await.unwrap();
    assert_eq!((handled.records, handled.sent.len()), (1, 0));
}
