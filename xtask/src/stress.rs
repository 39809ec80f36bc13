//! `cargo xtask stress [--iterations N] [--filter WORD] [--no-load]`: the concurrency tests, run
//! again and again while every core is kept busy, so an interleaving that only shows up under load
//! shows up here rather than in CI.
//!
//! The integration test binaries are built once; then each iteration runs every binary's tests
//! whose name contains the filter (default `concurrent`), each binary with its own fresh emulator.
//! The first failure stops the run and prints that test's output.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::{cargo, root, setup};

struct Options {
    iterations: u32,
    filter: String,
    load: bool,
}

fn options(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        iterations: 200,
        filter: "concurrent".to_owned(),
        load: true,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--iterations" => {
                let value = args.next().ok_or("--iterations needs a number")?;
                options.iterations = value
                    .parse()
                    .map_err(|_| format!("--iterations takes a whole number, not `{value}`"))?;
            }
            "--filter" => {
                options.filter = args.next().ok_or("--filter needs a word")?.clone();
            }
            "--no-load" => options.load = false,
            other => return Err(format!("stress: unknown option `{other}`")),
        }
    }
    Ok(options)
}

/// Builds the integration tests and returns their executables.
fn test_binaries() -> Result<Vec<String>, String> {
    eprintln!("==> building the integration tests");
    let output = Command::new(cargo())
        .args([
            "test",
            "--package",
            "baton-integration-tests",
            "--no-run",
            "--message-format=json",
        ])
        .current_dir(root())
        .output()
        .map_err(|e| format!("could not run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "building the tests failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let mut binaries = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if let Some(exe) = message.get("executable").and_then(|e| e.as_str()) {
            binaries.push(exe.to_owned());
        }
    }
    if binaries.is_empty() {
        return Err("cargo built no integration test binary".to_owned());
    }
    Ok(binaries)
}

/// Keeps every core busy until dropped.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..threads)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut x: u64 = 1;
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..100_000 {
                            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                        }
                        std::hint::black_box(x);
                    }
                })
            })
            .collect();
        Load { stop, threads }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// One emulator for every test process of the run (the testbed attaches to it through
/// `BATON_MOTO_ENDPOINT`); it stops when its standard input closes, with this process.
fn start_emulator(python: &std::path::Path) -> Result<(Child, String), String> {
    let script = root().join("crates/testbed/moto_server.py");
    let mut child = Command::new(python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("could not start the emulator: {e}"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or("the emulator's output was not captured")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("reading the emulator's port: {e}"))?;
    let port = line
        .trim()
        .strip_prefix("PORT ")
        .ok_or_else(|| format!("the emulator did not say its port (said {line:?})"))?;
    Ok((child, format!("http://127.0.0.1:{port}")))
}

/// The binaries that hold at least one test matching `filter`.
fn with_matching_tests(binaries: Vec<String>, filter: &str) -> Result<Vec<String>, String> {
    let mut kept = Vec::new();
    for binary in binaries {
        let listed = Command::new(&binary)
            .args([filter, "--list"])
            .output()
            .map_err(|e| format!("could not run {binary}: {e}"))?;
        if String::from_utf8_lossy(&listed.stdout).contains(": test") {
            kept.push(binary);
        }
    }
    if kept.is_empty() {
        return Err(format!("no integration test matches `{filter}`"));
    }
    Ok(kept)
}

pub fn stress(args: &[String]) -> Result<(), String> {
    let options = options(args)?;
    let python = setup()?;
    let binaries = with_matching_tests(test_binaries()?, &options.filter)?;
    let (mut emulator, endpoint) = start_emulator(&python)?;
    let result = run_iterations(&options, &binaries, &python, &endpoint);
    let _ = emulator.kill();
    let _ = emulator.wait();
    result
}

fn run_iterations(
    options: &Options,
    binaries: &[String],
    python: &std::path::Path,
    endpoint: &str,
) -> Result<(), String> {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let _load = options.load.then(|| Load::start(cores));
    eprintln!(
        "==> {} iterations of the tests matching `{}` in {} test binaries{}",
        options.iterations,
        options.filter,
        binaries.len(),
        if options.load {
            format!(", with {cores} busy threads loading every core")
        } else {
            String::new()
        }
    );
    let started = Instant::now();
    let mut ran = 0usize;
    for iteration in 1..=options.iterations {
        for binary in binaries {
            let output = Command::new(binary)
                .args([options.filter.as_str(), "--format=terse"])
                .env("BATON_PYTHON", python)
                .env("BATON_MOTO_ENDPOINT", endpoint)
                .current_dir(root().join("tests"))
                .output()
                .map_err(|e| format!("could not run {binary}: {e}"))?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            if !output.status.success() {
                return Err(format!(
                    "iteration {iteration}: {binary} failed:\n{stdout}\n{}",
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            ran += passed(&stdout);
        }
        if iteration % 10 == 0 || iteration == options.iterations {
            eprintln!(
                "    {iteration} iterations, {ran} test runs passed, {:.0?}",
                started.elapsed()
            );
        }
    }
    println!(
        "stress: {ran} passed, 0 failed ({} iterations in {:.0?})",
        options.iterations,
        started.elapsed()
    );
    Ok(())
}

/// The `N passed` of a libtest summary line.
fn passed(stdout: &str) -> usize {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("test result: "))
        .filter_map(|l| l.split(". ").nth(1))
        .filter_map(|l| l.split(' ').next())
        .filter_map(|n| n.parse::<usize>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_passed_count() {
        assert_eq!(
            super::passed("test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 9 filtered out; finished in 1.2s\n"),
            3
        );
    }
}
