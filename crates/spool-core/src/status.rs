//! The run state machine.
//!
//! A run is `queued` (accepted, not started), then `in_progress`, then ends in
//! exactly one terminal state. Terminal states absorb: nothing leaves them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a run is in its life. Serialized as the Responses API `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    InProgress,
    Completed,
    Failed,
    Cancelled,
    Incomplete,
}

/// A transition the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a run cannot go from {from} to {to}")]
pub struct TransitionError {
    pub from: RunStatus,
    pub to: RunStatus,
}

impl RunStatus {
    /// True for the four states a run ends in.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Cancelled | Self::Incomplete
        )
    }

    /// The state after moving to `to`, if the machine allows it.
    ///
    /// `queued` may fail or be cancelled before it starts; `in_progress` may
    /// end any way. Re-entering the current non-terminal state is a no-op.
    pub fn transition(self, to: RunStatus) -> Result<RunStatus, TransitionError> {
        use RunStatus::*;
        let allowed = matches!(
            (self, to),
            (Queued, Queued | InProgress | Failed | Cancelled)
                | (
                    InProgress,
                    InProgress | Completed | Failed | Cancelled | Incomplete
                )
        );
        if allowed {
            Ok(to)
        } else {
            Err(TransitionError { from: self, to })
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Incomplete => "incomplete",
        }
    }

    /// Parses the stored string form (the inverse of [`RunStatus::as_str`]).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "in_progress" => Self::InProgress,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            "incomplete" => Self::Incomplete,
            _ => return None,
        })
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::RunStatus::*;
    use super::*;

    const ALL: [RunStatus; 6] = [Queued, InProgress, Completed, Failed, Cancelled, Incomplete];

    #[test]
    fn a_run_moves_forward_from_queued_to_each_end() {
        for end in [Completed, Failed, Cancelled, Incomplete] {
            let s = Queued
                .transition(InProgress)
                .and_then(|s| s.transition(end));
            assert_eq!(s, Ok(end));
        }
    }

    #[test]
    fn terminal_states_absorb() {
        for from in ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in ALL {
                assert!(from.transition(to).is_err(), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn a_run_never_goes_back_to_queued() {
        assert!(InProgress.transition(Queued).is_err());
    }

    #[test]
    fn a_queued_run_cannot_complete_without_starting() {
        assert!(Queued.transition(Completed).is_err());
        assert!(Queued.transition(Incomplete).is_err());
    }

    #[test]
    fn status_strings_round_trip() {
        for s in ALL {
            assert_eq!(RunStatus::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
    }
}
