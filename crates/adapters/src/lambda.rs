//! The Lambda edge every function shares: the invocation's deadline read from the context, one
//! `errorType` vocabulary, and one handler shape ([`Function`]) run by one [`run`].
//!
//! `errorType` is always `<Kind>.Retryable` or `<Kind>.NotRetryable`: the kind says what went
//! wrong, the suffix whether delivering the same event again can help. Alarms and DLQ tooling
//! read only the suffix; people read the kind.

use std::future::Future;
use std::time::{Duration, Instant};

use baton_core::trigger::{FlowSettings, Invocation};
use baton_core::Timestamp;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::Env;

/// What a `main` returns: a start-up error stops the function with its message.
pub use lambda_runtime::Error;

/// When the invocation must have answered: Lambda's deadline, in epoch milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(pub Timestamp);

impl Deadline {
    /// The deadline of `context` (`Context::deadline`, epoch milliseconds).
    pub fn from_context(context: &lambda_runtime::Context) -> Deadline {
        Deadline(Timestamp(
            i64::try_from(context.deadline).unwrap_or(i64::MAX),
        ))
    }

    /// A deadline `left` from now (tests and local tools).
    pub fn after(left: Duration) -> Deadline {
        let left = i64::try_from(left.as_millis()).unwrap_or(i64::MAX);
        Deadline(Timestamp(Timestamp::now().0.saturating_add(left)))
    }

    /// The deadline at `instant` on this process's monotonic clock (a handler given an
    /// `Instant`, as tests give one).
    pub fn from_instant(instant: Instant) -> Deadline {
        Deadline::after(instant.saturating_duration_since(Instant::now()))
    }

    /// The deadline on the wall clock: what leases and records compare with.
    pub fn timestamp(self) -> Timestamp {
        self.0
    }

    /// The deadline on this process's monotonic clock: what timeouts and waits compare with.
    pub fn instant(self) -> Instant {
        let left =
            Duration::from_millis(u64::try_from(self.0.since(Timestamp::now()).0).unwrap_or(0));
        let now = Instant::now();
        // A deadline beyond what `Instant` can hold is as good as none.
        now.checked_add(left)
            .unwrap_or_else(|| now + Duration::from_secs(365 * 86_400))
    }
}

/// What an invocation knows besides its event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// Lambda's request id: names the invocation in logs and in the leases it takes.
    pub request_id: String,
    pub deadline: Deadline,
}

impl Call {
    pub fn from_context(context: &lambda_runtime::Context) -> Call {
        Call {
            request_id: context.request_id.clone(),
            deadline: Deadline::from_context(context),
        }
    }

    /// The invocation core's trigger flow runs in: its send leases belong to this request and
    /// last past the deadline; every decision and lease check reads the wall clock afresh.
    pub fn invocation(&self, settings: &FlowSettings) -> Invocation {
        Invocation::new(
            self.request_id.clone(),
            Timestamp::now(),
            self.deadline.timestamp(),
            settings,
        )
        .with_clock(Timestamp::now)
    }
}

/// An error a function returns to Lambda.
pub trait FunctionError: std::error::Error {
    /// The first part of the `errorType`: what went wrong, in CamelCase (`MalformedEvent`).
    fn kind(&self) -> &'static str;
    /// Whether delivering the same event again can help.
    fn is_retryable(&self) -> bool;
}

/// The `errorType` of `error`: `<Kind>.Retryable` or `<Kind>.NotRetryable`.
pub fn error_type<E: FunctionError + ?Sized>(error: &E) -> String {
    let retry = if error.is_retryable() {
        "Retryable"
    } else {
        "NotRetryable"
    };
    format!("{}.{retry}", error.kind())
}

/// What Lambda records for `error`.
pub fn diagnostic<E: FunctionError + ?Sized>(error: &E) -> Diagnostic {
    Diagnostic {
        error_type: error_type(error),
        error_message: error.to_string(),
    }
}

/// A Lambda function: a typed event in, a typed answer or a [`FunctionError`] out. Each function
/// crate implements it on the struct holding its dependencies; tests call [`Function::invoke`]
/// (or the struct's own `handle`, which takes the time explicitly) without AWS.
///
/// The future need not be `Send`: each function runs on one thread (see the mains), and core's
/// trigger flow borrows across its awaits in ways a `Send` bound cannot name.
pub trait Function: Sync {
    type Event: DeserializeOwned;
    type Output: Serialize;
    type Error: FunctionError;

    fn invoke(
        &self,
        event: Self::Event,
        call: &Call,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>>;
}

/// What every function does first: the system's CA bundle for its HTTPS clients
/// ([`crate::http::use_the_system_ca_bundle`]), JSON logs, its configuration read from the environment once
/// (a missing or bad variable stops start-up with a log line naming it), and the AWS
/// configuration its clients are built from.
pub async fn start<C, E>(
    read: impl FnOnce(&Env) -> Result<C, E>,
) -> Result<(C, aws_config::SdkConfig), Error>
where
    E: std::error::Error + Send + Sync + 'static,
{
    crate::http::use_the_system_ca_bundle();
    crate::logging::init();
    let config = read(&Env::from_process()).map_err(|e| {
        tracing::error!(error = %e, "configuration");
        e
    })?;
    Ok((config, aws_config::load_from_env().await))
}

/// Runs `function` in the Lambda runtime until the runtime stops; every failed invocation is
/// logged once with its `errorType`.
pub async fn run<F: Function>(function: F) -> Result<(), Error> {
    let function = &function;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<F::Event>| async move {
        let call = Call::from_context(&event.context);
        // Boxed: nested in `main`'s future, a handler's future (the SDK's deep orchestrator
        // futures inside) passes rustc's query depth limit on a build without an incremental
        // cache.
        let answer = Box::pin(function.invoke(event.payload, &call)).await;
        answer.map_err(|error| {
            let diagnostic = diagnostic(&error);
            tracing::error!(
                request_id = %call.request_id,
                error_type = %diagnostic.error_type,
                error = %diagnostic.error_message,
                "invocation failed"
            );
            diagnostic
        })
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("record 7: table `runs` is throttled")]
    struct Throttled(bool);

    impl FunctionError for Throttled {
        fn kind(&self) -> &'static str {
            "Storage"
        }
        fn is_retryable(&self) -> bool {
            self.0
        }
    }

    #[test]
    fn the_error_type_says_the_kind_and_whether_a_retry_helps() {
        let d = diagnostic(&Throttled(true));
        assert_eq!(d.error_type, "Storage.Retryable");
        assert_eq!(d.error_message, "record 7: table `runs` is throttled");
        assert_eq!(error_type(&Throttled(false)), "Storage.NotRetryable");
    }

    #[test]
    fn the_deadline_is_read_from_the_context_once_for_both_clocks() {
        let mut context = lambda_runtime::Context::default();
        context.request_id = "r-1".into();
        context.deadline = u64::try_from(Timestamp::now().0 + 30_000).unwrap();
        let call = Call::from_context(&context);
        assert_eq!(call.request_id, "r-1");
        assert_eq!(
            call.deadline.timestamp().0,
            i64::try_from(context.deadline).unwrap()
        );
        let left = call.deadline.instant() - Instant::now();
        assert!(
            left > Duration::from_secs(29) && left <= Duration::from_secs(30),
            "{left:?}"
        );
        // A deadline already past leaves no time, and one beyond i64 is the far future.
        context.deadline = 1;
        assert!(Call::from_context(&context).deadline.instant() <= Instant::now());
        context.deadline = u64::MAX;
        let soon = Instant::now() + Duration::from_secs(60);
        let wall = Deadline::from_instant(soon).timestamp().0 - Timestamp::now().0;
        assert!((59_000..=60_000).contains(&wall), "{wall}");
        let far = Deadline::from_context(&context);
        assert_eq!(far.timestamp(), Timestamp(i64::MAX));
        assert!(far.instant() > Instant::now() + Duration::from_secs(86_400));
    }

    #[test]
    fn the_flow_runs_under_a_lease_of_this_request_past_its_deadline() {
        let call = Call {
            request_id: "r-1".into(),
            deadline: Deadline(Timestamp(Timestamp::now().0 + 60_000)),
        };
        let settings = FlowSettings::with_default_bus("baton-pipelines");
        let invocation = call.invocation(&settings);
        assert_eq!(invocation.lease.holder, "r-1");
        assert_eq!(
            invocation.lease.until,
            call.deadline.timestamp().plus(settings.lease_margin)
        );
        // The wall clock, read afresh: never before the invocation's start.
        assert!(invocation.read_clock() >= invocation.now);
        assert!(invocation.now <= Timestamp::now());
    }
}
