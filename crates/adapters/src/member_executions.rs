//! Step Functions in the member accounts, read by the watchdog through the read-only role each
//! member-account stack creates: [`ExecutionLookup`] over STS AssumeRole and
//! `states:DescribeExecution`.
//!
//! One Step Functions client per (account, Region), built on first use and kept for the life of
//! the function: its credentials come from an STS AssumeRole provider that caches and refreshes
//! them, so a warm watchdog assumes each account's role about once an hour.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_config::sts::AssumeRoleProvider;
use aws_config::{Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_sfn::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sfn::Client;
use baton_core::pipeline::partition_of;
use baton_core::watch::{ExecutionLookup, LookupError};
use baton_core::{PipelineId, PipelineTrigger, Run, RunStatus, Timestamp};

/// The role name the member-account template gives its read-only role by default.
pub const READ_ONLY_ROLE_NAME: &str = "baton-watchdog-read-only";

/// Refusals of the role or of DescribeExecution: retrying will not help until the member
/// account's stack is fixed.
const REFUSED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
];

/// [`ExecutionLookup`] through each member account's read-only role.
pub struct RoleExecutionLookup {
    central: SdkConfig,
    role_name: String,
    clients: Mutex<HashMap<(String, String), Client>>,
}

impl RoleExecutionLookup {
    /// `central`: the watchdog's own configuration (its credentials assume the roles).
    pub fn new(central: &SdkConfig, role_name: impl Into<String>) -> RoleExecutionLookup {
        RoleExecutionLookup {
            central: central.clone(),
            role_name: role_name.into(),
            clients: Mutex::new(HashMap::new()),
        }
    }

    async fn client(&self, account: &str, region: &str) -> Client {
        let key = (account.to_owned(), region.to_owned());
        if let Some(client) = self.clients.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return client;
        }
        let role = format!(
            "arn:{}:iam::{account}:role/{}",
            partition_of(region),
            self.role_name
        );
        let credentials = AssumeRoleProvider::builder(role)
            .session_name("baton-watchdog")
            .configure(&self.central)
            .build()
            .await;
        let config = self
            .central
            .to_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
            )
            .region(Region::new(region.to_owned()))
            .build();
        let client = Client::new(&config);
        if let Ok(mut clients) = self.clients.lock() {
            clients.insert(key, client.clone());
        }
        client
    }
}

impl ExecutionLookup for RoleExecutionLookup {
    async fn describe(&self, execution_arn: &str) -> Result<Option<Run>, LookupError> {
        let unavailable = |message: String| LookupError::Unavailable {
            execution_arn: execution_arn.to_owned(),
            message,
        };
        let (pipeline, execution_name) = PipelineId::from_execution_arn(execution_arn)
            .map_err(|e| unavailable(e.to_string()))?;
        let client = self.client(&pipeline.account, &pipeline.region).await;
        let answer = client
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await;
        let out = match answer {
            Ok(out) => out,
            Err(e) if e.code() == Some("ExecutionDoesNotExist") => return Ok(None),
            Err(e) => return Err(sort(e, &pipeline.account, execution_arn)),
        };
        let status = RunStatus::parse(out.status().as_str())
            .ok_or_else(|| unavailable(format!("unknown status `{}`", out.status().as_str())))?;
        let millis = |t: &aws_smithy_types::DateTime| t.to_millis().ok().map(Timestamp);
        let started_at = millis(out.start_date())
            .ok_or_else(|| unavailable("startDate out of range".to_owned()))?;
        Ok(Some(Run {
            pipeline,
            execution_arn: execution_arn.to_owned(),
            execution_name,
            status,
            started_at,
            stopped_at: out.stop_date().and_then(millis),
            error: out.error().map(str::to_owned),
            cause: out.cause().map(str::to_owned),
            trigger_id: out.input().and_then(PipelineTrigger::id_in_execution_input),
            // The key its RUNNING state was recorded with is taken by the watchdog from the log.
            run_key: None,
        }))
    }
}

/// A failed DescribeExecution: the role missing or refusing (the credentials could not be had,
/// or Step Functions denied) is `Refused`; anything else may pass when retried.
fn sort<E, R>(err: SdkError<E, R>, account: &str, execution_arn: &str) -> LookupError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let message = aws_smithy_types::error::display::DisplayErrorContext(&err).to_string();
    let refused = match &err {
        SdkError::ServiceError(service) => {
            REFUSED_CODES.contains(&service.err().code().unwrap_or_default())
        }
        // The credentials are resolved before the request is sent: an AssumeRole that was
        // denied (or a role that does not exist) surfaces here.
        other => credentials_refused(other),
    };
    if refused {
        LookupError::Refused {
            account: account.to_owned(),
            message,
        }
    } else {
        LookupError::Unavailable {
            execution_arn: execution_arn.to_owned(),
            message,
        }
    }
}

fn credentials_refused(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(e) = source {
        if let Some(credentials) = e.downcast_ref::<CredentialsError>() {
            return !matches!(credentials, CredentialsError::ProviderTimedOut(_));
        }
        source = e.source();
    }
    false
}
