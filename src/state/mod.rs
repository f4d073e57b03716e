//! Run state and artifacts: `manifest.json` (what the project is), written with sorted
//! keys so the same project gives the same bytes; reading another build's artifacts back
//! (`artifacts.rs`), comparing the project with them (`diff.rs`), and writing a build's
//! artifacts (`write.rs`), and the last run's figures for Prometheus (`metrics.rs`).

pub mod artifacts;
pub mod diff;
pub mod manifest;
pub mod metrics;
pub mod run_results;
pub mod write;
