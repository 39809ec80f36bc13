//! `baton dlq list` and `baton dlq redrive FUNCTION`: the events each function failed for good
//! (Lambda put them in its dead-letter queue after its retries), and their re-delivery through the
//! same function: an asynchronous Invoke with the event as it was, so the deployed handler, with
//! its own configuration and idempotence, handles it again. A message leaves the queue only once
//! Lambda accepted its invocation.
//!
//! Queues and functions are named by the central stack's outputs, passed in the environment:
//! `BATON_DLQ_<FUNCTION>` (queue URL) and `BATON_FUNCTION_<FUNCTION>` (function name or ARN),
//! `<FUNCTION>` being RUN_LOG_WRITER, TRIGGER_MANAGER, SLACK_NOTIFIER, CFN_RESPONDER or WATCHDOG.

use aws_config::SdkConfig;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use baton_adapters::Env;
use baton_core::text::shorten;
use serde_json::json;

use crate::{DlqAction, Failure};

/// `baton dlq`: needs queues and functions, not tables.
pub async fn run(action: DlqAction, as_json: bool) -> Result<(), Failure> {
    let aws = aws_config::load_from_env().await;
    let env = Env::from_process();
    match action {
        DlqAction::List => list(&aws, &env, as_json).await,
        DlqAction::Redrive { function } => redrive(&aws, &env, &function, as_json).await,
    }
}

/// The functions with a dead-letter queue, as the command names them, and their variable suffix.
pub const FUNCTIONS: [(&str, &str); 5] = [
    ("run-log-writer", "RUN_LOG_WRITER"),
    ("trigger-manager", "TRIGGER_MANAGER"),
    ("slack-notifier", "SLACK_NOTIFIER"),
    ("cfn-responder", "CFN_RESPONDER"),
    ("watchdog", "WATCHDOG"),
];

/// At most this many messages are read per queue by `list`, and redriven per command.
const LIST_LIMIT: i32 = 10;
const REDRIVE_LIMIT: usize = 1_000;
/// While a redrive works on a message, no one else receives it.
const REDRIVE_VISIBILITY_SECONDS: i32 = 120;

fn queue_url(env: &Env, suffix: &str) -> Option<String> {
    env.optional(&format!("BATON_DLQ_{suffix}"))
}

/// Lists, per function whose queue is configured, how many failed events wait and the first few.
pub async fn list(aws: &SdkConfig, env: &Env, as_json: bool) -> Result<(), Failure> {
    let sqs = aws_sdk_sqs::Client::new(aws);
    let mut report = Vec::new();
    for (function, suffix) in FUNCTIONS {
        let Some(url) = queue_url(env, suffix) else {
            continue;
        };
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|e| Failure::env(format!("{function}'s DLQ {url}: {}", sdk_error(&e))))?;
        let waiting: u64 = attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
            .and_then(|n| n.parse().ok())
            .unwrap_or_default();
        // Peek: a zero visibility timeout leaves every message where it was.
        let peeked = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(LIST_LIMIT)
            .visibility_timeout(0)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .map_err(|e| Failure::env(format!("{function}'s DLQ {url}: {}", sdk_error(&e))))?;
        let messages: Vec<_> = peeked
            .messages()
            .iter()
            .map(|m| {
                let attribute = |name: &str| {
                    m.message_attributes()
                        .and_then(|a| a.get(name))
                        .and_then(|v| v.string_value())
                        .unwrap_or_default()
                        .to_owned()
                };
                json!({
                    "messageId": m.message_id().unwrap_or_default(),
                    "error": attribute("ErrorMessage"),
                    "errorCode": attribute("ErrorCode"),
                    "event": shorten(m.body().unwrap_or_default(), 160),
                })
            })
            .collect();
        report.push(
            json!({"function": function, "queue": url, "waiting": waiting, "messages": messages}),
        );
    }
    if report.is_empty() {
        return Err(Failure::env(
            "no dead-letter queue configured: set BATON_DLQ_<FUNCTION> (RUN_LOG_WRITER, TRIGGER_MANAGER, SLACK_NOTIFIER, CFN_RESPONDER, WATCHDOG) from the central stack's outputs",
        ));
    }
    if as_json {
        println!("{}", json!({ "queues": report }));
        return Ok(());
    }
    for queue in &report {
        println!(
            "{}: {} failed event(s) waiting",
            queue["function"].as_str().unwrap_or_default(),
            queue["waiting"]
        );
        for m in queue["messages"].as_array().into_iter().flatten() {
            println!(
                "  {}  {}  {}",
                m["messageId"].as_str().unwrap_or_default(),
                m["error"].as_str().unwrap_or_default(),
                m["event"].as_str().unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// Invokes `function` asynchronously with every event in its DLQ, deleting each message once
/// Lambda accepted it. At the first refusal it stops; that message and the ones not yet sent stay
/// in the queue, visible again at once.
pub async fn redrive(
    aws: &SdkConfig,
    env: &Env,
    function: &str,
    as_json: bool,
) -> Result<(), Failure> {
    let queue = Redrive::of(aws, env, function)?;
    let target = &queue.target;
    let (mut redriven, mut failed) = (0usize, Vec::new());
    'queue: while redriven < REDRIVE_LIMIT {
        let batch = queue.receive().await?;
        if batch.is_empty() {
            break;
        }
        for (i, message) in batch.iter().enumerate() {
            let id = message.message_id().unwrap_or_default();
            match queue.invoke(message.body().unwrap_or_default()).await {
                None => {
                    queue.delete(message).await?;
                    redriven += 1;
                }
                Some(why) => {
                    // Lambda refuses: stop, and put this message and the rest of the batch back
                    // at once, for a later redrive.
                    failed.push(format!("{id}: {why}"));
                    queue.put_back(&batch[i..]).await;
                    break 'queue;
                }
            }
        }
    }
    if as_json {
        println!(
            "{}",
            json!({"function": function, "redriven": redriven, "failed": failed})
        );
    } else {
        println!("{function}: {redriven} failed event(s) delivered again to {target}");
        for f in &failed {
            println!("  not delivered (stays in the queue): {f}");
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::env(format!(
            "Lambda refused to invoke {function} again ({}); it and the events after it stay in {function}'s DLQ",
            failed.join("; ")
        )))
    }
}

fn required(env: &Env, name: &str, what: &str) -> Result<String, Failure> {
    env.optional(name).ok_or_else(|| {
        Failure::env(format!(
            "{name} is not set: give {what} (an output of the central stack)"
        ))
    })
}

fn sdk_error(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// A function's dead-letter queue and the function its events are delivered to again.
struct Redrive<'a> {
    function: &'a str,
    url: String,
    target: String,
    sqs: aws_sdk_sqs::Client,
    lambda: aws_sdk_lambda::Client,
}

impl<'a> Redrive<'a> {
    /// The queue and function of `function` (one of [`FUNCTIONS`]), named by the environment.
    fn of(aws: &SdkConfig, env: &Env, function: &'a str) -> Result<Redrive<'a>, Failure> {
        let Some((_, suffix)) = FUNCTIONS.iter().find(|(name, _)| *name == function) else {
            let names: Vec<&str> = FUNCTIONS.iter().map(|(n, _)| *n).collect();
            return Err(Failure {
                code: 2,
                message: format!(
                    "`{function}` is not one of baton's functions: {}",
                    names.join(", ")
                ),
            });
        };
        Ok(Redrive {
            function,
            url: required(
                env,
                &format!("BATON_DLQ_{suffix}"),
                "its dead-letter queue's URL",
            )?,
            target: required(
                env,
                &format!("BATON_FUNCTION_{suffix}"),
                "the function's name",
            )?,
            sqs: aws_sdk_sqs::Client::new(aws),
            lambda: aws_sdk_lambda::Client::new(aws),
        })
    }

    /// The next batch of failed events, hidden from other readers while they are redriven.
    async fn receive(&self) -> Result<Vec<aws_sdk_sqs::types::Message>, Failure> {
        let batch = self
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(LIST_LIMIT)
            .visibility_timeout(REDRIVE_VISIBILITY_SECONDS)
            .send()
            .await
            .map_err(|e| {
                Failure::env(format!(
                    "{}'s DLQ {}: {}",
                    self.function,
                    self.url,
                    sdk_error(&e)
                ))
            })?;
        Ok(batch.messages.unwrap_or_default())
    }

    /// Invokes the function asynchronously with `body`, as Lambda did; why Lambda refused, if
    /// it did.
    async fn invoke(&self, body: &str) -> Option<String> {
        let invoked = self
            .lambda
            .invoke()
            .function_name(&self.target)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(body.as_bytes()))
            .send()
            .await;
        match invoked {
            Ok(out) if out.status_code() == 202 => None,
            Ok(out) => Some(format!("Lambda answered {}", out.status_code())),
            Err(e) => Some(sdk_error(&e)),
        }
    }

    /// Deletes a redriven message from the queue.
    async fn delete(&self, message: &aws_sdk_sqs::types::Message) -> Result<(), Failure> {
        let id = message.message_id().unwrap_or_default();
        self.sqs
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(message.receipt_handle().unwrap_or_default())
            .send()
            .await
            .map_err(|e| {
                Failure::env(format!(
                    "deleting redriven message {id} from {}: {}",
                    self.url,
                    sdk_error(&e)
                ))
            })?;
        Ok(())
    }

    /// Makes `messages` visible again at once. Best effort: they reappear when their visibility
    /// timeout ends anyway.
    async fn put_back(&self, messages: &[aws_sdk_sqs::types::Message]) {
        for message in messages {
            let _ = self
                .sqs
                .change_message_visibility()
                .queue_url(&self.url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .visibility_timeout(0)
                .send()
                .await;
        }
    }
}
