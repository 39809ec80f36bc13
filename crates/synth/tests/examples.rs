//! The Scout24 examples' templates are what `baton synth` makes of their pipeline.yaml, in every
//! environment: CI lints the committed files, so they must be current. `BATON_BLESS=1` rewrites
//! them after a deliberate change.

use std::path::{Path, PathBuf};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/scout24")
}

#[test]
fn committed_templates_are_what_synth_makes() {
    let bless = std::env::var_os("BATON_BLESS").is_some();
    let mut stale = Vec::new();
    for pipeline in ["listings", "searches", "pipeline-x"] {
        for env in ["dev", "prod"] {
            let made = baton_synth::synth(&examples().join(pipeline), env)
                .unwrap_or_else(|e| panic!("{pipeline} ({env}): {e}"));
            let committed = std::fs::read_to_string(&made.path).unwrap_or_default();
            if committed != made.template {
                if bless {
                    std::fs::write(&made.path, &made.template).expect("write the template");
                } else {
                    stale.push(made.path.display().to_string());
                }
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale templates (run `BATON_BLESS=1 cargo test -p baton-synth --test examples`): {stale:?}"
    );
}

#[test]
fn environments_resolve_aliases_and_tokens() {
    let dev = baton_synth::synth(&examples().join("pipeline-x"), "dev").unwrap();
    let prod = baton_synth::synth(&examples().join("pipeline-x"), "prod").unwrap();
    for (made, parents, token) in [
        (
            &dev,
            ["111111111111", "222222222222"],
            "arn:aws:lambda:eu-west-1:123456789012:function:baton-dev-CfnResponder",
        ),
        (
            &prod,
            ["444444444444", "555555555555"],
            "arn:aws:lambda:eu-central-1:210987654321:function:baton-prod-CfnResponder",
        ),
    ] {
        let parsed = made.pipeline.definition.trigger.as_ref().unwrap().parents(
            &baton_core::PipelineId::new("333333333333", "eu-west-1", "pipeline-x").unwrap(),
        );
        let accounts: Vec<&str> = parsed.keys().map(|p| p.account.as_str()).collect();
        assert_eq!(accounts, parents);
        assert!(made.template.contains(token));
        assert!(made
            .template
            .contains(&format!("Environment: {}", made.environment.name)));
    }
    // pipeline-x has an EMAIL target: a topic with its subscription, named for the central
    // account's publish permission, and the topic handed to the registration.
    assert!(dev.template.contains("TopicName: baton-notify-pipeline-x"));
    assert!(dev.template.contains("Endpoint: rent-journey@example.com"));
    assert!(dev.template.contains("NotificationTopicArn:"));
    // Quoted: CloudFormation's YAML 1.1 would read an unquoted 10:30 as the number 630.
    assert!(
        dev.template.contains("startBy: '07:00'"),
        "{}",
        dev.template
    );
    // listings runs on its schedule and registers for notifications only.
    let listings = baton_synth::synth(&examples().join("listings"), "prod").unwrap();
    assert!(listings.template.contains("Schedule: cron(0 3 * * ? *)"));
    assert!(!listings.template.contains("Trigger:"));
    assert!(!listings.template.contains("NotificationTopic"));
}

#[test]
fn an_alias_missing_in_the_environment_is_refused_with_its_path() {
    let dir = tempdir("alias");
    std::fs::write(
        dir.join("baton.yaml"),
        "environments:\n  dev: {region: eu-west-1, centralAccount: \"123456789012\", registrationServiceToken: \"arn:aws:lambda:eu-west-1:123456789012:function:f\"}\n  prod: {region: eu-west-1, centralAccount: \"210987654321\", registrationServiceToken: \"arn:aws:lambda:eu-west-1:210987654321:function:f\"}\naccounts:\n  core-data: {dev: \"111111111111\"}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("pipeline.yaml"),
        "name: x\ntrigger:\n  executions:\n    allOf:\n      - {name: listings, account: core-data, status: [SUCCEEDED]}\n      - {name: searches, account: nobody, status: [DONE]}\n",
    )
    .unwrap();
    std::fs::write(dir.join("statemachine.asl.json"), "{}").unwrap();
    assert!(baton_synth::synth(&dir, "dev")
        .unwrap_err()
        .to_string()
        .contains("trigger.executions.allOf[1].account"));
    let e = baton_synth::synth(&dir, "prod").unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with("3 problems"), "{text}");
    assert!(text.contains("trigger.executions.allOf[0].account: alias \"core-data\" has no account for environment `prod`"), "{text}");
    assert!(
        text.contains("trigger.executions.allOf[1].account: \"nobody\" is neither"),
        "{text}"
    );
    assert!(
        text.contains("trigger.executions.allOf[1].status[0]"),
        "{text}"
    );
    assert!(baton_synth::synth(&dir, "staging")
        .unwrap_err()
        .to_string()
        .contains("no environment `staging`"));
}

#[test]
fn init_then_synth() {
    let dir = tempdir("init");
    let done = baton_synth::scaffold::init(&dir, "orders").unwrap();
    assert!(done.wrote_project);
    // The scaffolded project file is refused until its values are filled in.
    let e = baton_synth::synth(&dir.join("orders"), "dev")
        .unwrap_err()
        .to_string();
    assert!(e.contains("environments.dev.centralAccount"), "{e}");
    std::fs::write(
        dir.join("baton.yaml"),
        "environments:\n  dev: {region: eu-west-1, centralAccount: \"123456789012\", registrationServiceToken: \"arn:aws:lambda:eu-west-1:123456789012:function:f\"}\n",
    )
    .unwrap();
    let made = baton_synth::synth(&dir.join("orders"), "dev").unwrap();
    assert!(made.template.contains("Name: orders"));
    assert!(made.template.contains("Schedule: cron(0 3 * * ? *)"));
    let samconfig = std::fs::read_to_string(dir.join("orders/samconfig.toml")).unwrap();
    assert!(
        samconfig.contains("[prod.deploy.parameters]")
            && samconfig.contains("template_file = \"template.dev.yaml\"")
    );
    // Never overwrites.
    assert!(baton_synth::scaffold::init(&dir, "orders")
        .unwrap_err()
        .to_string()
        .contains("already exists"));
}

fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("baton-synth-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
