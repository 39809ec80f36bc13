//! The `baton` command run as a process against the local AWS emulator, seeded through the real
//! registry and run-log adapters.

// Tests are exempt from too_many_lines (STYLE 15 is about the product's code): a scenario reads
// best as one test.
#![allow(clippy::too_many_lines)]

use std::path::Path;
use std::process::{Command, Output};

use baton_core::ports::RunLog;
use baton_core::registration::Registration;
use baton_core::{PipelineDefinition, PipelineId, Run, RunStatus, Timestamp};
use baton_testbed::{Central, Moto};

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn baton(central: Option<&Central>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
    cmd.args(args)
        .env_remove("AWS_PROFILE")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    if let Some(c) = central {
        cmd.env("AWS_ENDPOINT_URL", Moto::shared().endpoint())
            .env("BATON_RUNS_TABLE", &c.tables.runs)
            .env("BATON_REGISTRY_TABLE", &c.tables.registry)
            .env("BATON_LEDGER_TABLE", &c.tables.ledger)
            .env("BATON_SLACK_THREADS_TABLE", &c.tables.slack_threads);
    }
    cmd.output().expect("the baton binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `hours` before now, on a whole second: the CLI evaluates at the real clock (`within: 20h`).
fn ago(hours: i64) -> Timestamp {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    Timestamp((now - hours * 3600) * 1000)
}

fn pipeline(account: &str, name: &str) -> PipelineId {
    PipelineId::new(account, "eu-west-1", name).unwrap()
}

fn run(p: &PipelineId, exec: &str, status: RunStatus, start: Timestamp, stop: Timestamp) -> Run {
    Run {
        pipeline: p.clone(),
        execution_arn: format!(
            "arn:aws:states:eu-west-1:{}:execution:{}:{exec}",
            p.account, p.name
        ),
        execution_name: exec.to_owned(),
        status,
        started_at: start,
        stopped_at: Some(stop),
        error: None,
        cause: None,
        trigger_id: None,
        run_key: None,
    }
}

/// The Scout24 organisation: listings succeeded, searches failed, pipeline-x waits.
async fn scout24() -> (Central, Timestamp) {
    let central = Central::shared("cli").await;
    let registered_at = ago(24);
    let registry = central.registry();
    let definition = std::fs::read_to_string(fixture("pipeline-x.yaml")).unwrap();
    for (p, def) in [
        (pipeline("111111111111", "listings"), String::new()),
        (pipeline("222222222222", "searches"), String::new()),
        (pipeline("333333333333", "pipeline-x"), definition),
    ] {
        let reg = Registration {
            owner_stack_id: format!(
                "arn:aws:cloudformation:eu-west-1:{}:stack/{}/1",
                p.account, p.name
            ),
            pipeline: p,
            definition: if def.is_empty() {
                PipelineDefinition::default()
            } else {
                PipelineDefinition::from_yaml(&def).unwrap()
            },
            bus_arn: None,
            registered_at,
            trigger_floor: registered_at,
        };
        baton_core::registration::register(&registry, &reg, 100)
            .await
            .unwrap();
    }
    let log = central.run_log();
    log.record(&run(
        &pipeline("111111111111", "listings"),
        "l-22",
        RunStatus::Succeeded,
        ago(5),
        ago(4),
    ))
    .await
    .unwrap();
    log.record(&run(
        &pipeline("222222222222", "searches"),
        "s-22",
        RunStatus::Failed,
        ago(3),
        ago(2),
    ))
    .await
    .unwrap();
    (central, registered_at)
}

#[test]
fn validate_prints_every_problem_with_its_path_and_exits_1() {
    let good = baton(None, &["validate", &fixture("pipeline-x.yaml")]);
    assert_eq!(good.status.code(), Some(0), "{}", stdout(&good));
    assert!(stdout(&good).starts_with("ok "));

    let bad = baton(
        None,
        &[
            "validate",
            &fixture("pipeline-x.yaml"),
            &fixture("broken.yaml"),
        ],
    );
    assert_eq!(bad.status.code(), Some(1));
    let text = stdout(&bad);
    assert!(text.contains("broken.yaml: 5 problems"), "{text}");
    assert!(
        text.contains(
            "trigger.executions.allOf[0].account: account `1111` is not a 12-digit AWS account id"
        ),
        "{text}"
    );
    assert!(
        text.contains("trigger.executions.allOf[1].status[0]: \"SUCCEDED\" is not a status"),
        "{text}"
    );
    assert!(text.contains("notifications.type"), "{text}");
    assert!(
        text.contains("deadlines.startBy: \"7am\" is not a time of day; write it as HH:MM"),
        "{text}"
    );
    assert!(
        text.contains("deadlines.timezone: \"Europe/Berlim\" is not an IANA time zone"),
        "{text}"
    );

    let json = baton(None, &["--json", "validate", &fixture("broken.yaml")]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["files"][0]["valid"], false);
    assert_eq!(v["files"][0]["problems"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn explain_says_which_parent_is_waited_for() {
    let (central, registered_at) = scout24().await;
    let out = baton(
        Some(&central),
        &["explain", "333333333333:eu-west-1:pipeline-x"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(
        text.contains(&format!("cursor        {registered_at}")),
        "{text}"
    );
    assert!(text.contains("last trigger  none yet"), "{text}");
    assert!(
        text.contains("[x] listings (111111111111/eu-west-1) SUCCEEDED: holds with run l-22"),
        "{text}"
    );
    assert!(
        text.contains("[ ] searches (222222222222/eu-west-1) SUCCEEDED: waits"),
        "{text}"
    );
    // Colour only on a terminal.
    assert!(!text.contains('\x1b'));

    let json = baton(
        Some(&central),
        &["explain", "--json", "333333333333:pipeline-x"],
    );
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["evaluation"]["decision"]["decision"], "wait");
    assert_eq!(
        v["evaluation"]["explanation"]["entries"][0]["outcome"],
        "holds"
    );
    assert_eq!(
        v["evaluation"]["explanation"]["entries"][1]["outcome"],
        "otherStatus"
    );

    let unknown = baton(
        Some(&central),
        &["explain", "333333333333:eu-west-1:nobody"],
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("is not registered"));
    let bad = baton(Some(&central), &["explain", "not-a-pipeline"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[tokio::test]
async fn graph_shows_edges_and_latest_statuses() {
    let (central, _) = scout24().await;
    let out = baton(Some(&central), &["graph"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(text.starts_with("flowchart LR"), "{text}");
    assert!(
        text.contains("listings<br/>111111111111/eu-west-1<br/>SUCCEEDED"),
        "{text}"
    );
    assert!(
        text.contains("searches<br/>222222222222/eu-west-1<br/>FAILED"),
        "{text}"
    );
    assert!(
        text.contains("pipeline-x<br/>333333333333/eu-west-1<br/>no runs"),
        "{text}"
    );
    assert_eq!(text.matches("-->").count(), 2, "{text}");

    let dot = stdout(&baton(
        Some(&central),
        &[
            "graph",
            "--format",
            "dot",
            "--from",
            "222222222222:eu-west-1:searches",
        ],
    ));
    assert!(dot.starts_with("digraph baton {"), "{dot}");
    assert!(
        dot.contains(
            "\"222222222222:eu-west-1:searches\" -> \"333333333333:eu-west-1:pipeline-x\";"
        ),
        "{dot}"
    );
    assert!(!dot.contains("listings"), "{dot}");

    let v: serde_json::Value =
        serde_json::from_slice(&baton(Some(&central), &["graph", "--json"]).stdout).unwrap();
    assert_eq!(v["pipelines"].as_array().unwrap().len(), 3);
    assert_eq!(v["edges"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn impact_and_runs() {
    let (central, _) = scout24().await;
    let out = baton(
        Some(&central),
        &["impact", "111111111111:eu-west-1:listings"],
    );
    let text = stdout(&out);
    assert!(
        text.starts_with("1 pipeline downstream of listings (111111111111/eu-west-1)"),
        "{text}"
    );
    assert!(
        text.contains("account 333333333333\n    pipeline-x (eu-west-1)"),
        "{text}"
    );
    let v: serde_json::Value = serde_json::from_slice(
        &baton(
            Some(&central),
            &["--json", "impact", "333333333333:eu-west-1:pipeline-x"],
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(v["downstream"], 0);

    let runs = stdout(&baton(
        Some(&central),
        &["runs", "222222222222:eu-west-1:searches", "--limit", "5"],
    ));
    let lines: Vec<&str> = runs.lines().collect();
    assert!(
        lines[0].starts_with("STATUS TIME           STATUS"),
        "{runs}"
    );
    let cells: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(cells[1..], ["FAILED", "s-22", "1h00m00s"], "{runs}");
    let stopped = Timestamp::parse_rfc3339(cells[0]).unwrap();
    assert!((stopped.0 - ago(2).0).abs() < 60_000, "{runs}");
    let v: serde_json::Value = serde_json::from_slice(
        &baton(
            Some(&central),
            &["runs", "--json", "111111111111:eu-west-1:listings"],
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(v["runs"][0]["status"], "SUCCEEDED");
}

#[tokio::test]
async fn deadlines_shows_what_is_late_with_why_and_what_is_due() {
    use baton_core::deadlines::DeadlineKind;
    use baton_core::watch::{DeadlineAlert, DeadlineWatch, DueCheck};
    let (central, _) = scout24().await;
    let x = pipeline("333333333333", "pipeline-x");
    let watch = central.watch();
    // What the watchdog would have written: pipeline-x late today, its next check in an hour.
    let alert = DeadlineAlert {
        pipeline: x.clone(),
        kind: DeadlineKind::LateStart,
        day: "2026-11-26".into(),
        due: ago(1),
        due_local: "07:00 Europe/Berlin".into(),
        raised_at: ago(1),
        reasons: vec!["waiting on searches (222222222222): latest run s-22 FAILED at 05:18".into()],
        waiting_on: vec![pipeline("222222222222", "searches")],
        execution_arn: None,
    };
    assert!(watch.raise(&alert).await.unwrap());
    let next = ago(-1);
    watch
        .schedule(&DueCheck {
            at: next,
            pipeline: x.clone(),
            execution_arn: None,
        })
        .await
        .unwrap();
    let cmd_env = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
        cmd.args(args)
            .env_remove("AWS_PROFILE")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "eu-west-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL", Moto::shared().endpoint())
            .env("BATON_RUNS_TABLE", &central.tables.runs)
            .env("BATON_REGISTRY_TABLE", &central.tables.registry)
            .env("BATON_LEDGER_TABLE", &central.tables.ledger)
            .env("BATON_SLACK_THREADS_TABLE", &central.tables.slack_threads)
            .env("BATON_WATCH_TABLE", &central.watch_table);
        cmd.output().expect("the baton binary runs")
    };
    let out = cmd_env(&["deadlines"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(
        text.contains(
            "pipeline-x (333333333333/eu-west-1) lateStart 2026-11-26 (due 07:00 Europe/Berlin"
        ),
        "{text}"
    );
    assert!(
        text.contains("why: waiting on searches (222222222222): latest run s-22 FAILED at 05:18"),
        "{text}"
    );
    assert!(
        text.contains(&format!("({next})  pipeline-x (333333333333/eu-west-1)")),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&cmd_env(&["--json", "deadlines"]).stdout).unwrap();
    assert_eq!(json["late"][0]["kind"], "lateStart");
    assert_eq!(
        json["due"][0]["pipeline"],
        "333333333333:eu-west-1:pipeline-x"
    );
    // Without the watch table, it says which variable is missing.
    let missing = baton(Some(&central), &["deadlines"]);
    assert_eq!(missing.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("BATON_WATCH_TABLE"));
}

/// A stand-in for Lambda's Invoke API on 127.0.0.1: records each asynchronous invocation
/// (function, payload) and answers 202, or 500 when told to refuse.
async fn lambda_standin(
    refuse: bool,
) -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
) {
    use axum::extract::{Path as UrlPath, State};
    use axum::http::StatusCode;
    type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;
    let seen: Seen = Default::default();
    let app =
        axum::Router::new()
            .route(
                "/2015-03-31/functions/{name}/invocations",
                axum::routing::post(
                    move |State(seen): State<Seen>,
                          UrlPath(name): UrlPath<String>,
                          body: String| async move {
                        if refuse {
                            return StatusCode::INTERNAL_SERVER_ERROR;
                        }
                        seen.lock().unwrap().push((name, body));
                        StatusCode::ACCEPTED
                    },
                ),
            )
            .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_lists_failed_events_and_redrives_them_through_the_same_function() {
    let sqs = aws_sdk_sqs::Client::new(&Moto::shared().sdk_config().await);
    let queue = sqs
        .create_queue()
        .queue_name(baton_testbed::unique("trigger-manager-dlq"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let events = [
        r#"{"Records":[{"Sns":{"MessageId":"m-1"}}]}"#,
        r#"{"Records":[{"Sns":{"MessageId":"m-2"}}]}"#,
    ];
    for event in events {
        sqs.send_message()
            .queue_url(&queue)
            .message_body(event)
            .message_attributes(
                "ErrorMessage",
                aws_sdk_sqs::types::MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("ledger table throttled")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
    let dlq = |args: &[&str], lambda: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
        cmd.args(args)
            .env_remove("AWS_PROFILE")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "eu-west-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL", Moto::shared().endpoint())
            .env("AWS_ENDPOINT_URL_LAMBDA", lambda)
            .env("BATON_DLQ_TRIGGER_MANAGER", &queue)
            .env(
                "BATON_FUNCTION_TRIGGER_MANAGER",
                "baton-TriggerManagerFunction-abc",
            );
        cmd.output().expect("the baton binary runs")
    };
    let listed = dlq(&["dlq", "list"], "http://127.0.0.1:9");
    assert_eq!(
        listed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let text = stdout(&listed);
    assert!(
        text.contains("trigger-manager: 2 failed event(s) waiting"),
        "{text}"
    );
    assert!(text.contains("ledger table throttled"), "{text}");
    // Lambda refuses: nothing leaves the queue, and the command says so.
    let (refusing, _) = lambda_standin(true).await;
    let failed = dlq(&["dlq", "redrive", "trigger-manager"], &refusing);
    assert_eq!(failed.status.code(), Some(3), "{}", stdout(&failed));
    assert!(String::from_utf8_lossy(&failed.stderr).contains("stay in trigger-manager's DLQ"));
    // Lambda accepts: each event is invoked once, as it was, and the queue is empty.
    let (url, seen) = lambda_standin(false).await;
    let redriven = dlq(&["dlq", "redrive", "trigger-manager"], &url);
    assert_eq!(
        redriven.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&redriven.stderr)
    );
    assert!(stdout(&redriven).contains(
        "trigger-manager: 2 failed event(s) delivered again to baton-TriggerManagerFunction-abc"
    ));
    let mut invoked: Vec<(String, String)> = seen.lock().unwrap().clone();
    invoked.sort();
    assert_eq!(
        invoked,
        events
            .iter()
            .map(|e| (
                "baton-TriggerManagerFunction-abc".to_owned(),
                (*e).to_owned()
            ))
            .collect::<Vec<_>>()
    );
    let left = sqs
        .receive_message()
        .queue_url(&queue)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    assert!(left.messages().is_empty());
    // An unknown function is a usage error.
    assert_eq!(
        dlq(&["dlq", "redrive", "nope"], &url).status.code(),
        Some(2)
    );
}

/// A stack in the emulator whose outputs name `central`'s tables, as baton's central stack does.
async fn central_stack(central: &Central, name: &str, outputs: &[&str]) {
    let names = [
        ("RunsTableName", &central.tables.runs),
        ("RegistryTableName", &central.tables.registry),
        ("LedgerTableName", &central.tables.ledger),
        ("SlackThreadsTableName", &central.tables.slack_threads),
    ];
    let outputs: serde_json::Map<String, serde_json::Value> = names
        .iter()
        .filter(|(k, _)| outputs.contains(k))
        .map(|(k, v)| ((*k).to_owned(), serde_json::json!({"Value": v})))
        .collect();
    let template = serde_json::json!({
        "Resources": {"Marker": {"Type": "AWS::SNS::Topic"}},
        "Outputs": outputs,
    });
    aws_sdk_cloudformation::Client::new(&Moto::shared().sdk_config().await)
        .create_stack()
        .stack_name(name)
        .template_body(template.to_string())
        .send()
        .await
        .unwrap();
}

/// `baton` without the table variables: it finds the tables by the central stack.
fn baton_by_stack(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(args)
        .current_dir(dir)
        .env_remove("AWS_PROFILE")
        .env_remove("BATON_RUNS_TABLE")
        .env_remove("BATON_REGISTRY_TABLE")
        .env_remove("BATON_LEDGER_TABLE")
        .env_remove("BATON_SLACK_THREADS_TABLE")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", Moto::shared().endpoint())
        .output()
        .expect("the baton binary runs")
}

#[tokio::test]
async fn the_tables_are_found_by_the_central_stack_or_the_environment() {
    let (central, _) = scout24().await;
    let stack = baton_testbed::unique("baton-dev");
    central_stack(
        &central,
        &stack,
        &[
            "RunsTableName",
            "RegistryTableName",
            "LedgerTableName",
            "SlackThreadsTableName",
        ],
    )
    .await;
    let dir = std::env::temp_dir().join(baton_testbed::unique("cli-env"));
    std::fs::create_dir_all(&dir).unwrap();

    // --stack, in the stack's Region (AWS_REGION says us-east-1, the stack is in eu-west-1).
    let out = baton_by_stack(
        &dir,
        &["--stack", &stack, "runs", "222222222222:eu-west-1:searches"],
    );
    assert!(!out.status.success(), "the stack is not in us-east-1");
    std::fs::write(
        dir.join("baton.yaml"),
        format!("environments:\n  dev:\n    region: eu-west-1\n    centralAccount: \"123456789012\"\n    registrationServiceToken: arn:aws:lambda:eu-west-1:123456789012:function:cfn\n    centralStack: {stack}\n  prod:\n    region: eu-west-1\n    centralAccount: \"123456789012\"\n    registrationServiceToken: arn:aws:lambda:eu-west-1:123456789012:function:cfn\n"),
    )
    .unwrap();
    let out = baton_by_stack(
        &dir,
        &["--env", "dev", "runs", "222222222222:eu-west-1:searches"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout(&out).contains("s-22"), "{}", stdout(&out));

    // An environment without a central stack, and a stack that is not baton's, are named.
    let out = baton_by_stack(
        &dir,
        &["--env", "prod", "runs", "222222222222:eu-west-1:searches"],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("environments.prod.centralStack is not set")
    );
    let other = baton_testbed::unique("not-baton");
    central_stack(&central, &other, &["RunsTableName"]).await;
    let out = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["--stack", &other, "runs", "222222222222:eu-west-1:searches"])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ENDPOINT_URL", Moto::shared().endpoint())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no output RegistryTableName"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn init_then_synth_from_the_command_line() {
    let dir = std::env::temp_dir().join(format!("baton-cli-init-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let init = baton(None, &["init", "orders", "--dir", dir.to_str().unwrap()]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    assert!(stdout(&init).contains("fill in baton.yaml"));
    // The scaffolded project file is refused until filled in, every problem named.
    let refused = baton(
        None,
        &[
            "synth",
            "--env",
            "dev",
            "--dir",
            dir.join("orders").to_str().unwrap(),
        ],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stdout(&refused).contains("environments.dev.centralAccount"),
        "{}",
        stdout(&refused)
    );
    std::fs::write(
        dir.join("baton.yaml"),
        "environments:\n  dev: {region: eu-west-1, centralAccount: \"123456789012\", registrationServiceToken: \"arn:aws:lambda:eu-west-1:123456789012:function:cfn\"}\n",
    )
    .unwrap();
    let made = baton(
        None,
        &[
            "synth",
            "--env",
            "dev",
            "--dir",
            dir.join("orders").to_str().unwrap(),
        ],
    );
    assert!(made.status.success(), "{}", stdout(&made));
    let template = std::fs::read_to_string(dir.join("orders/template.dev.yaml")).unwrap();
    assert!(template.contains("Type: AWS::Serverless::StateMachine"));
    let missing_env = baton(
        None,
        &["synth", "--dir", dir.join("orders").to_str().unwrap()],
    );
    assert_eq!(missing_env.status.code(), Some(2));
}

#[test]
fn a_project_pipeline_is_validated_in_every_environment() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/scout24");
    let ok = baton(
        None,
        &[
            "validate",
            examples.join("pipeline-x/pipeline.yaml").to_str().unwrap(),
        ],
    );
    assert!(ok.status.success(), "{}", stdout(&ok));
    let dir = std::env::temp_dir().join(format!("baton-cli-validate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("p")).unwrap();
    std::fs::write(
        dir.join("baton.yaml"),
        "environments:\n  dev: {region: eu-west-1, centralAccount: \"123456789012\", registrationServiceToken: \"arn:aws:lambda:eu-west-1:123456789012:function:f\"}\n  prod: {region: eu-west-1, centralAccount: \"210987654321\", registrationServiceToken: \"arn:aws:lambda:eu-west-1:210987654321:function:f\"}\naccounts:\n  core-data: {dev: \"111111111111\"}\n",
    )
    .unwrap();
    let file = dir.join("p/pipeline.yaml");
    std::fs::write(&file, "name: p\ntrigger:\n  executions:\n    allOf:\n      - {name: listings, account: core-data, status: [SUCCEEDED]}\n").unwrap();
    let out = baton(None, &["validate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("trigger.executions.allOf[0].account (prod): alias \"core-data\" has no account for environment `prod`"), "{text}");
    assert!(!text.contains("(dev)"), "{text}");
    assert!(
        baton(None, &["--env", "dev", "validate", file.to_str().unwrap()])
            .status
            .success()
    );
}

#[tokio::test]
async fn explain_an_aligned_pipeline_for_one_run_key() {
    let central = Central::shared("cli-keys").await;
    let registered_at = ago(24);
    let (a, daily) = (
        pipeline("111111111111", "a"),
        pipeline("333333333333", "daily"),
    );
    for (p, yaml) in [
        (&a, "runKey: $.date\n"),
        (&daily, "trigger:\n  executions:\n    alignOn: runKey\n    allOf: [{name: a, account: '111111111111', status: [SUCCEEDED]}]\n"),
    ] {
        let reg = Registration {
            owner_stack_id: format!("arn:aws:cloudformation:eu-west-1:{}:stack/{}/1", p.account, p.name),
            pipeline: p.clone(),
            definition: PipelineDefinition::from_yaml(yaml).unwrap(),
            bus_arn: None,
            registered_at,
            trigger_floor: registered_at,
        };
        baton_core::registration::register(&central.registry(), &reg, 100)
            .await
            .unwrap();
    }
    let mut keyed = run(&a, "a-d1", RunStatus::Succeeded, ago(3), ago(2));
    keyed.run_key = Some(baton_core::RunKey("2026-11-24".into()));
    central.run_log().record(&keyed).await.unwrap();

    let key = "333333333333:eu-west-1:daily";
    let without = baton(Some(&central), &["explain", key]);
    assert!(
        stdout(&without).contains("say which with --key K"),
        "{}",
        stdout(&without)
    );
    let day = baton(Some(&central), &["explain", key, "--key", "2026-11-24"]);
    let text = stdout(&day);
    assert!(text.contains("for key 2026-11-24 FIRES"), "{text}");
    assert!(text.contains("holds with run a-d1"), "{text}");
    let other = baton(Some(&central), &["explain", key, "--key", "2026-11-25"]);
    let text = stdout(&other);
    assert!(text.contains("for key 2026-11-25 WAITS"), "{text}");
    let json = baton(
        Some(&central),
        &["--json", "explain", key, "--key", "2026-11-24"],
    );
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["runKey"], "2026-11-24");
}
