//! The watchdog on a simulated clock over the in-memory ports: each alert kind, one alert per
//! (pipeline, day, kind), the reason in the alert, the note to the blocking parent, the
//! follow-up, daylight saving in Europe/Berlin, and a pending trigger re-sent.

use baton_core::deadlines::DeadlineKind;
use baton_core::ports::{Ledger, RunLog};
use baton_core::registration::register;
use baton_core::registration::Registration;
use baton_core::trigger::{FlowSettings, Invocation};
use baton_core::watch::run::WatchSettings;
use baton_core::watch::{AlertEvent, AlertNews};
use baton_core::{PipelineDefinition, PipelineId, Run, RunEvent, RunStatus, Span, Timestamp};
use baton_testbed::memory::Memory;
use futures::executor::block_on;
use watchdog::{Watchdog, Watched};

const PIPELINE_X: &str = r#"
trigger:
  executions:
    allOf:
      - {name: listings, account: "111111111111", status: [SUCCESS]}
      - {name: searches, account: "222222222222", status: [SUCCESS]}
deadlines:
  startBy: "07:00"
  finishBy: "09:30"
  timezone: Europe/Berlin
notifications:
  targets:
    - {channel: SLACK, addresses: [rent-journey]}
"#;

fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

fn id(account: &str, name: &str) -> PipelineId {
    PipelineId::new(account, "eu-west-1", name).unwrap()
}

struct World {
    mem: Memory,
    settings: WatchSettings,
}

impl World {
    fn new() -> World {
        World {
            mem: Memory::new(None),
            settings: WatchSettings::new(FlowSettings::with_default_bus("baton-pipelines")),
        }
    }

    fn register(&self, pipeline: &PipelineId, yaml: &str, now: Timestamp) {
        let registration = Registration {
            pipeline: pipeline.clone(),
            owner_stack_id: format!(
                "arn:aws:cloudformation:eu-west-1:{}:stack/s/1",
                pipeline.account
            ),
            definition: PipelineDefinition::from_yaml(yaml).unwrap(),
            bus_arn: None,
            registered_at: now,
            trigger_floor: now,
        };
        block_on(register(&self.mem.registry, &registration, 100)).unwrap();
    }

    fn run(
        &self,
        pipeline: &PipelineId,
        name: &str,
        status: RunStatus,
        started: &str,
        stopped: Option<&str>,
    ) {
        let run = Run {
            pipeline: pipeline.clone(),
            execution_arn: format!(
                "arn:aws:states:eu-west-1:{}:execution:{}:{name}",
                pipeline.account, pipeline.name
            ),
            execution_name: name.to_owned(),
            status,
            started_at: at(started),
            stopped_at: stopped.map(at),
            error: (status == RunStatus::Failed).then(|| "States.TaskFailed".to_owned()),
            cause: None,
            trigger_id: None,
            run_key: None,
        };
        block_on(self.mem.run_log.record(&run)).unwrap();
    }

    /// One watchdog run at `now`, leaving what it published on the topic.
    fn watch_only(&self, now: &str) -> Watched {
        let now = at(now);
        let invocation =
            Invocation::new("watchdog", now, now.plus(Span::MINUTE), &self.settings.flow);
        block_on(
            Watchdog {
                ports: self.mem.watch_ports(),
                settings: &self.settings,
            }
            .handle(&invocation),
        )
        .unwrap()
    }

    /// One watchdog run at `now`; the alert events it published.
    fn watch(&self, now: &str) -> (Watched, Vec<(PipelineId, AlertEvent)>) {
        let now = at(now);
        let invocation =
            Invocation::new("watchdog", now, now.plus(Span::MINUTE), &self.settings.flow);
        let watched = block_on(
            Watchdog {
                ports: self.mem.watch_ports(),
                settings: &self.settings,
            }
            .handle(&invocation),
        )
        .unwrap();
        let alerts = self
            .mem
            .topic
            .take_published()
            .into_iter()
            .filter_map(|e| match e {
                RunEvent::Alert(notice) => Some((notice.pipeline.id(), notice.alert)),
                _ => None,
            })
            .collect();
        (watched, alerts)
    }
}

fn x() -> PipelineId {
    id("333333333333", "pipeline-x")
}

#[test]
fn late_start_is_reported_once_with_why_then_followed_up_with_how_late() {
    let w = World::new();
    let (listings, searches) = (
        id("111111111111", "listings"),
        id("222222222222", "searches"),
    );
    w.register(&x(), PIPELINE_X, at("2026-11-25T12:00:00Z"));
    let (watched, _) = w.watch("2026-11-25T12:01:00Z");
    assert_eq!(watched.scheduled, 1);
    w.run(
        &listings,
        "listings-2026-11-26",
        RunStatus::Succeeded,
        "2026-11-26T03:00:00Z",
        Some("2026-11-26T04:00:00Z"),
    );
    w.run(
        &searches,
        "searches-2026-11-26",
        RunStatus::Failed,
        "2026-11-26T04:00:00Z",
        Some("2026-11-26T04:18:00Z"),
    );
    // 06:59 in Berlin (CET, UTC+1): not due yet.
    let (watched, alerts) = w.watch("2026-11-26T05:59:00Z");
    assert!(watched.raised.is_empty() && alerts.is_empty());
    // 07:00: late, because searches failed at 05:18 local time.
    let (watched, alerts) = w.watch("2026-11-26T06:00:00Z");
    assert_eq!(
        watched.raised,
        ["333333333333:eu-west-1:pipeline-x#2026-11-26#lateStart"]
    );
    let (to, raised) = &alerts[0];
    assert_eq!(to, &x());
    assert_eq!(raised.news, AlertNews::Raised);
    assert_eq!(raised.alert.due_local, "07:00 Europe/Berlin");
    assert_eq!(
        raised.alert.reasons,
        ["waiting on searches (222222222222): latest run searches-2026-11-26 FAILED at 05:18"]
    );
    // The blocking parent's owners hear that pipeline-x waits on them; listings' do not.
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[1].0, searches);
    assert_eq!(
        alerts[1].1.news,
        AlertNews::WaitingOnYou {
            parent: searches.clone()
        }
    );
    // Later runs the same day raise nothing more.
    for now in ["2026-11-26T06:01:00Z", "2026-11-26T06:20:00Z"] {
        let (watched, alerts) = w.watch(now);
        assert!(watched.raised.is_empty() && alerts.is_empty(), "{now}");
    }
    // searches re-run, pipeline-x starts at 07:35: the alert's thread hears it was 35 min late.
    w.run(
        &searches,
        "searches-2026-11-26-rerun",
        RunStatus::Succeeded,
        "2026-11-26T06:00:00Z",
        Some("2026-11-26T06:30:00Z"),
    );
    w.run(
        &x(),
        "x-1",
        RunStatus::Running,
        "2026-11-26T06:35:00Z",
        None,
    );
    let (watched, alerts) = w.watch("2026-11-26T06:40:00Z");
    assert_eq!(
        watched.resolved,
        ["333333333333:eu-west-1:pipeline-x#2026-11-26#lateStart"]
    );
    assert_eq!(
        alerts[0].1.news,
        AlertNews::Resolved {
            at: at("2026-11-26T06:35:00Z"),
            late_by: Span::minutes(35),
            execution_name: Some("x-1".into())
        }
    );
    let message = baton_core::watch::message::alert_message(&alerts[0].1, None);
    assert_eq!(message.text, "pipeline-x started 35 min late (run x-1)");
    // Followed up once.
    assert!(w.watch("2026-11-26T06:45:00Z").1.is_empty());
}

#[test]
fn late_finish_says_what_is_running_and_an_on_time_day_raises_nothing() {
    let w = World::new();
    w.register(&x(), PIPELINE_X, at("2026-11-25T12:00:00Z"));
    w.watch("2026-11-25T12:01:00Z");
    // Day 1: started 06:50 local, still running at 09:30 local.
    w.run(
        &x(),
        "x-26",
        RunStatus::Running,
        "2026-11-26T05:50:00Z",
        None,
    );
    assert!(w.watch("2026-11-26T06:00:00Z").0.raised.is_empty());
    let (watched, alerts) = w.watch("2026-11-26T08:30:00Z");
    assert_eq!(
        watched.raised,
        ["333333333333:eu-west-1:pipeline-x#2026-11-26#lateFinish"]
    );
    assert_eq!(alerts[0].1.alert.kind, DeadlineKind::LateFinish);
    assert_eq!(
        alerts[0].1.alert.reasons,
        ["run x-26 has been running since 06:50"]
    );
    assert_eq!(alerts.len(), 1, "no parent note for a late finish");
    // It succeeds at 10:10 local: 40 min late.
    w.run(
        &x(),
        "x-26",
        RunStatus::Succeeded,
        "2026-11-26T05:50:00Z",
        Some("2026-11-26T09:10:00Z"),
    );
    let (_, alerts) = w.watch("2026-11-26T09:15:00Z");
    assert!(
        matches!(alerts[0].1.news, AlertNews::Resolved { late_by, .. } if late_by == Span::minutes(40))
    );
    // Day 2 on time: nothing.
    w.run(
        &x(),
        "x-27",
        RunStatus::Succeeded,
        "2026-11-27T05:00:00Z",
        Some("2026-11-27T06:00:00Z"),
    );
    for now in ["2026-11-27T06:00:00Z", "2026-11-27T08:30:00Z"] {
        assert!(w.watch(now).1.is_empty(), "{now}");
    }
    // Day 3 nothing ran: a late start for day 3 only.
    let (watched, _) = w.watch("2026-11-28T06:00:00Z");
    assert_eq!(
        watched.raised,
        ["333333333333:eu-west-1:pipeline-x#2026-11-28#lateStart"]
    );
    // Nothing ever ran that day: a day after its deadline the alert stops waiting, silently.
    w.watch("2026-11-28T08:30:00Z");
    assert_eq!(
        w.mem.watch.open_alerts_count(),
        2,
        "lateStart and lateFinish of day 3"
    );
    let (watched, alerts) = w.watch("2026-11-29T09:00:00Z");
    assert!(watched.resolved.is_empty());
    assert!(
        alerts
            .iter()
            .all(|(_, a)| !matches!(a.news, AlertNews::Resolved { .. })),
        "no follow-up: {alerts:?}"
    );
    assert_eq!(w.mem.watch.open_alerts_count(), 2, "day 4's alerts only");
}

#[test]
fn deadlines_follow_berlin_across_both_daylight_saving_changes() {
    let w = World::new();
    let start_only = "deadlines: {startBy: \"07:00\", timezone: Europe/Berlin}\n";
    w.register(&x(), start_only, at("2026-03-27T12:00:00Z"));
    w.watch("2026-03-27T12:01:00Z");
    // 28 March (CET): 07:00 is 06:00Z. 29 March (CEST from 02:00): 07:00 is 05:00Z.
    assert!(w.watch("2026-03-28T05:59:00Z").0.raised.is_empty());
    assert_eq!(w.watch("2026-03-28T06:00:00Z").0.raised.len(), 1);
    assert!(w.watch("2026-03-29T04:59:00Z").0.raised.is_empty());
    let (watched, alerts) = w.watch("2026-03-29T05:00:00Z");
    assert_eq!(
        watched.raised,
        ["333333333333:eu-west-1:pipeline-x#2026-03-29#lateStart"]
    );
    assert_eq!(alerts[0].1.alert.due_local, "07:00 Europe/Berlin");
    // Back to CET on 25 October: 07:00 is 06:00Z again, and a run at 06:30 local is on time.
    let autumn = World::new();
    autumn.register(&x(), start_only, at("2026-10-24T12:00:00Z"));
    autumn.watch("2026-10-24T12:01:00Z");
    autumn.run(
        &x(),
        "x-25",
        RunStatus::Running,
        "2026-10-25T05:30:00Z",
        None,
    );
    assert!(autumn.watch("2026-10-25T05:00:00Z").0.raised.is_empty());
    assert!(autumn.watch("2026-10-25T06:00:00Z").0.raised.is_empty());
    assert!(autumn.watch("2026-10-26T05:59:00Z").0.raised.is_empty());
    assert_eq!(autumn.watch("2026-10-26T06:00:00Z").0.raised.len(), 1);
}

#[test]
fn a_missed_minute_is_caught_up_and_a_removed_deadline_is_no_longer_watched() {
    let w = World::new();
    w.register(&x(), PIPELINE_X, at("2026-11-25T12:00:00Z"));
    w.watch("2026-11-25T12:01:00Z");
    // The watchdog did not run between 06:00Z and the next day: both of the 26th's deadlines
    // are judged late, in order, and the 27th's check is scheduled.
    let (first, _) = w.watch("2026-11-27T00:10:00Z");
    assert_eq!(
        first.raised,
        [
            "333333333333:eu-west-1:pipeline-x#2026-11-26#lateStart",
            "333333333333:eu-west-1:pipeline-x#2026-11-26#lateFinish"
        ]
    );
    assert!(w.watch("2026-11-27T00:11:00Z").0.raised.is_empty());
    assert_eq!(w.mem.watch.scheduled()[0].at, at("2026-11-27T06:00:00Z"));
    // The stack drops its deadlines: the due check is dropped when it comes.
    w.register(
        &x(),
        "notifications: {targets: [{channel: SLACK, addresses: [x]}]}\n",
        at("2026-11-27T01:00:00Z"),
    );
    let (watched, _) = w.watch("2026-11-27T06:00:00Z");
    assert!(watched.raised.is_empty());
    assert!(w.mem.watch.scheduled().is_empty());
}

#[test]
fn a_trigger_left_pending_is_re_sent_with_its_id_without_a_parent_event() {
    let w = World::new();
    let child = id("333333333333", "pipeline-y");
    let trigger: baton_core::PipelineTrigger = serde_json::from_value(serde_json::json!({
        "batonTriggerId": "t-pending",
        "target": {"account": "333333333333", "region": "eu-west-1", "name": "pipeline-y",
                   "stateMachineArn": "arn:aws:states:eu-west-1:333333333333:stateMachine:pipeline-y"},
        "consumed": [], "reason": "listings SUCCEEDED", "firedAt": at("2026-11-26T06:00:00Z").0
    }))
    .unwrap();
    w.register(&child, "trigger: {executions: {allOf: [{name: listings, account: \"111111111111\", status: [SUCCESS]}]}}\n", at("2026-11-25T12:00:00Z"));
    // Claimed; its sender died before sending.
    block_on(w.mem.ledger.claim(
        &trigger,
        None,
        at("2026-11-26T05:59:00Z"),
        &baton_testbed::ended_lease(),
    ))
    .unwrap();
    // Within the grace it is left to its sender and Lambda's retries.
    assert!(w.watch("2026-11-26T06:02:00Z").0.resent.is_empty());
    assert!(w.mem.buses.take_sent().is_empty());
    let (watched, _) = w.watch("2026-11-26T06:04:00Z");
    assert_eq!(watched.resent, ["t-pending"]);
    let sent = w.mem.buses.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.trigger_id.0, "t-pending");
    // Sent once: no longer pending, nothing more to sweep.
    assert!(block_on(w.mem.ledger.cursor(&child, None))
        .unwrap()
        .unwrap()
        .pending
        .is_none());
    assert!(w.watch("2026-11-26T06:10:00Z").0.resent.is_empty());
}

#[test]
fn a_run_longer_than_max_duration_is_reported_once_and_followed_up_when_it_stops() {
    let w = World::new();
    let yaml = "deadlines: {maxDuration: 2h, timezone: Europe/Berlin}\nnotifications: {targets: [{channel: SLACK, addresses: [x]}]}\n";
    w.register(&x(), yaml, at("2026-11-25T12:00:00Z"));
    w.watch("2026-11-26T05:00:00Z");
    // A short run and a long one, both seen by the watchdog soon after they start.
    w.run(
        &x(),
        "short",
        RunStatus::Running,
        "2026-11-26T05:00:30Z",
        None,
    );
    w.run(
        &x(),
        "long",
        RunStatus::Running,
        "2026-11-26T05:01:00Z",
        None,
    );
    w.watch("2026-11-26T05:02:00Z");
    w.run(
        &x(),
        "short",
        RunStatus::Succeeded,
        "2026-11-26T05:00:30Z",
        Some("2026-11-26T05:30:00Z"),
    );
    assert!(w.watch("2026-11-26T07:00:59Z").0.raised.is_empty());
    let (watched, alerts) = w.watch("2026-11-26T07:01:00Z");
    assert_eq!(
        watched.raised,
        ["333333333333:eu-west-1:pipeline-x#2026-11-26#tooLong"]
    );
    assert_eq!(
        alerts[0].1.alert.reasons,
        ["run long has been running since 06:01, longer than its maxDuration 2h"]
    );
    assert!(w.watch("2026-11-26T07:30:00Z").0.raised.is_empty());
    w.run(
        &x(),
        "long",
        RunStatus::Failed,
        "2026-11-26T05:01:00Z",
        Some("2026-11-26T07:41:00Z"),
    );
    let (watched, alerts) = w.watch("2026-11-26T07:45:00Z");
    assert_eq!(watched.resolved.len(), 1);
    let message = baton_core::watch::message::alert_message(&alerts[0].1, None);
    assert_eq!(
        message.text,
        "pipeline-x (run long) stopped 40 min after its maxDuration"
    );
}

fn listings_run(status: RunStatus, stopped: Option<&str>) -> Run {
    Run {
        pipeline: id("111111111111", "listings"),
        execution_arn: "arn:aws:states:eu-west-1:111111111111:execution:listings:l-26".into(),
        execution_name: "l-26".into(),
        status,
        started_at: at("2026-11-26T03:00:00Z"),
        stopped_at: stopped.map(at),
        error: None,
        cause: None,
        trigger_id: None,
        run_key: None,
    }
}

#[test]
fn a_lost_succeeded_is_recovered_recorded_as_recovered_and_fires_the_child() {
    let w = World::new();
    let child = id("333333333333", "pipeline-y");
    w.register(
        &child,
        "trigger: {executions: {allOf: [{name: listings, account: \"111111111111\", status: [SUCCESS]}]}}\n",
        at("2026-11-25T12:00:00Z"),
    );
    // listings starts; its SUCCEEDED at 04:00 never reaches baton.
    block_on(
        w.mem
            .run_log
            .record(&listings_run(RunStatus::Running, None)),
    )
    .unwrap();
    w.watch("2026-11-26T03:01:00Z");
    w.mem.executions.set(&listings_run(
        RunStatus::Succeeded,
        Some("2026-11-26T04:00:00Z"),
    ));
    // Looked up once the reconciliation period (24 h) has passed, not before.
    assert!(w.watch("2026-11-27T02:59:00Z").0.recovered.is_empty());
    assert_eq!(w.mem.executions.asked(), 0);
    let watched = w.watch_only("2026-11-27T03:00:00Z");
    assert_eq!(
        watched.recovered,
        ["arn:aws:states:eu-west-1:111111111111:execution:listings:l-26 SUCCEEDED"]
    );
    // Recorded through the one recording path, marked recovered in the run log and the event.
    let recovered = w.mem.run_log.recovered_runs();
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].status, RunStatus::Succeeded);
    let announced: Vec<RunEvent> = w.mem.topic.take_published();
    assert_eq!(announced.len(), 1);
    let RunEvent::Status(announced) = &announced[0] else {
        panic!("not a status event: {announced:?}");
    };
    assert!(announced.recovered);
    // trigger-manager takes the event as any other: pipeline-y starts.
    let run = announced.run().reference();
    let now = at("2026-11-27T03:00:01Z");
    let invocation = Invocation::new("tm", now, now.plus(Span::MINUTE), &w.settings.flow);
    block_on(baton_core::trigger::wake_children(
        &w.mem.ports(),
        &run,
        &invocation,
        &w.settings.flow,
    ))
    .unwrap();
    let sent = w.mem.buses.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.target.name, "pipeline-y");
    // Nothing more to reconcile.
    assert!(w.watch("2026-11-28T03:01:00Z").0.recovered.is_empty());
    assert_eq!(w.mem.executions.asked(), 1);
}

#[test]
fn a_refusing_role_is_logged_once_per_account_and_day_and_its_runs_are_asked_again_later() {
    let w = World::new();
    let second = Run {
        execution_arn: "arn:aws:states:eu-west-1:111111111111:execution:listings:l-26b".into(),
        execution_name: "l-26b".into(),
        ..listings_run(RunStatus::Running, None)
    };
    block_on(
        w.mem
            .run_log
            .record(&listings_run(RunStatus::Running, None)),
    )
    .unwrap();
    block_on(w.mem.run_log.record(&second)).unwrap();
    w.watch("2026-11-26T03:01:00Z");
    w.mem.executions.refuse("111111111111");
    let (watched, _) = w.watch("2026-11-27T03:00:00Z");
    assert!(watched.recovered.is_empty());
    assert_eq!(watched.refused.len(), 1, "{:?}", watched.refused);
    assert!(watched.refused[0].starts_with("111111111111: AccessDenied"));
    // One question, one log line, for two runs of the account.
    assert_eq!(w.mem.executions.asked(), 1);
    let report = block_on(baton_core::watch::run::watch_once(
        &w.mem.watch_ports(),
        &Invocation::new(
            "w",
            at("2026-11-27T03:01:00Z"),
            at("2026-11-27T03:02:00Z"),
            &w.settings.flow,
        ),
        &w.settings,
    ));
    assert!(
        report.refusals.is_empty(),
        "noted within the day: not logged again"
    );
    // The runs are asked about again a period later: once the role works, they are recovered.
    w.mem.executions.set(&listings_run(
        RunStatus::Succeeded,
        Some("2026-11-26T04:00:00Z"),
    ));
    let fixed = World::new();
    drop(fixed);
    assert_eq!(w.mem.watch.scheduled().len(), 2);
    assert!(w
        .mem
        .watch
        .scheduled()
        .iter()
        .all(|c| c.at == at("2026-11-28T03:00:00Z")));
}
