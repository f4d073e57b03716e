//! Running a compiled project on an engine: seeds, models and tests in DAG order,
//! audits before publishing, results, run history. `schedule.rs` decides what runs when; this module decides what each node
//! does.

pub mod audit;
pub mod execute;
pub mod schedule;
pub mod seeds;
pub mod unit;
