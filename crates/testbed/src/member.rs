//! A member account in the emulator: credentials acting in that account (moto places what a
//! request creates in the account of the caller's credentials, and STS AssumeRole of a role in
//! another account gives such credentials, as in AWS), and its Step Functions state machines.

use anyhow::Context as _;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sfn::types::Tag;
use serde_json::json;

use crate::moto::{Moto, REGION};

/// The tag the member-account template's policy requires on a state machine pipeline-starter
/// may start (`templates/member-account.yaml`).
pub const PIPELINE_TAG: &str = "baton:pipeline";

/// A member account's Step Functions in the emulator.
pub struct MemberAccount {
    pub account: String,
    pub config: SdkConfig,
    pub sfn: aws_sdk_sfn::Client,
}

impl MemberAccount {
    /// Credentials of a role in `account` (assumed through the emulator's STS), in [`REGION`].
    pub async fn enter(moto: &Moto, account: &str) -> anyhow::Result<MemberAccount> {
        let central = moto.sdk_config().await;
        let role = format!("arn:aws:iam::{account}:role/baton-pipeline-starter");
        let credentials = AssumeRoleProvider::builder(role)
            .session_name("baton-testbed")
            .configure(&central)
            .build()
            .await;
        let config = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(credentials)
            .endpoint_url(moto.endpoint())
            .load()
            .await;
        Ok(MemberAccount {
            account: account.to_owned(),
            sfn: aws_sdk_sfn::Client::new(&config),
            config,
        })
    }

    /// Creates the state machine `name` (a one-step stand-in for the pipeline's work), tagged as
    /// a pipeline stack tags it. Returns its ARN.
    pub async fn create_pipeline(&self, name: &str) -> anyhow::Result<String> {
        let definition = json!({
            "Comment": format!("A stand-in for the work of {name}."),
            "StartAt": "Work",
            "States": {"Work": {"Type": "Pass", "End": true}}
        });
        let created = self
            .sfn
            .create_state_machine()
            .name(name)
            .definition(definition.to_string())
            .role_arn(format!(
                "arn:aws:iam::{}:role/{name}-state-machine",
                self.account
            ))
            .tags(Tag::builder().key(PIPELINE_TAG).value(name).build())
            .send()
            .await
            .with_context(|| {
                format!("creating state machine {name} in account {}", self.account)
            })?;
        Ok(created.state_machine_arn)
    }

    /// Every execution of a state machine: (name, input), oldest first.
    pub async fn executions(
        &self,
        state_machine_arn: &str,
    ) -> anyhow::Result<Vec<(String, String)>> {
        let mut found = Vec::new();
        let mut pages = self
            .sfn
            .list_executions()
            .state_machine_arn(state_machine_arn)
            .into_paginator()
            .items()
            .send();
        while let Some(execution) = pages.next().await {
            let execution = execution.context("listing executions")?;
            let described = self
                .sfn
                .describe_execution()
                .execution_arn(&execution.execution_arn)
                .send()
                .await
                .context("describing an execution")?;
            found.push((
                (
                    execution.start_date.secs(),
                    execution.start_date.subsec_nanos(),
                ),
                execution.name,
                described.input.unwrap_or_default(),
            ));
        }
        found.sort();
        Ok(found
            .into_iter()
            .map(|(_, name, input)| (name, input))
            .collect())
    }

    /// Stops an execution (so it is closed, as a finished run is).
    pub async fn stop(&self, execution_arn: &str) -> anyhow::Result<()> {
        self.sfn
            .stop_execution()
            .execution_arn(execution_arn)
            .send()
            .await
            .context("stopping an execution")?;
        Ok(())
    }
}
