//! The one place SQLite's errors become backend-neutral [`StoreError`]s.

use crate::StoreError;
use rusqlite::ErrorCode;

/// An error inside the SQLite store: either SQLite's own, mapped to a
/// [`StoreError`] when it leaves the store, or one already neutral.
#[derive(Debug)]
pub(super) enum Error {
    Sqlite(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sqlite(e)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        match e {
            Error::Sqlite(e) => from_sqlite(e),
            Error::Store(e) => e,
        }
    }
}

/// Maps a SQLite error: contention and resource exhaustion are transient
/// (a retry may succeed), a damaged file is corrupt, a file that cannot be
/// opened is unavailable, and anything else is a permanent refusal.
pub(super) fn from_sqlite(e: rusqlite::Error) -> StoreError {
    let message = e.to_string();
    match &e {
        rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure
            | ErrorCode::OutOfMemory
            | ErrorCode::FileLockingProtocolFailed => StoreError::Backend {
                message,
                transient: true,
            },
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => StoreError::Corrupt(message),
            ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::NoLargeFileSupport => {
                StoreError::Unavailable(message)
            }
            _ => StoreError::Backend {
                message,
                transient: false,
            },
        },
        // A stored value that does not have the type its column promises.
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::Utf8Error(..) => StoreError::Corrupt(message),
        _ => StoreError::Backend {
            message,
            transient: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: std::ffi::c_int) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn contention_and_exhaustion_are_transient_and_constraints_are_not() {
        for code in [
            rusqlite::ffi::SQLITE_BUSY,
            rusqlite::ffi::SQLITE_LOCKED,
            rusqlite::ffi::SQLITE_FULL,
            rusqlite::ffi::SQLITE_IOERR,
        ] {
            assert!(from_sqlite(failure(code)).is_transient(), "code {code}");
        }
        let constraint = from_sqlite(failure(rusqlite::ffi::SQLITE_CONSTRAINT));
        assert!(matches!(
            constraint,
            StoreError::Backend {
                transient: false,
                ..
            }
        ));
        assert!(matches!(
            from_sqlite(failure(rusqlite::ffi::SQLITE_CORRUPT)),
            StoreError::Corrupt(_)
        ));
        assert!(matches!(
            from_sqlite(failure(rusqlite::ffi::SQLITE_CANTOPEN)),
            StoreError::Unavailable(_)
        ));
    }
}
