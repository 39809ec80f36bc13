//! baton's project tasks. Only the Rust toolchain and Python 3 are assumed; everything else (the
//! moto AWS emulator and the template linters from PyPI) is installed here into `./.venv`.
//!
//! - `cargo xtask demo`: the Scout24 story on a local emulated AWS.
//! - `cargo xtask test`: every check CI runs (fmt, clippy -D warnings, unit, property and
//!   integration tests).
//! - `cargo xtask setup`: only the Python tools.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "usage: cargo xtask <demo|test|setup>
  demo   run the Scout24 story end to end on a local emulated AWS
  test   run every check: cargo fmt --check, clippy -D warnings, all tests
  setup  install the Python tools (moto, linters) into ./.venv";

fn main() -> ExitCode {
    let task = env::args().nth(1).unwrap_or_default();
    let result = match task.as_str() {
        "demo" => demo(),
        "test" => test(),
        "setup" => setup().map(|_| ()),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {task}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> String {
    env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// Runs a command in the workspace root, failing with its name if it fails.
fn run(program: &str, args: &[&str], envs: &[(&str, &Path)]) -> Result<(), String> {
    eprintln!("==> {program} {}", args.join(" "));
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(root());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let status = cmd
        .status()
        .map_err(|e| format!("could not run {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

/// Creates `./.venv` and installs `xtask/requirements.txt` into it, once per change of that file.
/// Returns the venv's Python.
fn setup() -> Result<PathBuf, String> {
    let root = root();
    let venv = root.join(".venv");
    let python = venv.join("bin/python");
    let requirements = root.join("xtask/requirements.txt");
    let wanted = fs::read_to_string(&requirements)
        .map_err(|e| format!("reading {}: {e}", requirements.display()))?;
    let marker = venv.join(".baton-requirements");
    if python.exists() && fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(python);
    }
    let system_python = env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    if !python.exists() {
        run(
            &system_python,
            &["-m", "venv", &venv.to_string_lossy()],
            &[],
        )?;
    }
    run(
        &python.to_string_lossy(),
        &[
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            &requirements.to_string_lossy(),
        ],
        &[],
    )?;
    fs::write(&marker, wanted).map_err(|e| format!("writing {}: {e}", marker.display()))?;
    Ok(python)
}

fn test() -> Result<(), String> {
    let python = setup()?;
    let cargo = cargo();
    run(&cargo, &["fmt", "--all", "--", "--check"], &[])?;
    run(
        &cargo,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    run(
        &cargo,
        &["test", "--workspace"],
        &[("BATON_PYTHON", &python)],
    )?;
    Ok(())
}

fn demo() -> Result<(), String> {
    let python = setup()?;
    run(
        &cargo(),
        &["run", "--quiet", "--package", "baton-demo"],
        &[("BATON_PYTHON", &python)],
    )
}
