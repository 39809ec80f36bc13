//! `baton validate`: definitions checked offline, every problem with its path.

use std::path::PathBuf;

use baton_core::PipelineDefinition;
use serde_json::json;

use super::project;
use crate::render::Style;
use crate::Failure;

pub fn validate(
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
