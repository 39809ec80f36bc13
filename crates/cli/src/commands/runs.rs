//! `baton runs`: recent runs of a pipeline from the run log, newest first.

use baton_core::ports::RunLog;
use baton_core::{PipelineId, Span, Timestamp};
use serde_json::json;

use super::{every_status, Stores};
use crate::render::{self, Style};
use crate::Failure;

pub async fn runs(
    stores: &Stores,
    pipeline: &PipelineId,
    limit: usize,
    as_json: bool,
    style: Style,
) -> Result<(), Failure> {
    let mut runs = stores
        .run_log
        .runs_since(pipeline, &every_status(), Timestamp(0), limit.max(1))
        .await
        .map_err(Failure::env)?;
    // The newest `limit` of all statuses (the run log answers up to `limit` per status).
    runs.truncate(limit.max(1));
    if as_json {
        println!("{}", json!({"pipeline": pipeline.key(), "runs": runs}));
        return Ok(());
    }
    if runs.is_empty() {
        println!("no runs of {pipeline} in the run log");
        return Ok(());
    }
    let rows: Vec<[String; 6]> = runs
        .iter()
        .map(|r| {
            [
                r.status_time().to_string(),
                r.status.as_str().to_owned(),
                r.execution_name.clone(),
                r.run_key
                    .as_ref()
                    .map(|k| k.to_string())
                    .unwrap_or_default(),
                r.duration_ms()
                    .map(|ms| Span(ms).aligned())
                    .unwrap_or_default(),
                r.trigger_id.clone().unwrap_or_default(),
            ]
        })
        .collect();
    render::table(
        &[
            "STATUS TIME",
            "STATUS",
            "EXECUTION",
            "RUN KEY",
            "DURATION",
            "TRIGGER",
        ],
        &rows,
        style,
    );
    Ok(())
}
