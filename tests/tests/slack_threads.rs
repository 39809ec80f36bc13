//! slack-notifier's thread protocol under concurrency and crashed deliveries: every status is
//! posted once, and a delivery that died holding a claim delays the story only until its lease
//! ends.

mod slack_world;

use std::time::{Duration, Instant};

use baton_core::ports::Lease;
use baton_core::slack::ledger::{PostSlot, SlackThreads, SlotClaim};
use baton_core::{RunStatus, Span, Timestamp};
use slack_notifier::NotifyError;
use slack_world::{all_text, failed, pipeline, run, status, World};

const ONE_CHANNEL_WITH_MENTION: &str = "notifications:\n  type: FULL_EXECUTION\n  targets: [{channel: SLACK, addresses: [data-alerts]}]\n  mentionOnFailure: '<!subteam^S0123>'\n";

#[tokio::test]
async fn concurrent_deliveries_of_two_statuses_post_each_once() {
    let w = World::new("slack-interleave").await;
    let listings = pipeline("111111111111", "listings");
    w.register(&listings, ONE_CHANNEL_WITH_MENTION).await;
    let running = status(&run(&listings, "l-3", RunStatus::Running));
    let succeeded = status(&run(&listings, "l-3", RunStatus::Succeeded));
    let deliveries = (0..6).map(|i| {
        let event = if i % 2 == 0 { &running } else { &succeeded };
        w.deliver(std::slice::from_ref(event))
    });
    let results = futures::future::join_all(deliveries).await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");

    let messages = w.slack.messages("data-alerts");
    assert_eq!(messages.len(), 2, "one root and one reply: {messages:#?}");
    let root = &messages[0];
    assert_eq!(root.thread_ts, None);
    assert_eq!(messages[1].thread_ts.as_deref(), Some(root.ts.as_str()));
    assert!(
        all_text(root).contains("(SUCCEEDED)"),
        "the root ends showing the final status: {}",
        all_text(root)
    );
    let posts = w
        .slack
        .calls()
        .iter()
        .filter(|c| c.method == "chat.postMessage")
        .count();
    assert_eq!(posts, 2);
}

/// Claims the run's root in `data-alerts` as a delivery that then died, its lease ending in
/// `lease_left`.
async fn crashed_root_claim(w: &World, execution_arn: &str, lease_left: Span) {
    let slot = PostSlot::Root {
        execution_arn: execution_arn.to_owned(),
        channel: "data-alerts".to_owned(),
    };
    let lease = Lease {
        holder: "a-delivery-that-died".to_owned(),
        until: Timestamp::now().plus(lease_left),
    };
    let claim = w
        .central
        .slack_threads()
        .claim(&slot, &lease, Timestamp::now())
        .await
        .unwrap();
    assert!(matches!(claim, SlotClaim::Won(_)), "{claim:?}");
}

#[tokio::test]
async fn a_root_claim_left_by_a_crashed_delivery_expires_and_the_failure_is_told() {
    let w = World::new("slack-expired").await;
    let listings = pipeline("111111111111", "listings");
    w.register(&listings, ONE_CHANNEL_WITH_MENTION).await;
    let run_failed = failed(&listings, "l-4", "States.TaskFailed", "disk full");
    crashed_root_claim(&w, &run_failed.execution_arn, Span(1_500)).await;

    let started = Instant::now();
    let report = w.deliver(&[status(&run_failed)]).await.unwrap();
    assert_eq!(report.posted, 1);
    assert!(started.elapsed() >= Duration::from_millis(1_000));
    let messages = w.slack.messages("data-alerts");
    assert_eq!(messages.len(), 1, "{messages:#?}");
    let text = all_text(&messages[0]);
    assert!(text.contains("disk full"), "{text}");
    assert!(text.contains("<!subteam^S0123>"), "{text}");

    // A redelivery finds the story told.
    let report = w.deliver(&[status(&run_failed)]).await.unwrap();
    assert_eq!((report.posted, report.already_delivered), (0, 1));
    assert_eq!(w.slack.messages("data-alerts").len(), 1);
}

#[tokio::test]
async fn a_claim_held_by_a_live_delivery_leaves_the_event_for_a_retry() {
    let w = World::new("slack-held").await;
    let listings = pipeline("111111111111", "listings");
    w.register(&listings, ONE_CHANNEL_WITH_MENTION).await;
    let running = run(&listings, "l-5", RunStatus::Running);
    crashed_root_claim(&w, &running.execution_arn, Span::MINUTE).await;

    let error = w.deliver(&[status(&running)]).await.unwrap_err();
    let NotifyError::Incomplete { failed, first, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(*failed, 1);
    assert!(first.contains("thread root of"), "{first}");
    assert!(w.slack.calls().is_empty(), "nothing posted while held");
    // The status itself was given back: once the root is free it is delivered at once.
    let slot = PostSlot::Status {
        execution_arn: running.execution_arn.clone(),
        status: RunStatus::Running,
        channel: "data-alerts".to_owned(),
    };
    let claim = w
        .central
        .slack_threads()
        .claim(
            &slot,
            &Lease {
                holder: "probe".to_owned(),
                until: Timestamp::now().plus(Span::SECOND),
            },
            Timestamp::now(),
        )
        .await
        .unwrap();
    assert!(matches!(claim, SlotClaim::Won(_)), "{claim:?}");
}
