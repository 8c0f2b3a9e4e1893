//! Execution leases: each instance's row in `instances`, renewed while it
//! lives, and the take-over of runs whose executor's lease ran out. Times
//! are the database's clock in milliseconds, so instances' clocks need not
//! agree.

use super::{PostgresStore, neutral};
use crate::codec::parse_id;
use crate::{ExecutionLeases, Orphan, StoreError};
use async_trait::async_trait;
use spool_core::ids::ResponseId;
use std::time::Duration;

/// The database's clock, in milliseconds since the epoch.
const NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::int8";

impl PostgresStore {
    /// Registers this instance with a lease of `ttl`.
    pub(super) async fn register(&self, ttl: Duration) -> Result<(), StoreError> {
        neutral(async {
            let client = self.client().await?;
            client
                .execute(
                    &format!(
                        "INSERT INTO instances (id, started_at, lease_until) \
                         VALUES ($1, {NOW_MS}, {NOW_MS} + $2) \
                         ON CONFLICT (id) DO UPDATE SET lease_until = excluded.lease_until"
                    ),
                    &[&self.inner.instance, &(ttl.as_millis() as i64)],
                )
                .await?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl ExecutionLeases for PostgresStore {
    fn instance_id(&self) -> &str {
        &self.inner.instance
    }

    async fn renew_lease(&self, ttl: Duration) -> Result<(), StoreError> {
        // An upsert: an instance whose row was cleaned away re-registers.
        self.register(ttl).await
    }

    async fn take_over_orphans(&self) -> Result<Vec<Orphan>, StoreError> {
        neutral(async {
            let client = self.client().await?;
            // `FOR UPDATE SKIP LOCKED`: instances sweeping at once split the
            // orphans between them instead of taking one twice.
            let rows = client
                .query(
                    &format!(
                        "WITH lost AS ( \
                             SELECT r.id, r.executor FROM responses r \
                             WHERE r.status IN ('queued', 'in_progress') \
                               AND r.executor IS DISTINCT FROM $1 \
                               AND NOT EXISTS (SELECT 1 FROM instances i \
                                   WHERE i.id = r.executor AND i.lease_until > {NOW_MS}) \
                             FOR UPDATE OF r SKIP LOCKED) \
                         UPDATE responses r SET executor = $1 FROM lost \
                         WHERE r.id = lost.id RETURNING r.id, lost.executor"
                    ),
                    &[&self.inner.instance],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(Orphan {
                        id: parse_id(r.try_get(0)?)?,
                        executor: r
                            .try_get::<_, Option<String>>(1)?
                            .unwrap_or_else(|| "an unknown instance".to_owned()),
                    })
                })
                .collect()
        })
        .await
    }

    async fn own_unfinished(&self) -> Result<Vec<ResponseId>, StoreError> {
        neutral(async {
            let client = self.client().await?;
            let statement = client
                .prepare_cached(
                    "SELECT id FROM responses \
                     WHERE status IN ('queued', 'in_progress') AND executor = $1",
                )
                .await?;
            let rows = client.query(&statement, &[&self.inner.instance]).await?;
            rows.iter().map(|r| Ok(parse_id(r.try_get(0)?)?)).collect()
        })
        .await
    }

    async fn retire(&self) -> Result<(), StoreError> {
        neutral(async {
            let client = self.client().await?;
            client
                .execute(
                    "DELETE FROM instances WHERE id = $1",
                    &[&self.inner.instance],
                )
                .await?;
            Ok(())
        })
        .await
    }
}
