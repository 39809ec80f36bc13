//! baton's adapters: the one place that talks to AWS (DynamoDB, SNS, EventBridge, Step Functions, Secrets Manager)
//! and to Slack. Each adapter implements a port of `baton_core::ports` over a real client built
//! once at start-up.

mod aws_error;
pub mod config;
pub mod dynamo;
pub mod http;
pub mod lambda;
pub mod logging;
pub mod member_executions;
pub mod secrets;
pub mod slack;

pub use config::{ConfigError, Env};
pub use dynamo::{
    DynamoLedger, DynamoRegistry, DynamoRunLog, DynamoSlackThreads, DynamoWatch, TableNames,
};

pub mod eventbridge;
pub mod flow;
pub mod sfn;
pub mod sns;

pub use eventbridge::EventBridgeTriggerBus;
pub use flow::{FlowAdapters, FlowTargets};
pub use member_executions::{RoleExecutionLookup, READ_ONLY_ROLE_NAME};
pub use sfn::StepFunctionsStarter;
pub use sns::SnsRunEvents;

pub use secrets::{SecretError, SecretsManagerToken, SlackToken, TokenSource};
pub use slack::{SlackWebApi, SLACK_API_URL};

/// Every binary that links the adapters (the functions, the demo, the CLI) allocates with
/// mimalloc: in a profile of trigger-manager, glibc's `malloc`, `free` and their consolidation
/// took about a quarter of the CPU of a decision (docs/performance.md, "Where the time goes").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
