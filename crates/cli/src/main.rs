//! `baton`: a platform engineer's daily questions, answered from baton's tables.
//!
//! Exit codes: 0 success; 1 the answer is "no" (a definition has problems, a pipeline is not
//! registered); 2 usage error; 3 configuration or AWS error.

mod commands;
mod render;
mod stack;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use baton_adapters::Env;
use baton_core::{RunKey, Span, Timestamp};
use clap::{Parser, Subcommand, ValueEnum};

use crate::commands::{deadlines, dlq, explain, graph, impact, pipeline_arg, project, runs};
use crate::commands::{stores, validate};
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
pub enum DlqAction {
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
pub enum GraphFormat {
    Mermaid,
    Dot,
}

/// A failure with the exit code it maps to.
pub struct Failure {
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
            Ok(rt) => rt.block_on(dlq::run(action, cli.json)),
            Err(e) => Err(Failure::env(format!(
                "could not start the async runtime: {e}"
            ))),
        },
        Command::Validate { files } => {
            validate::validate(&files, cli.environment.as_deref(), cli.json, style)
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
            graph::graph(&stores, format, from, as_json).await
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
            explain::explain(
                &stores,
                &pipeline_arg(&pipeline, &stores.region)?,
                key.as_ref(),
                as_json,
                style,
            )
            .await
        }
        Command::Impact { pipeline } => {
            impact::impact(&stores, &pipeline_arg(&pipeline, &stores.region)?, as_json).await
        }
        Command::Deadlines => {
            let table = Env::from_process()
                .required("BATON_WATCH_TABLE")
                .map_err(Failure::env)?;
            let watch = baton_adapters::DynamoWatch::new(stores.dynamo.clone(), table, Span::DAY);
            deadlines::deadlines(&stores, &watch, Timestamp::now(), as_json, style).await
        }
        Command::Runs { pipeline, limit } => {
            runs::runs(
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
