//! Reading a pipeline definition's `trigger` and `notifications` blocks from YAML, from JSON, and
//! from CloudFormation custom-resource properties (where every scalar arrives as a string).
//!
//! All three go through one validator over a JSON value, so they accept the same things and
//! report problems the same way: every problem at once, each with its path, the bad value and what
//! is allowed.
//!
//! [`model`](PipelineDefinition) holds what a definition is; `validate` reads and checks a
//! document with the [`Validator`]; `trigger` and `notifications` read their blocks.

mod model;
mod notifications;
#[cfg(test)]
mod tests;
mod trigger;
mod validate;

pub use model::{Channel, NotificationType, Notifications, PipelineDefinition, Target};
pub use validate::{describe, Problem, ValidationError, Validator};
