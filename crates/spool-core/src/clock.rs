//! The time a run's code reads, passed in like ids.
//!
//! The domain never reads the system clock: whoever needs the time (the
//! built-in agent timing a tool, say) is handed a [`Clock`], a real one in
//! the server and a [`TickingClock`] in tests and fixtures, so a scripted
//! run writes the same log every time.

use std::sync::atomic::{AtomicI64, Ordering};

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// Now, in Unix milliseconds.
    fn now_ms(&self) -> i64;
}

/// A clock that starts at a fixed instant and advances one millisecond
/// each time it is read.
#[derive(Debug)]
pub struct TickingClock {
    next_ms: AtomicI64,
}

impl TickingClock {
    pub fn starting_at(ms: i64) -> Self {
        Self {
            next_ms: AtomicI64::new(ms),
        }
    }
}

impl Clock for TickingClock {
    fn now_ms(&self) -> i64 {
        self.next_ms.fetch_add(1, Ordering::Relaxed)
    }
}
