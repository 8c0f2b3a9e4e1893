//! Whether the store takes writes, for `/readyz`.
//!
//! The writer records every batch's outcome, and the runtime every attempt
//! at ending a run whose end could not be written. The store counts as
//! unwritable while such a run waits for its end to be stored (those
//! attempts go on in the background, so they also notice the store
//! recovering), and for [`FAILURE_HOLD`] after a failed write that
//! nothing has contradicted since: spool has no write of its own to probe
//! with, so after that it lets new work try.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a failed write keeps the store reported unwritable when no
/// write has been tried since.
pub const FAILURE_HOLD: Duration = Duration::from_secs(10);

/// What the latest writes found.
#[derive(Debug, Default)]
pub struct StoreHealth {
    /// Runs waiting for their end to be stored because a write failed.
    ends_waiting: AtomicUsize,
    /// The latest failed write, when no write has succeeded since.
    failure: Mutex<Option<(Instant, String)>>,
}

impl StoreHealth {
    /// A write committed.
    pub fn wrote(&self) {
        if self.failure().take().is_some() {
            tracing::info!("the store takes writes again");
        }
    }

    /// A write failed as a whole (not one run's op refused).
    pub fn failed(&self, error: &dyn std::fmt::Display) {
        *self.failure() = Some((Instant::now(), error.to_string()));
    }

    /// Counts a run waiting for its end to be stored until the guard drops.
    pub fn end_waiting(&self) -> EndWaiting<'_> {
        self.ends_waiting.fetch_add(1, Ordering::SeqCst);
        EndWaiting(self)
    }

    /// `Ok` while the store takes writes; why it does not otherwise.
    pub fn status(&self) -> Result<(), String> {
        let failure = self.failure().clone();
        let waiting = self.ends_waiting.load(Ordering::SeqCst);
        match failure {
            Some((at, why)) if waiting > 0 || at.elapsed() < FAILURE_HOLD => Err(why),
            _ if waiting > 0 => Err(format!("{waiting} run(s) wait for their end to be stored")),
            _ => Ok(()),
        }
    }

    fn failure(&self) -> std::sync::MutexGuard<'_, Option<(Instant, String)>> {
        self.failure.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A run counted as waiting for its end to be stored.
pub struct EndWaiting<'a>(&'a StoreHealth);

impl Drop for EndWaiting<'_> {
    fn drop(&mut self) {
        self.0.ends_waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwritable_while_an_end_waits_or_just_after_a_failure() {
        let health = StoreHealth::default();
        assert!(health.status().is_ok());
        health.failed(&"disk full");
        assert_eq!(health.status(), Err("disk full".to_owned()));
        let waiting = health.end_waiting();
        health.wrote();
        assert!(health.status().is_err(), "an end still waits");
        drop(waiting);
        assert!(health.status().is_ok());
    }
}
