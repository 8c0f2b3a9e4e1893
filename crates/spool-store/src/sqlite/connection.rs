//! Database URLs and how each kind of connection is opened and tuned.

use super::error::Error;
use crate::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Parses `sqlite://PATH` or `sqlite:PATH` into a file path.
pub(super) fn database_path(url: &str) -> Result<PathBuf, StoreError> {
    let bad = |reason: &str| StoreError::Url {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| bad("expected sqlite://PATH"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Err(bad(
            "the log must be a file: give a path, e.g. sqlite://./spool.db",
        ));
    }
    Ok(PathBuf::from(path))
}

/// What a connection is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Writer,
    /// Copies the WAL into the database file: needs write access, writes no rows.
    Checkpointer,
    Reader,
}

pub(super) fn open_connection(path: &Path, role: Role) -> Result<Connection, Error> {
    let flags = match role {
        Role::Writer => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        Role::Checkpointer => OpenFlags::SQLITE_OPEN_READ_WRITE,
        Role::Reader => OpenFlags::SQLITE_OPEN_READ_ONLY,
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if role == Role::Writer {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Runs append to many places of the log's B-tree at once; a larger
        // page cache keeps those pages hot (the default is 2 MiB).
        conn.pragma_update(None, "cache_size", -65536)?;
        // Checkpoints copy the WAL into the database file; done by the
        // commit that crosses the threshold, they stall the writer (and
        // so every client's next event) for milliseconds. The checkpointer
        // thread does them beside it instead.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // The WAL file is reused from its start after each full
        // checkpoint; this bounds what it keeps on disk between bursts.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    }
    Ok(conn)
}

/// What a commit survives: the promise made to a client that has seen an
/// event (clients see events only after their batch commits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// WAL with `synchronous=NORMAL`: a commit survives the process being
    /// killed, not an OS crash or power loss (the WAL is synced at
    /// checkpoints, not at each commit).
    #[default]
    Process,
    /// WAL with `synchronous=FULL`: each commit (one per group-commit
    /// batch) syncs the WAL to disk before it returns, so it survives an OS
    /// crash or power loss too, at the cost of one fsync per batch.
    Fsync,
}

/// Sets the writing connection's `synchronous` for `durability`.
pub(super) fn apply_durability(conn: &Connection, durability: Durability) -> Result<(), Error> {
    let synchronous = match durability {
        Durability::Process => "NORMAL",
        Durability::Fsync => "FULL",
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsync_durability_is_synchronous_full() {
        let dir = std::env::temp_dir().join(format!("spool-durability-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conn = open_connection(&dir.join("d.db"), Role::Writer).unwrap();
        let synchronous = |conn: &Connection| -> i64 {
            conn.query_row("PRAGMA synchronous", [], |r| r.get(0))
                .unwrap()
        };
        // 1 is NORMAL, 2 is FULL.
        assert_eq!(synchronous(&conn), 1);
        apply_durability(&conn, Durability::Fsync).unwrap();
        assert_eq!(synchronous(&conn), 2);
        apply_durability(&conn, Durability::Process).unwrap();
        assert_eq!(synchronous(&conn), 1);
    }

    #[test]
    fn urls_name_a_file() {
        assert_eq!(
            database_path("sqlite://./a.db?mode=rwc").unwrap(),
            PathBuf::from("./a.db")
        );
        assert_eq!(database_path("sqlite:b.db").unwrap(), PathBuf::from("b.db"));
        for bad in ["postgres://x", "sqlite://", "sqlite::memory:"] {
            assert!(
                matches!(database_path(bad), Err(StoreError::Url { .. })),
                "{bad}"
            );
        }
    }
}
