//! Pipeline identity: a Step Functions state machine is a pipeline, named by account, region and
//! state machine name.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A pipeline: the state machine `name` in `account` and `region`.
///
/// Its storage key is `account:region:name` (see [`PipelineId::key`]); state machine names cannot
/// contain `:`, so the key is unambiguous.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PipelineId {
    pub account: String,
    pub region: String,
    pub name: String,
}

/// Why a text is not a pipeline or execution identity.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdentityError {
    #[error("`{arn}` is not a Step Functions {expected} ARN (expected arn:<partition>:states:<region>:<account>:{resource}:<name>{suffix})", resource = if *.expected == "execution" { "execution:<state machine>" } else { "stateMachine" }, suffix = if *.expected == "execution" { ":<execution>" } else { "" })]
    NotAnArn { arn: String, expected: &'static str },
    #[error("account `{0}` is not a 12-digit AWS account id")]
    Account(String),
    #[error("region `{0}` is not an AWS region name such as eu-west-1")]
    Region(String),
    #[error("pipeline name `{0}` is not a state machine name (1 to 80 characters, no whitespace and none of < > {{ }} [ ] ? * \" # % \\ ^ | ~ ` $ & , ; : /)")]
    Name(String),
    #[error("`{0}` is not a pipeline key (expected account:region:name)")]
    Key(String),
}

impl PipelineId {
    /// A checked identity.
    pub fn new(account: &str, region: &str, name: &str) -> Result<PipelineId, IdentityError> {
        check_account(account)?;
        check_region(region)?;
        check_name(name)?;
        Ok(PipelineId {
            account: account.to_owned(),
            region: region.to_owned(),
            name: name.to_owned(),
        })
    }

    /// The storage key, `account:region:name`.
    pub fn key(&self) -> String {
        format!("{}:{}:{}", self.account, self.region, self.name)
    }

    /// Reads a storage key back.
    pub fn from_key(key: &str) -> Result<PipelineId, IdentityError> {
        let mut parts = key.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(r), Some(n)) => PipelineId::new(a, r, n),
            _ => Err(IdentityError::Key(key.to_owned())),
        }
    }

    /// Reads `arn:aws:states:eu-west-1:111111111111:stateMachine:listings`.
    pub fn from_state_machine_arn(arn: &str) -> Result<PipelineId, IdentityError> {
        let not_arn = || IdentityError::NotAnArn {
            arn: arn.to_owned(),
            expected: "state machine",
        };
        let parts: Vec<&str> = arn.split(':').collect();
        match parts.as_slice() {
            ["arn", _, "states", region, account, "stateMachine", name] => {
                PipelineId::new(account, region, name)
            }
            _ => Err(not_arn()),
        }
    }

    /// Reads the pipeline and execution name out of
    /// `arn:aws:states:eu-west-1:111111111111:execution:listings:run-1`.
    pub fn from_execution_arn(arn: &str) -> Result<(PipelineId, String), IdentityError> {
        let not_arn = || IdentityError::NotAnArn {
            arn: arn.to_owned(),
            expected: "execution",
        };
        let parts: Vec<&str> = arn.split(':').collect();
        match parts.as_slice() {
            ["arn", _, "states", region, account, "execution", name, execution]
                if !execution.is_empty() =>
            {
                Ok((
                    PipelineId::new(account, region, name)?,
                    (*execution).to_owned(),
                ))
            }
            _ => Err(not_arn()),
        }
    }

    /// The state machine ARN in the given partition (`aws` outside China and GovCloud).
    pub fn state_machine_arn(&self) -> String {
        format!(
            "arn:{}:states:{}:{}:stateMachine:{}",
            partition_of(&self.region),
            self.region,
            self.account,
            self.name
        )
    }

    /// The ARN of the EventBridge bus named `bus_name` in the pipeline's account and Region
    /// (where its triggers go when its registration names no bus).
    pub fn event_bus_arn(&self, bus_name: &str) -> String {
        format!(
            "arn:{}:events:{}:{}:event-bus/{bus_name}",
            partition_of(&self.region),
            self.region,
            self.account
        )
    }
}

impl fmt::Display for PipelineId {
    /// `name (account/region)`, how people say it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}/{})", self.name, self.account, self.region)
    }
}

/// The AWS partition a region belongs to.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// A 12-digit account id.
pub fn check_account(account: &str) -> Result<(), IdentityError> {
    if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(IdentityError::Account(account.to_owned()))
    }
}

/// A region name: lowercase words and a trailing number, such as `eu-west-1` or `us-gov-west-1`.
pub fn check_region(region: &str) -> Result<(), IdentityError> {
    let parts: Vec<&str> = region.split('-').collect();
    let ok = parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u16>().is_ok();
    if ok {
        Ok(())
    } else {
        Err(IdentityError::Region(region.to_owned()))
    }
}

/// A state machine name as Step Functions accepts it.
pub fn check_name(name: &str) -> Result<(), IdentityError> {
    const FORBIDDEN: &str = "<>{}[]?*\"#%\\^|~`$&,;:/";
    let ok = !name.is_empty()
        && name.chars().count() <= 80
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || FORBIDDEN.contains(c));
    if ok {
        Ok(())
    } else {
        Err(IdentityError::Name(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_state_machine_and_execution_arns() {
        let id = PipelineId::from_state_machine_arn(
            "arn:aws:states:eu-west-1:111111111111:stateMachine:listings",
        )
        .unwrap();
        assert_eq!(
            id,
            PipelineId::new("111111111111", "eu-west-1", "listings").unwrap()
        );
        assert_eq!(
            id.state_machine_arn(),
            "arn:aws:states:eu-west-1:111111111111:stateMachine:listings"
        );
        let (p, exec) = PipelineId::from_execution_arn(
            "arn:aws:states:eu-west-1:111111111111:execution:listings:run-1",
        )
        .unwrap();
        assert_eq!((p, exec.as_str()), (id.clone(), "run-1"));
        assert_eq!(PipelineId::from_key(&id.key()).unwrap(), id);
    }

    #[test]
    fn refuses_what_is_not_an_identity() {
        assert!(matches!(
            PipelineId::from_state_machine_arn("arn:aws:lambda:eu-west-1:111111111111:function:x"),
            Err(IdentityError::NotAnArn { .. })
        ));
        assert_eq!(
            PipelineId::new("1111", "eu-west-1", "x"),
            Err(IdentityError::Account("1111".into()))
        );
        assert_eq!(
            PipelineId::new("111111111111", "Europe", "x"),
            Err(IdentityError::Region("Europe".into()))
        );
        assert!(PipelineId::new("111111111111", "eu-west-1", "a:b").is_err());
        assert!(PipelineId::new("111111111111", "eu-west-1", "").is_err());
        assert!(PipelineId::new("111111111111", "us-gov-west-1", "x").is_ok());
    }
}
