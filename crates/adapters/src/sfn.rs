//! Step Functions in a member account: [`ExecutionStarter`] over `states:StartExecution`.

use aws_sdk_sfn::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sfn::operation::start_execution::StartExecutionError;
use aws_sdk_sfn::Client;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use baton_core::start::{ExecutionStarter, StartError, StartOutcome, StartRequest};

/// Error codes after which a retry can succeed (besides any 5xx answer).
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "KmsThrottlingException",
    "ExecutionLimitExceeded",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalServerError",
];

/// [`ExecutionStarter`] over the Step Functions API.
#[derive(Clone, Debug)]
pub struct StepFunctionsStarter {
    client: Client,
}

impl StepFunctionsStarter {
    pub fn new(client: Client) -> StepFunctionsStarter {
        StepFunctionsStarter { client }
    }
}

impl ExecutionStarter for StepFunctionsStarter {
    async fn start(&self, request: &StartRequest) -> Result<StartOutcome, StartError> {
        let answer = self
            .client
            .start_execution()
            .state_machine_arn(&request.state_machine_arn)
            .name(&request.execution_name)
            .input(&request.input)
            .send()
            .await;
        match answer {
            Ok(out) => Ok(StartOutcome::Started {
                execution_arn: out.execution_arn,
            }),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), StartExecutionError::ExecutionAlreadyExists(_)) =>
            {
                Ok(StartOutcome::AlreadyStarted)
            }
            Err(e) => Err(start_error(&request.state_machine_arn, e)),
        }
    }
}

/// Sorts a failed `StartExecution` into missing, retryable or refused, naming the state machine.
fn start_error(arn: &str, err: SdkError<StartExecutionError, HttpResponse>) -> StartError {
    let arn = arn.to_owned();
    let message = match err.code() {
        Some(code) => format!("{code}: {}", err.message().unwrap_or("no message")),
        None => format!(
            "{}",
            aws_smithy_types::error::display::DisplayErrorContext(&err)
        ),
    };
    match &err {
        SdkError::ServiceError(service) => {
            if matches!(
                service.err(),
                StartExecutionError::StateMachineDoesNotExist(_)
            ) {
                return StartError::StateMachineMissing { arn };
            }
            let code = service.err().code().unwrap_or_default();
            if RETRYABLE_CODES.contains(&code) || service.raw().status().is_server_error() {
                StartError::Unavailable { arn, message }
            } else {
                StartError::Refused { arn, message }
            }
        }
        // Timeouts, connection failures, unreadable responses.
        _ => StartError::Unavailable { arn, message },
    }
}
