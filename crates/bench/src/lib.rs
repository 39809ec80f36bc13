//! baton's benchmarks (`cargo xtask bench`): the release function binaries started as Lambda
//! starts them, through a local Runtime API stand-in with AWS calls going to the local emulator
//! (cold start, warm cost per event, peak memory), the release zips' sizes, and a replay of one
//! day of a 100,000-pipeline organisation through core's real flow over an in-memory store.
//!
//! Benchmarks print figures; nothing here fails on time. `docs/performance.md` records a run.

pub mod central;
pub mod counting_proxy;
pub mod measure;
pub mod process;
pub mod report;
pub mod runtime_api;
pub mod scale;
pub mod watchdog;
