//! Reading definitions: the same document in every form, every problem with its path.

use super::*;
use crate::condition::{Condition, Operator};
use crate::status::RunStatus;
use crate::time::Span;
use serde_json::{json, Value};

const SCOUT24: &str = r##"
name: pipeline-x
trigger:
  executions:
    allOf:
      - name: listings
        account: 111111111111
        status: [SUCCESS]
      - {name: searches, account: "222222222222", status: [SUCCEEDED]}
    within: 20h
notifications:
  type: FAILURES
  targets:
    - {channel: SLACK, addresses: ["#data-pipeline-alerts"]}
    - {channel: EMAIL, addresses: [team@example.com]}
  mentionOnFailure: "<!subteam^S0123>"
"##;

#[test]
fn yaml_json_and_cfn_properties_read_the_same() {
    let from_yaml = PipelineDefinition::from_yaml(SCOUT24).unwrap();
    let trigger = from_yaml.trigger.as_ref().unwrap();
    assert_eq!(trigger.executions.within, Some(Span::hours(20)));
    assert_eq!(trigger.executions.all_of.len(), 2);
    let Condition::Leaf(first) = &trigger.executions.all_of[0] else {
        panic!("leaf expected")
    };
    assert_eq!(first.account.as_deref(), Some("111111111111"));
    assert!(first.status.contains(&RunStatus::Succeeded));
    let n = from_yaml.notifications.as_ref().unwrap();
    assert_eq!(n.slack_channels(), vec!["data-pipeline-alerts"]);
    assert_eq!(n.kind, NotificationType::Failures);

    let doc: Value = serde_yaml_ng::from_str(SCOUT24).unwrap();
    let from_json = PipelineDefinition::from_json(&doc.to_string()).unwrap();
    assert_eq!(from_json, from_yaml);

    let props = json!({
        "ServiceToken": "arn:aws:lambda:eu-west-1:999999999999:function:cfn-responder",
        "PipelineName": "pipeline-x",
        "Trigger": {"executions": {"allOf": [
            {"name": "listings", "account": "111111111111", "status": ["SUCCESS"]},
            {"name": "searches", "account": "222222222222", "status": ["SUCCEEDED"]}
        ], "within": "20h"}},
        "Notifications": {"type": "FAILURES", "mentionOnFailure": "<!subteam^S0123>", "targets": [
            {"channel": "SLACK", "addresses": ["#data-pipeline-alerts"]},
            {"channel": "EMAIL", "addresses": ["team@example.com"]}
        ]}
    });
    assert_eq!(
        PipelineDefinition::from_cfn_properties(&props).unwrap(),
        from_yaml
    );
}

#[test]
fn reports_every_problem_with_its_path() {
    let err = PipelineDefinition::from_yaml(
        r#"
trigger:
  executions:
    allOf:
      - {name: listings, account: "1111", status: [SUCCESS]}
      - {name: searches, account: "222222222222", status: [SUCCESS, DONE]}
    operator: XOR
    within: soon
notifications:
  type: SOMETIMES
  targets: [{channel: PIGEON, addresses: [roof]}]
"#,
    )
    .unwrap_err();
    let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "trigger.executions.within",
            "trigger.executions.operator",
            "trigger.executions.allOf[0].account",
            "trigger.executions.allOf[1].status[1]",
            "notifications.type",
            "notifications.targets[0].channel",
        ]
    );
    let status = &err.problems[3];
    assert!(
        status.message.contains("\"DONE\"") && status.message.contains("SUCCEEDED (alias SUCCESS)"),
        "{status}"
    );
    assert!(err
        .to_string()
        .starts_with("6 problems in the pipeline definition"));
}

#[test]
fn nested_groups_and_defaults() {
    let def = PipelineDefinition::from_json(
            r#"{"trigger": {"executions": {"operator": "OR",
                "allOf": [{"name": "a", "status": "SUCCEEDED"}, {"anyOf": [{"name": "b", "status": ["FAILED"]}, {"name": "c", "status": ["TIMED_OUT"]}]}],
                "anyOf": [{"name": "d", "account": "444444444444", "region": "us-east-1", "status": ["SUCCESS"]}]}},
              "notifications": {"targets": [{"channel": "slack", "addresses": "alerts"}]}}"#,
        )
        .unwrap();
    let t = def.trigger.unwrap();
    assert_eq!(t.executions.operator, Operator::Or);
    assert_eq!(t.executions.leaves().len(), 4);
    assert!(matches!(&t.executions.all_of[1], Condition::Group(g) if g.any_of.len() == 2));
    assert_eq!(
        def.notifications.unwrap().kind,
        NotificationType::FullExecution
    );
}

#[test]
fn unknown_and_missing_fields_are_named() {
    let err =
        PipelineDefinition::from_json(r#"{"trigger": {"executions": {"allof": [{"name": "a"}]}}}"#)
            .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(
            "trigger.executions.allof: unknown field; allowed here: allOf, anyOf, operator"
        ),
        "{text}"
    );
    assert!(
        text.contains("trigger.executions: a group needs `allOf` or `anyOf`"),
        "{text}"
    );

    let err = PipelineDefinition::from_json(r#"{"trigger": {"executions": {"allOf": [{"account": "111111111111"}, {"name": "x", "allOf": []}]}}}"#).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("allOf[0].name: missing"), "{text}");
    assert!(text.contains("allOf[0].status: missing"), "{text}");
    assert!(
        text.contains("allOf[1]: an entry is either a pipeline"),
        "{text}"
    );
}

#[test]
fn not_a_document() {
    assert!(PipelineDefinition::from_yaml("trigger: [")
        .unwrap_err()
        .to_string()
        .contains("not valid YAML"));
    assert!(PipelineDefinition::from_json("[]")
        .unwrap_err()
        .to_string()
        .contains("expected a mapping"));
    assert_eq!(
        PipelineDefinition::from_yaml("name: listings\ntrigger: {schedule: {hour: 3}}").unwrap(),
        PipelineDefinition::default()
    );
}
