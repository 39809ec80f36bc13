//! EMAIL targets: slack-notifier publishes each announced status of a run once to the pipeline's
//! own SNS topic, observed through an SQS queue subscribed to that topic in the emulator.

mod slack_world;

use baton_adapters::sns::SnsEmailTopics;
use baton_core::definition::PipelineDefinition;
use baton_core::{PipelineId, RunStatus};
use baton_testbed::fault_proxy::{Fault, FaultProxy, Rule, Times};
use baton_testbed::observe::TopicWatch;
use baton_testbed::Moto;
use serde_json::Value;
use slack_world::{failed, pipeline, run, status, World};

/// Registers `p` with an EMAIL target (and a Slack channel) whose topic is a new watched topic.
async fn with_email(w: &World, p: &PipelineId, kind: &str) -> TopicWatch {
    let config = Moto::shared().sdk_config().await;
    let watch = TopicWatch::create(&config, "baton-notify").await.unwrap();
    let mut definition = PipelineDefinition::from_yaml(&format!(
        "notifications:\n  type: {kind}\n  targets:\n    - {{channel: SLACK, addresses: [data-alerts]}}\n    - {{channel: EMAIL, addresses: [team@example.com]}}\n"
    ))
    .unwrap();
    if let Some(n) = definition.notifications.as_mut() {
        n.email_topic_arn = Some(watch.topic_arn.clone());
    }
    w.register_definition(p, definition).await;
    watch
}

/// The e-mails published so far: (subject, body).
async fn emails(watch: &TopicWatch) -> Vec<(String, String)> {
    watch
        .received()
        .await
        .unwrap()
        .iter()
        .map(|n| {
            let field = |k: &str| {
                n.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            (field("Subject"), field("Message"))
        })
        .collect()
}

#[tokio::test]
async fn one_email_per_announced_status_and_none_for_statuses_the_type_excludes() {
    let mut w = World::new("email-failures").await;
    w.notifier.environment = Some("prod".into());
    let searches = pipeline("222222222222", "searches");
    let watch = with_email(&w, &searches, "FAILURES").await;

    let running = run(&searches, "s-1", RunStatus::Running);
    let failure = failed(&searches, "s-1", "States.TaskFailed", "the index was gone");
    w.deliver(&[status(&running)]).await.unwrap();
    w.deliver(&[status(&failure)]).await.unwrap();
    // Redelivered, and delivered twice in one batch: still one e-mail.
    w.deliver(&[status(&failure), status(&failure)])
        .await
        .unwrap();

    let sent = emails(&watch).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (subject, body) = &sent[0];
    assert_eq!(subject, "[prod] searches failed (FAILED): s-1");
    for fact in [
        "222222222222 (eu-west-1)",
        "Error: States.TaskFailed",
        "the index was gone",
        "-- baton (prod)",
    ] {
        assert!(body.contains(fact), "{fact} missing in:\n{body}");
    }
    // Slack got the same story, named for the environment too.
    let posted = w.slack.messages("data-alerts");
    assert_eq!(posted.len(), 1);
    assert!(posted[0].text.starts_with("[prod] "), "{}", posted[0].text);
}

#[tokio::test]
async fn full_execution_mails_every_status_once() {
    let w = World::new("email-full").await;
    let listings = pipeline("111111111111", "listings");
    let watch = with_email(&w, &listings, "FULL_EXECUTION").await;
    let running = run(&listings, "l-1", RunStatus::Running);
    let done = run(&listings, "l-1", RunStatus::Succeeded);
    w.deliver(&[status(&running), status(&done)]).await.unwrap();
    w.deliver(&[status(&done)]).await.unwrap();
    let subjects: Vec<String> = emails(&watch).await.into_iter().map(|(s, _)| s).collect();
    assert_eq!(
        subjects,
        [
            "listings is running (RUNNING): l-1",
            "listings succeeded (SUCCEEDED): l-1"
        ]
    );
}

#[tokio::test]
async fn a_throttled_publish_is_retried_by_the_next_delivery_and_mails_once() {
    let mut w = World::new("email-throttled").await;
    let searches = pipeline("222222222222", "searches");
    let watch = with_email(&w, &searches, "TERMINAL").await;
    let proxy = FaultProxy::start(Moto::shared().endpoint()).await.unwrap();
    let config = Moto::shared().sdk_config().await;
    w.notifier.email = SnsEmailTopics::new(&proxy.in_front_of(&config));
    let rule = proxy.inject(Rule::new(
        "sns:Publish",
        &[],
        Fault::Throttle,
        Times::UntilCleared,
    ));

    let failure = failed(&searches, "s-2", "States.Timeout", "");
    let first = w.deliver(&[status(&failure)]).await;
    assert!(
        first.is_err(),
        "a throttled e-mail must be retried: {first:?}"
    );
    assert!(proxy.fired(rule) > 0);
    assert!(emails(&watch).await.is_empty());
    // Slack was served in the same invocation and is not posted again by the retry.
    assert_eq!(w.slack.messages("data-alerts").len(), 1);

    proxy.clear(rule);
    w.deliver(&[status(&failure)]).await.unwrap();
    assert_eq!(emails(&watch).await.len(), 1);
    assert_eq!(w.slack.messages("data-alerts").len(), 1);
}
