//! How every adapter reads a failed AWS SDK call: whether the same request can succeed later,
//! and a message that names the service's code. One list of retryable codes for every service
//! baton calls (DynamoDB, SNS, EventBridge, Step Functions, Secrets Manager), so the services
//! cannot drift apart in what they retry.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use aws_smithy_runtime_api::client::result::SdkError;

/// Error codes after which the same request can succeed later: throttling, faults on the
/// service's side and transient conflicts. Codes are unique enough across the services that one
/// list serves them all. DynamoDB's transaction cancellation reasons are the same words without
/// the `Exception` suffix (`TransactionConflict`, `ThrottlingError`...).
const RETRYABLE_CODES: &[&str] = &[
    // Throttling.
    "Throttling",
    "ThrottlingException",
    "ThrottlingError",
    "Throttled",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceeded",
    "ProvisionedThroughputExceededException",
    "KMSThrottling",
    "KmsThrottlingException",
    "ExecutionLimitExceeded",
    // The service's own faults.
    "InternalError",
    "InternalFailure",
    "InternalException",
    "InternalServerError",
    "InternalServiceError",
    "ServiceUnavailable",
    // Conflicts with a transaction in flight.
    "TransactionConflict",
    "TransactionConflictException",
    "TransactionInProgressException",
];

/// Whether a retry can help after the service answered `code` (or a DynamoDB transaction was
/// cancelled for the reason `code`, or an EventBridge entry failed with it).
pub(crate) fn is_retryable_code(code: &str) -> bool {
    RETRYABLE_CODES.contains(&code)
}

/// A failed SDK call, sorted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    /// The same request can succeed later: a retryable code, any 5xx answer, or no answer at
    /// all (a timeout, a connection failure, an unreadable response).
    pub retryable: bool,
    /// `<code>: <message>` when the service answered with a code, else the whole error chain.
    pub message: String,
}

/// Sorts `err` into retryable or not, keeping the service's code and message.
pub(crate) fn sort<E>(err: &SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let retryable = match err {
        SdkError::ServiceError(service) => {
            is_retryable_code(service.err().code().unwrap_or_default())
                || service.raw().status().is_server_error()
        }
        _ => true,
    };
    Failure {
        retryable,
        message: message(err),
    }
}

/// `<code>: <message>` when the service answered with a code, else the whole error chain.
pub(crate) fn message<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err.code() {
        Some(code) => format!("{code}: {}", err.message().unwrap_or("no message")),
        None => DisplayErrorContext(err).to_string(),
    }
}

/// Whether the service answered `code`.
pub(crate) fn has_code<E: ProvideErrorMetadata>(
    err: &SdkError<E, HttpResponse>,
    code: &str,
) -> bool {
    matches!(err, SdkError::ServiceError(s) if s.err().code() == Some(code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_smithy_runtime_api::client::result::ServiceError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn answered(status: u16, code: &str) -> SdkError<GetItemError, HttpResponse> {
        let err = GetItemError::generic(
            ErrorMetadata::builder()
                .code(code)
                .message("said the service")
                .build(),
        );
        let raw = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        SdkError::ServiceError(ServiceError::builder().source(err).raw(raw).build())
    }

    #[test]
    fn throttling_faults_and_no_answer_are_retryable_refusals_are_not() {
        let throttled = sort(&answered(400, "ThrottlingException"));
        assert!(throttled.retryable);
        assert_eq!(throttled.message, "ThrottlingException: said the service");
        assert!(sort(&answered(400, "TransactionConflictException")).retryable);
        // A 5xx with a code no list names is still the service's fault.
        assert!(sort(&answered(503, "SlowDown")).retryable);
        let refused = sort(&answered(400, "AccessDeniedException"));
        assert!(!refused.retryable);
        assert_eq!(refused.message, "AccessDeniedException: said the service");
        let timeout: SdkError<GetItemError, HttpResponse> =
            SdkError::timeout_error("no answer in 3 s");
        assert!(sort(&timeout).retryable);
        assert!(sort(&timeout).message.contains("no answer in 3 s"));
        assert!(has_code(
            &answered(400, "ConditionalCheckFailedException"),
            "ConditionalCheckFailedException"
        ));
        assert!(!has_code(&timeout, "ConditionalCheckFailedException"));
    }

    #[test]
    fn one_list_for_every_service() {
        // DynamoDB, SNS, Step Functions, Secrets Manager and DynamoDB's cancellation reasons.
        for code in [
            "ProvisionedThroughputExceededException",
            "Throttled",
            "KmsThrottlingException",
            "InternalServiceError",
            "ThrottlingError",
        ] {
            assert!(is_retryable_code(code), "{code}");
        }
        for code in [
            "ValidationException",
            "ConditionalCheckFailed",
            "NotFound",
            "",
        ] {
            assert!(!is_retryable_code(code), "{code}");
        }
    }
}
