//! Running a compiled project on an engine: seeds and models in DAG order, results,
//! run history. `schedule.rs` decides what runs when; this module decides what each node
//! does.

pub mod execute;
pub mod schedule;
pub mod seeds;
