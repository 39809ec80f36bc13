//! The event run-log-writer takes: EventBridge's envelope around Step Functions' "Execution
//! Status Change" `detail`, read into types in one step. A field that is missing or of the wrong
//! type is named by its path (`detail.startDate`), so the refusal says what to fix.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use baton_core::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::WriterError;

/// The `detail-type` Step Functions gives its status change events.
pub const DETAIL_TYPE: &str = "Step Functions Execution Status Change";
/// The `source` of Step Functions events.
pub const SOURCE: &str = "aws.states";

/// The `detail` of a Step Functions status change event (the fields baton reads).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    pub execution_arn: String,
    pub state_machine_arn: String,
    /// Read as a word and checked against [`baton_core::RunStatus`] afterwards, so an unknown
    /// status is refused listing the words accepted.
    pub status: String,
    pub start_date: Timestamp,
    #[serde(default)]
    pub stop_date: Option<Timestamp>,
    /// The execution input, when Step Functions included it (up to 248 KB).
    #[serde(default)]
    pub input: Option<String>,
    #[serde(default)]
    pub input_details: Option<InputDetails>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub cause: Option<String>,
}

/// `detail.inputDetails`: whether the input was included.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputDetails {
    #[serde(default)]
    pub included: Option<bool>,
}

/// The event as EventBridge delivers it.
pub type StatusChangeEvent = EventBridgeEvent<StatusChange>;

/// Reads `event` as a status change event, or says which field is wrong. An event of another
/// source or detail-type is refused as such before its `detail` is read.
pub fn read_event(event: Value) -> Result<StatusChangeEvent, WriterError> {
    let text = |field: &str| event.get(field).and_then(Value::as_str).unwrap_or_default();
    let event_id = match text("id") {
        "" => "(none)".to_owned(),
        id => id.to_owned(),
    };
    let malformed = |problem: String| WriterError::Malformed {
        event_id: event_id.clone(),
        problem,
    };
    if text("source") != SOURCE || text("detail-type") != DETAIL_TYPE {
        return Err(malformed(format!(
            "source `{}` and detail-type `{}` are not `{SOURCE}` and `{DETAIL_TYPE}`",
            text("source"),
            text("detail-type")
        )));
    }
    serde_path_to_error::deserialize(event).map_err(|e| malformed(describe(&e)))
}

/// "`detail.status` is missing", or "`detail.startDate`: invalid type: ...".
fn describe(e: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = e.path().to_string();
    let inner = e.inner().to_string();
    let missing = inner
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'));
    match (path.as_str(), missing) {
        (".", Some(field)) => format!("`{field}` is missing"),
        (_, Some(field)) => format!("`{path}.{field}` is missing"),
        (".", None) => inner,
        _ => format!("`{path}`: {inner}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(detail: Value) -> Value {
        serde_json::json!({
            "version": "0", "id": "e-1", "detail-type": DETAIL_TYPE, "source": SOURCE,
            "account": "111111111111", "time": "2026-11-22T04:00:00Z", "region": "eu-west-1",
            "resources": [], "detail": detail,
        })
    }

    #[test]
    fn a_wrong_or_missing_field_is_named_by_its_path() {
        let err = |detail: Value| read_event(event(detail)).unwrap_err().to_string();
        let e =
            err(serde_json::json!({"executionArn": "a", "stateMachineArn": "b", "startDate": 1}));
        assert!(e.contains("`detail.status` is missing"), "{e}");
        let e = err(serde_json::json!({
            "executionArn": "a", "stateMachineArn": "b", "status": "RUNNING", "startDate": "yesterday",
        }));
        assert!(
            e.contains("`detail.startDate`: invalid type: string \"yesterday\""),
            "{e}"
        );
        let e = err(serde_json::json!({
            "executionArn": "a", "stateMachineArn": "b", "status": "RUNNING", "startDate": 1,
            "inputDetails": {"included": "yes"},
        }));
        assert!(e.contains("`detail.inputDetails.included`"), "{e}");
        assert!(e.contains("(id e-1)"), "{e}");
    }

    #[test]
    fn another_source_is_refused_before_its_detail_is_read() {
        let mut other = event(serde_json::json!({"instance-id": "i-1"}));
        other["source"] = "aws.ec2".into();
        let e = read_event(other).unwrap_err().to_string();
        assert!(e.contains("source `aws.ec2`"), "{e}");
    }
}
