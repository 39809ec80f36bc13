//! slack-notifier against the local AWS emulator (registry and thread tables in DynamoDB, the bot
//! token in Secrets Manager) and the local Slack Web API stand-in.

mod slack_world;

use std::time::{Duration, Instant};

use baton_adapters::{SecretsManagerToken, SlackWebApi};
use baton_core::events::{PipelineRef, PipelineTrigger, RunEvent};
use baton_core::{RunRef, RunStatus, TriggerId};
use baton_testbed::fault_proxy::{Fault as ProxyFault, FaultProxy, Rule, Times};
use baton_testbed::slack_standin::{Fault, Message};
use baton_testbed::Moto;
use slack_notifier::{NotifyError, Report};
use slack_world::{all_text, at, failed, pipeline, run, sns, status, World};

const TWO_CHANNELS: &str = "notifications:\n  type: FULL_EXECUTION\n  targets:\n    - {channel: SLACK, addresses: [data-alerts, listings-team]}\n    - {channel: EMAIL, addresses: [team@example.com]}\n";

#[tokio::test]
async fn running_then_succeeded_gives_one_root_one_reply_and_an_edited_root_per_channel() {
    let w = World::new("slack-story").await;
    let listings = pipeline("111111111111", "listings");
    w.register(&listings, TWO_CHANNELS).await;

    w.deliver(&[status(&run(&listings, "l-22", RunStatus::Running))])
        .await
        .unwrap();
    let report = w
        .deliver(&[status(&run(&listings, "l-22", RunStatus::Succeeded))])
        .await
        .unwrap();
    assert_eq!(report.posted, 2);

    let arn = "arn:aws:states:eu-west-1:111111111111:execution:listings:l-22";
    for channel in ["data-alerts", "listings-team"] {
        let messages = w.slack.messages(channel);
        assert_eq!(messages.len(), 2, "{channel}: {messages:#?}");
        let (root, reply) = (&messages[0], &messages[1]);
        assert_eq!(root.thread_ts, None);
        assert_eq!(reply.thread_ts.as_deref(), Some(root.ts.as_str()));
        assert_eq!(root.edits, 1, "the root is edited to the final status");
        let root_text = all_text(root);
        assert!(root_text.contains("succeeded (SUCCEEDED)"), "{root_text}");
        assert!(root_text.contains("*Duration*\n1h 2m"), "{root_text}");
        assert!(
            root_text.contains(&format!(
                "<https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/{arn}|l-22>"
            )),
            "{root_text}"
        );
        assert!(all_text(reply).contains("succeeded (SUCCEEDED) after 1h 2m"));
        assert_eq!(root.unfurl_links, Some(false));
    }
    let calls = w.slack.calls();
    let count = |m: &str| calls.iter().filter(|c| c.method == m).count();
    assert_eq!((count("chat.postMessage"), count("chat.update")), (4, 2));
}

#[tokio::test]
async fn redelivery_three_times_posts_nothing_new() {
    let w = World::new("slack-redeliver").await;
    let listings = pipeline("111111111111", "listings");
    w.register(&listings, TWO_CHANNELS).await;
    let running = status(&run(&listings, "l-1", RunStatus::Running));
    let succeeded = status(&run(&listings, "l-1", RunStatus::Succeeded));
    w.deliver(std::slice::from_ref(&running)).await.unwrap();
    w.deliver(std::slice::from_ref(&succeeded)).await.unwrap();
    let before = w.slack.calls().len();

    for _ in 0..3 {
        let report = w
            .deliver(&[running.clone(), succeeded.clone()])
            .await
            .unwrap();
        assert_eq!(report.posted, 0);
        assert_eq!(report.already_delivered, 4);
    }
    assert_eq!(w.slack.calls().len(), before);
    assert_eq!(w.slack.messages("data-alerts").len(), 2);
}

#[tokio::test]
async fn concurrent_first_deliveries_make_one_root() {
    let w = World::new("slack-concurrent").await;
    let listings = pipeline("111111111111", "listings");
    w.register(
        &listings,
        "notifications: {type: FULL_EXECUTION, targets: [{channel: SLACK, addresses: [data-alerts]}]}",
    )
    .await;
    let running = status(&run(&listings, "l-7", RunStatus::Running));
    let succeeded = status(&run(&listings, "l-7", RunStatus::Succeeded));

    let first =
        futures::future::join_all((0..4).map(|_| w.deliver(std::slice::from_ref(&running)))).await;
    assert!(first.iter().all(|r| r.is_ok()), "{first:?}");
    let second =
        futures::future::join_all((0..3).map(|_| w.deliver(std::slice::from_ref(&succeeded))))
            .await;
    assert!(second.iter().all(|r| r.is_ok()), "{second:?}");

    let messages = w.slack.messages("data-alerts");
    let roots: Vec<&Message> = messages.iter().filter(|m| m.thread_ts.is_none()).collect();
    assert_eq!(roots.len(), 1, "{messages:#?}");
    assert_eq!(messages.len(), 2, "one root and one reply: {messages:#?}");
}

#[tokio::test]
async fn the_failures_type_ignores_success_and_announces_failure() {
    let w = World::new("slack-failures").await;
    let listings = pipeline("111111111111", "listings");
    w.register(
        &listings,
        "notifications: {type: FAILURES, targets: [{channel: SLACK, addresses: [data-alerts]}]}",
    )
    .await;
    w.deliver(&[
        status(&run(&listings, "l-1", RunStatus::Running)),
        status(&run(&listings, "l-1", RunStatus::Succeeded)),
    ])
    .await
    .unwrap();
    assert!(w.slack.calls().is_empty());

    w.deliver(&[status(&failed(
        &listings,
        "l-2",
        "States.TaskFailed",
        "boom",
    ))])
    .await
    .unwrap();
    let messages = w.slack.messages("data-alerts");
    assert_eq!(messages.len(), 1);
    let text = all_text(&messages[0]);
    assert!(text.contains("failed (FAILED)"), "{text}");
    assert!(
        text.contains("States.TaskFailed") && text.contains("```boom```"),
        "{text}"
    );
}

#[tokio::test]
async fn a_pipeline_without_slack_targets_posts_nothing_and_fails_nothing() {
    let w = World::new("slack-none").await;
    let listings = pipeline("111111111111", "listings");
    w.register(
        &listings,
        "notifications: {type: FULL_EXECUTION, targets: [{channel: EMAIL, addresses: [a@example.com]}]}",
    )
    .await;
    let unregistered = pipeline("111111111111", "unknown");
    let report = w
        .deliver(&[
            status(&run(&listings, "l-1", RunStatus::Failed)),
            status(&run(&unregistered, "u-1", RunStatus::Failed)),
        ])
        .await
        .unwrap();
    assert_eq!(report, Report::default());
    assert!(w.slack.calls().is_empty());
}

/// The bot token is read ahead of the first post (beside the registration), once per process: a
/// secret that cannot be read costs a notifier that posts nothing one read, and the first post
/// reads it again and reports why it cannot post.
#[tokio::test]
async fn the_token_is_read_once_ahead_and_a_refused_read_is_reported_by_the_post() {
    let mut w = World::new("slack-token-ahead").await;
    let proxy = FaultProxy::start(Moto::shared().endpoint()).await.unwrap();
    let secrets = aws_sdk_secretsmanager::Client::new(&proxy.in_front_of(&w.central.config));
    w.notifier.slack = SlackWebApi::new(
        w.slack.url(),
        SecretsManagerToken::new(secrets, &w.secret_id),
    )
    .unwrap();
    let refused = proxy.inject(Rule::new(
        "secretsmanager:GetSecretValue",
        &[],
        ProxyFault::Answer {
            status: 400,
            body: r#"{"__type":"AccessDeniedException","message":"not authorized to perform secretsmanager:GetSecretValue"}"#,
        },
        Times::UntilCleared,
    ));
    let email_only = pipeline("111111111111", "listings");
    w.register(
        &email_only,
        "notifications: {type: FULL_EXECUTION, targets: [{channel: EMAIL, addresses: [a@example.com]}]}",
    )
    .await;
    for execution in ["l-1", "l-2"] {
        let report = w
            .deliver(&[status(&run(&email_only, execution, RunStatus::Running))])
            .await
            .unwrap();
        assert_eq!(report, Report::default());
    }
    assert_eq!(
        proxy.fired(refused),
        1,
        "one read ahead, in the first delivery only"
    );

    let slack = pipeline("111111111111", "searches");
    w.register(
        &slack,
        "notifications: {targets: [{channel: SLACK, addresses: [data-alerts]}]}",
    )
    .await;
    let outcome = w
        .deliver(&[status(&run(&slack, "s-1", RunStatus::Running))])
        .await;
    assert_eq!(proxy.fired(refused), 2, "the post reads the token itself");
    assert!(w.slack.calls().is_empty());
    match outcome {
        Ok(report) => assert_eq!(report.refused, 1, "{report:?}"),
        Err(e) => assert!(e.to_string().contains(&w.secret_id), "{e}"),
    }
}

#[tokio::test]
async fn rate_limited_then_posted_after_retry_after() {
    let w = World::new("slack-429").await;
    let listings = pipeline("111111111111", "listings");
    w.register(
        &listings,
        "notifications: {targets: [{channel: SLACK, addresses: [data-alerts]}]}",
    )
    .await;
    w.slack.fail_next(
        1,
        Fault::RateLimited {
            retry_after_secs: 1,
        },
    );
    let started = Instant::now();
    w.deliver(&[status(&run(&listings, "l-1", RunStatus::Running))])
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    let calls = w.slack.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].http_status, 429);
    assert_eq!(calls[1].http_status, 200);
    assert_eq!(w.slack.messages("data-alerts").len(), 1);
}

#[tokio::test]
async fn channel_not_found_on_one_channel_does_not_stop_the_other() {
    let w = World::new("slack-gone").await;
    let listings = pipeline("111111111111", "listings");
    w.register(
        &listings,
        "notifications: {targets: [{channel: SLACK, addresses: [gone, data-alerts]}]}",
    )
    .await;
    w.slack
        .fail_channel("gone", Fault::Error("channel_not_found".into()));
    let report = w
        .deliver(&[status(&run(&listings, "l-1", RunStatus::Running))])
        .await
        .unwrap();
    assert_eq!((report.posted, report.refused), (1, 1));
    assert_eq!(w.slack.messages("data-alerts").len(), 1);
    let to_gone = w
        .slack
        .calls()
        .iter()
        .filter(|c| c.body["channel"] == "gone")
        .count();
    assert_eq!(to_gone, 1, "a terminal error is not retried");
}

#[tokio::test]
async fn exhausted_retries_fail_the_invocation_and_the_retry_duplicates_nothing() {
    let w = World::new("slack-500").await;
    let listings = pipeline("111111111111", "listings");
    w.register(&listings, TWO_CHANNELS).await;
    w.slack.fail_channel("listings-team", Fault::ServerError);
    let event = status(&run(&listings, "l-1", RunStatus::Running));
    // Little time left: the 5xx is retried only while the deadline allows.
    let short = Instant::now() + Duration::from_secs(3);
    let err = w
        .notifier
        .handle(&sns(std::slice::from_ref(&event)), short)
        .await
        .unwrap_err();
    assert!(
        matches!(err, NotifyError::Incomplete { failed: 1, .. }),
        "{err}"
    );
    assert!(
        w.slack
            .calls()
            .iter()
            .filter(|c| c.body["channel"] == "listings-team")
            .count()
            >= 2,
        "5xx retried"
    );
    assert_eq!(w.slack.messages("data-alerts").len(), 1);

    // SNS/Lambda retry the event once Slack is back: only the missing post is made.
    w.slack.clear_faults();
    w.deliver(&[event]).await.unwrap();
    assert_eq!(w.slack.messages("data-alerts").len(), 1);
    assert_eq!(w.slack.messages("listings-team").len(), 1);
}

#[tokio::test]
async fn invalid_auth_rereads_the_secret_and_posts() {
    let w = World::new("slack-auth").await;
    let listings = pipeline("111111111111", "listings");
    w.register(
        &listings,
        "notifications: {targets: [{channel: SLACK, addresses: [data-alerts]}]}",
    )
    .await;
    w.deliver(&[status(&run(&listings, "l-1", RunStatus::Running))])
        .await
        .unwrap();

    // The token is rotated: the cached one is now refused.
    let rotated = format!("{}-rotated", w.token);
    w.secrets
        .put_secret_value()
        .secret_id(&w.secret_id)
        .secret_string(&rotated)
        .send()
        .await
        .unwrap();
    w.slack.set_token(&rotated);
    w.deliver(&[status(&run(&listings, "l-1", RunStatus::Succeeded))])
        .await
        .unwrap();

    let calls = w.slack.calls();
    let after: Vec<(Option<String>, Option<String>)> = calls[1..]
        .iter()
        .map(|c| (c.token.clone(), c.error.clone()))
        .collect();
    assert_eq!(
        after[..2],
        [
            (Some(w.token.clone()), Some("invalid_auth".to_owned())),
            (Some(rotated.clone()), None),
        ]
    );
    assert_eq!(w.slack.messages("data-alerts").len(), 2);
    assert_eq!(w.slack.messages("data-alerts")[0].edits, 1);
}

#[tokio::test]
async fn text_from_events_is_escaped_so_nobody_is_pinged() {
    let w = World::new("slack-escape").await;
    let listings = pipeline("111111111111", "listings");
    w.register(
        &listings,
        "notifications:\n  targets: [{channel: SLACK, addresses: [data-alerts]}]\n  mentionOnFailure: '<!subteam^S0123> <!here|evil'\n",
    )
    .await;
    let mut r = failed(
        &listings,
        "run-<!channel>",
        "<!channel> & <@U999>",
        "see <https://evil.example|here> <!everyone>",
    );
    r.trigger_id = Some("<!here>".into());
    w.deliver(&[status(&r)]).await.unwrap();

    let messages = w.slack.messages("data-alerts");
    assert_eq!(messages.len(), 1);
    let text = all_text(&messages[0]);
    for ping in [
        "<!channel>",
        "<@U999>",
        "<!everyone>",
        "<!here>",
        "<https://evil",
    ] {
        assert!(!text.contains(ping), "{ping} in {text}");
    }
    assert!(
        text.contains("&lt;!channel&gt; &amp; &lt;@U999&gt;"),
        "{text}"
    );
    assert!(text.contains("run-&lt;!channel&gt;"), "{text}");
    // The owners' mention is the one thing meant to ping.
    assert!(
        text.contains("cc <!subteam^S0123> &lt;!here|evil"),
        "{text}"
    );
}

#[tokio::test]
async fn a_very_long_cause_is_truncated_within_slacks_limits() {
    let w = World::new("slack-long").await;
    let listings = pipeline("111111111111", "listings");
    w.register(
        &listings,
        "notifications: {targets: [{channel: SLACK, addresses: [data-alerts]}]}",
    )
    .await;
    let cause = format!(
        "{}```{}",
        "Traceback & <frame>\n".repeat(5_000),
        "x".repeat(50_000)
    );
    w.deliver(&[status(&failed(
        &listings,
        "l-1",
        "States.TaskFailed",
        &cause,
    ))])
    .await
    .unwrap();

    let messages = w.slack.messages("data-alerts");
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    let blocks = m.blocks.as_array().unwrap();
    assert!(blocks.len() <= 50);
    assert!(m.text.chars().count() <= 4_000);
    for block in blocks {
        if let Some(t) = block["text"]["text"].as_str() {
            assert!(t.chars().count() <= 3_000, "section of {}", t.len());
        }
        for field in block["fields"].as_array().into_iter().flatten() {
            assert!(field["text"].as_str().unwrap().chars().count() <= 2_000);
        }
    }
    let cause_block = blocks
        .iter()
        .filter_map(|b| b["text"]["text"].as_str())
        .find(|t| t.starts_with("*Cause*"))
        .unwrap();
    assert!(cause_block.starts_with("*Cause*\n```Traceback &amp; &lt;frame&gt;\n"));
    assert!(cause_block.ends_with("…```"), "the cut is marked");
    assert_eq!(
        cause_block.matches("```").count(),
        2,
        "the code block stays one block"
    );
}

#[tokio::test]
async fn a_failure_lists_the_downstream_pipelines_that_will_not_start() {
    let w = World::new("slack-downstream").await;
    let listings = pipeline("111111111111", "listings");
    w.register(
        &listings,
        "notifications:\n  type: TERMINAL\n  targets: [{channel: SLACK, addresses: [data-alerts]}]\n  mentionOnFailure: '<!subteam^S0123>'\n",
    )
    .await;
    let waits_for_success = "trigger: {executions: {allOf: [{name: listings, account: '111111111111', status: [SUCCESS]}]}}";
    for i in 1..=6 {
        w.register(
            &pipeline("222222222222", &format!("report-{i}")),
            waits_for_success,
        )
        .await;
    }
    w.register(
        &pipeline("333333333333", "dashboard"),
        "trigger: {executions: {allOf: [{name: report-1, account: '222222222222', status: [SUCCESS]}]}}",
    )
    .await;
    w.register(
        &pipeline("111111111111", "cleanup"),
        "trigger: {executions: {allOf: [{name: listings, status: [FAILED]}]}}",
    )
    .await;

    w.deliver(&[status(&failed(
        &listings,
        "l-9",
        "States.Timeout",
        "too slow",
    ))])
    .await
    .unwrap();
    let messages = w.slack.messages("data-alerts");
    assert_eq!(messages.len(), 1);
    let text = all_text(&messages[0]);
    assert!(
        text.contains(":warning: 7 downstream pipelines will not start: *report-"),
        "{text}"
    );
    assert!(text.contains("and 2 more"), "{text}");
    assert!(
        !text.contains("cleanup"),
        "cleanup starts on failure: {text}"
    );
    assert!(text.contains("cc <!subteam^S0123>"), "{text}");
}

#[tokio::test]
async fn a_trigger_notice_names_the_parent_runs_once() {
    let w = World::new("slack-trigger").await;
    let child = pipeline("333333333333", "pipeline-x");
    w.register(
        &child,
        "notifications: {targets: [{channel: SLACK, addresses: [x-team]}]}",
    )
    .await;
    let consumed = vec![
        run(
            &pipeline("111111111111", "listings"),
            "l-22",
            RunStatus::Succeeded,
        )
        .reference(),
        run(
            &pipeline("222222222222", "searches"),
            "s-22",
            RunStatus::Succeeded,
        )
        .reference(),
    ];
    let trigger = PipelineTrigger {
        trigger_id: TriggerId("t-0123abcd".into()),
        target: PipelineRef::from(&child),
        consumed: consumed.clone(),
        reason: "allOf: listings SUCCEEDED, searches SUCCEEDED".into(),
        fired_at: at(63),
        environment: None,
        run_key: None,
    };
    let notice = RunEvent::trigger_notice(&trigger);
    w.deliver(std::slice::from_ref(&notice)).await.unwrap();
    w.deliver(&[notice]).await.unwrap();

    let messages = w.slack.messages("x-team");
    assert_eq!(messages.len(), 1);
    let text = all_text(&messages[0]);
    assert!(
        text.contains("baton started *pipeline-x* (333333333333 in eu-west-1)"),
        "{text}"
    );
    for r in &consumed {
        let RunRef { pipeline, .. } = r;
        assert!(
            text.contains(&format!("*{}* ({})", pipeline.name, pipeline.account)),
            "{text}"
        );
    }
    assert!(
        text.contains("|l-22> SUCCEEDED") && text.contains("|s-22> SUCCEEDED"),
        "{text}"
    );
}
