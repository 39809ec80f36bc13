//! Counting the requests a client makes, with an SDK interceptor, to check request budgets
//! ("DynamoDB requests per event") against the emulator.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;

/// Counts every operation (one per API call, retries not counted again) of the clients it is
/// installed in.
#[derive(Clone, Debug, Default)]
pub struct RequestCounter {
    count: Arc<AtomicUsize>,
}

impl RequestCounter {
    pub fn new() -> RequestCounter {
        RequestCounter::default()
    }

    /// Requests so far.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// A DynamoDB client over `config` whose requests this counter counts.
    pub fn dynamo_client(&self, config: &SdkConfig) -> aws_sdk_dynamodb::Client {
        let dynamo = aws_sdk_dynamodb::config::Builder::from(config)
            .interceptor(self.clone())
            .build();
        aws_sdk_dynamodb::Client::from_conf(dynamo)
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.count.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}
