//! Watching what baton sends, through SQS queues in the emulator: a rule on an event bus that
//! forwards to a queue (what reached a member account's pipeline bus), and a queue subscribed to
//! an SNS topic (what was published on the run-events topic).

use std::time::Duration;

use anyhow::Context as _;
use aws_config::SdkConfig;
use serde_json::Value;

use crate::moto::unique;

async fn queue(sqs: &aws_sdk_sqs::Client, prefix: &str) -> anyhow::Result<(String, String)> {
    let url = sqs
        .create_queue()
        .queue_name(unique(prefix))
        .send()
        .await?
        .queue_url
        .context("CreateQueue returned no URL")?;
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .context("GetQueueAttributes returned no ARN")?;
    Ok((url, arn))
}

/// Receives until the queue has been empty for one short poll; returns the bodies as JSON.
async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<Vec<Value>> {
    let mut bodies = Vec::new();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(bodies);
        }
        for m in messages {
            let body = m.body.unwrap_or_default();
            bodies.push(serde_json::from_str(&body).with_context(|| format!("body {body}"))?);
            if let Some(handle) = m.receipt_handle {
                sqs.delete_message()
                    .queue_url(url)
                    .receipt_handle(handle)
                    .send()
                    .await?;
            }
        }
    }
}

/// An event bus (created here, named uniquely) and a rule on it sending every `source` event to
/// a queue: what a member account's pipeline bus received.
pub struct BusWatch {
    pub bus_name: String,
    /// The bus ARN as production would name it: in `account` (the emulator resolves it by name
    /// in its own account, so names must be distinct per member account).
    pub bus_arn: String,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl BusWatch {
    /// Creates bus `<prefix>-<unique>` and a rule matching `source`, forwarding to a new queue.
    pub async fn create(
        config: &SdkConfig,
        account: &str,
        prefix: &str,
        source: &str,
    ) -> anyhow::Result<BusWatch> {
        let bus_name = unique(prefix);
        BusWatch::on_bus(config, account, &bus_name, source).await
    }

    /// Same, on a bus of the given name (created if needed).
    pub async fn on_bus(
        config: &SdkConfig,
        account: &str,
        bus_name: &str,
        source: &str,
    ) -> anyhow::Result<BusWatch> {
        let events = aws_sdk_eventbridge::Client::new(config);
        let sqs = aws_sdk_sqs::Client::new(config);
        let exists = events
            .describe_event_bus()
            .name(bus_name)
            .send()
            .await
            .is_ok();
        if !exists {
            events.create_event_bus().name(bus_name).send().await?;
        }
        let (queue_url, queue_arn) = queue(&sqs, "bus-watch").await?;
        let rule = unique("watch");
        events
            .put_rule()
            .name(&rule)
            .event_bus_name(bus_name)
            .event_pattern(serde_json::json!({ "source": [source] }).to_string())
            .send()
            .await?;
        events
            .put_targets()
            .rule(&rule)
            .event_bus_name(bus_name)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("queue")
                    .arn(queue_arn)
                    .build()?,
            )
            .send()
            .await?;
        let region = config.region().map(|r| r.to_string()).unwrap_or_default();
        Ok(BusWatch {
            bus_arn: format!("arn:aws:events:{region}:{account}:event-bus/{bus_name}"),
            bus_name: bus_name.to_owned(),
            sqs,
            queue_url,
        })
    }

    /// The events the bus received since the last call (whole EventBridge envelopes).
    pub async fn received(&self) -> anyhow::Result<Vec<Value>> {
        drain(&self.sqs, &self.queue_url).await
    }
}

/// An SNS topic (created here) with a queue subscribed: what was published on it.
pub struct TopicWatch {
    pub topic_arn: String,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl TopicWatch {
    /// A new topic with a queue subscribed to it.
    pub async fn create(config: &SdkConfig, prefix: &str) -> anyhow::Result<TopicWatch> {
        let topic_arn = aws_sdk_sns::Client::new(config)
            .create_topic()
            .name(unique(prefix))
            .send()
            .await?
            .topic_arn
            .context("CreateTopic returned no ARN")?;
        TopicWatch::subscribe(config, &topic_arn, None).await
    }

    /// A queue subscribed to an existing topic, with an optional SNS filter policy (on message
    /// attributes), as a Lambda subscription in the template would be.
    pub async fn subscribe(
        config: &SdkConfig,
        topic_arn: &str,
        filter_policy: Option<&Value>,
    ) -> anyhow::Result<TopicWatch> {
        let sns = aws_sdk_sns::Client::new(config);
        let sqs = aws_sdk_sqs::Client::new(config);
        let (queue_url, queue_arn) = queue(&sqs, "topic-watch").await?;
        let mut subscribe = sns
            .subscribe()
            .topic_arn(topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn);
        if let Some(policy) = filter_policy {
            subscribe = subscribe.attributes("FilterPolicy", policy.to_string());
        }
        subscribe.send().await?;
        Ok(TopicWatch {
            topic_arn: topic_arn.to_owned(),
            sqs,
            queue_url,
        })
    }

    /// The SNS notifications published since the last call, as SNS sends them to SQS
    /// (`Type`, `MessageId`, `TopicArn`, `Message`, `MessageAttributes`, `Timestamp`...).
    pub async fn received(&self) -> anyhow::Result<Vec<Value>> {
        drain(&self.sqs, &self.queue_url).await
    }
}

/// The Lambda SNS event (`{"Records": [...]}`) that delivers `notifications` (as
/// [`TopicWatch::received`] returns them) to a function subscribed to the topic.
pub fn lambda_sns_event(notifications: &[Value]) -> Value {
    let records: Vec<Value> = notifications
        .iter()
        .map(|n| {
            let field = |name: &str| n.get(name).cloned().unwrap_or(Value::Null);
            serde_json::json!({
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": format!("{}:subscription", n.get("TopicArn").and_then(Value::as_str).unwrap_or_default()),
                "Sns": {
                    "Type": field("Type"),
                    "MessageId": field("MessageId"),
                    "TopicArn": field("TopicArn"),
                    "Subject": Value::Null,
                    "Message": field("Message"),
                    "Timestamp": field("Timestamp"),
                    "SignatureVersion": field("SignatureVersion"),
                    "Signature": field("Signature"),
                    "SigningCertUrl": field("SigningCertURL"),
                    "UnsubscribeUrl": field("UnsubscribeURL"),
                    "MessageAttributes": n.get("MessageAttributes").cloned().unwrap_or_else(|| serde_json::json!({})),
                }
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
}

/// The "Step Functions Execution Status Change" event for `run`, as the central bus delivers it
/// to run-log-writer: event id `id`, the execution `input` (none: not included), the event's
/// time the run's stop (or start).
pub fn status_change_event(run: &baton_core::Run, id: &str, input: Option<&str>) -> Value {
    let p = &run.pipeline;
    serde_json::json!({
        "version": "0",
        "id": id,
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": p.account,
        "time": run.stopped_at.unwrap_or(run.started_at).to_string(),
        "region": p.region,
        "resources": [run.execution_arn],
        "detail": {
            "executionArn": run.execution_arn,
            "stateMachineArn": p.state_machine_arn(),
            "name": run.execution_name,
            "status": run.status.as_str(),
            "startDate": run.started_at.0,
            "stopDate": run.stopped_at.map(|t| t.0),
            "input": input,
            "output": null,
            "error": run.error,
            "cause": run.cause,
        }
    })
}

/// Waits a moment for the emulator's asynchronous deliveries.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}
