//! Where baton's tables are: named by the environment variables the functions use, or read from
//! the central stack's outputs (`--stack NAME`, or `--env ENV` with the stack and Region of
//! baton.yaml's environment).

use aws_config::SdkConfig;
use baton_adapters::{Env, TableNames};
use baton_synth::Project;

use crate::Failure;

/// The central stack's outputs that name the tables (template.yaml).
const OUTPUTS: [&str; 4] = [
    "RunsTableName",
    "RegistryTableName",
    "LedgerTableName",
    "SlackThreadsTableName",
];

/// Where the tables are said to be.
pub enum Source {
    /// `BATON_RUNS_TABLE`, `BATON_REGISTRY_TABLE`, `BATON_LEDGER_TABLE`, `BATON_SLACK_THREADS_TABLE`.
    Variables,
    /// The outputs of this central stack.
    Stack(String),
    /// The central stack and Region of this environment of the nearest baton.yaml.
    Environment(String),
}

impl Source {
    pub fn new(stack: Option<String>, env: Option<String>) -> Source {
        match (stack, env) {
            (Some(stack), _) => Source::Stack(stack),
            (None, Some(env)) => Source::Environment(env),
            (None, None) => Source::Variables,
        }
    }
}

/// The AWS configuration and the table names `source` leads to.
pub async fn locate(source: &Source) -> Result<(SdkConfig, TableNames), Failure> {
    let (stack, region) = match source {
        Source::Variables => {
            let tables = TableNames::from_env(&Env::from_process()).map_err(|e| {
                Failure::env(format!(
                    "{e} (or name the central stack: --stack NAME, or --env ENV with baton.yaml)"
                ))
            })?;
            return Ok((aws_config::load_from_env().await, tables));
        }
        Source::Stack(stack) => (stack.clone(), None),
        Source::Environment(env) => environment_stack(env)?,
    };
    let mut loader = aws_config::from_env();
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region));
    }
    let aws = loader.load().await;
    let tables = from_stack(&aws, &stack).await?;
    Ok((aws, tables))
}

/// The central stack and Region of environment `env` in the nearest baton.yaml.
fn environment_stack(env: &str) -> Result<(String, Option<String>), Failure> {
    let here =
        std::env::current_dir().map_err(|e| Failure::env(format!("the current folder: {e}")))?;
    let path = Project::find(&here).ok_or_else(|| {
        Failure::env(format!(
            "--env {env}: no baton.yaml in {} or a folder above it",
            here.display()
        ))
    })?;
    let project = Project::load(&path).map_err(|e| Failure::env(e.to_string()))?;
    let environment = project
        .environment(env)
        .map_err(|m| Failure::env(format!("{}: {m}", path.display())))?;
    let stack = environment.central_stack.clone().ok_or_else(|| {
        Failure::env(format!(
            "{}: environments.{env}.centralStack is not set; name the environment's central stack there, or use --stack NAME",
            path.display()
        ))
    })?;
    Ok((stack, Some(environment.region.clone())))
}

async fn from_stack(aws: &SdkConfig, stack: &str) -> Result<TableNames, Failure> {
    let described = aws_sdk_cloudformation::Client::new(aws)
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| {
            Failure::env(format!(
                "reading the outputs of stack `{stack}`: {}",
                aws_sdk_cloudformation::error::DisplayErrorContext(&e)
            ))
        })?;
    let outputs = described
        .stacks()
        .first()
        .map(|s| s.outputs())
        .unwrap_or_default();
    let output = |key: &str| {
        outputs
            .iter()
            .find(|o| o.output_key() == Some(key))
            .and_then(|o| o.output_value())
            .map(str::to_owned)
            .ok_or_else(|| {
                Failure::env(format!(
                    "stack `{stack}` has no output {key}: is it baton's central stack, deployed from the current template.yaml?"
                ))
            })
    };
    let [runs, registry, ledger, slack_threads] = OUTPUTS;
    Ok(TableNames {
        runs: output(runs)?,
        registry: output(registry)?,
        ledger: output(ledger)?,
        slack_threads: output(slack_threads)?,
    })
}
