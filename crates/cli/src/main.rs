//! `baton`: a platform engineer's daily questions, answered from baton's tables.
//!
//! Exit codes: 0 success; 1 the answer is "no" (a definition has problems, a pipeline is not
//! registered); 2 usage error; 3 configuration or AWS error.

mod deadlines;
mod dlq;
mod project;
mod render;
mod stack;

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use baton_adapters::{DynamoLedger, DynamoRegistry, DynamoRunLog, Env};
use baton_core::graph::load_downstream;
use baton_core::ports::RunLog;
use baton_core::trigger::{inspect_child, FlowSettings};
use baton_core::{DependencyGraph, PipelineDefinition, PipelineId, RunKey, Span, Timestamp};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::render::Style;

#[derive(Parser)]
#[command(
    name = "baton",
    version,
    about = "Ask baton about pipelines: validate definitions, show the dependency graph, explain why a pipeline has (not) started, list what is downstream, show runs, show deadlines late and due, and the failed events in dead-letter queues.",
    after_help = "Commands other than `validate`, `init` and `synth` read baton's tables, named by the central stack's outputs (--stack NAME, or --env ENV with baton.yaml's centralStack) or by BATON_RUNS_TABLE, BATON_REGISTRY_TABLE, BATON_LEDGER_TABLE and BATON_SLACK_THREADS_TABLE, with the usual AWS configuration (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL for a local emulator).\n\nA PIPELINE is a state machine ARN, `account:region:name`, or `account:name` in the configured region.\n\nExit codes: 0 success, 1 problems found or pipeline not registered, 2 usage error, 3 configuration or AWS error."
)]
struct Cli {
    /// Print JSON for scripts instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Read the table names from this central stack's outputs (instead of BATON_*_TABLE).
    #[arg(long, global = true, value_name = "NAME")]
    stack: Option<String>,
    /// Read them from the central stack of this environment of the nearest baton.yaml (its
    /// `centralStack`, in its Region).
    #[arg(long = "env", global = true, value_name = "ENV")]
    environment: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check pipeline definitions (YAML or JSON) offline; print every problem with its path. A
    /// `pipeline.yaml` of a project is checked for every environment of its baton.yaml (or the
    /// one `--env` names), its account aliases resolved in each.
    Validate {
        /// Definition files (`.json` is read as JSON, anything else as YAML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Scaffold a pipeline project: NAME/pipeline.yaml, its state machine, samconfig.toml with
    /// one config environment per environment (and baton.yaml when there is none above).
    Init {
        name: String,
        /// The folder to create NAME in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Turn DIR/pipeline.yaml into the SAM template of one environment (template.ENV.yaml), for
    /// `sam deploy --config-env ENV`; `--env ENV` names the environment of baton.yaml. Offline;
    /// every problem is printed with its file and path.
    Synth {
        /// The pipeline's folder.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Print the template instead of writing it.
        #[arg(long)]
        stdout: bool,
    },
    /// The dependency graph across accounts, with each pipeline's latest run status.
    Graph {
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
        /// Only this pipeline and what is downstream of it.
        #[arg(long, value_name = "PIPELINE")]
        from: Option<String>,
    },
    /// Why a pipeline has or has not fired since its last trigger (for one run key, when its
    /// trigger is aligned on run keys).
    Explain {
        pipeline: String,
        /// The run key to explain (e.g. a business date), for a trigger with `alignOn: runKey`.
        #[arg(long, value_name = "K")]
        key: Option<String>,
    },
    /// Everything downstream of a pipeline (transitively), by account.
    Impact { pipeline: String },
    /// What is late now (the watchdog's open alerts, with why) and what is due in the next 24
    /// hours. Reads the watch table named by BATON_WATCH_TABLE.
    Deadlines,
    /// The events a function failed for good (its dead-letter queue), and their re-delivery.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
    /// Recent runs of a pipeline from the run log, newest first.
    Runs {
        pipeline: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

#[derive(Subcommand)]
enum DlqAction {
    /// How many failed events wait in each function's DLQ, and the first few with their error.
    List,
    /// Invoke FUNCTION again with every event in its DLQ (asynchronously, as Lambda did), deleting
    /// each from the queue once Lambda accepted it.
    Redrive {
        /// run-log-writer, trigger-manager, slack-notifier, cfn-responder or watchdog.
        function: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum GraphFormat {
    Mermaid,
    Dot,
}

/// A failure with the exit code it maps to.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn no(message: impl Into<String>) -> Failure {
        Failure {
            code: 1,
            message: message.into(),
        }
    }
    fn env(message: impl std::fmt::Display) -> Failure {
        Failure {
            code: 3,
            message: message.to_string(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let style = Style::new(!cli.json && std::io::stdout().is_terminal());
    let result = match cli.command {
        Command::Dlq { action } => match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(dead_letters(action, cli.json)),
            Err(e) => Err(Failure::env(format!(
                "could not start the async runtime: {e}"
            ))),
        },
        Command::Validate { files } => {
            validate(&files, cli.environment.as_deref(), cli.json, style)
        }
        Command::Init { name, dir } => project::init(&dir, &name, cli.json),
        Command::Synth { dir, stdout } => match &cli.environment {
            Some(env) => project::synth(&dir, env, stdout, cli.json, style),
            None => Err(Failure {
                code: 2,
                message: "synth needs --env ENV: the environment of baton.yaml to build for".into(),
            }),
        },
        command => match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => {
                let source = stack::Source::new(cli.stack, cli.environment);
                rt.block_on(online(command, &source, cli.json, style))
            }
            Err(e) => Err(Failure::env(format!(
                "could not start the async runtime: {e}"
            ))),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("baton: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

fn validate(
    files: &[PathBuf],
    env: Option<&str>,
    as_json: bool,
    style: Style,
) -> Result<(), Failure> {
    let mut reports = Vec::new();
    let mut failed = 0;
    for file in files {
        let outcome = match std::fs::read_to_string(file) {
            Err(e) => Err(vec![format!("(file): cannot be read: {e}")]),
            Ok(text) if project::is_pipeline_file(file) => {
                project::validate_pipeline_file(file, &text, env)
            }
            Ok(text) => {
                let parsed = if file.extension().is_some_and(|e| e == "json") {
                    PipelineDefinition::from_json(&text)
                } else {
                    PipelineDefinition::from_yaml(&text)
                };
                parsed
                    .map(|_| ())
                    .map_err(|e| e.problems.iter().map(|p| p.to_string()).collect())
            }
        };
        if outcome.is_err() {
            failed += 1;
        }
        reports.push((file, outcome));
    }
    if as_json {
        let files: Vec<_> = reports
            .iter()
            .map(|(file, outcome)| match outcome {
                Ok(_) => json!({"file": file, "valid": true, "problems": []}),
                Err(problems) => json!({"file": file, "valid": false, "problems": problems}),
            })
            .collect();
        println!("{}", json!({ "files": files }));
    } else {
        for (file, outcome) in &reports {
            match outcome {
                Ok(_) => println!("{} {}", style.ok("ok"), file.display()),
                Err(problems) => {
                    println!(
                        "{} {}: {} problem{}",
                        style.bad("invalid"),
                        file.display(),
                        problems.len(),
                        if problems.len() == 1 { "" } else { "s" }
                    );
                    for p in problems {
                        println!("  - {p}");
                    }
                }
            }
        }
    }
    if failed > 0 {
        Err(Failure::no(""))
    } else {
        Ok(())
    }
}

/// The stores, read-only, from the same configuration as the functions.
struct Stores {
    dynamo: aws_sdk_dynamodb::Client,
    registry: DynamoRegistry,
    run_log: DynamoRunLog,
    ledger: DynamoLedger,
    region: String,
}

async fn stores(source: &stack::Source) -> Result<Stores, Failure> {
    let (aws, tables) = stack::locate(source).await?;
    let region = aws.region().map(|r| r.to_string()).ok_or_else(|| {
        Failure::env("no AWS region configured: set AWS_REGION (or a profile with a region)")
    })?;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    Ok(Stores {
        registry: DynamoRegistry::new(dynamo.clone(), &tables.registry),
        // Read-only here: the retention only matters for writes.
        run_log: DynamoRunLog::new(dynamo.clone(), &tables.runs, Span::DAY),
        ledger: DynamoLedger::new(dynamo.clone(), &tables.ledger),
        dynamo,
        region,
    })
}

fn pipeline_arg(text: &str, region: &str) -> Result<PipelineId, Failure> {
    let parsed = if text.starts_with("arn:") {
        PipelineId::from_state_machine_arn(text)
    } else {
        match text.split(':').count() {
            3 => PipelineId::from_key(text),
            2 => {
                let (account, name) = text.split_once(':').unwrap_or_default();
                PipelineId::new(account, region, name)
            }
            _ => {
                return Err(Failure {
                    code: 2,
                    message: format!("`{text}` is not a pipeline: give a state machine ARN, account:region:name, or account:name"),
                })
            }
        }
    };
    parsed.map_err(|e| Failure {
        code: 2,
        message: e.to_string(),
    })
}

/// `baton dlq`: needs queues and functions, not tables.
async fn dead_letters(action: DlqAction, as_json: bool) -> Result<(), Failure> {
    let aws = aws_config::load_from_env().await;
    let env = Env::from_process();
    match action {
        DlqAction::List => dlq::list(&aws, &env, as_json).await,
        DlqAction::Redrive { function } => dlq::redrive(&aws, &env, &function, as_json).await,
    }
}

async fn online(
    command: Command,
    source: &stack::Source,
    as_json: bool,
    style: Style,
) -> Result<(), Failure> {
    let stores = stores(source).await?;
    match command {
        Command::Validate { .. }
        | Command::Init { .. }
        | Command::Synth { .. }
        | Command::Dlq { .. } => Ok(()),
        Command::Graph { format, from } => {
            let from = from.map(|f| pipeline_arg(&f, &stores.region)).transpose()?;
            graph(&stores, format, from, as_json).await
        }
        Command::Explain { pipeline, key } => {
            let key = key
                .map(|k| {
                    RunKey::new(&k).map_err(|e| Failure {
                        code: 2,
                        message: format!("--key `{k}` is not a run key: {e}"),
                    })
                })
                .transpose()?;
            explain(
                &stores,
                &pipeline_arg(&pipeline, &stores.region)?,
                key.as_ref(),
                as_json,
                style,
            )
            .await
        }
        Command::Impact { pipeline } => {
            impact(&stores, &pipeline_arg(&pipeline, &stores.region)?, as_json).await
        }
        Command::Deadlines => {
            let table = Env::from_process()
                .required("BATON_WATCH_TABLE")
                .map_err(Failure::env)?;
            let watch = baton_adapters::DynamoWatch::new(stores.dynamo.clone(), table, Span::DAY);
            deadlines::deadlines(&stores, &watch, Timestamp::now(), as_json, style).await
        }
        Command::Runs { pipeline, limit } => {
            runs(
                &stores,
                &pipeline_arg(&pipeline, &stores.region)?,
                limit,
                as_json,
                style,
            )
            .await
        }
    }
}

async fn graph(
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

async fn explain(
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
    Ok(())
}

async fn impact(stores: &Stores, pipeline: &PipelineId, as_json: bool) -> Result<(), Failure> {
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

async fn runs(
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

/// Every status: what the commands that show runs ask the run log for.
fn every_status() -> std::collections::BTreeSet<baton_core::RunStatus> {
    baton_core::RunStatus::ALL.into_iter().collect()
}
