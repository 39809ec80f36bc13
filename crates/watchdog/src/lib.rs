//! watchdog
