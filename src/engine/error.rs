//! Errors of the engines: a kind the layers above may act on (a held lock, a refused
//! connection), the message, optional help, and the engine's own error as the source.
//! Each engine converts its own errors (`local/`, `postgres/`); no engine's error types
//! appear here, so one engine's failures never leak into another's.

use std::path::Path;

use datafusion::arrow::error::ArrowError;

use crate::diagnostics::Code;

use super::incremental::IncrementalError;
use super::snapshot::SnapshotError;

/// What kind of failure an [`EngineError`] is: what the command does about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Another run holds the target's writer lock.
    Locked,
    /// The target could not be reached, or refused the connection.
    Connect,
    /// The run may not write where it must (a missing privilege, a read-only folder).
    Permission,
    /// A rebuild would break relations built on top of it.
    Dependents,
    /// A statement, a read or a write failed.
    Failed,
    /// etlm broke one of its own invariants.
    Internal,
}

/// Something an engine could not do.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct EngineError {
    pub kind: ErrorKind,
    message: String,
    /// What to change, when the engine knows (a connection setting).
    pub help: Option<String>,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl EngineError {
    /// An error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> EngineError {
        EngineError { kind, message: message.into(), help: None, source: None }
    }

    /// A failure carrying the error that caused it (shown as the message).
    pub fn failed(source: impl std::error::Error + Send + Sync + 'static) -> EngineError {
        EngineError { kind: ErrorKind::Failed, message: source.to_string(), help: None, source: Some(Box::new(source)) }
    }

    /// An invariant of etlm's own that did not hold.
    pub fn internal(message: impl Into<String>) -> EngineError {
        EngineError::new(ErrorKind::Internal, format!("internal error: {}", message.into()))
    }

    /// A file or folder that could not be written or read.
    pub fn io(path: &Path, e: std::io::Error) -> EngineError {
        EngineError { message: format!("could not write `{}`: {e}", path.display()), ..EngineError::failed(e) }
    }

    /// Adds what the user can change.
    pub fn with_help(mut self, help: impl Into<String>) -> EngineError {
        self.help = Some(help.into());
        self
    }

    /// The diagnostic code when this error stops a command.
    pub fn code(&self) -> Code {
        match self.kind {
            ErrorKind::Locked => Code::WarehouseLocked,
            ErrorKind::Connect => Code::ConnectionFailed,
            ErrorKind::Dependents => Code::DependentRelations,
            ErrorKind::Permission => Code::PermissionDenied,
            ErrorKind::Failed | ErrorKind::Internal => Code::EngineError,
        }
    }
}

impl From<ArrowError> for EngineError {
    fn from(e: ArrowError) -> EngineError {
        EngineError::failed(e)
    }
}

impl From<IncrementalError> for EngineError {
    fn from(e: IncrementalError) -> EngineError {
        EngineError::failed(e)
    }
}

impl From<SnapshotError> for EngineError {
    fn from(e: SnapshotError) -> EngineError {
        EngineError::failed(e)
    }
}
