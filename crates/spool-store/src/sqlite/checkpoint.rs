//! The checkpointer thread: copies the WAL into the database file beside
//! the writer, so no commit stalls on a checkpoint.

use rusqlite::Connection;
use std::sync::mpsc;
use std::time::Duration;

/// How often the checkpointer copies the WAL into the database file.
pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
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
}
