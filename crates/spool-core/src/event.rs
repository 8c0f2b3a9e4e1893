//! The canonical events of a run: the log's one storage format.
//!
//! A run's log is a dense sequence of [`Envelope`]s numbered from 0. The
//! events are dialect-neutral: they say what happened to the run and its
//! items (an item started, a content part grew by a delta, a run completed),
//! and every wire dialect is a pure projection of them (see
//! [`crate::projection`]). Wire-only counters, such as the Responses
//! `sequence_number`, are computed by the projection, never stored.
//! `output_index` is stored because every dialect must agree on it.

use crate::item::{Item, ItemStatus, PartKind};
use crate::response::{ResponseHeader, RunError, Usage};
use crate::tool::{AgentStatus, ToolExecution};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One event of a run's log with its position and time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Position in the run's log: 0, 1, 2, … without gaps.
    pub seq: u64,
    /// When the event was appended, in Unix milliseconds.
    pub ts_ms: i64,
    pub event: Event,
}

/// What happened in a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Event {
    /// The run exists. Always the first event; carries the fixed header.
    /// A background run starts `queued`, a foreground one `in_progress`.
    #[serde(rename = "run.created")]
    RunCreated { response: Box<ResponseHeader> },
    /// The run began work (`queued`/`in_progress` → `in_progress`).
    #[serde(rename = "run.started")]
    RunStarted,
    /// An output item opened at `output_index` (the next free index). The
    /// item is in progress and has no content yet.
    #[serde(rename = "item.started")]
    ItemStarted { output_index: u32, item: Item },
    /// A content part of kind `kind` opened at `content_index` (the next free
    /// index) of a message or reasoning item.
    #[serde(rename = "part.started")]
    PartStarted {
        output_index: u32,
        content_index: u32,
        kind: PartKind,
    },
    /// Text appended to an open content part.
    #[serde(rename = "part.delta")]
    PartDelta {
        output_index: u32,
        content_index: u32,
        delta: String,
    },
    /// A content part is complete.
    #[serde(rename = "part.done")]
    PartDone {
        output_index: u32,
        content_index: u32,
    },
    /// A new snapshot of an open item, e.g. an MCP call's output once the
    /// call returned. Same item (id and kind), still in progress.
    #[serde(rename = "item.updated")]
    ItemUpdated { output_index: u32, item: Item },
    /// Text appended to an open function call's arguments.
    #[serde(rename = "arguments.delta")]
    ArgumentsDelta { output_index: u32, delta: String },
    /// An item is complete; its parts must be done first.
    #[serde(rename = "item.completed")]
    ItemCompleted {
        output_index: u32,
        status: ItemStatus,
    },
    /// Tokens one model call used; a run's usage is the sum.
    #[serde(rename = "usage")]
    Usage { usage: Usage },
    /// Where the agent loop is (tool call detected, tools executed, …).
    #[serde(rename = "status")]
    Status {
        status: AgentStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        details: Option<Value>,
    },
    /// A server-side tool ran: its result, success and runtime.
    #[serde(rename = "tool.executed")]
    ToolExecuted { execution: ToolExecution },
    #[serde(rename = "run.completed")]
    RunCompleted,
    /// The run stopped early, e.g. at `max_output_tokens`.
    #[serde(rename = "run.incomplete")]
    RunIncomplete { reason: String },
    #[serde(rename = "run.failed")]
    RunFailed { error: RunError },
    /// The run was cancelled by a caller or because its client went away.
    #[serde(rename = "run.cancelled")]
    RunCancelled,
}

impl Event {
    /// The event's `type` tag, as stored beside the payload.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::RunCreated { .. } => "run.created",
            Event::RunStarted => "run.started",
            Event::ItemStarted { .. } => "item.started",
            Event::PartStarted { .. } => "part.started",
            Event::PartDelta { .. } => "part.delta",
            Event::PartDone { .. } => "part.done",
            Event::ItemUpdated { .. } => "item.updated",
            Event::ArgumentsDelta { .. } => "arguments.delta",
            Event::ItemCompleted { .. } => "item.completed",
            Event::Usage { .. } => "usage",
            Event::Status { .. } => "status",
            Event::ToolExecuted { .. } => "tool.executed",
            Event::RunCompleted => "run.completed",
            Event::RunIncomplete { .. } => "run.incomplete",
            Event::RunFailed { .. } => "run.failed",
            Event::RunCancelled => "run.cancelled",
        }
    }

    /// True for the events that end a run.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Event::RunCompleted
                | Event::RunIncomplete { .. }
                | Event::RunFailed { .. }
                | Event::RunCancelled
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_type_tag_matches_type_name() {
        let events = [
            Event::RunStarted,
            Event::PartDelta {
                output_index: 0,
                content_index: 0,
                delta: "x".into(),
            },
            Event::RunFailed {
                error: RunError::new("server_error", "boom"),
            },
        ];
        for e in events {
            let v = serde_json::to_value(&e).unwrap();
            assert_eq!(v["type"], e.type_name());
            let back: Event = serde_json::from_value(v).unwrap();
            assert_eq!(back, e);
        }
    }
}
