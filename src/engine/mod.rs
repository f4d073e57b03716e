//! Engines: where compiled models run. `local` is the embedded engine (DataFusion over
//! Parquet in a warehouse directory); `failpoint` lets crash-safety tests abort a run at
//! named points.

pub mod datafusion;
mod error;
pub mod failpoint;
pub mod local;

pub use self::error::EngineError;
