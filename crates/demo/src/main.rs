//! `cargo xtask demo`: the Scout24 story end to end on a local emulated AWS.
//!
//! A moto server holds the central account's tables, the run-events topic (with the two
//! subscriptions the template declares, as SQS queues), account C's pipeline bus (a rule on it
//! feeds a queue, standing in for the rule that invokes pipeline-starter), pipeline-x's state
//! machine in account C's Step Functions, and the Slack token secret. The five real handlers
//! process the flow as the templates wire it: cfn-responder registers the three example pipelines;
//! run-log-writer records status changes from accounts A and B; trigger-manager decides and sends
//! the Pipeline Trigger; pipeline-starter starts pipeline-x once, however often the trigger is
//! delivered; slack-notifier posts to a local Slack stand-in. Every line printed comes from what a
//! handler did: its answer, its log events, or what reached the emulator and the stand-in.

mod account_c;
mod capture;
mod story;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let captured = capture::Captured::default();
    tracing_subscriber::registry().with(captured.clone()).init();
    match story::run(captured).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
