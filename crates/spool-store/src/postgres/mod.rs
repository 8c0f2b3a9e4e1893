//! The PostgreSQL store, for several spool instances sharing one database.
//!
//! Reads and writes go through a bounded pool of connections
//! (deadpool-postgres over tokio-postgres, statements cached per
//! connection). A batch from the group-commit writer is one transaction of
//! a few multi-row statements (`UNNEST` of arrays), whatever its size
//! (`writer.rs`). Tables live in the connection's current schema (set with
//! `?options=-csearch_path%3DNAME` in the URL), so one database can hold
//! several deployments, and each test its own.
//!
//! What makes concurrent instances safe is in the schema: a log position
//! is a primary key (a second writer of it is refused, never interleaved),
//! a conversation's next item position is a counter taken under its row's
//! lock, and a claim is a row update under that lock.
//!
//! Every transaction that appends events announces them after commit with
//! a `NOTIFY` carrying `{run, first seq, last seq}` (`notify.rs`): other
//! instances read the events from the table. Instances hold leases
//! (`leases.rs`) on the runs they execute.
//!
//! What each table holds is served from its own file: `responses.rs` (the
//! log), `conversations.rs`, `agents.rs`, `leases.rs`; `error.rs` is the
//! one place the driver's errors become [`StoreError`]s.

mod agents;
mod api_agents;
mod conversations;
mod error;
mod leases;
mod migrations;
mod notify;
mod paging;
mod responses;
mod writer;

pub use notify::{Notice, Notices};

use crate::StoreError;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use error::Error;
use std::str::FromStr;
use std::sync::Arc;
use tokio_postgres::NoTls;

/// Connections in the pool: the writer's batches, reads and claims.
const POOL_SIZE: usize = 16;

/// The PostgreSQL implementation of [`Store`](crate::Store).
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// How to open a connection outside the pool (the listener's).
    config: tokio_postgres::Config,
    /// This instance: the executor recorded on the runs it creates and the
    /// claimant of the conversations it claims.
    instance: String,
    /// The channels this deployment's notifications use, named after its
    /// schema so deployments sharing a database do not hear each other.
    channels: notify::Channels,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("instance", &self.inner.instance)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://…` or
    /// `postgresql://…`), brings its schema up to date, and registers
    /// `instance` (a fresh id per process) with a lease of `lease_ttl`.
    pub async fn open(
        url: &str,
        instance: &str,
        lease_ttl: std::time::Duration,
    ) -> Result<Self, StoreError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StoreError::Url {
                url: url.to_owned(),
                reason: "expected postgres://USER@HOST:PORT/DATABASE".into(),
            });
        }
        let config = tokio_postgres::Config::from_str(url).map_err(|e| StoreError::Url {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(std::time::Duration::from_secs(30)))
            .create_timeout(Some(std::time::Duration::from_secs(10)))
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let schema = {
            let mut client = pool.get().await.map_err(Error::from)?;
            migrations::migrate_client(&mut client).await?;
            let row = client
                .query_one("SELECT current_schema()::text", &[])
                .await
                .map_err(Error::from)?;
            row.get::<_, Option<String>>(0).ok_or_else(|| {
                StoreError::Unavailable(
                    "the connection has no current schema (check search_path)".into(),
                )
            })?
        };
        let store = Self {
            inner: Arc::new(Inner {
                pool,
                config,
                instance: instance.to_owned(),
                channels: notify::Channels::for_schema(&schema),
            }),
        };
        store.register(lease_ttl).await?;
        Ok(store)
    }

    /// This instance's id.
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, Error> {
        Ok(self.inner.pool.get().await?)
    }
}

/// Applies the migrations the database at `url` lacks, and nothing else:
/// what `spool migrate` does.
pub async fn migrate(url: &str) -> Result<(), StoreError> {
    let config = tokio_postgres::Config::from_str(url).map_err(|e| StoreError::Url {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    let (mut client, connection) = config.connect(NoTls).await.map_err(Error::from)?;
    let driver = tokio::spawn(connection);
    let result = migrations::migrate_client(&mut client).await;
    drop(client);
    let _ = driver.await;
    Ok(result?)
}

/// Runs a body written with the store's own [`Error`] (so `?` takes the
/// driver's, the pool's and neutral errors alike) and answers with a
/// [`StoreError`].
async fn neutral<T>(body: impl Future<Output = Result<T, Error>>) -> Result<T, StoreError> {
    body.await.map_err(StoreError::from)
}

/// Creates schema `name` in the database at `url` (if missing) and returns
/// the URL whose connections use it: one database, several deployments (or
/// tests) side by side. `name` must be a plain identifier.
pub async fn create_schema(url: &str, name: &str) -> Result<String, StoreError> {
    let plain = !name.is_empty()
        && name.len() < 64
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !plain {
        return Err(StoreError::Url {
            url: url.to_owned(),
            reason: format!("'{name}' is not a plain lowercase schema name"),
        });
    }
    let config = tokio_postgres::Config::from_str(url).map_err(|e| StoreError::Url {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    neutral(async {
        let (client, connection) = config.connect(NoTls).await?;
        let driver = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {name}"))
            .await?;
        drop(client);
        let _ = driver.await;
        Ok(())
    })
    .await?;
    let separator = if url.contains('?') { '&' } else { '?' };
    Ok(format!("{url}{separator}options=-csearch_path%3D{name}"))
}
