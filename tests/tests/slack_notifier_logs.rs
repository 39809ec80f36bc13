//! The Slack bot token never appears in what slack-notifier logs, on any path (posting, a
//! refused channel, rate limiting, a refused token and its re-read). Its own test binary, so the
//! process-wide log capture sees only this test.

mod slack_world;

use std::io::Write;
use std::sync::{Arc, Mutex};

use baton_core::RunStatus;
use baton_testbed::slack_standin::Fault;
use slack_world::{failed, pipeline, run, status, World};

/// Collects everything the notifier logs.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_token_never_reaches_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let w = World::new("slack-logs").await;
    let listings = pipeline("111111111111", "listings");
    w.register(
        &listings,
        "notifications: {targets: [{channel: SLACK, addresses: [gone, data-alerts]}]}",
    )
    .await;
    w.slack
        .fail_channel("gone", Fault::Error("channel_not_found".into()));
    w.slack.fail_next(
        1,
        Fault::RateLimited {
            retry_after_secs: 0,
        },
    );
    w.deliver(&[status(&run(&listings, "l-1", RunStatus::Running))])
        .await
        .unwrap();
    // And through the re-read after a refused token.
    w.slack.set_token("xoxb-other");
    w.secrets
        .put_secret_value()
        .secret_id(&w.secret_id)
        .secret_string("xoxb-other")
        .send()
        .await
        .unwrap();
    w.deliver(&[status(&failed(&listings, "l-1", "E", "C"))])
        .await
        .unwrap();

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("slack delivery"),
        "the notifier logged: {logs}"
    );
    assert!(
        logs.contains("channel_not_found") && logs.contains("\"channel\":\"gone\""),
        "{logs}"
    );
    assert!(logs.contains("invalid_auth"), "{logs}");
    assert!(!logs.contains(&w.token), "the token was logged");
    assert!(!logs.contains("xoxb-other"), "the rotated token was logged");
    assert!(!logs.contains("xoxb-"), "a token was logged");
}
