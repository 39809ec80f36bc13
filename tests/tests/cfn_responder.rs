//! cfn-responder against the local AWS emulator (the registry in DynamoDB through the real SDK) and
//! a local stand-in for CloudFormation's pre-signed response URL. Requests are the fixtures in
//! `events/cfn-responder/`, edited per test.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use baton_adapters::{DynamoLedger, DynamoRegistry, TableNames};
use baton_core::ports::{ChildEdge, Registry, RegistryWrite, StoreResult, Versioned};
use baton_core::registration::Registration;
use baton_core::{PipelineDefinition, PipelineId};
use baton_testbed::cfn_capture::{CapturedPut, CfnCapture};
use baton_testbed::Central;
use cfn_responder::response::MAX_BODY_BYTES;
use cfn_responder::route::{Admitted, ResponseEndpoints};
use cfn_responder::{Config, Responder};
use serde_json::{json, Value};

const CENTRAL: &str = "123456789012";
const MEMBER: &str = "333333333333";
const REGION: &str = "eu-west-1";
const CENTRAL_STACK: &str =
    "arn:aws:cloudformation:eu-west-1:123456789012:stack/pipeline-x/5b3c8a10-8f2e-11ef-9a51-0a1b2c3d4e5f";

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../events/cfn-responder/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn pipeline(account: &str, name: &str) -> PipelineId {
    PipelineId::new(account, REGION, name).unwrap()
}

fn stack(account: &str, name: &str) -> String {
    format!("arn:aws:cloudformation:{REGION}:{account}:stack/{name}/0a1b2c3d-{name}")
}

/// Applies `edit` to the custom-resource request inside `event`, unwrapping SNS if needed.
fn edit_request(event: &mut Value, edit: impl FnOnce(&mut Value)) {
    match event.pointer_mut("/Records/0/Sns/Message") {
        Some(message) => {
            let mut request: Value = serde_json::from_str(message.as_str().unwrap()).unwrap();
            edit(&mut request);
            *message = Value::String(request.to_string());
        }
        None => edit(event),
    }
}

/// A direct request wrapped as SNS delivers it from the registration topic of its stack's account:
/// the route a member-account stack uses.
fn via_own_topic(request: Value) -> Value {
    let account = request["StackId"]
        .as_str()
        .unwrap()
        .split(':')
        .nth(4)
        .unwrap();
    let topic = format!("arn:aws:sns:{REGION}:{account}:baton-registrations");
    json!({"Records": [{
        "EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": format!("{topic}:1"),
        "Sns": {"Type": "Notification", "MessageId": "m", "TopicArn": topic, "Subject": null,
                "Message": request.to_string(), "Timestamp": "2026-11-22T03:00:00.000Z",
                "SignatureVersion": "1", "Signature": "s", "SigningCertUrl": "https://c",
                "UnsubscribeUrl": "https://u", "MessageAttributes": {}}
    }]})
}

fn config(tables: &TableNames, margin: Duration, capture: &CfnCapture) -> Config {
    Config {
        registry_table: tables.registry.clone(),
        ledger_table: tables.ledger.clone(),
        default_pipeline_bus: "baton-pipelines".to_owned(),
        deadline_margin: margin,
        central_account: CENTRAL.to_owned(),
        // CENTRAL too: some tests send central stacks through a topic of the central account.
        admitted: Admitted::from_list(
            "111111111111,222222222222,333333333333,444444444444,123456789012",
        ),
        // The local capture stands in for CloudFormation's response bucket.
        endpoints: ResponseEndpoints {
            emulated: Some(capture.base_url().to_owned()),
        },
        environment: Some("dev".to_owned()),
    }
}

/// The emulator's registry, the response capture, and a responder over them.
struct Bed<R> {
    central: Central,
    capture: CfnCapture,
    responder: Responder<R, DynamoLedger>,
}

async fn bed(prefix: &str) -> Bed<DynamoRegistry> {
    let central = Central::shared(prefix).await;
    let registry = central.registry();
    bed_with(central, registry, Duration::from_secs(5)).await
}

async fn bed_with<R: Registry + Send + Sync>(
    central: Central,
    registry: R,
    margin: Duration,
) -> Bed<R> {
    let capture = CfnCapture::start().await.unwrap();
    let responder = Responder::new(
        registry,
        central.ledger(),
        config(&central.tables, margin, &capture),
        baton_adapters::http::client().unwrap(),
    );
    Bed {
        central,
        capture,
        responder,
    }
}

impl<R: Registry + Send + Sync> Bed<R> {
    /// A fixture with its ResponseURL pointed at the capture (path and signed query kept).
    fn request(&self, name: &str, edit: impl FnOnce(&mut Value)) -> Value {
        let mut event = fixture(name);
        let base = self.capture.base_url().to_owned();
        edit_request(&mut event, |r| {
            let url = r["ResponseURL"].as_str().unwrap();
            let path = &url[url.find(".amazonaws.com").unwrap() + ".amazonaws.com".len()..];
            r["ResponseURL"] = json!(format!("{base}{path}"));
            edit(r);
        });
        event
    }

    /// Invokes the handler with a distant deadline; returns the answer CloudFormation received.
    async fn send(&self, event: Value) -> Value {
        let before = self.capture.accepted().len();
        let deadline = Instant::now() + Duration::from_secs(60);
        self.responder.handle(event, deadline).await.unwrap();
        let accepted = self.capture.accepted();
        assert_eq!(accepted.len(), before + 1, "one answer per request");
        accepted[before].json()
    }

    fn registry(&self) -> DynamoRegistry {
        self.central.registry()
    }
}

fn reason(answer: &Value) -> &str {
    answer["Reason"].as_str().unwrap()
}

fn assert_answer_shape(put: &CapturedPut) {
    assert_eq!(
        put.content_type.as_deref(),
        Some(""),
        "the pre-signed URL is signed for an empty Content-Type"
    );
    assert!(put.body.len() <= MAX_BODY_BYTES);
    let text = String::from_utf8(put.body.clone()).unwrap();
    assert!(!text.contains("null"), "JSON null in {text}");
    let v = put.json();
    assert!(!v["PhysicalResourceId"].as_str().unwrap().is_empty());
    assert!(!reason(&v).is_empty());
    for value in v["Data"].as_object().unwrap().values() {
        assert!(value.is_string(), "Data values are strings: {v}");
    }
}

async fn children(registry: &DynamoRegistry, parent: &PipelineId) -> BTreeSet<PipelineId> {
    registry
        .children(parent)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.child)
        .collect()
}

#[tokio::test]
async fn create_update_delete_from_the_central_account() {
    let bed = bed("cfn-direct").await;
    let registry = bed.registry();
    let x = pipeline(CENTRAL, "pipeline-x");
    let listings = pipeline("111111111111", "listings");

    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let created = bed.send(bed.request("create", |_| {})).await;
    assert_eq!(created["Status"], "SUCCESS", "{created}");
    assert_eq!(created["RequestId"], "1c8e3f52-6a1d-4e7b-9b0a-5f2d9c7e4a11");
    assert_eq!(created["StackId"], CENTRAL_STACK);
    assert_eq!(created["LogicalResourceId"], "Pipeline");
    assert_eq!(
        created["PhysicalResourceId"],
        "baton:pipeline:123456789012:eu-west-1:pipeline-x"
    );
    assert_eq!(
        created["Data"]["PipelineId"],
        "123456789012:eu-west-1:pipeline-x"
    );
    assert_eq!(
        created["Data"]["PipelineBusArn"],
        "arn:aws:events:eu-west-1:123456789012:event-bus/baton-pipelines"
    );
    assert_eq!(
        created["Data"]["StateMachineArn"],
        "arn:aws:states:eu-west-1:123456789012:stateMachine:pipeline-x"
    );
    let put = &bed.capture.accepted()[0];
    assert_answer_shape(put);
    assert!(
        put.path_and_query.contains("X-Amz-Signature="),
        "the signed query is sent as given"
    );

    let stored = registry.get(&x).await.unwrap().expect("registered");
    assert_eq!(stored.owner_stack_id, CENTRAL_STACK);
    // A new pipeline's cursor starts at its registration, so it never fires on history.
    assert!(stored.registered_at.0 >= before, "registered_at is now");
    assert_eq!(
        stored
            .definition
            .notifications
            .as_ref()
            .unwrap()
            .slack_channels(),
        ["data-pipeline-alerts"]
    );
    assert_eq!(
        children(&registry, &listings).await,
        BTreeSet::from([x.clone()])
    );

    let updated = bed.send(bed.request("update", |_| {})).await;
    assert_eq!(updated["Status"], "SUCCESS", "{updated}");
    assert_eq!(updated["PhysicalResourceId"], created["PhysicalResourceId"]);
    let after = registry.get(&x).await.unwrap().unwrap();
    assert_eq!(
        after
            .definition
            .trigger
            .unwrap()
            .executions
            .within
            .unwrap()
            .0,
        12 * 3_600_000
    );
    assert_eq!(
        after.registered_at, stored.registered_at,
        "the cursor floor never moves"
    );

    let deleted = bed.send(bed.request("delete", |_| {})).await;
    assert_eq!(deleted["Status"], "SUCCESS", "{deleted}");
    assert_eq!(registry.get(&x).await.unwrap(), None);
    assert!(children(&registry, &listings).await.is_empty());
}

#[tokio::test]
async fn sns_wrapped_requests_from_a_member_account() {
    let bed = bed("cfn-sns").await;
    let registry = bed.registry();
    let reporting = pipeline(MEMBER, "reporting");

    let created = bed.send(bed.request("sns-create", |_| {})).await;
    assert_eq!(created["Status"], "SUCCESS", "{created}");
    assert_eq!(
        created["PhysicalResourceId"],
        "baton:pipeline:333333333333:eu-west-1:reporting"
    );
    assert_eq!(
        created["Data"]["PipelineBusArn"],
        "arn:aws:events:eu-west-1:333333333333:event-bus/baton-pipelines"
    );
    let stored = registry.get(&reporting).await.unwrap().expect("registered");
    assert!(stored
        .owner_stack_id
        .contains(":333333333333:stack/reporting/"));
    assert_eq!(
        stored.bus_arn.as_deref(),
        Some("arn:aws:events:eu-west-1:333333333333:event-bus/baton-pipelines")
    );
    assert_answer_shape(&bed.capture.accepted()[0]);

    let updated = bed.send(bed.request("sns-update", |_| {})).await;
    assert_eq!(updated["Status"], "SUCCESS", "{updated}");
    let deleted = bed.send(bed.request("sns-delete", |_| {})).await;
    assert_eq!(deleted["Status"], "SUCCESS", "{deleted}");
    assert_eq!(registry.get(&reporting).await.unwrap(), None);
}

#[tokio::test]
async fn an_update_that_changes_only_formatting_changes_nothing() {
    let bed = bed("cfn-noop").await;
    let registry = bed.registry();
    let x = pipeline(CENTRAL, "pipeline-x");
    bed.send(bed.request("create", |_| {})).await;
    let before = registry.get(&x).await.unwrap().unwrap();

    // Same meaning: SUCCEEDED for its SUCCESS alias, a single status instead of a list,
    // padding, the account given by ARN instead of by name.
    let answer = bed
        .send(bed.request("update", |r| {
            let p = r["ResourceProperties"].as_object_mut().unwrap();
            p.remove("PipelineName");
            p.insert(
                "StateMachineArn".into(),
                json!("arn:aws:states:eu-west-1:123456789012:stateMachine:pipeline-x"),
            );
            p["Trigger"]["executions"]["within"] = json!(" 20h ");
            p["Trigger"]["executions"]["allOf"][0]["status"] = json!("SUCCEEDED");
            p["Trigger"]["executions"]["allOf"][1]["status"] = json!(["SUCCEEDED"]);
        }))
        .await;
    assert_eq!(answer["Status"], "SUCCESS", "{answer}");
    assert!(reason(&answer).contains("unchanged"), "{answer}");
    assert_eq!(
        answer["PhysicalResourceId"],
        "baton:pipeline:123456789012:eu-west-1:pipeline-x"
    );
    assert_eq!(registry.get(&x).await.unwrap().unwrap(), before);
}

#[tokio::test]
async fn properties_arriving_as_strings_mean_what_the_yaml_means() {
    let bed = bed("cfn-strings").await;
    let registry = bed.registry();
    let answer = bed.send(bed.request("create", |_| {})).await;
    assert_eq!(answer["Status"], "SUCCESS", "{answer}");
    let yaml = r#"
trigger:
  executions:
    allOf:
      - {name: listings, account: 111111111111, status: [SUCCESS]}
      - {name: searches, account: 222222222222, status: [SUCCESS]}
    within: 20h
notifications:
  type: FULL_EXECUTION
  targets:
    - {channel: SLACK, addresses: [data-pipeline-alerts]}
    - {channel: EMAIL, addresses: [team@example.com]}
  mentionOnFailure: "<!subteam^S0123>"
"#;
    let stored = registry
        .get(&pipeline(CENTRAL, "pipeline-x"))
        .await
        .unwrap()
        .unwrap();
    let mut expected = PipelineDefinition::from_yaml(yaml).unwrap();
    if let Some(n) = expected.notifications.as_mut() {
        // The stack's NotificationTopicArn, where the EMAIL target's messages are published.
        n.email_topic_arn =
            Some("arn:aws:sns:eu-west-1:123456789012:baton-notify-pipeline-x".into());
    }
    assert_eq!(stored.definition, expected);
}

#[tokio::test]
async fn a_registration_closing_a_cycle_across_accounts_is_refused_and_named() {
    let bed = bed("cfn-cycle").await;
    let registry = bed.registry();
    // listings (111) <- pipeline-x (123) <- searches (222) <- listings would close the loop.
    fn register<R: Registry + Send + Sync>(
        bed: &Bed<R>,
        account: &'static str,
        name: &'static str,
        parent: (&'static str, &'static str),
    ) -> Value {
        via_own_topic(bed.request("create", move |r| {
            r["StackId"] = json!(stack(account, name));
            r["RequestId"] = json!(format!("create-{name}"));
            let p = &mut r["ResourceProperties"];
            p["PipelineName"] = json!(name);
            p["NotificationTopicArn"] = json!(format!(
                "arn:aws:sns:{REGION}:{account}:baton-notify-{name}"
            ));
            p["Trigger"] = json!({"executions": {"allOf": [
                {"name": parent.1, "account": parent.0, "status": ["SUCCESS"]}
            ]}});
        }))
    }
    let a = bed
        .send(register(
            &bed,
            CENTRAL,
            "pipeline-x",
            ("111111111111", "listings"),
        ))
        .await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    let b = bed
        .send(register(
            &bed,
            "222222222222",
            "searches",
            (CENTRAL, "pipeline-x"),
        ))
        .await;
    assert_eq!(b["Status"], "SUCCESS", "{b}");

    let refused = bed
        .send(register(
            &bed,
            "111111111111",
            "listings",
            ("222222222222", "searches"),
        ))
        .await;
    assert_eq!(refused["Status"], "FAILED", "{refused}");
    assert!(
        reason(&refused).contains(
            "listings (111111111111/eu-west-1) -> pipeline-x (123456789012/eu-west-1) -> searches (222222222222/eu-west-1) -> listings (111111111111/eu-west-1)"
        ),
        "{refused}"
    );
    assert_eq!(
        refused["PhysicalResourceId"], "baton:pipeline:111111111111:eu-west-1:listings",
        "a failed Create still returns a stable id"
    );
    let listings = pipeline("111111111111", "listings");
    assert_eq!(registry.get(&listings).await.unwrap(), None);
    assert!(children(&registry, &pipeline("222222222222", "searches"))
        .await
        .is_empty());
}

#[tokio::test]
async fn a_foreign_stack_cannot_overwrite_or_delete_a_pipeline() {
    let bed = bed("cfn-foreign").await;
    let registry = bed.registry();
    let x = pipeline(CENTRAL, "pipeline-x");
    bed.send(bed.request("create", |_| {})).await;
    let owned = registry.get(&x).await.unwrap().unwrap();

    // Another stack in the same account claims the same pipeline.
    let intruder = stack(CENTRAL, "intruder");
    let overwrite = bed
        .send(bed.request("create", |r| {
            r["StackId"] = json!(intruder);
            r["ResourceProperties"]["Trigger"]["executions"]["within"] = json!("1h");
        }))
        .await;
    assert_eq!(overwrite["Status"], "FAILED", "{overwrite}");
    assert!(reason(&overwrite).contains(CENTRAL_STACK), "{overwrite}");

    // A stack in another account names this account's state machine.
    let foreign = bed
        .send(via_own_topic(bed.request("create", |r| {
            r["StackId"] = json!(stack("444444444444", "foreign"));
            let p = r["ResourceProperties"].as_object_mut().unwrap();
            p.remove("PipelineName");
            p.insert(
                "StateMachineArn".into(),
                json!("arn:aws:states:eu-west-1:123456789012:stateMachine:pipeline-x"),
            );
        })))
        .await;
    assert_eq!(foreign["Status"], "FAILED", "{foreign}");
    assert!(reason(&foreign).contains("StateMachineArn"), "{foreign}");
    assert!(reason(&foreign).contains("its own account"), "{foreign}");

    // The intruder's stack is rolled back or deleted: its Delete succeeds and removes nothing.
    for (stack_id, request_id) in [
        (intruder.clone(), "d-1"),
        (stack("444444444444", "foreign"), "d-2"),
    ] {
        let delete = bed
            .send(via_own_topic(bed.request("delete", |r| {
                r["StackId"] = json!(stack_id);
                r["RequestId"] = json!(request_id);
            })))
            .await;
        assert_eq!(delete["Status"], "SUCCESS", "{delete}");
    }
    assert_eq!(registry.get(&x).await.unwrap(), Some(owned));
}

#[tokio::test]
async fn a_failed_create_then_its_delete_succeeds() {
    let bed = bed("cfn-rollback").await;
    let registry = bed.registry();

    // Invalid trigger: FAILED, every problem with its path, a stable id for the rollback.
    let failed = bed
        .send(bed.request("create", |r| {
            let t = &mut r["ResourceProperties"]["Trigger"];
            t["executions"]["allOf"][0]["status"] = json!(["DONE"]);
            t["executions"]["allOf"][1]["account"] = json!("2222");
            t["executions"]["within"] = json!("soon");
        }))
        .await;
    assert_eq!(failed["Status"], "FAILED", "{failed}");
    for path in [
        "Trigger.executions.allOf[0].status[0]",
        "Trigger.executions.allOf[1].account",
        "Trigger.executions.within",
    ] {
        assert!(reason(&failed).contains(path), "{path} missing: {failed}");
    }
    let id = failed["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert_eq!(id, "baton:pipeline:123456789012:eu-west-1:pipeline-x");
    let rollback = bed
        .send(bed.request("delete", |r| {
            r["PhysicalResourceId"] = json!(id);
            r["ResourceProperties"]["Trigger"] = json!("not even a mapping");
        }))
        .await;
    assert_eq!(rollback["Status"], "SUCCESS", "{rollback}");

    // No usable name at all: still a non-empty id, and its Delete succeeds too.
    let nameless = bed
        .send(bed.request("create", |r| {
            r["ResourceProperties"]
                .as_object_mut()
                .unwrap()
                .remove("PipelineName");
        }))
        .await;
    assert_eq!(nameless["Status"], "FAILED", "{nameless}");
    let id = nameless["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert!(!id.is_empty());
    let rollback = bed
        .send(bed.request("delete", |r| r["PhysicalResourceId"] = json!(id)))
        .await;
    assert_eq!(rollback["Status"], "SUCCESS", "{rollback}");
    assert_eq!(
        registry
            .get(&pipeline(CENTRAL, "pipeline-x"))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_rename_is_a_replacement_and_deleting_the_old_id_keeps_the_new() {
    let bed = bed("cfn-rename").await;
    let registry = bed.registry();
    let (old, new) = (
        pipeline(CENTRAL, "pipeline-x"),
        pipeline(CENTRAL, "pipeline-y"),
    );
    bed.send(bed.request("create", |_| {})).await;

    let renamed = bed
        .send(bed.request("update", |r| {
            r["ResourceProperties"]["PipelineName"] = json!("pipeline-y");
        }))
        .await;
    assert_eq!(renamed["Status"], "SUCCESS", "{renamed}");
    assert_eq!(
        renamed["PhysicalResourceId"],
        "baton:pipeline:123456789012:eu-west-1:pipeline-y"
    );
    assert!(registry.get(&new).await.unwrap().is_some());

    // CloudFormation's clean-up deletes the old physical id (with the old properties).
    let cleanup = bed
        .send(bed.request("delete", |r| {
            r["PhysicalResourceId"] = json!("baton:pipeline:123456789012:eu-west-1:pipeline-x");
        }))
        .await;
    assert_eq!(cleanup["Status"], "SUCCESS", "{cleanup}");
    assert_eq!(registry.get(&old).await.unwrap(), None);
    assert!(registry.get(&new).await.unwrap().is_some());
    assert_eq!(
        children(&registry, &pipeline("111111111111", "listings")).await,
        BTreeSet::from([new])
    );
}

#[tokio::test]
async fn huge_invalid_input_is_answered_failed_with_a_reason_that_fits() {
    let bed = bed("cfn-huge").await;
    let bad_leaves: Vec<Value> = (0..3000)
        .map(|i| json!({"name": format!("p{i}"), "account": "x", "status": ["NOPE"]}))
        .collect();
    let answer = bed
        .send(bed.request("create", |r| {
            let p = &mut r["ResourceProperties"];
            p["Trigger"]["executions"]["allOf"] = json!(bad_leaves);
            p["Notifications"]["mentionOnFailure"] = json!("é\"".repeat(50_000));
        }))
        .await;
    let put = bed.capture.accepted().pop().unwrap();
    assert_answer_shape(&put);
    assert_eq!(answer["Status"], "FAILED");
    assert!(reason(&answer).starts_with("6000 problems"), "{answer}");
    assert!(reason(&answer).contains("Trigger.executions.allOf[0].account"));
    assert!(reason(&answer).contains("shortened"));
    assert_eq!(
        answer["PhysicalResourceId"],
        "baton:pipeline:123456789012:eu-west-1:pipeline-x"
    );
}

/// The real registry, except that upserting panics: a bug inside the handler.
struct PanicOnUpsert(DynamoRegistry);

impl Registry for PanicOnUpsert {
    async fn get(&self, pipeline: &PipelineId) -> StoreResult<Option<Registration>> {
        self.0.get(pipeline).await
    }
    async fn get_many(
        &self,
        pipelines: &[PipelineId],
    ) -> StoreResult<BTreeMap<PipelineId, Registration>> {
        self.0.get_many(pipelines).await
    }
    async fn children(&self, parent: &PipelineId) -> StoreResult<Vec<ChildEdge>> {
        self.0.children(parent).await
    }
    async fn read(&self, pipeline: &PipelineId) -> StoreResult<Option<Versioned>> {
        self.0.read(pipeline).await
    }
    async fn graph_version(&self) -> StoreResult<u64> {
        self.0.graph_version().await
    }
    async fn write(&self, _: &RegistryWrite) -> StoreResult<bool> {
        panic!("injected failure while upserting")
    }
    async fn remove(&self, stored: &Versioned) -> StoreResult<bool> {
        self.0.remove(stored).await
    }
}

#[tokio::test]
async fn a_panic_is_caught_and_answered_failed() {
    let central = Central::shared("cfn-panic").await;
    let registry = PanicOnUpsert(central.registry());
    let bed = bed_with(central, registry, Duration::from_secs(5)).await;
    let answer = bed.send(bed.request("create", |_| {})).await;
    assert_eq!(answer["Status"], "FAILED", "{answer}");
    assert!(
        reason(&answer).contains("injected failure while upserting"),
        "{answer}"
    );
    assert_eq!(
        answer["PhysicalResourceId"],
        "baton:pipeline:123456789012:eu-west-1:pipeline-x"
    );
    assert_answer_shape(&bed.capture.accepted()[0]);
}

#[tokio::test]
async fn the_lambda_deadline_is_answered_failed_before_it_passes() {
    // DynamoDB that accepts connections and never answers: the registry call hangs.
    let stalled = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", stalled.local_addr().unwrap());
    let held = std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in stalled.incoming().take(8) {
            held.push(conn);
        }
    });
    let central = Central::shared("cfn-deadline").await;
    let hanging = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&central.config)
            .endpoint_url(endpoint)
            .build(),
    );
    let registry = DynamoRegistry::new(hanging, &central.tables.registry);
    let bed = bed_with(central, registry, Duration::from_millis(700)).await;

    let started = Instant::now();
    let deadline = started + Duration::from_secs(2);
    let answered = bed
        .responder
        .handle(bed.request("create", |_| {}), deadline)
        .await
        .unwrap();
    let puts = bed.capture.accepted();
    assert_eq!(puts.len(), 1);
    assert!(
        puts[0].received_at < deadline,
        "answered after the deadline"
    );
    assert!(
        puts[0].received_at >= started + Duration::from_millis(1200),
        "gave up before the margin"
    );
    let answer = puts[0].json();
    assert_eq!(answer["Status"], "FAILED", "{answer}");
    assert!(reason(&answer).contains("time limit"), "{answer}");
    assert_eq!(answered.answers[0].status, "FAILED");
    drop(held);
}

#[tokio::test]
async fn an_answer_refused_twice_is_retried_until_delivered() {
    let bed = bed("cfn-retry").await;
    bed.capture.fail_next(2);
    let answered = bed
        .responder
        .handle(
            bed.request("create", |_| {}),
            Instant::now() + Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(answered.answers[0].attempts, 3);
    let puts = bed.capture.puts();
    assert_eq!(
        puts.iter().map(|p| p.answered).collect::<Vec<_>>(),
        [500, 500, 200]
    );
    assert_eq!(puts[0].body, puts[2].body, "the same answer each time");
    assert_eq!(puts[2].json()["Status"], "SUCCESS");
}

#[tokio::test]
async fn an_answer_never_accepted_is_an_error_for_lambda_to_retry() {
    let bed = bed("cfn-undelivered").await;
    bed.capture.fail_next(usize::MAX);
    let err = bed
        .responder
        .handle(
            bed.request("create", |_| {}),
            Instant::now() + Duration::from_secs(4),
        )
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("HTTP 500"), "{text}");
    assert!(
        !text.contains("127.0.0.1"),
        "the response URL is never shown: {text}"
    );
    assert!(bed.capture.puts().len() >= 2);
}

#[tokio::test]
async fn a_duplicate_delivery_of_a_request_has_one_effect() {
    let bed = bed("cfn-duplicate").await;
    let registry = bed.registry();
    let x = pipeline(CENTRAL, "pipeline-x");
    let first = bed.send(bed.request("create", |_| {})).await;
    let stored = registry.get(&x).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let again = bed.send(bed.request("create", |_| {})).await;
    assert_eq!(first["Status"], "SUCCESS");
    assert_eq!(again["Status"], "SUCCESS", "{again}");
    assert_eq!(again["PhysicalResourceId"], first["PhysicalResourceId"]);
    assert_eq!(again["Data"], first["Data"]);
    assert_eq!(registry.get(&x).await.unwrap().unwrap(), stored);

    let delete = bed.send(bed.request("delete", |_| {})).await;
    let delete_again = bed.send(bed.request("delete", |_| {})).await;
    assert_eq!(delete["Status"], "SUCCESS");
    assert_eq!(delete_again["Status"], "SUCCESS", "{delete_again}");
    assert_eq!(registry.get(&x).await.unwrap(), None);
}

#[tokio::test]
async fn a_request_that_is_not_a_custom_resource_request_is_still_answered() {
    let bed = bed("cfn-unreadable").await;
    let answer = bed
        .send(bed.request("create", |r| {
            r["RequestType"] = json!("Import");
        }))
        .await;
    assert_eq!(answer["Status"], "FAILED", "{answer}");
    assert_eq!(answer["RequestId"], "1c8e3f52-6a1d-4e7b-9b0a-5f2d9c7e4a11");
    assert!(!answer["PhysicalResourceId"].as_str().unwrap().is_empty());
}

/// Points an SNS-wrapped request's record at `topic_account`'s registration topic.
fn through_topic_of(event: &mut Value, topic_account: &str) {
    let topic = format!("arn:aws:sns:{REGION}:{topic_account}:baton-registrations");
    event["Records"][0]["Sns"]["TopicArn"] = json!(topic);
    event["Records"][0]["EventSubscriptionArn"] = json!(format!("{topic}:1"));
}

#[tokio::test]
async fn a_registration_for_one_account_through_another_accounts_route_is_refused() {
    const B: &str = "222222222222";
    let bed = bed("cfn-route").await;
    let registry = bed.registry();
    let reporting = pipeline(MEMBER, "reporting");

    // Account B publishes, on its own topic, a Create naming a stack of account C (MEMBER).
    let mut forged = bed.request("sns-create", |_| {});
    through_topic_of(&mut forged, B);
    let refused = bed.send(forged).await;
    assert_eq!(refused["Status"], "FAILED", "{refused}");
    let why = reason(&refused);
    assert!(why.contains(B) && why.contains(MEMBER), "{why}");
    assert_eq!(
        registry.get(&reporting).await.unwrap(),
        None,
        "nothing registered"
    );

    // A direct invocation is the central account's route: a member stack cannot use it either.
    let direct = bed.send(bed.request("create", |r| {
        r["StackId"] = json!(stack(MEMBER, "reporting"));
        r["ResourceProperties"]["PipelineName"] = json!("reporting");
    }));
    let direct = direct.await;
    assert_eq!(direct["Status"], "FAILED", "{direct}");
    assert!(reason(&direct).contains(CENTRAL) && reason(&direct).contains(MEMBER));
    assert_eq!(registry.get(&reporting).await.unwrap(), None);

    // The genuine route still works, and a forged Delete of C's pipeline through B is refused.
    let genuine = bed.send(bed.request("sns-create", |_| {})).await;
    assert_eq!(genuine["Status"], "SUCCESS", "{genuine}");
    let mut forged_delete = bed.request("sns-delete", |_| {});
    through_topic_of(&mut forged_delete, B);
    let refused = bed.send(forged_delete).await;
    assert_eq!(refused["Status"], "FAILED", "{refused}");
    assert!(
        registry.get(&reporting).await.unwrap().is_some(),
        "still registered"
    );
}

#[tokio::test]
async fn an_answer_is_never_sent_to_a_url_that_is_not_cloudformations() {
    let bed = bed("cfn-foreign-url").await;
    // The capture is reachable, but only under the configured base: another port is refused.
    let foreign = bed.capture.base_url().replace("127.0.0.1", "localhost");
    let request = bed.request("create", |r| {
        r["ResponseURL"] = json!(format!("{foreign}/steal?X-Amz-Signature=s"));
    });
    let error = bed
        .responder
        .handle(request, Instant::now() + Duration::from_secs(60))
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("was not answered") && text.contains("https"),
        "{text}"
    );
    assert!(!text.contains("steal"), "the URL is never repeated: {text}");
    assert!(bed.capture.puts().is_empty(), "nothing was sent");
}

/// The properties of a stack `baton synth --env dev` made from the Scout24 example `name`, as
/// CloudFormation sends them from account `account`.
fn synthesized(name: &str, account: &str, topic: Option<&str>) -> Value {
    let dir = format!("{}/../examples/scout24/{name}", env!("CARGO_MANIFEST_DIR"));
    let made = baton_synth::synth(std::path::Path::new(&dir), "dev").unwrap();
    let at = baton_synth::local::Deployment {
        account,
        region: REGION,
        notification_topic_arn: topic,
    };
    baton_synth::local::registration_properties(&made, &at).unwrap()
}

#[tokio::test]
async fn a_synthesized_stack_registers_with_its_email_topic() {
    let bed = bed("cfn-synth").await;
    let topic = format!("arn:aws:sns:{REGION}:{MEMBER}:baton-notify-pipeline-x");
    let properties = synthesized("pipeline-x", MEMBER, Some(&topic));
    let stack_id = stack(MEMBER, "pipeline-x-dev");
    let request = bed.request("create", |r| {
        r["StackId"] = json!(stack_id);
        r["ResourceProperties"] = properties.clone();
    });
    let created = bed.send(via_own_topic(request)).await;
    assert_eq!(created["Status"], "SUCCESS", "{created}");
    let stored = bed
        .registry()
        .get(&pipeline(MEMBER, "pipeline-x"))
        .await
        .unwrap()
        .expect("registered");
    let notifications = stored.definition.notifications.expect("notifications");
    assert_eq!(
        notifications.email_topic_arn.as_deref(),
        Some(topic.as_str())
    );
    assert_eq!(
        notifications.email_addresses(),
        ["rent-journey@example.com"]
    );
    // The dev aliases resolved to dev's accounts.
    let parents: Vec<String> = stored
        .definition
        .trigger
        .expect("trigger")
        .parents(&pipeline(MEMBER, "pipeline-x"))
        .keys()
        .map(|p| p.account.clone())
        .collect();
    assert_eq!(parents, ["111111111111", "222222222222"]);
}

#[tokio::test]
async fn a_stack_of_another_environment_or_email_without_a_topic_is_refused() {
    let bed = bed("cfn-synth-refused").await;
    let topic = format!("arn:aws:sns:{REGION}:{MEMBER}:baton-notify-pipeline-x");
    let stack_id = stack(MEMBER, "pipeline-x-dev");
    let send = |edit: fn(&mut Value)| {
        let mut properties = synthesized("pipeline-x", MEMBER, Some(&topic));
        edit(&mut properties);
        let request = bed.request("create", |r| {
            r["StackId"] = json!(stack_id);
            r["ResourceProperties"] = properties;
        });
        bed.send(via_own_topic(request))
    };
    let prod = send(|p| p["Environment"] = json!("prod")).await;
    assert_eq!(prod["Status"], "FAILED", "{prod}");
    assert!(
        reason(&prod)
            .contains("synthesized for environment `prod` but registers with baton's `dev` stack"),
        "{prod}"
    );
    let no_topic = send(|p| {
        p.as_object_mut().unwrap().remove("NotificationTopicArn");
    })
    .await;
    assert_eq!(no_topic["Status"], "FAILED", "{no_topic}");
    assert!(
        reason(&no_topic).contains("NotificationTopicArn: missing: EMAIL targets"),
        "{no_topic}"
    );
    let foreign = send(|p| {
        p["NotificationTopicArn"] =
            json!("arn:aws:sns:eu-west-1:444444444444:baton-notify-pipeline-x")
    })
    .await;
    assert_eq!(foreign["Status"], "FAILED", "{foreign}");
    assert!(
        reason(&foreign)
            .contains("in account 444444444444 but the pipeline is in account 333333333333"),
        "{foreign}"
    );
    assert_eq!(
        bed.registry()
            .get(&pipeline(MEMBER, "pipeline-x"))
            .await
            .unwrap(),
        None
    );
}
