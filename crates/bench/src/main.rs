//! `baton-bench`: runs every benchmark and prints one table. Normally started by
//! `cargo xtask bench`, which builds the release binaries and zips first.
//!
//! Options: `--bin-dir DIR` (release binaries, default target/release), `--zip-dir DIR`
//! (cargo-lambda output, default target/lambda), `--starts N` (cold starts per function, at
//! least 10), `--events N` (events of the memory run, default 1000), `--pipelines N`,
//! `--accounts N`, `--quick` (fewer warm events, a 10,000-pipeline organisation), `--only
//! functions|memory|scale`.

use std::path::PathBuf;

use anyhow::Context;
use baton_bench::central::{Bench, FAN_OUTS, FUNCTIONS};
use baton_bench::measure;
use baton_bench::process::Launch;
use baton_bench::report::{machine, Results};
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
                "watchdog" => {
                    o.functions = false;
                    o.run_scale = false;
                    o.watchdog = true;
                }
                other => {
                    anyhow::bail!(
                        "`--only {other}`: expected `functions`, `memory`, `scale` or `watchdog`"
                    )
                }
            },
            other => anyhow::bail!("unknown option `{other}` (see the crate's main.rs)"),
        }
    }
    Ok(o)
}

fn python_launch(bench: &Bench) -> Launch {
    Launch {
        name: "python-boto3".to_owned(),
        program: baton_testbed::moto::python(),
        args: vec![concat!(env!("CARGO_MANIFEST_DIR"), "/python/runtime_loop.py").to_owned()],
        env: bench.function_env(),
    }
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

    if !o.memory_only {
        cold_and_warm(o, results, &launches_for).await?;
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
    eprintln!(
        "bench: memory of the Python/boto3 baseline over {} events",
        o.events
    );
    let bench = Box::pin(Bench::create(&[1])).await?;
    let python = python_launch(&bench);
    results.python_memory =
        Some(Box::pin(measure::memory(&bench, &python, "python-boto3", o.events)).await?);
    Ok(())
}

async fn cold_and_warm(
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
        eprintln!("bench: cold start of the Python/boto3 baseline");
        let python = python_launch(&bench);
        results.python_cold = Some(
            Box::pin(measure::cold_start(
                &bench,
                &python,
                "python-boto3",
                o.starts,
            ))
            .await?,
        );
    }

    eprintln!("bench: starting the emulator and registering the fan-out families...");
    let bench = Box::pin(Bench::create(&FAN_OUTS)).await?;
    let launches = launches_for(&bench);

    // Only functions that answered a cold start are measured further.
    let answered = answered_cold_start(results);
    let answered = |name: &str| answered.iter().any(|a| a == name);
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
