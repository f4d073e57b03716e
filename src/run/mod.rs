//! The use case of the commands that build: [`command::run_command`] compiles, selects,
//! opens the target and runs seeds, models and tests in DAG order, with audits before
//! publishing, then records the run. `invocation.rs` is how every command reads the
//! project; `schedule.rs` decides what runs when, `execute.rs` what each node does;
//! progress goes to a [`reporter::Reporter`] the caller supplies.

pub mod audit;
pub mod command;
pub mod execute;
pub mod freshness;
pub mod invocation;
pub mod querier;
pub mod reporter;
pub mod reuse;
pub mod schedule;
pub mod seeds;
#[cfg(test)]
mod tests;
pub mod unit;
