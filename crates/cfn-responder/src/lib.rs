//! cfn-responder: the `Custom::BatonPipeline` CloudFormation custom resource. Create and Update
//! register a pipeline (its trigger condition, notification targets and trigger bus) in the
//! registry; Delete unregisters it. Requests come direct (ServiceToken = this function) or wrapped
//! in SNS (ServiceToken = a topic member accounts publish to).
//!
//! It always answers CloudFormation: on success, on invalid properties, on a storage error, on a
//! panic (caught) and when the Lambda deadline approaches (answered FAILED before it). A stack left
//! waiting an hour for a custom resource is the failure this function exists to avoid.

pub mod request;
pub mod resource;
pub mod response;
pub mod route;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use baton_adapters::lambda::{Call, Function, FunctionError};
use baton_adapters::{ConfigError, Env, TableNames};
use baton_core::ports::{Ledger, Registry};
use baton_core::registration::{self, Refusal, MAX_CHECKED_DOWNSTREAM};
use baton_core::registration::{Deleted, Registration, Upserted};
use baton_core::Timestamp;
use futures::FutureExt;
use serde::Serialize;
use thiserror::Error;
use tracing::{error, info, warn, Instrument};

use crate::request::{requests_in, CfnRequest, Incoming, RequestType, Unreadable};
use crate::resource::{
    physical_id, pipeline_named, pipeline_of, unregistered_id, PipelineResource, StackOwner,
};
use crate::response::{CfnResponse, DeliveryError, ResponseSender, Status};
use crate::route::{check_route, Admitted, EndpointRefusal, ResponseEndpoints, Route};

/// The function's configuration, read once at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub registry_table: String,
    /// Where a deleted pipeline's cursor and pending trigger are forgotten.
    pub ledger_table: String,
    /// Name of the pipeline bus in each member account, used when a resource gives no
    /// `PipelineBusArn` (`BATON_DEFAULT_PIPELINE_BUS`).
    pub default_pipeline_bus: String,
    /// How long before the Lambda deadline the work is abandoned and FAILED answered
    /// (`BATON_DEADLINE_MARGIN_MS`, default 5000): time left to deliver the answer.
    pub deadline_margin: Duration,
    /// This function's account (`BATON_CENTRAL_ACCOUNT`): the route account of a direct invocation,
    /// which no other account is allowed to make.
    pub central_account: String,
    /// Member accounts allowed to register through their registration topic
    /// (`BATON_ADMITTED_ACCOUNTS`, comma separated; empty admits none, only direct invocations).
    pub admitted: Admitted,
    /// Where answers may go (`BATON_EMULATED_RESPONSE_ENDPOINT` adds a local base URL, for the
    /// emulator's tests and the demo only; production leaves it unset).
    pub endpoints: ResponseEndpoints,
    /// This central stack's environment (`BATON_ENVIRONMENT`, e.g. dev or prod): a resource
    /// synthesized for another environment is refused.
    pub environment: Option<String>,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        let tables = TableNames::from_env(env)?;
        Ok(Config {
            registry_table: tables.registry,
            ledger_table: tables.ledger,
            default_pipeline_bus: env.required("BATON_DEFAULT_PIPELINE_BUS")?,
            deadline_margin: Duration::from_millis(
                env.positive_or("BATON_DEADLINE_MARGIN_MS", 5000)?,
            ),
            central_account: central_account(env)?,
            admitted: Admitted::from_list(
                &env.optional("BATON_ADMITTED_ACCOUNTS").unwrap_or_default(),
            ),
            endpoints: ResponseEndpoints {
                emulated: env.optional("BATON_EMULATED_RESPONSE_ENDPOINT"),
            },
            environment: env.optional("BATON_ENVIRONMENT"),
        })
    }
}

/// A stack synthesized for one environment must not register with another environment's baton
/// (its accounts and channels are that environment's).
fn wrong_environment(resource: Option<&str>, central: Option<&str>) -> Option<String> {
    match (resource, central) {
        (Some(r), Some(c)) if r != c => Some(format!(
            "Environment: this stack was synthesized for environment `{r}` but registers with baton's `{c}` stack; synthesize it with `baton synth --env {c}` or deploy it with {r}'s ServiceToken"
        )),
        (Some(r), None) => Some(format!(
            "Environment: the stack names environment `{r}` but this baton stack has none (BATON_ENVIRONMENT is unset), so it cannot check the two match"
        )),
        _ => None,
    }
}

fn central_account(env: &Env) -> Result<String, ConfigError> {
    let account = env.required("BATON_CENTRAL_ACCOUNT")?;
    if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) {
        Ok(account)
    } else {
        Err(ConfigError::Invalid {
            name: "BATON_CENTRAL_ACCOUNT",
            value: account,
            expected: "a 12-digit AWS account id",
        })
    }
}

/// A request the function could not answer.
#[derive(Debug, Error)]
pub enum ResponderError {
    #[error("request {request_id} from stack {stack_id}: {source}")]
    Undelivered {
        request_id: String,
        stack_id: String,
        #[source]
        source: DeliveryError,
    },
    #[error("a request without a ResponseURL cannot be answered: {reason}")]
    Unanswerable { reason: String },
    #[error("request {request_id} from stack {stack_id} was not answered: {source}")]
    ForeignResponseUrl {
        request_id: String,
        stack_id: String,
        #[source]
        source: EndpointRefusal,
    },
}

impl FunctionError for ResponderError {
    fn kind(&self) -> &'static str {
        match self {
            ResponderError::Undelivered { .. } => "AnswerUndelivered",
            ResponderError::Unanswerable { .. } | ResponderError::ForeignResponseUrl { .. } => {
                "UnanswerableRequest"
            }
        }
    }

    /// A retry (the Lambda async retry or SNS redelivery) may reach CloudFormation.
    fn is_retryable(&self) -> bool {
        matches!(self, ResponderError::Undelivered { .. })
    }
}

/// What an invocation answered, one entry per request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Answered {
    pub answers: Vec<Answer>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    pub request_id: String,
    pub status: &'static str,
    pub physical_resource_id: String,
    pub attempts: u32,
}

/// What handling a request decided, before it is sent.
#[derive(Clone, Debug)]
struct Outcome {
    status: Status,
    reason: String,
    physical_id: String,
    data: BTreeMap<String, String>,
}

impl Outcome {
    fn failed(physical_id: &str, reason: impl Into<String>) -> Outcome {
        Outcome {
            status: Status::Failed,
            reason: reason.into(),
            physical_id: physical_id.to_owned(),
            data: BTreeMap::new(),
        }
    }

    fn success(physical_id: String, reason: impl Into<String>) -> Outcome {
        Outcome {
            status: Status::Success,
            reason: reason.into(),
            physical_id,
            data: BTreeMap::new(),
        }
    }
}

/// The handler with its dependencies, built once per cold start.
pub struct Responder<R, L> {
    registry: R,
    /// Where a deleted pipeline's cursor and pending trigger are forgotten.
    ledger: L,
    config: Config,
    sender: ResponseSender,
}

impl<R: Registry + Send + Sync, L: Ledger + Send + Sync> Function for Responder<R, L> {
    /// A request direct, or SNS (or SQS) records wrapping requests.
    type Event = serde_json::Value;
    type Output = Answered;
    type Error = ResponderError;

    async fn invoke(&self, event: Self::Event, call: &Call) -> Result<Answered, ResponderError> {
        self.handle(event, call.deadline.instant()).await
    }
}

impl<R: Registry + Send + Sync, L: Ledger + Send + Sync> Responder<R, L> {
    pub fn new(registry: R, ledger: L, config: Config, http: reqwest::Client) -> Responder<R, L> {
        Responder {
            registry,
            ledger,
            config,
            sender: ResponseSender::new(http),
        }
    }

    /// Handles one invocation (a direct request or an SNS event), answering every request found
    /// in it before `deadline`. Errs only when an answer could not be delivered.
    pub async fn handle(
        &self,
        event: serde_json::Value,
        deadline: Instant,
    ) -> Result<Answered, ResponderError> {
        let mut answers = Vec::new();
        let mut first_error = None;
        for (route, incoming) in requests_in(event, &self.config.central_account) {
            let result = match incoming {
                Incoming::Request(request) => self.answer(&request, &route, deadline).await,
                Incoming::Unreadable(unreadable) => {
                    self.answer_unreadable(unreadable, deadline).await
                }
            };
            match result {
                Ok(answer) => answers.push(answer),
                Err(e) => {
                    error!(error = %e, "request left unanswered");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(Answered { answers }),
        }
    }

    async fn answer(
        &self,
        request: &CfnRequest,
        route: &Route,
        deadline: Instant,
    ) -> Result<Answer, ResponderError> {
        let span = tracing::info_span!(
            "request",
            request_type = request.kind.as_str(),
            request_id = %request.request_id,
            stack_id = %request.stack_id,
            logical_resource_id = %request.logical_resource_id,
        );
        self.answer_in_time(request, route, deadline)
            .instrument(span)
            .await
    }

    async fn answer_in_time(
        &self,
        request: &CfnRequest,
        route: &Route,
        deadline: Instant,
    ) -> Result<Answer, ResponderError> {
        let fallback_id = self.fallback_physical_id(request);
        if let Err(refused) = self.vouched(request, route) {
            return self
                .answer_refused(request, fallback_id, refused, deadline)
                .await;
        }
        let work_until = deadline
            .checked_sub(self.config.deadline_margin)
            .unwrap_or_else(Instant::now);
        // Boxed: the registry's SDK futures are deep enough to overflow the compiler's layout
        // recursion limit when nested inline.
        let work = AssertUnwindSafe(self.process(request, &fallback_id).boxed()).catch_unwind();
        let outcome = match tokio::time::timeout_at(work_until.into(), work).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(panic)) => {
                let message = panic_message(panic.as_ref());
                error!(panic = %message, "handling the request panicked");
                Outcome::failed(
                    &fallback_id,
                    format!("cfn-responder failed unexpectedly ({message}); retry the stack operation, and report this if it persists"),
                )
            }
            Err(_) => {
                error!("the Lambda deadline is near; answering before it");
                Outcome::failed(
                    &fallback_id,
                    format!(
                        "{} did not finish before the function's time limit; the registry may not reflect it; retry the stack operation",
                        request.kind.as_str()
                    ),
                )
            }
        };
        let response = CfnResponse {
            status: outcome.status,
            reason: outcome.reason,
            physical_resource_id: outcome.physical_id,
            stack_id: request.stack_id.clone(),
            request_id: request.request_id.clone(),
            logical_resource_id: request.logical_resource_id.clone(),
            no_echo: false,
            data: outcome.data,
        };
        self.deliver(&request.response_url, response, deadline)
            .await
    }

    /// Whether the route vouches for the stack's account; the refusal names both accounts.
    fn vouched(&self, request: &CfnRequest, route: &Route) -> Result<(), String> {
        let owner = StackOwner::from_stack_id(&request.stack_id).map_err(|p| p.to_string())?;
        check_route(route, &owner.account, &self.config.admitted).map_err(|refusal| {
            warn!(stack_account = %owner.account, ?route, error = %refusal, "request refused: route does not vouch for its stack");
            refusal.to_string()
        })
    }

    async fn answer_refused(
        &self,
        request: &CfnRequest,
        fallback_id: String,
        reason: String,
        deadline: Instant,
    ) -> Result<Answer, ResponderError> {
        let response = CfnResponse {
            status: Status::Failed,
            reason,
            physical_resource_id: fallback_id,
            stack_id: request.stack_id.clone(),
            request_id: request.request_id.clone(),
            logical_resource_id: request.logical_resource_id.clone(),
            no_echo: false,
            data: BTreeMap::new(),
        };
        self.deliver(&request.response_url, response, deadline)
            .await
    }

    async fn answer_unreadable(
        &self,
        unreadable: Unreadable,
        deadline: Instant,
    ) -> Result<Answer, ResponderError> {
        let Some(url) = unreadable.response_url else {
            return Err(ResponderError::Unanswerable {
                reason: unreadable.reason,
            });
        };
        warn!(request_id = %unreadable.request_id, stack_id = %unreadable.stack_id, reason = %unreadable.reason, "unreadable request");
        let response = CfnResponse {
            status: Status::Failed,
            reason: unreadable.reason,
            physical_resource_id: unreadable
                .physical_resource_id
                .unwrap_or_else(|| unregistered_id(&unreadable.logical_resource_id)),
            stack_id: unreadable.stack_id,
            request_id: unreadable.request_id,
            logical_resource_id: unreadable.logical_resource_id,
            no_echo: false,
            data: BTreeMap::new(),
        };
        self.deliver(&url, response, deadline).await
    }

    async fn deliver(
        &self,
        url: &str,
        response: CfnResponse,
        deadline: Instant,
    ) -> Result<Answer, ResponderError> {
        if let Err(source) = self.config.endpoints.check(url) {
            // The URL itself is a credential (and here possibly an attacker's): never logged.
            warn!(request_id = %response.request_id, stack_id = %response.stack_id, error = %source, "answer not sent: the ResponseURL is not CloudFormation's");
            return Err(ResponderError::ForeignResponseUrl {
                request_id: response.request_id,
                stack_id: response.stack_id,
                source,
            });
        }
        match self.sender.send(url, response.body(), deadline).await {
            Ok(attempts) => {
                info!(
                    status = response.status.as_str(),
                    physical_resource_id = %response.physical_resource_id,
                    reason = %response.reason,
                    attempts,
                    "answered CloudFormation"
                );
                Ok(Answer {
                    request_id: response.request_id,
                    status: response.status.as_str(),
                    physical_resource_id: response.physical_resource_id,
                    attempts,
                })
            }
            Err(source) => Err(ResponderError::Undelivered {
                request_id: response.request_id,
                stack_id: response.stack_id,
                source,
            }),
        }
    }

    /// The physical id answered if the work fails: the one CloudFormation already has (Update,
    /// Delete), or for a Create the id of the pipeline the properties name, so a failed Create
    /// still returns a stable, non-empty id.
    fn fallback_physical_id(&self, request: &CfnRequest) -> String {
        if let Some(id) = request
            .physical_resource_id
            .as_ref()
            .filter(|id| !id.is_empty())
        {
            return id.clone();
        }
        StackOwner::from_stack_id(&request.stack_id)
            .ok()
            .and_then(|owner| pipeline_named(&request.properties, &owner))
            .map(|p| physical_id(&p))
            .unwrap_or_else(|| unregistered_id(&request.logical_resource_id))
    }

    async fn process(&self, request: &CfnRequest, fallback_id: &str) -> Outcome {
        match request.kind {
            RequestType::Create | RequestType::Update => self.register(request, fallback_id).await,
            RequestType::Delete => self.unregister(request, fallback_id).await,
        }
    }

    async fn register(&self, request: &CfnRequest, fallback_id: &str) -> Outcome {
        let owner = match StackOwner::from_stack_id(&request.stack_id) {
            Ok(owner) => owner,
            Err(problem) => return Outcome::failed(fallback_id, problem.to_string()),
        };
        let resource = match PipelineResource::read(&request.properties, &owner) {
            Ok(resource) => resource,
            Err(invalid) => {
                warn!(problems = invalid.error.problems.len(), error = %invalid.error, "invalid properties");
                return Outcome::failed(fallback_id, invalid.error.to_string());
            }
        };
        if let Some(refusal) = wrong_environment(
            resource.environment.as_deref(),
            self.config.environment.as_deref(),
        ) {
            warn!(pipeline = %resource.pipeline.key(), error = %refusal, "registration refused");
            return Outcome::failed(fallback_id, refusal);
        }
        let pipeline = resource.pipeline.clone();
        let new_id = physical_id(&pipeline);
        let bus_arn = resource.effective_bus_arn(&self.config.default_pipeline_bus);
        let registration = Registration {
            pipeline: pipeline.clone(),
            owner_stack_id: request.stack_id.clone(),
            definition: resource.definition,
            bus_arn: resource.bus_arn,
            registered_at: Timestamp::now(),
            trigger_floor: Timestamp(0),
        };
        match registration::register(&self.registry, &registration, MAX_CHECKED_DOWNSTREAM).await {
            Ok(upserted) => {
                let replaced = request.kind == RequestType::Update && new_id != fallback_id;
                info!(pipeline = %pipeline.key(), ?upserted, replaced, "registered");
                let what = match upserted {
                    Upserted::Created => "registered",
                    Upserted::Updated => "registration updated",
                    Upserted::Unchanged => "registration unchanged",
                };
                let mut outcome = Outcome::success(new_id, format!("{pipeline}: {what}"));
                outcome.data = BTreeMap::from([
                    ("PipelineId".to_owned(), pipeline.key()),
                    ("PipelineName".to_owned(), pipeline.name.clone()),
                    ("StateMachineArn".to_owned(), pipeline.state_machine_arn()),
                    ("PipelineBusArn".to_owned(), bus_arn),
                ]);
                outcome
            }
            Err(refusal) => {
                warn!(pipeline = %pipeline.key(), error = %refusal, "registration refused");
                Outcome::failed(fallback_id, refusal.to_string())
            }
        }
    }

    /// Removes what this stack registered under the physical id. Never fails a stack deletion for
    /// bad old properties, a registration that never existed, or one another stack owns (that one is
    /// left alone); only a storage error that may pass is answered FAILED.
    async fn unregister(&self, request: &CfnRequest, physical: &str) -> Outcome {
        let Some(pipeline) = pipeline_of(physical) else {
            info!(
                physical_resource_id = physical,
                "nothing was registered under this id"
            );
            return Outcome::success(physical.to_owned(), "nothing was registered under this id");
        };
        match registration::unregister(&self.registry, &self.ledger, &pipeline, &request.stack_id)
            .await
        {
            Ok(Deleted::Removed) => {
                info!(pipeline = %pipeline.key(), "unregistered");
                Outcome::success(physical.to_owned(), format!("{pipeline}: unregistered"))
            }
            Ok(Deleted::NotFound) => {
                info!(pipeline = %pipeline.key(), "was not registered");
                Outcome::success(
                    physical.to_owned(),
                    format!("{pipeline}: was not registered"),
                )
            }
            Err(Refusal::NotOwner { owner, .. }) => {
                warn!(pipeline = %pipeline.key(), owner = %owner, "registered by another stack; left in place");
                Outcome::success(
                    physical.to_owned(),
                    format!("{pipeline} is registered by stack {owner}; left in place"),
                )
            }
            Err(e) => {
                warn!(pipeline = %pipeline.key(), error = %e, "unregistering failed");
                Outcome::failed(physical, e.to_string())
            }
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLES: [(&str, &str); 4] = [
        ("BATON_RUNS_TABLE", "runs"),
        ("BATON_REGISTRY_TABLE", "registry"),
        ("BATON_LEDGER_TABLE", "ledger"),
        ("BATON_SLACK_THREADS_TABLE", "threads"),
    ];

    #[test]
    fn configuration_names_the_missing_variable() {
        let err = Config::from_env(&Env::from_pairs(TABLES)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable BATON_DEFAULT_PIPELINE_BUS is not set"
        );
        let mut vars = TABLES.to_vec();
        vars.push(("BATON_DEFAULT_PIPELINE_BUS", "baton-pipelines"));
        vars.push(("BATON_CENTRAL_ACCOUNT", "12345"));
        let err = Config::from_env(&Env::from_pairs(vars.clone())).unwrap_err();
        assert!(err.to_string().contains("BATON_CENTRAL_ACCOUNT"), "{err}");
        vars.pop();
        vars.push(("BATON_CENTRAL_ACCOUNT", "123456789012"));
        let config = Config::from_env(&Env::from_pairs(vars.clone())).unwrap();
        assert_eq!(
            config.endpoints.emulated, None,
            "no emulated endpoint unless set"
        );
        assert!(config.admitted.0.is_empty());
        assert_eq!(config.registry_table, "registry");
        assert_eq!(config.deadline_margin, Duration::from_secs(5));
        vars.push(("BATON_DEADLINE_MARGIN_MS", "soon"));
        assert!(Config::from_env(&Env::from_pairs(vars))
            .unwrap_err()
            .to_string()
            .contains("BATON_DEADLINE_MARGIN_MS"));
    }
}
