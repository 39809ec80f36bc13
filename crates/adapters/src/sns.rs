//! The run-events topic in SNS: [`RunEvents`] over `sns:Publish`, with the message attributes
//! subscription filter policies use (`account`, `pipeline`, `kind`, `status`).

use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sns::Client;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use baton_core::email::{EmailMessage, EmailTopics};
use baton_core::ports::{PublishError, RunEvents};
use baton_core::RunEvent;

use crate::aws_error::{self, Failure};

/// Sorts an SDK error into retryable or not, naming the destination (topic or bus).
pub(crate) fn publish_error<E>(destination: &str, err: SdkError<E, HttpResponse>) -> PublishError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let Failure { retryable, message } = aws_error::sort(&err);
    classify(destination, retryable, message)
}

pub(crate) fn classify(destination: &str, retryable: bool, message: String) -> PublishError {
    let destination = destination.to_owned();
    if retryable {
        PublishError::Unavailable {
            destination,
            message,
        }
    } else {
        PublishError::Rejected {
            destination,
            message,
        }
    }
}

/// [`RunEvents`] over one SNS topic.
#[derive(Clone, Debug)]
pub struct SnsRunEvents {
    client: Client,
    topic_arn: String,
}

impl SnsRunEvents {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> SnsRunEvents {
        SnsRunEvents {
            client,
            topic_arn: topic_arn.into(),
        }
    }

    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }
}

impl RunEvents for SnsRunEvents {
    async fn publish(&self, event: &RunEvent) -> Result<(), PublishError> {
        let message = serde_json::to_string(event).map_err(|e| {
            classify(
                &self.topic_arn,
                false,
                format!("serialising the event: {e}"),
            )
        })?;
        let mut request = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(message);
        for (name, value) in event.message_attributes() {
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| classify(&self.topic_arn, false, e.to_string()))?;
            request = request.message_attributes(name, attribute);
        }
        request
            .send()
            .await
            .map_err(|e| publish_error(&self.topic_arn, e))?;
        Ok(())
    }
}

/// [`EmailTopics`] over `sns:Publish` to pipelines' own topics, in their accounts and Regions: a
/// topic is published to through its own Region's endpoint, with a client built on first use.
#[derive(Debug)]
pub struct SnsEmailTopics {
    config: aws_config::SdkConfig,
    by_region: std::sync::Mutex<std::collections::HashMap<String, Client>>,
}

impl SnsEmailTopics {
    pub fn new(config: &aws_config::SdkConfig) -> SnsEmailTopics {
        SnsEmailTopics {
            config: config.clone(),
            by_region: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    fn client_for(&self, region: &str) -> Client {
        // A poisoned lock only means another publish panicked mid-insert; the map is still usable.
        let mut clients = self.by_region.lock().unwrap_or_else(|p| p.into_inner());
        clients
            .entry(region.to_owned())
            .or_insert_with(|| {
                let config = aws_sdk_sns::config::Builder::from(&self.config)
                    .region(aws_sdk_sns::config::Region::new(region.to_owned()))
                    .build();
                Client::from_conf(config)
            })
            .clone()
    }
}

impl EmailTopics for SnsEmailTopics {
    async fn publish_email(
        &self,
        topic_arn: &str,
        email: &EmailMessage,
    ) -> Result<(), PublishError> {
        let region = match topic_arn.split(':').collect::<Vec<_>>().as_slice() {
            ["arn", _, "sns", region, _, _] if !region.is_empty() => (*region).to_owned(),
            _ => return Err(classify(topic_arn, false, "not an SNS topic ARN".into())),
        };
        self.client_for(&region)
            .publish()
            .topic_arn(topic_arn)
            .subject(&email.subject)
            .message(&email.body)
            .send()
            .await
            .map_err(|e| publish_error(topic_arn, e))?;
        Ok(())
    }
}
