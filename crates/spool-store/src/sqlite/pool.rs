//! The pool of read-only connections.
//!
//! A semaphore bounds the connections that are *open*, in use or idle, not
//! only the idle ones: a burst of reads waits for a connection instead of
//! opening one per blocking thread (tokio allows hundreds). tokio's
//! semaphore is already a dependency; a pooling crate (r2d2, deadpool)
//! would add its own threads and crates for the same few lines.

use super::connection::{Role, open_connection};
use super::error::Error;
use crate::StoreError;
use rusqlite::Connection;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::Semaphore;

/// Reader connections open at once, at most.
pub(super) const MAX_READERS: usize = 8;

#[derive(Debug)]
pub(super) struct ReaderPool {
    path: PathBuf,
    /// One permit per connection that may be open.
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<Connection>>,
}

impl ReaderPool {
    pub(super) fn new(path: PathBuf, size: usize) -> Self {
        Self {
            path,
            permits: Arc::new(Semaphore::new(size)),
            idle: Mutex::new(Vec::with_capacity(size)),
        }
    }

    /// Runs `read` on a reader connection on a blocking thread, waiting for
    /// one if all are busy.
    pub(super) async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        read: impl FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let idle = pool.idle().pop();
            let conn = match idle {
                Some(conn) => conn,
                None => open_connection(&pool.path, Role::Reader)?,
            };
            let result = read(&conn);
            // Back before the permit goes: a permit's holder always finds
            // an idle connection or room to open one.
            pool.idle().push(conn);
            Ok(result?)
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // Every critical section is one push or pop: poison leaves no
        // half-updated state.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Connections open now (idle ones; the in-use ones hold permits).
    #[cfg(test)]
    fn open_count(&self) -> usize {
        self.idle().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::sync::mpsc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_waits_for_a_connection_when_the_bound_is_reached() {
        let dir = std::env::temp_dir().join(format!("pool-test-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.db");
        open_connection(&path, Role::Writer).unwrap();
        let pool = Arc::new(ReaderPool::new(path, 2));
        let (entered_tx, mut entered) = mpsc::unbounded_channel();
        let mut releases = Vec::new();
        let mut reads = Vec::new();
        for n in 0..3 {
            let (release, released) = std::sync::mpsc::channel::<()>();
            releases.push(release);
            let (pool, entered_tx) = (pool.clone(), entered_tx.clone());
            reads.push(tokio::spawn(async move {
                pool.read(move |conn| {
                    let _ = entered_tx.send(n);
                    let _ = released.recv();
                    Ok(conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?)
                })
                .await
            }));
        }
        let first = entered.recv().await.unwrap();
        let second = entered.recv().await.unwrap();
        // Two connections are in use: a third read must not get one.
        assert!(
            tokio::time::timeout(Duration::from_millis(100), entered.recv())
                .await
                .is_err(),
            "a third connection was opened"
        );
        assert_eq!(pool.open_count(), 0);
        releases[first].send(()).unwrap();
        let third = entered.recv().await.unwrap();
        assert!(![first, second].contains(&third));
        for release in &releases {
            let _ = release.send(());
        }
        for read in reads {
            assert_eq!(read.await.unwrap().unwrap(), 1);
        }
        assert!(pool.open_count() <= 2);
    }
}
