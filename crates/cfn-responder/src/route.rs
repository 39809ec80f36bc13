//! Which account a request provably comes from, and where its answer may go.
//!
//! The `StackId` inside a request is text anyone who can reach the function can write. What AWS
//! sets is the route: a direct invocation can only come from this function's own account (the
//! function's policy admits no other account), and an SNS record carries the `TopicArn` SNS wrote,
//! a topic in the member account that only that account may publish to. A request is accepted only
//! when its stack's account is the route's account.

use std::collections::BTreeSet;

use baton_core::text::shorten;
use reqwest::Url;
use thiserror::Error;

/// How a request reached the function, as AWS reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Invoked directly (ServiceToken = this function): only this function's account can.
    Direct { account: String },
    /// Delivered by SNS from this topic; the topic's account is the only publisher.
    Topic { arn: String, account: String },
    /// An SNS record whose topic could not be read: no account can be vouched for.
    Unknown { what: String },
}

impl Route {
    /// The route of an SNS record from the `TopicArn` SNS set on it.
    pub fn from_topic_arn(topic_arn: Option<&str>) -> Route {
        let Some(arn) = topic_arn.filter(|a| !a.is_empty()) else {
            return Route::Unknown {
                what: "an SNS record without a TopicArn".to_owned(),
            };
        };
        match arn.splitn(6, ':').collect::<Vec<_>>().as_slice() {
            ["arn", _, "sns", _, account, name]
                if account.len() == 12
                    && account.bytes().all(|b| b.is_ascii_digit())
                    && !name.is_empty() =>
            {
                Route::Topic {
                    arn: arn.to_owned(),
                    account: (*account).to_owned(),
                }
            }
            _ => Route::Unknown {
                what: format!(
                    "an SNS record from `{}`, not a topic ARN",
                    shorten(arn, 120)
                ),
            },
        }
    }

    fn describe(&self) -> String {
        match self {
            Route::Direct { account } => format!("a direct invocation in account {account}"),
            Route::Topic { arn, account } => format!("topic {arn} of account {account}"),
            Route::Unknown { what } => what.clone(),
        }
    }
}

/// Why a request's route does not vouch for its stack.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RouteRefusal {
    #[error("refused: the request is for stack account {stack_account} but came through {route}, which only account {route_account} can use; a pipeline registers through its own account's registration topic (the member-account template creates it) and nothing was registered")]
    OtherAccount {
        stack_account: String,
        route_account: String,
        route: String,
    },
    #[error("refused: account {account} is not admitted to register pipelines (the central stack's MemberAccountIds, BATON_ADMITTED_ACCOUNTS); nothing was registered")]
    NotAdmitted { account: String },
    #[error("refused: the request came through {route}; a registration is accepted only through a route AWS ties to one account, and nothing was registered")]
    Unvouched { route: String },
}

/// The member accounts that may register through a topic. AWS cannot narrow who invokes the
/// function through SNS (a CloudFormation `AWS::Lambda::Permission` takes one source ARN, no
/// account wildcard and no organisation condition), so the list is the gate; empty admits none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Admitted(pub BTreeSet<String>);

impl Admitted {
    /// Reads a comma-separated list (`BATON_ADMITTED_ACCOUNTS`); blanks are ignored.
    pub fn from_list(list: &str) -> Admitted {
        Admitted(
            list.split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }
}

/// Accepts a request for a stack of `stack_account` only through a route of that account.
pub fn check_route(
    route: &Route,
    stack_account: &str,
    admitted: &Admitted,
) -> Result<(), RouteRefusal> {
    let route_account = match route {
        Route::Direct { account } | Route::Topic { account, .. } => account,
        Route::Unknown { .. } => {
            return Err(RouteRefusal::Unvouched {
                route: route.describe(),
            })
        }
    };
    if route_account != stack_account {
        return Err(RouteRefusal::OtherAccount {
            stack_account: stack_account.to_owned(),
            route_account: route_account.clone(),
            route: route.describe(),
        });
    }
    let is_direct = matches!(route, Route::Direct { .. });
    if !is_direct && !admitted.0.contains(route_account) {
        return Err(RouteRefusal::NotAdmitted {
            account: route_account.clone(),
        });
    }
    Ok(())
}

/// Where answers may be PUT: CloudFormation's response buckets, or in local emulation only, the
/// one base URL the test or demo configured (`BATON_EMULATED_RESPONSE_ENDPOINT`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseEndpoints {
    pub emulated: Option<String>,
}

/// Why a ResponseURL was not used. Never holds the URL: it is a pre-signed credential.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EndpointRefusal {
    #[error("the ResponseURL is not a URL")]
    NotAUrl,
    #[error("the ResponseURL is not https")]
    NotHttps,
    #[error("the ResponseURL's host is not a CloudFormation custom-resource response bucket (cloudformation-custom-resource-response-<region>)")]
    NotCloudFormation,
}

const BUCKET_PREFIX: &str = "cloudformation-custom-resource-response-";

impl ResponseEndpoints {
    /// Whether `url` is CloudFormation's response endpoint (or the configured emulated one).
    pub fn check(&self, url: &str) -> Result<(), EndpointRefusal> {
        if let Some(base) = self.emulated.as_deref().filter(|b| !b.is_empty()) {
            let base = base.trim_end_matches('/');
            if url == base || url.starts_with(&format!("{base}/")) {
                return Ok(());
            }
        }
        let parsed = Url::parse(url).map_err(|_| EndpointRefusal::NotAUrl)?;
        if parsed.scheme() != "https" || parsed.port().is_some_and(|p| p != 443) {
            return Err(EndpointRefusal::NotHttps);
        }
        let host = parsed.host_str().ok_or(EndpointRefusal::NotAUrl)?;
        let first_segment = parsed.path().trim_start_matches('/').split('/').next();
        if is_response_bucket_host(host)
            || (is_s3_host(host) && first_segment.is_some_and(is_bucket))
        {
            Ok(())
        } else {
            Err(EndpointRefusal::NotCloudFormation)
        }
    }
}

/// `<bucket>.<s3 endpoint>`: virtual-hosted style.
fn is_response_bucket_host(host: &str) -> bool {
    host.split_once('.')
        .is_some_and(|(bucket, endpoint)| is_bucket(bucket) && is_s3_host(endpoint))
}

/// The bucket CloudFormation names after the region without dashes, e.g. `...-response-euwest1`.
fn is_bucket(name: &str) -> bool {
    name.strip_prefix(BUCKET_PREFIX).is_some_and(|region| {
        !region.is_empty()
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// S3 endpoints of the aws, aws-cn and aws-us-gov partitions: `s3.amazonaws.com`,
/// `s3.<region>.amazonaws.com`, `s3-<region>.amazonaws.com`, and `.amazonaws.com.cn` in China.
fn is_s3_host(host: &str) -> bool {
    let Some(rest) = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))
    else {
        return false;
    };
    let region_ok = |r: &str| {
        !r.is_empty()
            && r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    rest == "s3"
        || rest.strip_prefix("s3.").is_some_and(region_ok)
        || rest.strip_prefix("s3-").is_some_and(region_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: &str = "222222222222";
    const C: &str = "333333333333";

    fn topic(account: &str) -> Route {
        Route::from_topic_arn(Some(&format!(
            "arn:aws:sns:eu-west-1:{account}:baton-registrations"
        )))
    }

    #[test]
    fn a_stack_of_another_account_is_refused_naming_both() {
        let both = Admitted::from_list(&format!("{B},{C}"));
        let refusal = check_route(&topic(B), C, &both).unwrap_err();
        let text = refusal.to_string();
        assert!(text.contains(B) && text.contains(C), "{text}");
        assert_eq!(check_route(&topic(C), C, &both), Ok(()));
        let direct = Route::Direct {
            account: B.to_owned(),
        };
        assert!(check_route(&direct, C, &Admitted::default()).is_err());
        assert_eq!(check_route(&direct, B, &Admitted::default()), Ok(()));
    }

    #[test]
    fn only_admitted_accounts_register_when_a_list_is_given() {
        let admitted = Admitted::from_list(" 111111111111, ,333333333333");
        assert_eq!(check_route(&topic(C), C, &admitted), Ok(()));
        let not_admitted = Err(RouteRefusal::NotAdmitted {
            account: B.to_owned(),
        });
        assert_eq!(check_route(&topic(B), B, &admitted), not_admitted);
        assert_eq!(
            check_route(&topic(B), B, &Admitted::default()),
            not_admitted
        );
    }

    #[test]
    fn a_record_without_a_readable_topic_vouches_for_no_one() {
        for arn in [
            None,
            Some(""),
            Some("arn:aws:sqs:eu-west-1:333333333333:q"),
            Some("x"),
        ] {
            let route = Route::from_topic_arn(arn);
            assert!(matches!(route, Route::Unknown { .. }), "{arn:?}");
            assert!(check_route(&route, C, &Admitted::default()).is_err());
        }
    }

    #[test]
    fn answers_go_only_to_cloudformation_response_buckets() {
        let production = ResponseEndpoints::default();
        for ok in [
            "https://cloudformation-custom-resource-response-euwest1.s3-eu-west-1.amazonaws.com/arn%3A?X-Amz-Signature=s",
            "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/k",
            "https://cloudformation-custom-resource-response-useast1.s3.us-east-1.amazonaws.com/k",
            "https://s3.eu-west-1.amazonaws.com/cloudformation-custom-resource-response-euwest1/k",
            "https://cloudformation-custom-resource-response-cnnorth1.s3.cn-north-1.amazonaws.com.cn/k",
            "https://cloudformation-custom-resource-response-usgovwest1.s3.us-gov-west-1.amazonaws.com/k",
        ] {
            assert_eq!(production.check(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("http://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/k", EndpointRefusal::NotHttps),
            ("https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com:8443/k", EndpointRefusal::NotHttps),
            ("https://attacker.example/k", EndpointRefusal::NotCloudFormation),
            ("https://attacker-bucket.s3.amazonaws.com/k", EndpointRefusal::NotCloudFormation),
            ("https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com.evil.example/k", EndpointRefusal::NotCloudFormation),
            ("https://s3.amazonaws.com/attacker-bucket/cloudformation-custom-resource-response-x", EndpointRefusal::NotCloudFormation),
            ("https://169.254.169.254/latest", EndpointRefusal::NotCloudFormation),
            ("http://127.0.0.1:9000/k", EndpointRefusal::NotHttps),
            ("not a url", EndpointRefusal::NotAUrl),
        ] {
            assert_eq!(production.check(bad), Err(why), "{bad}");
        }
    }

    #[test]
    fn the_emulated_endpoint_is_accepted_only_when_configured() {
        let emulated = ResponseEndpoints {
            emulated: Some("http://127.0.0.1:9000".to_owned()),
        };
        assert_eq!(emulated.check("http://127.0.0.1:9000/k?sig=1"), Ok(()));
        assert!(emulated.check("http://127.0.0.1:9001/k").is_err());
        assert!(emulated.check("http://127.0.0.1:90000/k").is_err());
        assert!(ResponseEndpoints::default()
            .check("http://127.0.0.1:9000/k")
            .is_err());
    }
}
