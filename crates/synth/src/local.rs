//! The `Custom::BatonPipeline` properties a synthesized template hands cfn-responder once
//! deployed in an account, for the local emulator: the demo and the tests register pipelines from
//! synthesized templates without CloudFormation. Resolves the intrinsics synth writes (`Ref`,
//! `Fn::GetAtt` of the state machine's name, `Fn::Sub` of pseudo parameters, `Fn::If` on the
//! central account) and, as CloudFormation does, sends every scalar as a string.

use baton_core::pipeline::partition_of;
use serde_json::{Map, Value};

use crate::Synthesized;

/// Where the stack is deployed and what its other resources resolve to.
#[derive(Clone, Debug)]
pub struct Deployment<'a> {
    pub account: &'a str,
    pub region: &'a str,
    /// The ARN `Ref: NotificationTopic` resolves to (the topic the stack created).
    pub notification_topic_arn: Option<&'a str>,
}

/// Why the template could not be resolved: it holds something synth does not write.
#[derive(Debug, thiserror::Error)]
#[error("the synthesized template of {pipeline}: {message}")]
pub struct ResolveError {
    pub pipeline: String,
    pub message: String,
}

/// The resource's properties as cfn-responder receives them, `ServiceToken` included.
pub fn registration_properties(
    made: &Synthesized,
    at: &Deployment<'_>,
) -> Result<Value, ResolveError> {
    let template: Value = serde_yaml_ng::from_str(&made.template).map_err(|e| ResolveError {
        pipeline: made.pipeline.name.clone(),
        message: format!("not readable: {e}"),
    })?;
    let properties = template
        .pointer("/Resources/BatonPipeline/Properties")
        .cloned()
        .ok_or_else(|| ResolveError {
            pipeline: made.pipeline.name.clone(),
            message: "no BatonPipeline resource".into(),
        })?;
    let resolver = Resolver {
        made,
        at,
        in_central: at.account == made.environment.central_account,
    };
    resolver
        .resolve(&properties)
        .map_err(|message| ResolveError {
            pipeline: made.pipeline.name.clone(),
            message,
        })
}

struct Resolver<'a> {
    made: &'a Synthesized,
    at: &'a Deployment<'a>,
    in_central: bool,
}

impl Resolver<'_> {
    fn resolve(&self, value: &Value) -> Result<Value, String> {
        match value {
            Value::Object(map) if map.len() == 1 => {
                let (key, arg) = map.iter().next().ok_or("empty mapping")?;
                match key.as_str() {
                    "Ref" => self.reference(arg),
                    "Fn::GetAtt" => self.get_att(arg),
                    "Fn::Sub" => self.sub(arg),
                    "Fn::If" => self.choose(arg),
                    _ => self.object(map),
                }
            }
            Value::Object(map) => self.object(map),
            Value::Array(items) => items
                .iter()
                .map(|v| self.resolve(v))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            Value::Number(n) => Ok(Value::String(n.to_string())),
            Value::Bool(b) => Ok(Value::String(b.to_string())),
            other => Ok(other.clone()),
        }
    }

    fn object(&self, map: &Map<String, Value>) -> Result<Value, String> {
        let mut out = Map::new();
        for (k, v) in map {
            out.insert(k.clone(), self.resolve(v)?);
        }
        Ok(Value::Object(out))
    }

    fn reference(&self, arg: &Value) -> Result<Value, String> {
        match arg.as_str() {
            Some("NotificationTopic") => self
                .at
                .notification_topic_arn
                .map(|t| Value::String(t.to_owned()))
                .ok_or_else(|| "the template has an e-mail topic; give its ARN".to_owned()),
            other => Err(format!("Ref {other:?} is not something synth writes")),
        }
    }

    fn get_att(&self, arg: &Value) -> Result<Value, String> {
        match arg
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>())
        {
            Some(parts) if parts == ["StateMachine", "Name"] => {
                Ok(Value::String(self.made.pipeline.name.clone()))
            }
            _ => Err(format!("Fn::GetAtt {arg} is not something synth writes")),
        }
    }

    fn sub(&self, arg: &Value) -> Result<Value, String> {
        let text = arg
            .as_str()
            .ok_or("Fn::Sub with variables is not something synth writes")?;
        let resolved = text
            .replace("${AWS::Partition}", partition_of(self.at.region))
            .replace("${AWS::Region}", self.at.region)
            .replace("${AWS::AccountId}", self.at.account);
        if resolved.contains("${") {
            return Err(format!(
                "Fn::Sub {text:?} names a variable synth does not write"
            ));
        }
        Ok(Value::String(resolved))
    }

    fn choose(&self, arg: &Value) -> Result<Value, String> {
        match arg.as_array().map(Vec::as_slice) {
            Some([Value::String(c), yes, no]) if c == "InCentralAccount" => {
                self.resolve(if self.in_central { yes } else { no })
            }
            _ => Err(format!("Fn::If {arg} is not something synth writes")),
        }
    }
}
