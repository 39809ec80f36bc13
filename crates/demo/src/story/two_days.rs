//! The two-day scene: runs that belong together. listings and searches name their business day
//! in their input (`runKey: $.date`), pipeline-x is aligned on it (`alignOn: runKey`); day 1's
//! searches finishes after day 2's listings, and pipeline-x still runs once per day with that
//! day's pair; then a backfill of day 1's listings re-runs pipeline-x for day 1 only.

use anyhow::Context as _;
use baton_core::trigger::inspect_child;
use baton_core::{PipelineId, RunKey, Timestamp};
use chrono::{DateTime, Duration as Days, NaiveTime, Utc};
use serde_json::{json, Value};

use super::{heading, Change, World, A, B, C, REGION};

/// `hh:mm` on the day `offset` days after today (UTC).
fn day_at(offset: i64, hour: u32, minute: u32) -> Timestamp {
    let day = Utc::now().date_naive() + Days::days(offset);
    let time = NaiveTime::from_hms_opt(hour, minute, 0).unwrap_or_default();
    Timestamp(day.and_time(time).and_utc().timestamp_millis())
}

fn date(offset: i64) -> String {
    DateTime::from_timestamp_millis(day_at(offset, 0, 0).0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// A run of `pipeline` for business day `day` that succeeded at `stop`.
fn succeeded(
    account: &'static str,
    pipeline: &'static str,
    day: &str,
    tag: &str,
    stop: Timestamp,
) -> Change {
    Change {
        account,
        pipeline,
        execution: format!("{pipeline}-{day}{tag}"),
        status: "SUCCEEDED",
        start: Timestamp(stop.0 - 40 * 60_000),
        stop: Some(stop),
        input: json!({ "date": day }),
        error: None,
    }
}

/// One line per trigger: the day it fired for and the runs it paired.
fn show(triggers: &[Value]) {
    for t in triggers {
        let d = &t["detail"];
        let runs: Vec<&str> = d["consumed"]
            .as_array()
            .map(|c| {
                c.iter()
                    .filter_map(|r| r["executionArn"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        let runs: Vec<&str> = runs
            .iter()
            .map(|a| a.rsplit(':').next().unwrap_or(a))
            .collect();
        println!(
            "  => pipeline-x triggered for run key {} with [{}]",
            d["runKey"].as_str().unwrap_or("(none)"),
            runs.join(", ")
        );
    }
}

pub(super) async fn play(world: &World) -> anyhow::Result<()> {
    let (d1, d2) = (date(2), date(3));
    heading(&format!(
        "7. Runs that belong together: {d1} and {d2}, pipeline-x aligned on the run key"
    ));
    let x = align_on_the_run_key(world).await?;
    let before = world.account_c.executions().await?.len();
    let triggers = days_and_a_backfill(world, &d1, &d2).await?;
    let keys: Vec<&str> = triggers
        .iter()
        .map(|t| t["detail"]["runKey"].as_str().unwrap_or("(none)"))
        .collect();
    anyhow::ensure!(
        keys == [d1.as_str(), d2.as_str(), d1.as_str()],
        "pipeline-x should have been triggered for {d1}, {d2}, then {d1} again; it was for {keys:?}"
    );
    let started = world.account_c.executions().await?.len() - before;
    println!(
        "  pipeline-x: {} triggers, {started} new executions in account {C} ({d1} twice: the day and its backfill; {d2} once)",
        triggers.len()
    );
    let key = RunKey::new(&d2).context("the day as a run key")?;
    let inspection = inspect_child(
        &world.central.registry(),
        &world.central.run_log(),
        &world.central.ledger(),
        &x,
        Some(&key),
        day_at(3, 10, 0),
        &world.settings,
    )
    .await?
    .context("pipeline-x is registered")?;
    println!("  baton explain {C}:pipeline-x --key {d2}:");
    if let Some(e) = inspection.evaluation {
        for line in e.render().lines() {
            println!("    {line}");
        }
    }
    Ok(())
}

/// The stacks are updated: listings and searches name their day, pipeline-x is aligned on it.
/// Answers pipeline-x's id.
async fn align_on_the_run_key(world: &World) -> anyhow::Result<PipelineId> {
    println!("  the stacks are updated: listings and searches name their day (runKey: $.date); pipeline-x is aligned (alignOn: runKey) and passes the key on (runKey: $.runKey)");
    let slack = json!({"type": "TERMINAL", "targets": [{"channel": "SLACK", "addresses": ["core-data-availability"]}]});
    world
        .register(
            A,
            "listings",
            json!({"RunKey": "$.date", "Notifications": slack}),
        )
        .await?;
    world
        .register(B, "searches", json!({"RunKey": "$.date"}))
        .await?;
    world
        .register(
            C,
            "pipeline-x",
            json!({
                "PipelineBusArn": world.bus_c.bus_arn,
                "RunKey": "$.runKey",
                "Trigger": {"executions": {"alignOn": "runKey", "allOf": [
                    {"name": "listings", "account": A, "status": ["SUCCESS"]},
                    {"name": "searches", "account": B, "status": ["SUCCESS"]}
                ]}},
            }),
        )
        .await?;
    let x = PipelineId::new(C, REGION, "pipeline-x").context("pipeline-x's id")?;
    let stored = baton_core::ports::Registry::get(&world.central.registry(), &x).await?;
    anyhow::ensure!(
        stored
            .and_then(|r| r.definition.trigger)
            .is_some_and(|t| t.is_aligned()),
        "pipeline-x's Update to an aligned trigger was not registered"
    );
    Ok(x)
}

/// Two days' runs, day 2's listings before day 1's searches, then a backfill of day 1's
/// listings. Answers the triggers sent.
async fn days_and_a_backfill(world: &World, d1: &str, d2: &str) -> anyhow::Result<Vec<Value>> {
    let mut triggers = Vec::new();
    println!("  day 2's listings finishes before day 1's searches:");
    for change in [
        succeeded(A, "listings", d1, "", day_at(2, 4, 0)),
        succeeded(A, "listings", d2, "", day_at(3, 3, 40)),
        succeeded(B, "searches", d1, "", day_at(3, 5, 10)),
        succeeded(B, "searches", d2, "", day_at(3, 6, 0)),
    ] {
        let sent = world.status_change(&change).await?;
        show(&sent);
        triggers.extend(sent);
    }
    println!("  a backfill: listings of {d1} is run again (fixed data) on {d2}:");
    let backfill = succeeded(A, "listings", d1, "-backfill", day_at(3, 9, 0));
    let sent = world.status_change(&backfill).await?;
    show(&sent);
    triggers.extend(sent);
    Ok(triggers)
}
