//! The rendered Block Kit JSON of each message kind, as Slack receives it, compared with the files
//! in `tests/snapshots/` so reviewers can read (and paste into Slack's Block Kit Builder) exactly
//! what is posted. After an intended change, regenerate them with
//! `BATON_UPDATE_SNAPSHOTS=1 cargo test -p baton-core --test message_snapshots` and review the diff.

use std::path::PathBuf;

use baton_core::events::{PipelineRef, PipelineTrigger};
use baton_core::slack::message::{self, FailureContext};
use baton_core::{PipelineId, Run, RunStatus, Timestamp, TriggerId};
use serde_json::Value;

fn check(name: &str, rendered: Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.json"));
    let text = format!("{}\n", serde_json::to_string_pretty(&rendered).unwrap());
    if std::env::var_os("BATON_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with BATON_UPDATE_SNAPSHOTS=1 to create it)",
            path.display()
        )
    });
    assert_eq!(
        text,
        expected,
        "{} differs from the rendering (BATON_UPDATE_SNAPSHOTS=1 regenerates it)",
        path.display()
    );
}

fn pipeline(account: &str, name: &str) -> PipelineId {
    PipelineId::new(account, "eu-west-1", name).unwrap()
}

fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

fn listings(status: RunStatus) -> Run {
    Run {
        pipeline: pipeline("111111111111", "listings"),
        execution_arn: "arn:aws:states:eu-west-1:111111111111:execution:listings:l-22".into(),
        execution_name: "l-22".into(),
        status,
        started_at: at("2026-11-22T03:00:00Z"),
        stopped_at: status.is_final().then(|| at("2026-11-22T04:02:03Z")),
        error: None,
        cause: None,
        trigger_id: None,
        run_key: None,
    }
}

fn failed() -> Run {
    Run {
        error: Some("States.TaskFailed".into()),
        cause: Some(
            "Glue job listings-export failed: FileNotFoundError: s3://listings-raw/2026-11-22/part-0001.parquet <no such key>".into(),
        ),
        ..listings(RunStatus::Failed)
    }
}

fn failure_context() -> FailureContext {
    FailureContext {
        mention: Some("<!subteam^S0123|data-platform>".into()),
        downstream: (1..=7)
            .map(|i| pipeline("222222222222", &format!("report-{i}")))
            .collect(),
        downstream_truncated: false,
    }
}

#[test]
fn root_of_a_running_run() {
    check(
        "root_running",
        message::root(&listings(RunStatus::Running), None).post_body("data-alerts", None),
    );
}

#[test]
fn root_edited_to_the_final_status() {
    check(
        "root_edit_succeeded",
        message::root(&listings(RunStatus::Succeeded), None)
            .update_body("C0123ALERTS", "1795575600.000100"),
    );
}

#[test]
fn reply_for_success() {
    check(
        "reply_succeeded",
        message::reply(&listings(RunStatus::Succeeded), None)
            .post_body("data-alerts", Some("1795575600.000100")),
    );
}

#[test]
fn reply_for_a_failure() {
    check(
        "reply_failed",
        message::reply(&failed(), Some(&failure_context()))
            .post_body("data-alerts", Some("1795575600.000100")),
    );
}

#[test]
fn root_when_the_first_message_is_a_failure() {
    check(
        "root_failed",
        message::root(&failed(), Some(&failure_context())).post_body("data-alerts", None),
    );
}

#[test]
fn root_of_a_run_baton_started() {
    let run = Run {
        pipeline: pipeline("333333333333", "pipeline-x"),
        execution_arn: "arn:aws:states:eu-west-1:333333333333:execution:pipeline-x:baton-5d41402a"
            .into(),
        execution_name: "baton-5d41402a".into(),
        trigger_id: Some("5d41402abc4b2a76".into()),
        ..listings(RunStatus::Running)
    };
    check(
        "root_triggered_running",
        message::root(&run, None).post_body("x-team", None),
    );
}

#[test]
fn trigger_notice() {
    let consumed = vec![
        Run {
            pipeline: pipeline("111111111111", "listings"),
            ..listings(RunStatus::Succeeded)
        }
        .reference(),
        Run {
            pipeline: pipeline("222222222222", "searches"),
            execution_arn: "arn:aws:states:eu-west-1:222222222222:execution:searches:s-22".into(),
            execution_name: "s-22".into(),
            stopped_at: Some(at("2026-11-22T04:30:00Z")),
            ..listings(RunStatus::Succeeded)
        }
        .reference(),
    ];
    let trigger = PipelineTrigger {
        trigger_id: TriggerId("5d41402abc4b2a76".into()),
        target: PipelineRef::from(&pipeline("333333333333", "pipeline-x")),
        consumed,
        reason: "allOf holds: listings (111111111111) SUCCEEDED at 2026-11-22T04:02:03Z, searches (222222222222) SUCCEEDED at 2026-11-22T04:30:00Z".into(),
        fired_at: at("2026-11-22T04:30:01Z"),
        environment: None,
        run_key: None,
    };
    check(
        "trigger_notice",
        message::trigger_notice(&trigger).post_body("x-team", None),
    );
}
