//! `baton explain`: why a pipeline has or has not fired since its last trigger.

use baton_core::trigger::{inspect_child, FlowSettings, Inspection};
use baton_core::{PipelineId, RunKey, Timestamp};
use serde_json::json;

use super::Stores;
use crate::render::Style;
use crate::Failure;

pub async fn explain(
    stores: &Stores,
    pipeline: &PipelineId,
    key: Option<&RunKey>,
    as_json: bool,
    style: Style,
) -> Result<(), Failure> {
    let settings = FlowSettings::with_default_bus("baton-pipelines");
    let inspection = inspect_child(
        &stores.registry,
        &stores.run_log,
        &stores.ledger,
        pipeline,
        key,
        Timestamp::now(),
        &settings,
    )
    .await
    .map_err(Failure::env)?
    .ok_or_else(|| Failure::no(format!("{pipeline} is not registered with baton")))?;
    let state = inspection.cursor_state.as_ref();
    let last = state
        .and_then(|s| s.last_trigger_id.as_ref())
        .map(|t| t.0.clone());
    let pending = state.and_then(|s| s.pending.as_ref());
    if as_json {
        println!(
            "{}",
            json!({
                "pipeline": pipeline.key(),
                "runKey": inspection.run_key,
                "ownerStackId": inspection.registration.owner_stack_id,
                "registeredAt": inspection.registration.registered_at.to_string(),
                "cursor": inspection.cursor.to_string(),
                "lastTriggerId": last,
                "pendingTriggerId": pending.map(|p| p.trigger_id.0.clone()),
                "evaluation": inspection.evaluation,
            })
        );
        return Ok(());
    }
    print_inspection(pipeline, &inspection, style);
    Ok(())
}

/// The inspection as text: registration, cursor, last and pending trigger, and the condition
/// tree evaluated now.
fn print_inspection(pipeline: &PipelineId, inspection: &Inspection, style: Style) {
    let state = inspection.cursor_state.as_ref();
    let last = state
        .and_then(|s| s.last_trigger_id.as_ref())
        .map(|t| t.0.clone());
    let pending = state.and_then(|s| s.pending.as_ref());
    println!("{}", style.bold(&pipeline.to_string()));
    let rows = [
        (
            "registered",
            format!(
                "{} by {}",
                inspection.registration.registered_at, inspection.registration.owner_stack_id
            ),
        ),
        (
            "cursor",
            format!(
                "{} (runs at or before it never count again)",
                inspection.cursor
            ),
        ),
        (
            "last trigger",
            last.unwrap_or_else(|| "none yet".to_owned()),
        ),
    ];
    for (k, v) in rows {
        println!("  {k:<13} {v}");
    }
    if let Some(p) = pending {
        println!(
            "  {:<13} {} (claimed, not yet confirmed sent; the next run event re-sends it)",
            "pending", p.trigger_id
        );
    }
    let aligned = inspection
        .registration
        .definition
        .trigger
        .as_ref()
        .is_some_and(|t| t.is_aligned());
    match &inspection.evaluation {
        None if aligned => println!(
            "  aligned on run keys: it is decided per key; say which with --key K (e.g. --key 2026-11-24)"
        ),
        None => println!(
            "  no trigger condition: this pipeline is started otherwise (schedule, by hand)"
        ),
        Some(e) => {
            println!();
            for line in e.render().lines() {
                println!("{}", style.explanation_line(line));
            }
        }
    }
}
