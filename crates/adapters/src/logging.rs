//! Structured logs for the functions: one JSON object per event on stdout (CloudWatch adds the
//! time), filtered by `RUST_LOG` (default `info`).

/// Installs the JSON log subscriber. Call once, first thing in `main`.
pub fn init() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(false)
        .without_time()
        .init();
}
