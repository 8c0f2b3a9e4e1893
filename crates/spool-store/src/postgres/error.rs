//! The one place PostgreSQL's errors (the driver's and the pool's) become
//! backend-neutral [`StoreError`]s.

use crate::StoreError;
use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

/// Maps a driver error: a lost connection, contention (serialization
/// failures, deadlocks, lock timeouts) and resource exhaustion are
/// transient; a violated constraint or a bad statement is a permanent
/// refusal; a value that does not have its column's type is corrupt.
pub(super) fn from_pg(e: tokio_postgres::Error) -> StoreError {
    let message = e.to_string();
    let Some(code) = e.code() else {
        // No SQLSTATE: the connection failed or closed, or a value could
        // not be converted.
        if e.is_closed() || std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>())
        {
            return StoreError::Unavailable(message);
        }
        return StoreError::Corrupt(message);
    };
    let transient = is_transient(code);
    if matches!(&code.code()[..2], "08" | "57") {
        return StoreError::Unavailable(message);
    }
    if *code == SqlState::DATA_CORRUPTED || *code == SqlState::INDEX_CORRUPTED {
        return StoreError::Corrupt(message);
    }
    StoreError::Backend { message, transient }
}

/// Whether a statement refused with `code` may succeed if tried again:
/// connection exceptions (08), transaction rollbacks such as serialization
/// failures and deadlocks (40), insufficient resources (53), an operator
/// intervening (57), a lock not available, a cancelled statement.
fn is_transient(code: &SqlState) -> bool {
    matches!(&code.code()[..2], "08" | "40" | "53" | "57")
        || *code == SqlState::LOCK_NOT_AVAILABLE
        || *code == SqlState::QUERY_CANCELED
}

/// A connection could not be had from the pool: the database is
/// unreachable (or every connection stayed busy past the pool's wait).
pub(super) fn from_pool(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => from_pg(e),
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// An error inside the PostgreSQL store: the driver's or the pool's,
/// mapped when it is made, so `?` works on both inside the store and the
/// store's methods return [`StoreError`]s only.
#[derive(Debug)]
pub(super) struct Error(pub(super) StoreError);

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Self(from_pg(e))
    }
}

impl From<PoolError> for Error {
    fn from(e: PoolError) -> Self {
        Self(from_pool(e))
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Self(e)
    }
}

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        e.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contention_and_exhaustion_are_transient_and_refusals_are_not() {
        for state in [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::LOCK_NOT_AVAILABLE,
        ] {
            assert!(is_transient(&state), "{state:?}");
        }
        for state in [
            SqlState::UNIQUE_VIOLATION,
            SqlState::SYNTAX_ERROR,
            SqlState::UNDEFINED_TABLE,
        ] {
            assert!(!is_transient(&state), "{state:?}");
        }
    }
}
