//! Step Functions in a member account: [`ExecutionStarter`] over `states:StartExecution`.

use aws_sdk_sfn::error::SdkError;
use aws_sdk_sfn::operation::start_execution::StartExecutionError;
use aws_sdk_sfn::Client;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use baton_core::start::{ExecutionStarter, StartError, StartOutcome, StartRequest};

use crate::aws_error::{self, Failure};

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
    if matches!(
        err.as_service_error(),
        Some(StartExecutionError::StateMachineDoesNotExist(_))
    ) {
        return StartError::StateMachineMissing { arn };
    }
    let Failure { retryable, message } = aws_error::sort(&err);
    if retryable {
        StartError::Unavailable { arn, message }
    } else {
        StartError::Refused { arn, message }
    }
}
