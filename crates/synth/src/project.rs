//! `baton.yaml`, the project file: the environments a pipeline deploys to (what synth needs from
//! each: its region and the central stack's outputs) and the account aliases a trigger may name,
//! resolved per environment.
//!
//! ```yaml
//! environments:
//!   dev:
//!     region: eu-west-1
//!     centralAccount: "999999999999"
//!     registrationServiceToken: arn:aws:lambda:eu-west-1:999999999999:function:baton-dev-CfnResponder
//!     centralStack: baton-dev          # optional: the CLI reads the table names from its outputs
//!     pipelineBusName: baton-pipelines # optional, the member-account template's default
//! accounts:
//!   core-data: {dev: "111111111111", prod: "444444444444"}
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use baton_core::pipeline::{check_account, check_region};
use serde_json::Value;

use crate::problems::{join, parse_yaml, Collector, Problems};

/// The file name synth looks for, in the pipeline's folder and then each folder above it.
pub const PROJECT_FILE: &str = "baton.yaml";
/// The member-account template's pipeline bus name (its `PipelineBusName` default).
pub const DEFAULT_PIPELINE_BUS: &str = "baton-pipelines";

/// A checked project file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Project {
    pub environments: BTreeMap<String, Environment>,
    /// alias -> environment -> account id.
    pub accounts: BTreeMap<String, BTreeMap<String, String>>,
}

/// What synth needs from one environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Environment {
    pub name: String,
    pub region: String,
    /// The account of the environment's central stack: pipelines deployed there register
    /// through the Lambda token; pipelines in other accounts through their own registration topic.
    pub central_account: String,
    /// The central stack's `RegistrationServiceToken` output (cfn-responder's ARN).
    pub registration_service_token: String,
    /// The central stack's name, for the CLI (`baton --env ENV`).
    pub central_stack: Option<String>,
    pub pipeline_bus_name: String,
}

impl Project {
    /// Reads and checks a project file's text; `file` names it in problems.
    pub fn parse(file: &str, text: &str) -> Result<Project, Problems> {
        let doc = parse_yaml(file, text)?;
        let mut c = Collector::new(file);
        let Some(map) = c.mapping("(document)", &doc) else {
            return Err(c.into_problems());
        };
        c.unknown_keys("", map, &["environments", "accounts"]);
        let environments = match map.get("environments") {
            None => {
                c.add(
                    "environments",
                    "missing; list at least one environment (e.g. dev, prod)",
                );
                BTreeMap::new()
            }
            Some(v) => environments(&mut c, v),
        };
        // Aliases are checked against every environment declared, also those with problems.
        let declared: Vec<String> = map
            .get("environments")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let accounts = map
            .get("accounts")
            .map(|v| aliases(&mut c, v, &declared))
            .unwrap_or_default();
        c.finish(Project {
            environments,
            accounts,
        })
    }

    /// Reads the project file at `path`.
    pub fn load(path: &Path) -> Result<Project, Problems> {
        let file = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Project::parse(&file, &text),
            Err(e) => {
                let mut c = Collector::new(file);
                c.add("(file)", format!("cannot be read: {e}"));
                Err(c.into_problems())
            }
        }
    }

    /// The nearest `baton.yaml` in `dir` or a folder above it.
    pub fn find(dir: &Path) -> Option<PathBuf> {
        dir.ancestors()
            .map(|d| d.join(PROJECT_FILE))
            .find(|p| p.is_file())
    }

    /// The environment named `name`, or a message listing the ones there are.
    pub fn environment(&self, name: &str) -> Result<&Environment, String> {
        self.environments.get(name).ok_or_else(|| {
            format!(
                "no environment `{name}` in {PROJECT_FILE}; environments: {}",
                self.environments
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }
}

fn environments(c: &mut Collector, value: &Value) -> BTreeMap<String, Environment> {
    let mut out = BTreeMap::new();
    let Some(map) = c.mapping("environments", value) else {
        return out;
    };
    if map.is_empty() {
        c.add(
            "environments",
            "must not be empty; list at least one environment",
        );
    }
    for (name, entry) in map {
        let path = join("environments", name);
        if !name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
            || name.is_empty()
        {
            c.add(
                &path,
                "an environment name is letters, digits and dashes (it names stacks and tags)",
            );
            continue;
        }
        if let Some(env) = environment(c, &path, name, entry) {
            out.insert(name.clone(), env);
        }
    }
    out
}

fn environment(c: &mut Collector, path: &str, name: &str, value: &Value) -> Option<Environment> {
    let map = c.mapping(path, value)?;
    c.unknown_keys(
        path,
        map,
        &[
            "region",
            "centralAccount",
            "registrationServiceToken",
            "centralStack",
            "pipelineBusName",
        ],
    );
    let region = c.checked(
        map,
        path,
        "region",
        "the region its stacks deploy to, such as eu-west-1",
        check_region,
    );
    let central = c.checked(
        map,
        path,
        "centralAccount",
        "the 12-digit account of the central stack",
        check_account,
    );
    let token = c.text(
        map,
        path,
        "registrationServiceToken",
        "the central stack's RegistrationServiceToken output (a Lambda function ARN)",
    );
    let token = token.filter(|t| {
        check_token(
            c,
            &join(path, "registrationServiceToken"),
            t,
            central.as_deref(),
            region.as_deref(),
        )
    });
    let central_stack = map
        .get("centralStack")
        .and_then(|v| c.scalar(&join(path, "centralStack"), v, "the central stack's name"));
    let bus = match map.get("pipelineBusName") {
        None => Some(DEFAULT_PIPELINE_BUS.to_owned()),
        Some(v) => c.scalar(&join(path, "pipelineBusName"), v, "an event bus name"),
    };
    Some(Environment {
        name: name.to_owned(),
        region: region?,
        central_account: central?,
        registration_service_token: token?,
        central_stack,
        pipeline_bus_name: bus?,
    })
}

/// The token must be cfn-responder's function in the central account and the environment's region:
/// CloudFormation invokes a Lambda ServiceToken only in the stack's own region.
fn check_token(
    c: &mut Collector,
    path: &str,
    token: &str,
    central: Option<&str>,
    region: Option<&str>,
) -> bool {
    let parts: Vec<&str> = token.split(':').collect();
    let shaped =
        parts.len() >= 7 && parts[0] == "arn" && parts[2] == "lambda" && parts[5] == "function";
    if !shaped {
        c.add(path, format!("\"{token}\" is not a Lambda function ARN (arn:aws:lambda:<region>:<account>:function:<name>); copy the central stack's RegistrationServiceToken output"));
        return false;
    }
    let mut ok = true;
    if let Some(central) = central {
        if parts[4] != central {
            c.add(
                path,
                format!(
                    "the function is in account {}, not in centralAccount {central}",
                    parts[4]
                ),
            );
            ok = false;
        }
    }
    if let Some(region) = region {
        if parts[3] != region {
            c.add(path, format!("the function is in {}, not in the environment's region {region}: CloudFormation calls a ServiceToken only in the stack's region", parts[3]));
            ok = false;
        }
    }
    ok
}

fn aliases(
    c: &mut Collector,
    value: &Value,
    environments: &[String],
) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let Some(map) = c.mapping("accounts", value) else {
        return out;
    };
    for (alias, per_env) in map {
        let path = join("accounts", alias);
        if check_account(alias).is_ok() {
            c.add(&path, "an alias must not look like an account id");
            continue;
        }
        let Some(per_env) = c.mapping(&path, per_env) else {
            continue;
        };
        let mut accounts = BTreeMap::new();
        for (env, account) in per_env {
            let p = join(&path, env);
            if !environments.contains(env) {
                c.add(
                    &p,
                    format!(
                        "no such environment; environments: {}",
                        environments.join(", ")
                    ),
                );
                continue;
            }
            if let Some(account) = c.scalar(&p, account, "a 12-digit account id") {
                match check_account(&account) {
                    Ok(()) => {
                        accounts.insert(env.clone(), account);
                    }
                    Err(e) => c.add(&p, e.to_string()),
                }
            }
        }
        out.insert(alias.clone(), accounts);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
environments:
  dev:
    region: eu-west-1
    centralAccount: "999999999999"
    registrationServiceToken: arn:aws:lambda:eu-west-1:999999999999:function:baton-dev-cfn
  prod:
    region: eu-central-1
    centralAccount: 888888888888
    registrationServiceToken: arn:aws:lambda:eu-central-1:888888888888:function:baton-prod-cfn
    centralStack: baton-prod
accounts:
  core-data: {dev: "111111111111", prod: "444444444444"}
"#;

    #[test]
    fn reads_environments_and_aliases() {
        let p = Project::parse("baton.yaml", GOOD).unwrap();
        assert_eq!(p.environments["prod"].central_account, "888888888888");
        assert_eq!(
            p.environments["prod"].central_stack.as_deref(),
            Some("baton-prod")
        );
        assert_eq!(
            p.environments["dev"].pipeline_bus_name,
            DEFAULT_PIPELINE_BUS
        );
        assert_eq!(p.accounts["core-data"]["prod"], "444444444444");
        assert!(p.environment("staging").unwrap_err().contains("dev, prod"));
    }

    #[test]
    fn names_every_problem_with_its_path() {
        let text = r#"
environments:
  dev:
    region: moon
    centralAccount: "12"
    registrationServiceToken: arn:aws:lambda:eu-west-1:777777777777:function:x
    colour: blue
accounts:
  core-data: {dev: "111", qa: "111111111111"}
"#;
        let e = Project::parse("baton.yaml", text).unwrap_err();
        let paths: Vec<&str> = e.items.iter().map(|l| l.problem.path.as_str()).collect();
        for p in [
            "environments.dev.colour",
            "environments.dev.region",
            "environments.dev.centralAccount",
            "accounts.core-data.dev",
            "accounts.core-data.qa",
        ] {
            assert!(paths.contains(&p), "{p} missing in {paths:?}");
        }
        assert!(e.to_string().starts_with("5 problems"), "{e}");
    }

    #[test]
    fn a_token_from_another_account_or_region_is_refused() {
        let text = r#"
environments:
  dev:
    region: eu-central-1
    centralAccount: "999999999999"
    registrationServiceToken: arn:aws:lambda:eu-west-1:777777777777:function:x
"#;
        let e = Project::parse("baton.yaml", text).unwrap_err();
        assert_eq!(e.items.len(), 2, "{e}");
        assert!(e.to_string().contains("not in centralAccount 999999999999"));
        assert!(e
            .to_string()
            .contains("not in the environment's region eu-central-1"));
    }
}
