//! Errors of the engines, with the code users see when one stops a command.

use std::path::PathBuf;

use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use datafusion::parquet::errors::ParquetError;

use super::incremental::IncrementalError;
use super::local::{CombineError, SessionError, StorageError, WriteError};
use super::snapshot::SnapshotError;

/// Something an engine could not do.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Another run holds the target's writer lock.
    #[error("{0}")]
    Locked(String),
    #[error(transparent)]
    Storage(StorageError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Incremental(#[from] IncrementalError),
    #[error(transparent)]
    Combine(#[from] CombineError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    #[error(transparent)]
    Arrow(#[from] ArrowError),
    #[error(transparent)]
    Parquet(#[from] ParquetError),
    /// A Postgres server could not be reached, or refused the connection; `help` says
    /// what to change.
    #[error("could not connect to postgres at {target}: {reason}")]
    Connect { target: String, reason: String, help: String },
    /// A statement failed on Postgres (the message is the server's, with its detail).
    #[error("{0}")]
    Postgres(String),
    /// A rebuild would break relations built on top of it.
    #[error("{0}")]
    Dependents(String),
    #[error("could not write `{0}`: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StorageError> for EngineError {
    fn from(e: StorageError) -> EngineError {
        match e {
            StorageError::Locked { .. } => EngineError::Locked(e.to_string()),
            other => EngineError::Storage(other),
        }
    }
}

impl EngineError {
    /// The diagnostic code when this error stops a command.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Locked(_) => "warehouse-locked",
            EngineError::Connect { .. } => "connection-failed",
            EngineError::Dependents(_) => "dependent-relations",
            _ => "engine-error",
        }
    }
}
