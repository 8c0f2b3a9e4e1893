//! The embedded SQLite store: opening it, its threads, and how reads and
//! writes reach a connection.
//!
//! One thread owns the only writing connection and applies each batch in
//! one transaction with cached prepared statements (`writer.rs`); reads run
//! on a bounded pool of read-only connections on tokio's blocking threads
//! (`pool.rs`); a checkpointer thread copies the WAL into the database file
//! (`checkpoint.rs`). WAL mode with `synchronous=NORMAL` by default: a commit
//! survives a killed process (an OS crash or power loss can take the last
//! commits), readers never block the writer, and a batch costs one commit,
//! not one per event. [`Durability::Fsync`] makes it `synchronous=FULL`:
//! one WAL sync per commit, so per group-commit batch.
//!
//! What each table holds is served from its own file: `responses.rs` (the
//! log), `conversations.rs`, `agents.rs`; `error.rs` is the one place SQLite's
//! errors become [`StoreError`]s.

mod agents;
mod api_agents;
mod checkpoint;
mod connection;
mod conversations;
mod error;
mod migrations;
mod paging;
mod pool;
mod responses;
mod writer;

use crate::StoreError;
pub use connection::Durability;
use connection::{Role, apply_durability, database_path, open_connection};
use error::Error;
use pool::{MAX_READERS, ReaderPool};
use rusqlite::Connection;
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use tokio::sync::oneshot;
use writer::Job;

/// The SQLite implementation of [`Store`](crate::Store).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Jobs for the writer thread, which owns the only writing connection.
    jobs: Mutex<mpsc::Sender<Job>>,
    readers: Arc<ReaderPool>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url`, e.g.
    /// `sqlite://./spool.db`, and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with_durability(url, Durability::default()).await
    }

    /// Like [`SqliteStore::open`], with commits as durable as `durability`
    /// says.
    pub async fn open_with_durability(
        url: &str,
        durability: Durability,
    ) -> Result<Self, StoreError> {
        let path = database_path(url)?;
        let opened = path.clone();
        let (writer, checkpointer) = tokio::task::spawn_blocking(move || {
            let mut writer = open_connection(&opened, Role::Writer)?;
            apply_durability(&writer, durability)?;
            migrations::migrate(&mut writer)?;
            let checkpointer = open_connection(&opened, Role::Checkpointer)?;
            Ok::<_, Error>((writer, checkpointer))
        })
        .await
        .map_err(|_| StoreError::Closed)??;
        let (jobs, receiver) = mpsc::channel();
        let (stop_checkpoints, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("spool-sqlite-writer".into())
            .spawn(move || {
                writer::run_writer(writer, receiver);
                drop(stop_checkpoints);
            })
            .map_err(|e| StoreError::Unavailable(format!("cannot start the writer thread: {e}")))?;
        std::thread::Builder::new()
            .name("spool-sqlite-checkpoint".into())
            .spawn(move || checkpoint::run_checkpoints(checkpointer, stopped))
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot start the checkpoint thread: {e}"))
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                jobs: Mutex::new(jobs),
                readers: Arc::new(ReaderPool::new(path, MAX_READERS)),
            }),
        })
    }

    fn send_job(&self, job: Job) -> Result<(), StoreError> {
        self.inner
            .jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(job)
            .map_err(|_| StoreError::Closed)
    }

    /// Runs `write` on the writing connection, on the writer thread.
    async fn on_writer<T: Send + 'static>(
        &self,
        write: impl FnOnce(&mut Connection) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send_job(Job::Run(Box::new(move |conn| {
            let _ = reply.send(write(conn).map_err(StoreError::from));
        })))?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `read` on a reader connection on a blocking thread.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.inner.readers.read(read).await
    }
}
