//! Registering and unregistering a pipeline: the rules, over a registry that only stores.
//!
//! - Only the stack that registered a pipeline may change or remove it.
//! - An Update that changes nothing the registration means (its fingerprint) writes nothing.
//! - The first registration time is kept; the trigger floor moves to the Update's time when the
//!   trigger is added, its set of parents changes (DESIGN "Floor") or it starts or stops being
//!   aligned on run keys (the runs it consumed unaligned were never consumed per key, and per-key
//!   cursors would not know them), so no child fires on runs from before its condition existed.
//! - No registration closes a dependency cycle, across accounts, even when two race: a write that
//!   adds an edge expects the graph version its cycle check was made at, so of two racing
//!   registrations the second is refused by the store, reads again, and is checked against the
//!   first.
//!
//! Shared by every way a pipeline can be registered (the CloudFormation custom resource, tools,
//! tests, the simulation), so they all refuse the same things.
//!
//! [`Registration`] is what the registry stores; [`register`] and [`unregister`] apply the rules
//! over the [`Registry`](crate::ports::Registry) port; [`check_cycles`] refuses a dependency
//! cycle.

mod cycles;
mod model;
mod rules;
#[cfg(test)]
mod tests;

pub use cycles::{check_cycles, MAX_CHECKED_DOWNSTREAM};
pub use model::Registration;
pub use rules::{plan, register, unregister, Deleted, Plan, Refusal, Upserted, WRITE_ATTEMPTS};
