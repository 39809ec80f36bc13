//! Local stand-ins for baton's tests, simulation, demo and benchmarks: core's ports in memory
//! ([`memory`]), an independent brute-force reading of the trigger semantics ([`oracle`]), the
//! moto AWS emulator (a real AWS API server from PyPI, started on 127.0.0.1 on a free port) and
//! helpers to create baton's resources in it.
//!
//! The emulator is reached through the real AWS SDK clients, configured exactly as in Lambda but
//! with `endpoint_url` pointing at loopback.

pub mod central;
pub mod cfn_capture;
pub mod fault_proxy;
pub mod member;
pub mod memory;
pub mod moto;
pub mod oracle;
pub mod rng;
pub mod slack_standin;

pub use central::Central;
pub use member::MemberAccount;
pub use moto::{unique, Moto, MotoError, REGION};

pub mod observe;
pub mod requests;

pub use observe::{lambda_sns_event, status_change_event, BusWatch, TopicWatch};
pub use requests::RequestCounter;

/// The send lease of a claimer that is gone: it ended long ago, so any delivery may take the
/// claimed trigger's lease at once. Tests that claim directly in the ledger pass it.
pub fn ended_lease() -> baton_core::ports::Lease {
    baton_core::ports::Lease {
        holder: "a claimer that is gone".to_owned(),
        until: baton_core::Timestamp(0),
    }
}

/// Serves `app` on a free loopback port (127.0.0.1 only) until the returned server is dropped
/// (or its runtime ends): the local servers of the tests, the demo and the benchmarks.
pub async fn serve_on_loopback(app: axum::Router) -> std::io::Result<LoopbackServer> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(LoopbackServer { address, task })
}

/// A server [`serve_on_loopback`] started; it stops when dropped.
pub struct LoopbackServer {
    address: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl LoopbackServer {
    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> std::net::SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
