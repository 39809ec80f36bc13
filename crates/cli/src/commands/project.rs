//! `baton init` and `baton synth`: a pipeline project from `pipeline.yaml` to a SAM template
//! (docs/pipelines.md). Offline: neither reads AWS.

use std::path::Path;

use baton_synth::scaffold;
use serde_json::json;

use crate::render::Style;
use crate::Failure;

/// `baton init NAME`: scaffolds the pipeline's folder under `parent`.
pub fn init(parent: &Path, name: &str, as_json: bool) -> Result<(), Failure> {
    let done = scaffold::init(parent, name).map_err(|e| Failure::no(e.to_string()))?;
    if as_json {
        println!(
            "{}",
            json!({"files": done.files, "wroteProjectFile": done.wrote_project})
        );
        return Ok(());
    }
    for file in &done.files {
        println!("wrote {}", file.display());
    }
    if done.wrote_project {
        println!("fill in baton.yaml from your central stacks' outputs, then:");
    } else {
        println!("next:");
    }
    println!(
        "  baton synth --dir {} --env dev",
        parent.join(name).display()
    );
    println!(
        "  (cd {} && sam deploy --config-env dev)",
        parent.join(name).display()
    );
    Ok(())
}

/// `baton synth`: writes `template.ENV.yaml` next to pipeline.yaml (or prints it).
pub fn synth(
    dir: &Path,
    env: &str,
    stdout: bool,
    as_json: bool,
    style: Style,
) -> Result<(), Failure> {
    let made = match baton_synth::synth(dir, env) {
        Ok(made) => made,
        Err(problems) => {
            if as_json {
                let items: Vec<_> = problems
                    .items
                    .iter()
                    .map(|l| json!({"file": l.file, "path": l.problem.path, "message": l.problem.message}))
                    .collect();
                println!("{}", json!({"valid": false, "problems": items}));
            } else {
                println!("{} {problems}", style.bad("invalid"));
            }
            return Err(Failure::no(""));
        }
    };
    if stdout {
        print!("{}", made.template);
        return Ok(());
    }
    std::fs::write(&made.path, &made.template)
        .map_err(|e| Failure::env(format!("could not write {}: {e}", made.path.display())))?;
    if as_json {
        println!(
            "{}",
            json!({"valid": true, "pipeline": made.pipeline.name, "environment": env, "template": made.path})
        );
    } else {
        println!(
            "{} {} ({env}) -> {}",
            style.ok("ok"),
            made.pipeline.name,
            made.path.display()
        );
    }
    Ok(())
}

/// Whether `file` is a project's `pipeline.yaml` (a baton.yaml above it), checked as synth reads it.
pub fn is_pipeline_file(file: &Path) -> bool {
    file.file_name()
        .is_some_and(|n| n == baton_synth::PIPELINE_FILE)
        && baton_synth::Project::find(file.parent().unwrap_or(Path::new("."))).is_some()
}

/// Checks a project's pipeline.yaml for `env`, or for every environment of its project file;
/// problems carry the environment they were found in.
pub fn validate_pipeline_file(
    file: &Path,
    text: &str,
    env: Option<&str>,
) -> Result<(), Vec<String>> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let Some(path) = baton_synth::Project::find(dir) else {
        return Err(vec!["(file): no baton.yaml above it".to_owned()]);
    };
    let project = baton_synth::Project::load(&path)
        .map_err(|e| e.items.iter().map(|l| l.to_string()).collect::<Vec<_>>())?;
    let environments: Vec<&baton_synth::Environment> = match env {
        Some(name) => vec![project.environment(name).map_err(|m| vec![m])?],
        None => project.environments.values().collect(),
    };
    let mut problems = Vec::new();
    for environment in environments {
        let name = file.display().to_string();
        if let Err(e) =
            baton_synth::PipelineFile::parse(&name, text, environment, &project.accounts)
        {
            problems.extend(e.items.iter().map(|l| {
                format!(
                    "{} ({}): {}",
                    l.problem.path, environment.name, l.problem.message
                )
            }));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}
