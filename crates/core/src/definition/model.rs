//! What a pipeline definition is, once read and validated.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::condition::Trigger;
use crate::deadlines::Deadlines;
use crate::run_key::RunKeyPath;
use crate::status::RunStatus;

/// A pipeline's definition as baton sees it: when it starts and who hears about its runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PipelineDefinition {
    /// `runKey`: where a run's logical key is in its execution input (run-log-writer reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_key: Option<RunKeyPath>,
    /// Absent for pipelines started otherwise (a schedule, by hand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<Notifications>,
    /// By when it must start and finish each day, and how long a run may take (the watchdog).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadlines: Option<Deadlines>,
}

/// Which status changes are announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NotificationType {
    /// Every status change.
    #[default]
    FullExecution,
    /// Final statuses only.
    Terminal,
    /// FAILED, TIMED_OUT and ABORTED only.
    Failures,
}

impl NotificationType {
    /// Whether a run reaching `status` is announced.
    pub fn announces(self, status: RunStatus) -> bool {
        match self {
            NotificationType::FullExecution => true,
            NotificationType::Terminal => status.is_final(),
            NotificationType::Failures => status.is_failure(),
        }
    }
}

/// Where notifications go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Channel {
    Slack,
    Email,
}

/// One target: a channel kind and its addresses (Slack channel names or ids, email addresses).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub channel: Channel,
    pub addresses: Vec<String>,
}

/// The `notifications` block, validated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notifications {
    #[serde(rename = "type", default)]
    pub kind: NotificationType,
    pub targets: Vec<Target>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mention_on_failure: Option<String>,
    /// The pipeline's SNS topic that EMAIL targets' messages are published to (its e-mail
    /// subscriptions deliver them): the registration's `NotificationTopicArn`, checked by
    /// [`crate::email::check_topic`]. Not part of pipeline.yaml, whose stack creates the topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_topic_arn: Option<String>,
}

impl Notifications {
    /// The e-mail addresses of its EMAIL targets, in definition order, without duplicates.
    pub fn email_addresses(&self) -> Vec<&str> {
        self.addresses(Channel::Email)
    }

    /// The Slack channels, in definition order, without duplicates.
    pub fn slack_channels(&self) -> Vec<&str> {
        self.addresses(Channel::Slack)
    }

    fn addresses(&self, channel: Channel) -> Vec<&str> {
        let mut seen = BTreeSet::new();
        self.targets
            .iter()
            .filter(|t| t.channel == channel)
            .flat_map(|t| t.addresses.iter())
            .filter(|a| seen.insert(a.as_str()))
            .map(String::as_str)
            .collect()
    }
}
