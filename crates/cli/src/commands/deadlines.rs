//! `baton deadlines`: what is late now (the watchdog's open alerts, with why) and what is due in
//! the next 24 hours (its due checks), from the watch table.

use baton_adapters::DynamoWatch;
use baton_core::deadlines::DeadlineKind;
use baton_core::ports::Registry;
use baton_core::watch::run::utc_day;
use baton_core::watch::{DeadlineWatch, DueCheck};
use baton_core::{Span, Timestamp};
use serde_json::json;

use super::Stores;
use crate::render::Style;
use crate::Failure;

/// One due check as shown: when, whose, which deadlines.
struct Due {
    check: DueCheck,
    local: String,
    what: Vec<String>,
}

pub async fn deadlines(
    stores: &Stores,
    watch: &DynamoWatch,
    now: Timestamp,
    as_json: bool,
    style: Style,
) -> Result<(), Failure> {
    let open = watch.open_alerts().await.map_err(Failure::env)?;
    let horizon = now.plus(Span::DAY);
    let mut checks = Vec::new();
    for day in [utc_day(now), utc_day(horizon)] {
        let on_day = watch.due_on(&day, horizon).await.map_err(Failure::env)?;
        checks.extend(on_day.into_iter().filter(|c| c.at > now));
    }
    checks.sort();
    checks.dedup();
    let mut due = Vec::new();
    for check in checks {
        due.push(describe(stores, check).await?);
    }
    if as_json {
        let late: Vec<_> = open.iter().map(|o| &o.alert).collect();
        let due: Vec<_> = due
            .iter()
            .map(|d| {
                json!({"at": d.check.at.to_string(), "local": d.local, "pipeline": d.check.pipeline.key(),
                       "executionArn": d.check.execution_arn, "checks": d.what})
            })
            .collect();
        println!("{}", json!({"late": late, "due": due}));
        return Ok(());
    }
    println!("{}", style.bold("late now"));
    if open.is_empty() {
        println!("  nothing");
    }
    for o in &open {
        let a = &o.alert;
        println!(
            "  {} {} {} (due {}, raised {})",
            a.pipeline,
            a.kind.as_str(),
            a.day,
            a.due_local,
            a.raised_at
        );
        for reason in &a.reasons {
            println!("    why: {reason}");
        }
    }
    println!("{}", style.bold("due in the next 24 hours"));
    if due.is_empty() {
        println!("  nothing");
    }
    for d in &due {
        println!(
            "  {} ({})  {}  {}",
            d.local,
            d.check.at,
            d.check.pipeline,
            d.what.join(", ")
        );
    }
    Ok(())
}

/// What a due check will judge, read from the pipeline's registration.
async fn describe(stores: &Stores, check: DueCheck) -> Result<Due, Failure> {
    let registration = stores
        .registry
        .get(&check.pipeline)
        .await
        .map_err(Failure::env)?;
    let deadlines = registration.and_then(|r| r.definition.deadlines);
    let local = deadlines
        .as_ref()
        .map(|d| format!("{} {}", d.local_time(check.at), d.timezone))
        .unwrap_or_else(|| check.at.to_string());
    let what = match (&check.execution_arn, &deadlines) {
        (Some(arn), _) => vec![format!(
            "run {} (maxDuration, or looked up in Step Functions if still RUNNING)",
            arn.rsplit(':').next().unwrap_or(arn)
        )],
        (None, Some(d)) => {
            let date = d.day_of(check.at).map_err(Failure::env)?.0;
            d.on_day(date)
                .map_err(Failure::env)?
                .into_iter()
                .filter(|due| due.at == check.at)
                .map(|due| match due.kind {
                    DeadlineKind::LateStart => "startBy".to_owned(),
                    DeadlineKind::LateFinish => "finishBy".to_owned(),
                    DeadlineKind::TooLong => "maxDuration".to_owned(),
                })
                .collect()
        }
        (None, None) => vec!["no deadlines any more (the watchdog drops this check)".to_owned()],
    };
    Ok(Due { check, local, what })
}
