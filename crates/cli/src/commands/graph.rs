//! `baton graph`: the dependency graph across accounts, with each pipeline's latest run status.

use std::collections::{BTreeMap, BTreeSet};

use baton_core::ports::RunLog;
use baton_core::{DependencyGraph, PipelineId, Run, Timestamp};
use serde_json::json;

use super::{every_status, Stores};
use crate::{Failure, GraphFormat};

/// The graph as shown: its pipelines (registered or only named as a parent), the edges between
/// them, and each pipeline's latest run.
struct Shown {
    pipelines: BTreeSet<PipelineId>,
    registered: BTreeSet<PipelineId>,
    edges: Vec<(PipelineId, PipelineId)>,
    latest: BTreeMap<PipelineId, Option<Run>>,
}

pub async fn graph(
    stores: &Stores,
    format: GraphFormat,
    from: Option<PipelineId>,
    as_json: bool,
) -> Result<(), Failure> {
    let shown = read(stores, from.as_ref()).await?;
    if as_json {
        print_json(&shown);
        return Ok(());
    }
    let ids: BTreeMap<&PipelineId, usize> = shown
        .pipelines
        .iter()
        .enumerate()
        .map(|(i, p)| (p, i))
        .collect();
    match format {
        GraphFormat::Mermaid => print_mermaid(&shown, &ids),
        GraphFormat::Dot => print_dot(&shown, &ids),
    }
    Ok(())
}

/// Reads the registry and each shown pipeline's latest run; `from`: only it and what is
/// downstream of it.
async fn read(stores: &Stores, from: Option<&PipelineId>) -> Result<Shown, Failure> {
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
    if let Some(from) = from {
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
    Ok(Shown {
        pipelines,
        registered,
        edges,
        latest,
    })
}

fn print_json(shown: &Shown) {
    let nodes: Vec<_> = shown
        .pipelines
        .iter()
        .map(|p| {
            let run = shown.latest.get(p).cloned().flatten();
            json!({
                "pipeline": p.key(), "account": p.account, "region": p.region, "name": p.name,
                "registered": shown.registered.contains(p),
                "latestStatus": run.as_ref().map(|r| r.status.as_str()),
                "latestAt": run.as_ref().map(|r| r.status_time().to_string()),
            })
        })
        .collect();
    let edges: Vec<_> = shown
        .edges
        .iter()
        .map(|(a, b)| json!({"parent": a.key(), "child": b.key()}))
        .collect();
    println!("{}", json!({"pipelines": nodes, "edges": edges}));
}

/// A pipeline's name, place (account/region) and latest status, as a node shows them.
fn label(shown: &Shown, p: &PipelineId) -> (String, String, String) {
    let status = shown
        .latest
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
}

fn print_mermaid(shown: &Shown, ids: &BTreeMap<&PipelineId, usize>) {
    println!("flowchart LR");
    for (p, i) in ids {
        let (name, place, status) = label(shown, p);
        println!(
            "  p{i}[\"{}<br/>{place}<br/>{status}\"]",
            name.replace('"', "#quot;")
        );
    }
    for (a, b) in &shown.edges {
        println!("  p{} --> p{}", ids[a], ids[b]);
    }
}

fn print_dot(shown: &Shown, ids: &BTreeMap<&PipelineId, usize>) {
    println!("digraph baton {{\n  rankdir=LR;\n  node [shape=box];");
    for p in ids.keys() {
        let (name, place, status) = label(shown, p);
        println!(
            "  \"{}\" [label=\"{}\\n{place}\\n{status}\"];",
            p.key(),
            name.replace('"', "\\\"")
        );
    }
    for (a, b) in &shown.edges {
        println!("  \"{}\" -> \"{}\";", a.key(), b.key());
    }
    println!("}}");
}
