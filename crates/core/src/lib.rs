//! baton's domain: what a pipeline is, what its trigger condition means, when it fires, and the
//! ports through which the functions reach storage. Nothing here performs I/O or depends on an
//! AWS crate, so every rule can be tested with plain values.

pub mod condition;
pub mod deadlines;
pub mod definition;
pub mod email;
pub mod evaluator;
pub mod events;
pub mod graph;
pub mod pipeline;
pub mod ports;
pub mod recording;
pub mod registration;
pub mod run;
pub mod run_key;
pub mod slack;
pub mod start;
pub mod status;
pub mod text;
pub mod time;
pub mod trigger;
pub mod watch;

pub use condition::{AlignOn, AtLeast, Condition, Group, Leaf, Operator, Trigger};
pub use definition::{
    NotificationType, Notifications, PipelineDefinition, Problem, ValidationError,
};
pub use evaluator::{
    evaluate, evaluate_key, Decision, Evaluation, Explanation, Firing, LeafOutcome, TriggerId,
};
pub use events::{PipelineTrigger, RunEvent, RunEventKind};
pub use graph::{Cycle, DependencyGraph};
pub use pipeline::PipelineId;
pub use run::{Run, RunRef};
pub use run_key::{NoRunKey, RunKey, RunKeyPath};
pub use status::RunStatus;
pub use time::{Span, Timestamp};
