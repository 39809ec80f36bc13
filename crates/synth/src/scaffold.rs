//! `baton init NAME`: a new pipeline's folder with a commented `pipeline.yaml`, a state machine to
//! start from, and a `samconfig.toml` with one config environment per environment of the
//! project; and `baton.yaml` next to it when no project file exists yet.

use std::path::{Path, PathBuf};

use baton_core::pipeline::check_name;

use crate::project::{Project, PROJECT_FILE};
use crate::PIPELINE_FILE;

/// What `init` wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scaffolded {
    pub files: Vec<PathBuf>,
    /// True when it also wrote a project file, whose values must be filled in before synth.
    pub wrote_project: bool,
}

/// Why `init` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0}")]
    Name(String),
    #[error("{0} already exists; baton init never overwrites a file")]
    Exists(PathBuf),
    #[error("{path}: {message}")]
    Project { path: PathBuf, message: String },
    #[error("could not write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Scaffolds pipeline `name` in `parent/name`.
pub fn init(parent: &Path, name: &str) -> Result<Scaffolded, InitError> {
    check_name(name).map_err(|e| InitError::Name(e.to_string()))?;
    let dir = parent.join(name);
    if dir.join(PIPELINE_FILE).exists() {
        return Err(InitError::Exists(dir.join(PIPELINE_FILE)));
    }
    let existing = Project::find(parent);
    let environments: Vec<(String, Option<String>)> = match &existing {
        Some(path) => Project::load(path)
            .map_err(|e| InitError::Project {
                path: path.clone(),
                message: e.to_string(),
            })?
            .environments
            .values()
            .map(|e| (e.name.clone(), Some(e.region.clone())))
            .collect(),
        None => vec![("dev".to_owned(), None), ("prod".to_owned(), None)],
    };
    let mut files = vec![
        (dir.join(PIPELINE_FILE), pipeline_yaml(name)),
        (
            dir.join(crate::pipeline_file::DEFAULT_DEFINITION),
            state_machine(name),
        ),
        (dir.join("samconfig.toml"), samconfig(name, &environments)),
    ];
    if existing.is_none() {
        files.push((parent.join(PROJECT_FILE), PROJECT_TEMPLATE.to_owned()));
    }
    if let Some((path, _)) = files.iter().find(|(p, _)| p.exists()) {
        return Err(InitError::Exists(path.clone()));
    }
    std::fs::create_dir_all(&dir).map_err(|source| InitError::Write {
        path: dir.clone(),
        source,
    })?;
    for (path, text) in &files {
        std::fs::write(path, text).map_err(|source| InitError::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok(Scaffolded {
        files: files.into_iter().map(|(p, _)| p).collect(),
        wrote_project: existing.is_none(),
    })
}

fn pipeline_yaml(name: &str) -> String {
    format!(
        r#"# The pipeline {name}: baton registers it when its stack deploys (docs/pipelines.md).
name: {name}
description: What {name} produces, for whom.

# stateMachine:
#   definition: statemachine.asl.json   # the default
#   policies: []                        # SAM policy templates the state machine needs

trigger:
  schedule: {{hour: 3}}                  # daily at 03:00 UTC; or {{cron: "0 3 * * ? *"}}
  # Or start when upstream pipelines reach a status (an account id, or an alias of baton.yaml):
  # executions:
  #   allOf:
  #     - {{name: listings, account: core-data, status: [SUCCEEDED]}}
  #   within: 20h

notifications:
  type: FULL_EXECUTION                  # TERMINAL: final statuses only; FAILURES: failures only
  targets:
    - {{channel: SLACK, addresses: [{name}]}}
    # - {{channel: EMAIL, addresses: [team@example.com]}}
  # mentionOnFailure: "<!subteam^S0123>"
"#
    )
}

fn state_machine(name: &str) -> String {
    format!(
        r#"{{
  "Comment": "{name}: replace this with the pipeline's work. baton starts it with its Pipeline Trigger as input.",
  "StartAt": "Work",
  "States": {{
    "Work": {{"Type": "Pass", "End": true}}
  }}
}}
"#
    )
}

fn samconfig(name: &str, environments: &[(String, Option<String>)]) -> String {
    let mut out = String::from("# `baton synth --env ENV` writes template.ENV.yaml; `sam deploy --config-env ENV` deploys it.\nversion = 0.1\n");
    for (env, region) in environments {
        out.push_str(&format!(
            "\n[{env}.deploy.parameters]\nstack_name = \"{name}-{env}\"\ntemplate_file = \"template.{env}.yaml\"\ncapabilities = \"CAPABILITY_IAM\"\nresolve_s3 = true\n"
        ));
        if let Some(region) = region {
            out.push_str(&format!("region = \"{region}\"\n"));
        }
    }
    out
}

/// The project file `init` writes when there is none: synth refuses it until its values are
/// filled in from the central stacks' outputs.
const PROJECT_TEMPLATE: &str = r#"# baton.yaml: the environments this project's pipelines deploy to (docs/pipelines.md).
# Fill in each environment from its central stack's outputs; `baton synth` refuses empty values.
environments:
  dev:
    region: ""                      # e.g. eu-west-1
    centralAccount: ""              # the central stack's account
    registrationServiceToken: ""    # the central stack's RegistrationServiceToken output
    # centralStack: baton-dev       # lets the baton CLI find the tables (`baton --env dev`)
  prod:
    region: ""
    centralAccount: ""
    registrationServiceToken: ""

# Account aliases a trigger may name instead of an account id, one account per environment:
accounts: {}
#  core-data: {dev: "111111111111", prod: "444444444444"}
"#;
