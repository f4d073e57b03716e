//! Before a run writes anything: may this role create what the run will create? A
//! missing privilege found halfway would leave some models published and others not;
//! found here, it is one error naming every grant that is missing, and nothing changes.

use std::collections::BTreeSet;

use tokio_postgres::Client;

use super::pg_error;
use crate::engine::{EngineError, ErrorKind};
use crate::relation::quote_ident;

/// Fails unless the connected role may create relations in every one of `schemas`:
/// `USAGE` and `CREATE` on those that exist, `CREATE` on the database for those it must
/// create.
pub(super) async fn check(client: &Client, schemas: &BTreeSet<String>) -> Result<(), EngineError> {
    let names: Vec<&str> = schemas.iter().map(String::as_str).collect();
    let rows = client
        .query(
            "select s.name, n.oid is not null, \
               coalesce(has_schema_privilege(n.oid, 'USAGE') and has_schema_privilege(n.oid, 'CREATE'), false), \
               has_database_privilege(current_database(), 'CREATE'), \
               current_user::text, current_database()::text \
             from unnest($1::text[]) as s(name) left join pg_namespace n on n.nspname = s.name \
             order by s.name",
            &[&names],
        )
        .await
        .map_err(|e| pg_error(&e))?;
    let mut missing = Vec::new();
    let mut grants = Vec::new();
    let mut to_create = Vec::new();
    let (mut role, mut database) = (String::new(), String::new());
    for row in &rows {
        let (schema, exists, writable, create_db): (String, bool, bool, bool) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        (role, database) = (row.get(4), row.get(5));
        if exists && !writable {
            missing.push(format!("USAGE and CREATE on schema `{schema}`"));
            grants.push(format!("grant usage, create on schema {} to {}", quote_ident(&schema), quote_ident(&role)));
        } else if !exists && !create_db {
            to_create.push(format!("`{schema}`"));
        }
    }
    if !to_create.is_empty() {
        let plural = if to_create.len() == 1 { "" } else { "s" };
        missing.push(format!("CREATE on database `{database}` (to create schema{plural} {})", to_create.join(", ")));
        grants.push(format!("grant create on database {} to {}", quote_ident(&database), quote_ident(&role)));
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(EngineError::new(
        ErrorKind::Permission,
        format!("permission denied: role `{role}` needs {}; nothing was changed", missing.join(", ")),
    )
    .with_help(format!("as the owner or a superuser: {}", grants.join("; "))))
}
