//! slack-notifier's thread ledger under faults injected between the function and the emulator
//! (the real DynamoDB adapter behind `baton_testbed::fault_proxy`): each write of the Slack path
//! fails before it is applied or loses its answer after, and the story is still told once.

mod slack_world;

use std::time::{Duration, Instant};

use baton_core::slack::ledger::LEASE_MARGIN;
use baton_core::RunStatus;
use baton_testbed::fault_proxy::{Fault, FaultProxy, Rule, RuleId, Times};
use slack_world::{all_text, failed, pipeline, run, status, World};

const CHANNEL: &str = "notifications:\n  type: FULL_EXECUTION\n  targets: [{channel: SLACK, addresses: [data-alerts]}]\n  mentionOnFailure: '<!subteam^S0123>'\n";
const UPDATE: &str = "dynamodb:UpdateItem";

fn assert_fired(proxy: &FaultProxy, rule: RuleId) {
    assert!(proxy.fired(rule) > 0, "the injected fault never fired");
}

#[tokio::test]
async fn a_lost_answer_to_the_root_claim_does_not_hold_the_story_up() {
    let (w, proxy) = World::behind_faults("fault-root-claim").await;
    let listings = pipeline("111111111111", "listings");
    w.register(&listings, CHANNEL).await;
    // The claim is applied, its answer lost; the SDK repeats it.
    let rule = proxy.inject(Rule::new(
        UPDATE,
        &["root#data-alerts", "leaseUntil < :now"],
        Fault::After,
        Times::Exactly(1),
    ));
    let report = w
        .deliver(&[status(&run(&listings, "l-1", RunStatus::Running))])
        .await
        .unwrap();
    assert_fired(&proxy, rule);
    assert_eq!(report.posted, 1);
    assert_eq!(w.slack.messages("data-alerts").len(), 1);
}

#[tokio::test]
async fn a_root_whose_record_failed_does_not_stop_the_later_statuses() {
    let (w, proxy) = World::behind_faults("fault-root-record").await;
    let listings = pipeline("111111111111", "listings");
    w.register(&listings, CHANNEL).await;
    let running = status(&run(&listings, "l-2", RunStatus::Running));
    let failure = status(&failed(&listings, "l-2", "States.TaskFailed", "disk full"));

    // Slack accepts the root; recording it fails (the delivery dies there, as far as the
    // ledger knows). The invocation ends in 3 s, its lease LEASE_MARGIN later.
    let rule = proxy.inject(Rule::new(
        UPDATE,
        &["root#data-alerts", ":shows"],
        Fault::Before,
        Times::UntilCleared,
    ));
    let short = Instant::now() + Duration::from_secs(3);
    assert!(w
        .deliver_until(std::slice::from_ref(&running), short)
        .await
        .is_err());
    assert_fired(&proxy, rule);
    proxy.clear(rule);

    // After the lease, the failure is told in full, and RUNNING's retry joins its thread.
    let lease_end = short + Duration::from_millis(LEASE_MARGIN.0 as u64 + 200);
    tokio::time::sleep(lease_end.saturating_duration_since(Instant::now())).await;
    w.deliver(std::slice::from_ref(&failure)).await.unwrap();
    w.deliver(std::slice::from_ref(&running)).await.unwrap();

    let messages = w.slack.messages("data-alerts");
    let roots: Vec<_> = messages.iter().filter(|m| m.thread_ts.is_none()).collect();
    // The first root (its record lost) stands alone: the one duplicate Slack's missing
    // idempotency key costs. The story continues in the second.
    assert_eq!(roots.len(), 2, "{messages:#?}");
    let story = roots[1];
    let text = all_text(story);
    assert!(
        text.contains("disk full") && text.contains("<!subteam^S0123>"),
        "{text}"
    );
    let replies: Vec<_> = messages
        .iter()
        .filter(|m| m.thread_ts.as_deref() == Some(story.ts.as_str()))
        .collect();
    assert_eq!(replies.len(), 1, "RUNNING as a reply: {messages:#?}");
}

#[tokio::test]
async fn a_status_whose_done_mark_failed_is_not_posted_again() {
    let (w, proxy) = World::behind_faults("fault-status-done").await;
    let listings = pipeline("111111111111", "listings");
    w.register(&listings, CHANNEL).await;
    let running = status(&run(&listings, "l-3", RunStatus::Running));
    let rule = proxy.inject(Rule::new(
        UPDATE,
        &["post#RUNNING#data-alerts", ":done"],
        Fault::Before,
        Times::UntilCleared,
    ));
    assert!(w.deliver(std::slice::from_ref(&running)).await.is_err());
    assert_fired(&proxy, rule);
    proxy.clear(rule);

    let report = w.deliver(std::slice::from_ref(&running)).await.unwrap();
    assert_eq!((report.posted, report.already_delivered), (0, 1));
    assert_eq!(w.slack.messages("data-alerts").len(), 1);
}

#[tokio::test]
async fn a_reply_whose_done_mark_failed_is_not_posted_again_and_the_root_is_edited() {
    let (w, proxy) = World::behind_faults("fault-reply-done").await;
    let listings = pipeline("111111111111", "listings");
    w.register(&listings, CHANNEL).await;
    let running = status(&run(&listings, "l-4", RunStatus::Running));
    let succeeded = status(&run(&listings, "l-4", RunStatus::Succeeded));
    w.deliver(std::slice::from_ref(&running)).await.unwrap();

    let rule = proxy.inject(Rule::new(
        UPDATE,
        &["post#SUCCEEDED#data-alerts", ":done"],
        Fault::Before,
        Times::UntilCleared,
    ));
    assert!(w.deliver(std::slice::from_ref(&succeeded)).await.is_err());
    assert_fired(&proxy, rule);
    proxy.clear(rule);
    w.deliver(std::slice::from_ref(&succeeded)).await.unwrap();

    let messages = w.slack.messages("data-alerts");
    assert_eq!(messages.len(), 2, "one root, one reply: {messages:#?}");
    assert!(all_text(&messages[0]).contains("(SUCCEEDED)"));
    // A third delivery finds the status done.
    let report = w.deliver(std::slice::from_ref(&succeeded)).await.unwrap();
    assert_eq!(report.already_delivered, 1);
}

#[tokio::test]
async fn throttled_ledger_writes_are_retried_and_tell_the_story_once() {
    let (w, proxy) = World::behind_faults("fault-throttle").await;
    let listings = pipeline("111111111111", "listings");
    w.register(&listings, CHANNEL).await;
    let rule = proxy.inject(Rule::new(
        UPDATE,
        &["data-alerts"],
        Fault::Throttle,
        Times::Exactly(2),
    ));
    w.deliver(&[
        status(&run(&listings, "l-5", RunStatus::Running)),
        status(&run(&listings, "l-5", RunStatus::Succeeded)),
    ])
    .await
    .unwrap();
    assert_eq!(proxy.fired(rule), 2);
    assert_eq!(w.slack.messages("data-alerts").len(), 2);
}
