//! A deterministic simulation of baton's trigger path, in the manner of FoundationDB's and
//! TigerBeetle's: one seed decides an organisation, its day, the fault plan and every
//! interleaving; the real run-log-writer and trigger-manager handlers (and core's registration
//! check and flow) run over the in-memory ports (`baton_testbed::memory`) on a simulated clock;
//! after each schedule the invariants are checked against what really happened and the
//! brute-force oracle. A violating seed replays exactly, with a trace.
//!
//! See docs/reliability.md for the fault model and the invariants.

pub mod check;
pub mod executor;
pub mod faults;
pub mod org;
pub mod truth;
pub mod world;

use std::sync::{Arc, Mutex};

use baton_core::trigger::FlowSettings;
use baton_testbed::memory::Memory;
use baton_testbed::rng::Rng;

use faults::{FaultPlan, Injected, Shared, Sim};
use truth::Violation;
use world::World;

/// What one schedule did and found.
#[derive(Debug, Default)]
pub struct Outcome {
    pub seed: u64,
    pub violations: Vec<Violation>,
    pub injected: Injected,
    pub invocations: u64,
    pub executions: u64,
    pub requests: u64,
    /// Firings of aligned children, for one run key.
    pub key_firings: u64,
    /// The trace, when asked for.
    pub trace: Vec<String>,
}

/// The seed of the `i`th schedule of a run started from `base`.
pub fn schedule_seed(base: u64, i: u64) -> u64 {
    Rng::new(base ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64()
}

/// The trigger-manager's settings as deployed (its configuration's defaults).
pub fn settings() -> FlowSettings {
    FlowSettings::with_default_bus("baton-pipelines")
}

/// Runs one schedule from `seed`; with `trace`, keeps a line per request and decision.
pub fn run_schedule(seed: u64, trace: bool) -> Outcome {
    let mut rng = Rng::new(seed);
    let org = match org::generate(&mut rng) {
        Ok(org) => org,
        Err(e) => {
            return Outcome {
                seed,
                violations: vec![Violation {
                    invariant: "generator",
                    detail: e.to_string(),
                    focus: vec![],
                }],
                ..Outcome::default()
            }
        }
    };
    let plan = FaultPlan::draw(&mut rng);
    let sim = Sim(Arc::new(Mutex::new(Shared {
        rng,
        now: org::DAY0 - org::HOUR,
        current: 0,
        plan,
        faults_on: true,
        injected: Injected::default(),
        observed: Vec::new(),
        trace: trace.then(Vec::new),
    })));
    let mem = Memory::new(Some(Arc::new(sim.clone())));
    let settings = settings();
    let mut world = World::new(sim.clone(), &mem, &settings, &org);
    world.run();
    let now = sim.lock().now;
    let leftovers = world.leftovers();
    check::at_rest(&mut world.truth, &mem, now, leftovers);
    let mut shared = sim.lock();
    Outcome {
        seed,
        violations: std::mem::take(&mut world.truth.violations),
        injected: shared.injected,
        invocations: world.invocations,
        executions: world.truth.executions,
        requests: mem.requests.count(),
        key_firings: world.truth.key_claims,
        trace: shared.trace.take().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_exactly_with_the_same_trace_and_findings() {
        for i in 0..20 {
            let seed = schedule_seed(7, i);
            let first = run_schedule(seed, true);
            let again = run_schedule(seed, true);
            let untraced = run_schedule(seed, false);
            assert!(
                first.trace.len() > 10,
                "seed {seed}: {} lines",
                first.trace.len()
            );
            assert_eq!(first.trace, again.trace, "seed {seed}");
            let found = |o: &Outcome| -> Vec<String> {
                o.violations.iter().map(|v| v.detail.clone()).collect()
            };
            assert_eq!(found(&first), found(&untraced), "seed {seed}");
            assert_eq!(first.requests, untraced.requests, "seed {seed}");
        }
    }
}
