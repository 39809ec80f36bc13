//! Reading what Lambda hands the function: a CloudFormation custom-resource request, either direct
//! (ServiceToken = this function's ARN) or wrapped in an SNS notification (ServiceToken = a topic
//! that member accounts publish to).
//!
//! Whatever arrives, the caller gets something it can answer when a `ResponseURL` can be found:
//! a request that does not parse still yields the fields needed to answer FAILED.

use aws_lambda_events::event::cloudformation::CloudFormationCustomResourceRequest;
use aws_lambda_events::event::sns::SnsEvent;
use serde_json::Value;

use crate::route::Route;

/// The three things CloudFormation asks of a custom resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestType {
    Create,
    Update,
    Delete,
}

impl RequestType {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestType::Create => "Create",
            RequestType::Update => "Update",
            RequestType::Delete => "Delete",
        }
    }
}

/// A custom-resource request, whichever way it came.
#[derive(Clone, Debug, PartialEq)]
pub struct CfnRequest {
    pub kind: RequestType,
    pub request_id: String,
    /// Pre-signed S3 URL: a credential. Never logged.
    pub response_url: String,
    pub stack_id: String,
    pub logical_resource_id: String,
    /// Absent on Create.
    pub physical_resource_id: Option<String>,
    pub properties: Value,
    /// On Update only.
    pub old_properties: Option<Value>,
}

/// What could be read of a request that is not a well-formed custom-resource request: enough to
/// answer FAILED when it carries a `ResponseURL`.
#[derive(Clone, Debug, PartialEq)]
pub struct Unreadable {
    pub response_url: Option<String>,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    pub physical_resource_id: Option<String>,
    /// Why it could not be read, for the answer's Reason.
    pub reason: String,
}

/// One request found in an invocation.
#[derive(Clone, Debug, PartialEq)]
pub enum Incoming {
    Request(CfnRequest),
    Unreadable(Unreadable),
}

/// The requests in a Lambda payload with the route each came through: one for a direct
/// invocation (the route is `function_account`, the only account allowed to invoke it), one per
/// record of an SNS event (the route is the topic SNS names on the record).
pub fn requests_in(event: Value, function_account: &str) -> Vec<(Route, Incoming)> {
    if event.get("Records").is_none() {
        let direct = Route::Direct {
            account: function_account.to_owned(),
        };
        return vec![(direct, read_request(event))];
    }
    match serde_json::from_value::<SnsEvent>(event.clone()) {
        Ok(sns) => sns
            .records
            .into_iter()
            .map(|record| {
                let route = Route::from_topic_arn(Some(&record.sns.topic_arn));
                (route, read_message(&record.sns.message))
            })
            .collect(),
        // An envelope missing some SNS field still carries the request in `Records[].Sns.Message`.
        Err(envelope_error) => {
            let messages: Vec<(Route, &str)> = event
                .get("Records")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|r| {
                    let topic = r.pointer("/Sns/TopicArn").and_then(Value::as_str);
                    let message = r.pointer("/Sns/Message").and_then(Value::as_str)?;
                    Some((Route::from_topic_arn(topic), message))
                })
                .collect();
            if messages.is_empty() {
                let route = Route::from_topic_arn(None);
                vec![(
                    route,
                    Incoming::Unreadable(Unreadable::without_fields(format!(
                        "the SNS notification holds no custom-resource request: {envelope_error}"
                    ))),
                )]
            } else {
                messages
                    .into_iter()
                    .map(|(route, message)| (route, read_message(message)))
                    .collect()
            }
        }
    }
}

fn read_message(message: &str) -> Incoming {
    match serde_json::from_str::<Value>(message) {
        Ok(value) => read_request(value),
        Err(e) => Incoming::Unreadable(Unreadable::without_fields(format!(
            "the SNS message is not JSON: {e}"
        ))),
    }
}

/// Reads one request; what does not parse becomes [`Unreadable`] with whatever fields it has.
pub fn read_request(value: Value) -> Incoming {
    match serde_json::from_value::<CloudFormationCustomResourceRequest>(value.clone()) {
        Ok(CloudFormationCustomResourceRequest::Create(r)) => Incoming::Request(CfnRequest {
            kind: RequestType::Create,
            request_id: r.request_id,
            response_url: r.response_url,
            stack_id: r.stack_id,
            logical_resource_id: r.logical_resource_id,
            physical_resource_id: None,
            properties: r.resource_properties,
            old_properties: None,
        }),
        Ok(CloudFormationCustomResourceRequest::Update(r)) => Incoming::Request(CfnRequest {
            kind: RequestType::Update,
            request_id: r.request_id,
            response_url: r.response_url,
            stack_id: r.stack_id,
            logical_resource_id: r.logical_resource_id,
            physical_resource_id: Some(r.physical_resource_id),
            properties: r.resource_properties,
            old_properties: Some(r.old_resource_properties),
        }),
        Ok(CloudFormationCustomResourceRequest::Delete(r)) => Incoming::Request(CfnRequest {
            kind: RequestType::Delete,
            request_id: r.request_id,
            response_url: r.response_url,
            stack_id: r.stack_id,
            logical_resource_id: r.logical_resource_id,
            physical_resource_id: Some(r.physical_resource_id),
            properties: r.resource_properties,
            old_properties: None,
        }),
        Ok(_) => Incoming::Unreadable(Unreadable::salvage(
            &value,
            "the RequestType is not Create, Update or Delete".to_owned(),
        )),
        Err(e) => Incoming::Unreadable(Unreadable::salvage(
            &value,
            format!("the request is not a CloudFormation custom-resource request: {e}"),
        )),
    }
}

impl Unreadable {
    fn without_fields(reason: String) -> Unreadable {
        Unreadable {
            response_url: None,
            stack_id: String::new(),
            request_id: String::new(),
            logical_resource_id: String::new(),
            physical_resource_id: None,
            reason,
        }
    }

    fn salvage(value: &Value, reason: String) -> Unreadable {
        let field = |name: &str| {
            value
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .filter(|s| !s.is_empty())
        };
        Unreadable {
            response_url: field("ResponseURL"),
            stack_id: field("StackId").unwrap_or_default(),
            request_id: field("RequestId").unwrap_or_default(),
            logical_resource_id: field("LogicalResourceId").unwrap_or_default(),
            physical_resource_id: field("PhysicalResourceId"),
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn create() -> Value {
        json!({
            "RequestType": "Create",
            "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:baton-cfn-responder",
            "ResponseURL": "https://example.invalid/response?X-Amz-Signature=secret",
            "StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/listings/1",
            "RequestId": "r-1",
            "LogicalResourceId": "Pipeline",
            "ResourceType": "Custom::BatonPipeline",
            "ResourceProperties": {"ServiceToken": "x", "PipelineName": "listings"}
        })
    }

    #[test]
    fn reads_direct_and_sns_wrapped_requests_alike() {
        let direct = requests_in(create(), "123456789012");
        let wrapped = requests_in(
            json!({"Records": [{
                "EventSource": "aws:sns", "EventVersion": "1.0",
                "EventSubscriptionArn": "arn:aws:sns:eu-west-1:123456789012:baton-registrations:1",
                "Sns": {
                    "Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:eu-west-1:123456789012:baton-registrations",
                    "Subject": null, "Message": create().to_string(), "Timestamp": "2026-11-22T03:00:00.000Z",
                    "SignatureVersion": "1", "Signature": "s", "SigningCertUrl": "https://c", "UnsubscribeUrl": "https://u",
                    "MessageAttributes": {}
                }
            }]}),
            "999999999999",
        );
        assert_eq!(direct[0].1, wrapped[0].1);
        let account = |route: &Route| match route {
            Route::Direct { account } | Route::Topic { account, .. } => account.clone(),
            Route::Unknown { what } => what.clone(),
        };
        assert_eq!(account(&direct[0].0), "123456789012");
        assert_eq!(
            account(&wrapped[0].0),
            "123456789012",
            "the topic's account"
        );
        let Incoming::Request(r) = &direct[0].1 else {
            panic!("not read: {direct:?}")
        };
        assert_eq!(r.kind, RequestType::Create);
        assert_eq!(r.properties["PipelineName"], "listings");
    }

    #[test]
    fn an_unknown_request_type_keeps_what_is_needed_to_answer() {
        let mut v = create();
        v["RequestType"] = json!("Rename");
        let found: [(Route, Incoming); 1] = requests_in(v, "123456789012").try_into().unwrap();
        let [(_, Incoming::Unreadable(u))] = found else {
            panic!("read an unknown request type")
        };
        assert!(u.response_url.is_some());
        assert_eq!(u.request_id, "r-1");
        assert!(u.reason.contains("Rename"), "{}", u.reason);
    }
}
