//! Starting and reaching the moto server.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

/// The region the emulated central account lives in.
pub const REGION: &str = "eu-west-1";

/// Why the emulator could not be started.
#[derive(Debug)]
pub struct MotoError(pub String);

impl std::fmt::Display for MotoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MotoError {}

/// A running moto server. Dropping it (or the process exiting) stops it: the server exits when its
/// standard input closes.
pub struct Moto {
    /// `None` when attached to a server someone else runs (`BATON_MOTO_ENDPOINT`).
    child: Mutex<Option<Child>>,
    // Held open for the server's lifetime; closing it is the stop signal.
    _stdin: Mutex<Option<ChildStdin>>,
    endpoint: String,
}

fn workspace_root() -> PathBuf {
    // crates/testbed -> workspace root
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python that has moto installed: `BATON_PYTHON`, else the project's `.venv`.
pub fn python() -> PathBuf {
    match std::env::var_os("BATON_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => workspace_root().join(".venv/bin/python"),
    }
}

impl Moto {
    /// Starts a new server on 127.0.0.1 on a free port and waits until it listens.
    pub fn start() -> Result<Moto, MotoError> {
        let python = python();
        if !python.exists() {
            return Err(MotoError(format!(
                "no Python with moto at {}: run `cargo xtask test` (or `cargo xtask setup`) once to create the project's .venv, or set BATON_PYTHON",
                python.display()
            )));
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("moto_server.py");
        let mut child = Command::new(&python)
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                MotoError(format!(
                    "could not start {} {}: {e}",
                    python.display(),
                    script.display()
                ))
            })?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| MotoError("moto's stdout was not captured".into()))?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| MotoError("moto's stdin was not captured".into()))?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| MotoError(format!("reading moto's port: {e}")))?;
        let port: u16 = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| {
                MotoError(format!(
                    "moto did not report its port (said {line:?}); is moto installed in {}?",
                    python.display()
                ))
            })?;
        Ok(Moto {
            child: Mutex::new(Some(child)),
            _stdin: Mutex::new(Some(stdin)),
            endpoint: format!("http://127.0.0.1:{port}"),
        })
    }

    /// One server shared by every test of this process, started on first use; or, when
    /// `BATON_MOTO_ENDPOINT` names one (`cargo xtask stress` runs one for many test processes),
    /// that server. Tests name their resources uniquely, so processes can share it.
    pub fn shared() -> &'static Moto {
        static SHARED: OnceLock<Moto> = OnceLock::new();
        SHARED.get_or_init(|| match std::env::var("BATON_MOTO_ENDPOINT") {
            Ok(endpoint) => Moto::attach(&endpoint),
            Err(_) => match Moto::start() {
                Ok(m) => m,
                Err(e) => panic!("{e}"),
            },
        })
    }

    /// A server that is already running at `endpoint`; it is not stopped by this process.
    pub fn attach(endpoint: &str) -> Moto {
        Moto {
            child: Mutex::new(None),
            _stdin: Mutex::new(None),
            endpoint: endpoint.trim_end_matches('/').to_owned(),
        }
    }

    /// `http://127.0.0.1:<port>`
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// SDK configuration for the emulator: fixed test credentials, region eu-west-1, the endpoint.
    /// Every request acts in moto's default account, 123456789012 (the central account).
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "baton-testbed",
            ))
            .endpoint_url(&self.endpoint)
            .load()
            .await
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Ok(mut guard) = self.child.lock() {
            if let Some(child) = guard.as_mut() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// A name unique in this process run and among the processes that share one emulator (a test
/// process id can come back in a long `cargo xtask stress` run), for tables, topics and buses
/// created by tests running in parallel against one emulator.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    static PROCESS: OnceLock<String> = OnceLock::new();
    let process = PROCESS.get_or_init(|| {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() % 1_000_000_000)
            .unwrap_or(0);
        format!("{}-{started:x}", std::process::id())
    });
    format!(
        "{prefix}-{process}-{}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
