//! The PostgreSQL schema's migrations and how far a database has applied
//! them.
//!
//! `spool_migrations` records each applied migration. Each one runs in its
//! own transaction with its record, under a transaction-scoped advisory
//! lock keyed by the schema: instances starting together apply each
//! migration once, and a crash leaves the schema at a whole migration.

use super::error::Error;
use crate::StoreError;

/// Schema migrations, applied in order. Append only: never edit or reorder
/// one that has shipped.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_init.sql"),
    include_str!("../../migrations/postgres/0002_api_agents.sql"),
];

/// Applies the migrations `client`'s schema lacks.
pub(super) async fn migrate_client(client: &mut tokio_postgres::Client) -> Result<(), Error> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS spool_migrations (
                 version    INTEGER PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await
        .or_else(|e| {
            // Two instances creating the table at once: one wins, and the
            // other's unique violation on the catalog means it exists.
            if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
                Ok(())
            } else {
                Err(e)
            }
        })?;
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let version = i as i32 + 1;
        let tx = client.transaction().await?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('spool_migrations:' || current_schema()))",
            &[],
        )
        .await?;
        let applied = tx
            .query_opt(
                "SELECT 1 FROM spool_migrations WHERE version = $1",
                &[&version],
            )
            .await?
            .is_some();
        if !applied {
            tx.batch_execute(sql).await?;
            tx.execute(
                "INSERT INTO spool_migrations (version) VALUES ($1)",
                &[&version],
            )
            .await?;
        }
        tx.commit().await?;
    }
    let newest: Option<i32> = client
        .query_one("SELECT max(version) FROM spool_migrations", &[])
        .await?
        .try_get(0)?;
    if let Some(newest) = newest
        && newest as usize > MIGRATIONS.len()
    {
        return Err(StoreError::Corrupt(format!(
            "the database has migration {newest} applied; this build knows {}: \
             it was written by a newer spool",
            MIGRATIONS.len()
        ))
        .into());
    }
    Ok(())
}
