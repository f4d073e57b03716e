//! The connections of one engine: idle ones are reused, every one opened can be
//! cancelled (Ctrl-C). The engine and its history store share one pool.

use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use tokio_postgres::{CancelToken, Client};

use super::connect::{self, PgSettings};
use super::{pg_error, rows};
use crate::engine::EngineError;
use crate::engine::sql_history::SqlSession;
use crate::history::ColumnType;

/// Connections to one server.
pub struct Pool {
    pub settings: PgSettings,
    idle: Mutex<Vec<Client>>,
    /// Cancel tokens of every connection opened, for Ctrl-C.
    cancels: Mutex<Vec<CancelToken>>,
}

impl Pool {
    pub fn new(settings: PgSettings) -> Pool {
        Pool { settings, idle: Mutex::default(), cancels: Mutex::default() }
    }

    /// A connection from the pool (a new one when none is idle).
    pub async fn client(&self) -> Result<Pooled<'_>, EngineError> {
        let idle = self.idle.lock().expect("pool").pop();
        let client = match idle {
            Some(c) if !c.is_closed() => c,
            _ => {
                let c = connect::connect(&self.settings).await?;
                self.cancels.lock().expect("cancel tokens").push(c.cancel_token());
                c
            }
        };
        Ok(Pooled { pool: self, client: Some(client) })
    }

    /// Cancels every running statement (Ctrl-C); their transactions roll back.
    pub async fn cancel_all(&self) {
        let tokens: Vec<CancelToken> = self.cancels.lock().expect("cancel tokens").clone();
        for token in tokens {
            connect::cancel(&self.settings, &token).await;
        }
    }
}

/// A pooled connection, back to the pool when dropped (unless it died).
pub struct Pooled<'p> {
    pool: &'p Pool,
    client: Option<Client>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("a pooled client until dropped")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("a pooled client until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take().filter(|c| !c.is_closed()) {
            self.pool.idle.lock().expect("pool").push(client);
        }
    }
}

#[async_trait::async_trait]
impl SqlSession for Arc<Pool> {
    async fn transaction(&self, statements: &[String]) -> Result<(), EngineError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        for statement in statements {
            tx.batch_execute(statement).await.map_err(|e| pg_error(&e))?;
        }
        tx.commit().await.map_err(|e| pg_error(&e))
    }

    async fn rows(&self, sql: &str) -> Result<Vec<RecordBatch>, EngineError> {
        rows::query_rows(&*self.client().await?, sql).await
    }

    fn type_name(&self, ty: ColumnType) -> &'static str {
        match ty {
            ColumnType::Text => "text",
            ColumnType::Int => "bigint",
            ColumnType::Float => "double precision",
            ColumnType::Bool => "boolean",
            ColumnType::Time => "timestamptz",
            ColumnType::LocalTime => "timestamp",
        }
    }
}
