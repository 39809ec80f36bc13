//! `baton graph`: the dependency graph across accounts, with each pipeline's latest run status.

use std::collections::{BTreeMap, BTreeSet};

use baton_core::ports::RunLog;
use baton_core::{DependencyGraph, PipelineId, Timestamp};
use serde_json::json;

use super::{every_status, Stores};
use crate::{Failure, GraphFormat};

pub async fn graph(
    stores: &Stores,
    format: GraphFormat,
    from: Option<PipelineId>,
    as_json: bool,
) -> Result<(), Failure> {
    let registrations = stores.registry.list().await.map_err(Failure::env)?;
    let mut graph = DependencyGraph::new();
    let mut pipelines: BTreeSet<PipelineId> = BTreeSet::new();
    let registered: BTreeSet<PipelineId> =
        registrations.iter().map(|r| r.pipeline.clone()).collect();
    for r in &registrations {
        pipelines.insert(r.pipeline.clone());
        for parent in r.parents().into_keys() {
            pipelines.insert(parent.clone());
            graph.add_edge(parent, r.pipeline.clone());
        }
    }
    if let Some(from) = &from {
        let mut keep: BTreeSet<PipelineId> = graph.downstream(from).into_iter().collect();
        keep.insert(from.clone());
        pipelines.retain(|p| keep.contains(p));
    }
    let mut latest = BTreeMap::new();
    for p in &pipelines {
        let run = stores
            .run_log
            .runs_since(p, &every_status(), Timestamp(0), 1)
            .await
            .map_err(Failure::env)?;
        latest.insert(p.clone(), run.into_iter().next());
    }
    let edges: Vec<(PipelineId, PipelineId)> = pipelines
        .iter()
        .flat_map(|p| {
            graph
                .children(p)
                .filter(|c| pipelines.contains(*c))
                .map(move |c| (p.clone(), c.clone()))
        })
        .collect();
    if as_json {
        let nodes: Vec<_> = pipelines
            .iter()
            .map(|p| {
                let run = latest.get(p).cloned().flatten();
                json!({
                    "pipeline": p.key(), "account": p.account, "region": p.region, "name": p.name,
                    "registered": registered.contains(p),
                    "latestStatus": run.as_ref().map(|r| r.status.as_str()),
                    "latestAt": run.as_ref().map(|r| r.status_time().to_string()),
                })
            })
            .collect();
        let edges: Vec<_> = edges
            .iter()
            .map(|(a, b)| json!({"parent": a.key(), "child": b.key()}))
            .collect();
        println!("{}", json!({"pipelines": nodes, "edges": edges}));
        return Ok(());
    }
    let label = |p: &PipelineId| {
        let status = latest
            .get(p)
            .cloned()
            .flatten()
            .map(|r| r.status.as_str().to_owned())
            .unwrap_or_else(|| "no runs".to_owned());
        (
            p.name.clone(),
            format!("{}/{}", p.account, p.region),
            status,
        )
    };
    let ids: BTreeMap<&PipelineId, usize> =
        pipelines.iter().enumerate().map(|(i, p)| (p, i)).collect();
    match format {
        GraphFormat::Mermaid => {
            println!("flowchart LR");
            for (p, i) in &ids {
                let (name, place, status) = label(p);
                println!(
                    "  p{i}[\"{}<br/>{place}<br/>{status}\"]",
                    name.replace('"', "#quot;")
                );
            }
            for (a, b) in &edges {
                println!("  p{} --> p{}", ids[a], ids[b]);
            }
        }
        GraphFormat::Dot => {
            println!("digraph baton {{\n  rankdir=LR;\n  node [shape=box];");
            for p in ids.keys() {
                let (name, place, status) = label(p);
                println!(
                    "  \"{}\" [label=\"{}\\n{place}\\n{status}\"];",
                    p.key(),
                    name.replace('"', "\\\"")
                );
            }
            for (a, b) in &edges {
                println!("  \"{}\" -> \"{}\";", a.key(), b.key());
            }
            println!("}}");
        }
    }
    Ok(())
}
