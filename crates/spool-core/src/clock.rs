//! The time a run's code reads, passed in like ids.
//!
//! The domain never reads the system clock: whoever needs the time (the
//! built-in agent timing a tool, say) is handed a [`Clock`], a real one in
//! the server and a [`TickingClock`] in tests and fixtures, so a scripted
//! run writes the same log every time. [`UtcTime`] turns an instant into
//! a calendar date for the dialects that show timestamps as text.

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

/// A Unix-milliseconds instant as a UTC calendar date and time of day:
/// what the dialects that show timestamps as text (roboto's, llama-stack's)
/// each format in their own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
    pub millis: i64,
}

impl UtcTime {
    pub fn from_unix_ms(ts_ms: i64) -> Self {
        let days = ts_ms.div_euclid(86_400_000);
        let ms_of_day = ts_ms.rem_euclid(86_400_000);
        // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        Self {
            year: yoe + era * 400 + i64::from(month <= 2),
            month,
            day,
            hour: ms_of_day / 3_600_000,
            minute: ms_of_day / 60_000 % 60,
            second: ms_of_day / 1000 % 60,
            millis: ms_of_day % 1000,
        }
    }
}
