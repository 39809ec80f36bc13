//! The Lambda deadline as an `Instant`, for handlers that retry until shortly before it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The instant of a Lambda deadline given in milliseconds since the epoch (`Context::deadline`).
pub fn deadline_from_epoch_millis(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default();
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}
