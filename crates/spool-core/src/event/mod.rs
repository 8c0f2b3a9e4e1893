//! The canonical events of a run: the log's one storage format.
//!
//! A run's log is a dense sequence of [`Envelope`]s numbered from 0. The
//! events are dialect-neutral: they say what happened to the run (it was
//! created with this input, a model call started, an item opened, a
//! content part grew, a tool ran, the run completed), and every wire dialect
//! is a pure projection of them (see [`crate::projection`]). Wire-only
//! counters, such as the Responses `sequence_number`, are computed by the
//! projections, never stored. `output_index` is stored because every
//! dialect must agree on it.
//!
//! A run's work comes in **steps**: each model call is an `inference` step
//! and each batch of server-side tool calls a `tool_execution` step, opened
//! (and each safety check by shields a `shield_call` step, whose
//! `step.completed` carries any violation), opened
//! by `step.started` and closed by `step.completed`; the items written
//! between the two belong to the step. A server-side tool call is an item
//! of its own ([`Item::ToolCall`]) opened when the call starts and given
//! its result by `tool.finished` when it ends.
//!
//! Logs written by older builds hold a few other forms (a Responses header
//! in `run.created`, `usage`, `tool.executed` and `item.updated` events, MCP
//! calls as `mcp_call` items); they are read as they are, see [`legacy`].

pub mod legacy;

use crate::item::{Item, ItemStatus, PartKind};
use crate::run::{IncompleteReason, RunError, RunHeader, SafetyViolation, Usage};
use crate::tool::{AgentStatus, ToolResult};
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
    /// The run exists. Always the first event; carries the fixed header
    /// and the run's input. A background run starts `queued`, a foreground
    /// one `in_progress`.
    #[serde(rename = "run.created")]
    RunCreated(Box<RunCreated>),
    /// The run began work (`queued`/`in_progress` → `in_progress`).
    #[serde(rename = "run.started")]
    RunStarted,
    /// A step began: a model call or a batch of tool calls. At most one
    /// step is open at a time.
    #[serde(rename = "step.started")]
    StepStarted { step_id: String, kind: StepKind },
    /// The open step ended; an inference step reports the tokens it used,
    /// a shield step what it found wrong, if anything.
    #[serde(rename = "step.completed")]
    StepCompleted {
        step_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        violation: Option<SafetyViolation>,
    },
    /// An output item opened at `output_index` (the next free index). The
    /// item is in progress and has no content yet. Only server-side tool
    /// calls may be open beside one another (they run concurrently); any
    /// other item waits until every earlier one is complete.
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
        /// The log probabilities of the delta's tokens, when the request
        /// asked for them (`output_text` only).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        logprobs: Vec<Value>,
    },
    /// A content part is complete.
    #[serde(rename = "part.done")]
    PartDone {
        output_index: u32,
        content_index: u32,
    },
    /// Text appended to an open function call's arguments.
    #[serde(rename = "arguments.delta")]
    ArgumentsDelta { output_index: u32, delta: String },
    /// A server-side tool call returned (or failed, or timed out).
    #[serde(rename = "tool.finished")]
    ToolFinished {
        output_index: u32,
        result: ToolResult,
    },
    /// An item is complete; its parts must be done first.
    #[serde(rename = "item.completed")]
    ItemCompleted {
        output_index: u32,
        status: ItemStatus,
    },
    /// Where the agent loop is (tool call detected, tools executed, …).
    #[serde(rename = "status")]
    Status(AgentStatus),
    #[serde(rename = "run.completed")]
    RunCompleted,
    /// The run stopped early, e.g. at `max_output_tokens`.
    #[serde(rename = "run.incomplete")]
    RunIncomplete { reason: IncompleteReason },
    #[serde(rename = "run.failed")]
    RunFailed { error: RunError },
    /// The run was cancelled by a caller or because its client went away.
    #[serde(rename = "run.cancelled")]
    RunCancelled,
    /// Legacy: tokens one model call used (now on `step.completed`).
    #[serde(rename = "usage")]
    Usage { usage: Usage },
    /// Legacy: a new snapshot of an open item (an MCP call's result or an
    /// MCP tool listing); now a tool call's result is `tool.finished`.
    #[serde(rename = "item.updated")]
    ItemUpdated { output_index: u32, item: Item },
    /// Legacy: a record of a tool execution, logged after the fact.
    #[serde(rename = "tool.executed")]
    ToolExecuted { execution: legacy::ToolExecution },
}

/// The payload of `run.created`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunCreated {
    pub run: RunHeader,
    /// The run's input, normalized, every item with an id: what the
    /// caller sent for this run (earlier turns are in earlier runs' logs).
    pub input: Vec<Item>,
}

impl<'de> Deserialize<'de> for RunCreated {
    /// Reads today's form, and the Responses header of older logs.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Current {
                run: Box<RunHeader>,
                #[serde(default)]
                input: Vec<Item>,
            },
            Legacy {
                response: Box<legacy::ResponseHeader>,
            },
        }
        Ok(match Stored::deserialize(d)? {
            Stored::Current { run, input } => RunCreated { run: *run, input },
            Stored::Legacy { response } => RunCreated {
                run: response.into_run_header(),
                input: Vec::new(),
            },
        })
    }
}

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// One model call.
    Inference,
    /// Server-side tool calls, run concurrently.
    ToolExecution,
    /// A safety check of the run's input or answer by shields (llama-stack
    /// agents' `input_shields` / `output_shields`).
    ShieldCall,
}

impl Event {
    /// The event's `type` tag, as stored beside the payload.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::RunCreated(_) => "run.created",
            Event::RunStarted => "run.started",
            Event::StepStarted { .. } => "step.started",
            Event::StepCompleted { .. } => "step.completed",
            Event::ItemStarted { .. } => "item.started",
            Event::PartStarted { .. } => "part.started",
            Event::PartDelta { .. } => "part.delta",
            Event::PartDone { .. } => "part.done",
            Event::ArgumentsDelta { .. } => "arguments.delta",
            Event::ToolFinished { .. } => "tool.finished",
            Event::ItemCompleted { .. } => "item.completed",
            Event::Status(_) => "status",
            Event::RunCompleted => "run.completed",
            Event::RunIncomplete { .. } => "run.incomplete",
            Event::RunFailed { .. } => "run.failed",
            Event::RunCancelled => "run.cancelled",
            Event::Usage { .. } => "usage",
            Event::ItemUpdated { .. } => "item.updated",
            Event::ToolExecuted { .. } => "tool.executed",
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
pub(crate) mod tests {
    use super::*;
    use crate::run::tests::header;

    /// `events` numbered from 0 as a log, a millisecond apart.
    pub(crate) fn log(events: Vec<Event>) -> Vec<Envelope> {
        events
            .into_iter()
            .enumerate()
            .map(|(i, event)| Envelope {
                seq: i as u64,
                ts_ms: 1_700_000_000_000 + i as i64,
                event,
            })
            .collect()
    }

    /// `run.created` for `run`, without input.
    pub(crate) fn created_with(run: RunHeader) -> Event {
        Event::RunCreated(Box::new(RunCreated {
            run,
            input: Vec::new(),
        }))
    }
    use crate::tool::{DetectedCall, DetectedCalls};

    #[test]
    fn the_type_tag_matches_type_name() {
        let events = [
            Event::RunCreated(Box::new(RunCreated {
                run: header(),
                input: Vec::new(),
            })),
            Event::RunStarted,
            Event::StepStarted {
                step_id: "step_1".into(),
                kind: StepKind::Inference,
            },
            Event::PartDelta {
                output_index: 0,
                content_index: 0,
                delta: "x".into(),
                logprobs: Vec::new(),
            },
            Event::Status(AgentStatus::ToolCallDetected {
                details: DetectedCalls {
                    tools: vec![DetectedCall {
                        call_id: Some("call_1".into()),
                        name: "add".into(),
                        arguments: "{}".into(),
                    }],
                },
            }),
            Event::Status(AgentStatus::ToolsExecuted),
            Event::RunIncomplete {
                reason: IncompleteReason::MaxInferIters,
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

    #[test]
    fn a_status_event_keeps_its_flat_form() {
        let v = serde_json::to_value(Event::Status(AgentStatus::StartingGeneration)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"status","status":"starting_generation"})
        );
    }
}
