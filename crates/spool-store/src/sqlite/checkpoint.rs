//! The checkpointer thread: copies the WAL into the database file beside
//! the writer, so no commit stalls on a checkpoint.

use rusqlite::Connection;
use std::sync::mpsc;
use std::time::Duration;

/// How often the checkpointer copies the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// WAL frames (pages) past which the checkpointer truncates the WAL:
/// 262,144 pages of 4 KiB, 1 GiB. Truncating stalls writes for a moment, so
/// it is kept for writes that never pause long enough for passive
/// checkpoints to catch up.
const MAX_WAL_FRAMES: i64 = 262_144;

/// Copies the WAL into the database file now and then, without blocking the
/// writer (a passive checkpoint copies what no reader still needs), until
/// `stop` is dropped.
pub(super) fn run_checkpoints(conn: Connection, stop: mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        checkpoint(&conn);
    }
}

fn checkpoint(conn: &Connection) {
    // (busy, frames in the WAL, frames copied)
    let checkpoint = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    });
    match checkpoint {
        // The WAL rewinds only when a write starts with every frame
        // copied; under writes that never pause (or readers that pin old
        // frames) it keeps growing, so past a bound it is truncated,
        // briefly waiting for readers and the writer.
        Ok((_, frames, _)) if frames > MAX_WAL_FRAMES => {
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "truncating the WAL failed");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "a WAL checkpoint failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::connection::{Role, open_connection};

    #[test]
    fn a_checkpoint_copies_the_wal_into_the_database_file() {
        let dir =
            std::env::temp_dir().join(format!("checkpoint-test-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.db");
        let writer = open_connection(&path, Role::Writer).unwrap();
        writer
            .execute_batch(
                "CREATE TABLE t (x TEXT); \
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) \
                 INSERT INTO t SELECT printf('%0100d', i) FROM n;",
            )
            .unwrap();
        // The writer never checkpoints on its own: the rows are in the WAL.
        let before = std::fs::metadata(&path).unwrap().len();
        checkpoint(&open_connection(&path, Role::Checkpointer).unwrap());
        let after = std::fs::metadata(&path).unwrap().len();
        assert!(
            after > before,
            "the database file did not grow: {before} -> {after}"
        );
    }
}
