//! `baton-sim`: runs schedules of the deterministic simulation and reports violations with the
//! seed that replays each. See docs/reliability.md.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use baton_sim::faults::Injected;
use baton_sim::{run_schedule, schedule_seed, Outcome};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "baton-sim",
    about = "Deterministic simulation of baton's trigger path under faults"
)]
struct Args {
    /// Replay one schedule from this seed (as printed by a violation) and print its trace.
    #[arg(long)]
    seed: Option<u64>,
    /// How many schedules to run.
    #[arg(long, default_value_t = 2_000)]
    schedules: u64,
    /// The run's base seed: schedule i runs from a seed derived from it and i.
    #[arg(long, default_value_t = 1)]
    base: u64,
    /// Print every trace line of a replay, not only those about the violation.
    #[arg(long)]
    full_trace: bool,
    /// Worker threads (default: the machine's cores).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match args.seed {
        Some(seed) => replay(seed, args.full_trace),
        None => many(&args),
    }
}

/// Runs one seed with its trace: a violation's story, step by step.
fn replay(seed: u64, full: bool) -> ExitCode {
    let outcome = run_schedule(seed, true);
    let focus: Vec<&str> = outcome
        .violations
        .iter()
        .flat_map(|v| v.focus.iter().map(String::as_str))
        .collect();
    let lines: Vec<&String> = outcome
        .trace
        .iter()
        .filter(|line| full || focus.is_empty() || focus.iter().any(|f| line.contains(f)))
        .collect();
    let shown = if full {
        0
    } else {
        lines.len().saturating_sub(80)
    };
    if shown > 0 {
        println!("... {shown} earlier lines (--full-trace shows all)");
    }
    for line in &lines[shown..] {
        println!("{line}");
    }
    println!(
        "seed {seed}: {} invocations, {} executions, {} requests, {} trace lines",
        outcome.invocations,
        outcome.executions,
        outcome.requests,
        outcome.trace.len()
    );
    report(&outcome)
}

fn report(outcome: &Outcome) -> ExitCode {
    if outcome.violations.is_empty() {
        println!("seed {}: no violation", outcome.seed);
        return ExitCode::SUCCESS;
    }
    for v in &outcome.violations {
        println!(
            "VIOLATION seed {}: {}: {}",
            outcome.seed, v.invariant, v.detail
        );
    }
    ExitCode::FAILURE
}

/// Runs `schedules` seeds over the cores and summarises them.
fn many(args: &Args) -> ExitCode {
    let started = Instant::now();
    let next = AtomicU64::new(0);
    let totals = Mutex::new((Injected::default(), 0_u64, 0_u64, 0_u64, 0_u64));
    let failures: Mutex<Vec<Outcome>> = Mutex::new(Vec::new());
    let threads = args
        .threads
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
        .max(1);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= args.schedules {
                    return;
                }
                if i > 0 && i.is_multiple_of(100_000) {
                    let found = failures.lock().map(|f| f.len()).unwrap_or(0);
                    eprintln!(
                        "{i} schedules started, {found} with a violation so far, {:.0?}",
                        started.elapsed()
                    );
                }
                let outcome = run_schedule(schedule_seed(args.base, i), false);
                if let Ok(mut t) = totals.lock() {
                    t.0.add(&outcome.injected);
                    t.1 += outcome.invocations;
                    t.2 += outcome.executions;
                    t.3 += outcome.requests;
                    t.4 += outcome.key_firings;
                }
                if !outcome.violations.is_empty() {
                    if let Ok(mut f) = failures.lock() {
                        f.push(outcome);
                    }
                }
            });
        }
    });
    let (injected, invocations, executions, requests, key_firings) =
        totals.into_inner().unwrap_or_default();
    let mut failures = failures.into_inner().unwrap_or_default();
    failures.sort_by_key(|o| o.seed);
    println!(
        "{} schedules (base seed {}) in {:.1?}: {invocations} invocations, {executions} executions ({key_firings} triggers of aligned children, for one run key), {requests} requests",
        args.schedules,
        args.base,
        started.elapsed()
    );
    println!(
        "faults injected: {} failed before effect, {} failed after effect, {} timeouts, {} crashes, {} killed at the timeout, {} clock jumps, {} duplicate deliveries, {} late RUNNING events; {} Lambda retries, {} to the DLQ",
        injected.before,
        injected.after,
        injected.timeouts,
        injected.crashes,
        injected.kills,
        injected.jumps,
        injected.duplicates,
        injected.reorders,
        injected.retries,
        injected.dead_letters
    );
    println!("violations: {}", failures.len());
    for outcome in &failures {
        for v in &outcome.violations {
            println!(
                "VIOLATION seed {}: {}: {} (replay: cargo xtask sim --seed {})",
                outcome.seed, v.invariant, v.detail, outcome.seed
            );
        }
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
