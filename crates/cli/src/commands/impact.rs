//! `baton impact`: everything downstream of a pipeline, by account.

use std::collections::BTreeMap;

use baton_core::graph::load_downstream;
use baton_core::PipelineId;
use serde_json::json;

use super::Stores;
use crate::Failure;

pub async fn impact(stores: &Stores, pipeline: &PipelineId, as_json: bool) -> Result<(), Failure> {
    let (graph, truncated) = load_downstream(&stores.registry, pipeline, 100_000)
        .await
        .map_err(Failure::env)?;
    let downstream = graph.downstream(pipeline);
    let mut by_account: BTreeMap<&str, Vec<&PipelineId>> = BTreeMap::new();
    for p in &downstream {
        by_account.entry(p.account.as_str()).or_default().push(p);
    }
    if as_json {
        let accounts: BTreeMap<&str, Vec<String>> = by_account
            .iter()
            .map(|(a, ps)| (*a, ps.iter().map(|p| p.key()).collect()))
            .collect();
        println!(
            "{}",
            json!({"pipeline": pipeline.key(), "downstream": downstream.len(), "truncated": truncated, "byAccount": accounts})
        );
        return Ok(());
    }
    println!(
        "{} pipeline{} downstream of {pipeline}{}",
        downstream.len(),
        if downstream.len() == 1 { "" } else { "s" },
        if truncated {
            " (stopped at 100000)"
        } else {
            ""
        }
    );
    for (account, ps) in by_account {
        println!("  account {account}");
        for p in ps {
            println!("    {} ({})", p.name, p.region);
        }
    }
    Ok(())
}
