//! Run state and artifacts: `manifest.json` (what the project is), written with sorted
//! keys so the same project gives the same bytes.

pub mod manifest;
pub mod run_results;
