//! baton's pipeline projects: a team writes `pipeline.yaml` (and its state machine's ASL file), a
//! project file `baton.yaml` lists the environments and account aliases, and `baton synth` turns
//! them into the SAM template `sam deploy` deploys in one environment. `baton init` scaffolds a
//! new pipeline. See docs/pipelines.md.

pub mod local;
pub mod pipeline_file;
pub mod problems;
pub mod project;
pub mod scaffold;
pub mod schedule;
pub mod template;

use std::path::{Path, PathBuf};

pub use pipeline_file::PipelineFile;
pub use problems::Problems;
pub use project::{Environment, Project};

/// The file a pipeline folder holds.
pub const PIPELINE_FILE: &str = "pipeline.yaml";

/// What `synth` made.
#[derive(Clone, Debug)]
pub struct Synthesized {
    pub pipeline: PipelineFile,
    pub environment: Environment,
    /// The template's text.
    pub template: String,
    /// Where it belongs: `template.<env>.yaml` next to pipeline.yaml, where `samconfig.toml`'s
    /// `template_file` of that environment points.
    pub path: PathBuf,
}

/// Reads `dir/pipeline.yaml` and the nearest `baton.yaml`, and synthesizes `env`'s template.
pub fn synth(dir: &Path, env: &str) -> Result<Synthesized, Problems> {
    let project_path = Project::find(dir).ok_or_else(|| {
        one(
            &dir.join(project::PROJECT_FILE).display().to_string(),
            "(file)",
            "no baton.yaml in this folder or any folder above it; `baton init` writes one, docs/pipelines.md describes it",
        )
    })?;
    let project = Project::load(&project_path)?;
    let environment = project
        .environment(env)
        .map_err(|m| one(&project_path.display().to_string(), "environments", &m))?
        .clone();
    let file = dir.join(PIPELINE_FILE);
    let name = file.display().to_string();
    let text = std::fs::read_to_string(&file)
        .map_err(|e| one(&name, "(file)", &format!("cannot be read: {e}")))?;
    let pipeline = PipelineFile::parse(&name, &text, &environment, &project.accounts)?;
    let asl = dir.join(&pipeline.definition_file);
    if !asl.is_file() {
        return Err(one(
            &name,
            "stateMachine.definition",
            &format!(
                "{} does not exist; write the state machine's ASL there or name its file",
                asl.display()
            ),
        ));
    }
    let template = template::render(&pipeline, &environment).map_err(|e| {
        one(
            &name,
            "(template)",
            &format!("could not be written as YAML: {e}"),
        )
    })?;
    Ok(Synthesized {
        path: dir.join(format!("template.{env}.yaml")),
        pipeline,
        environment,
        template,
    })
}

fn one(file: &str, path: &str, message: &str) -> Problems {
    let mut c = problems::Collector::new(file);
    c.add(path, message);
    c.into_problems()
}
