//! Codex thread events (`codex exec --json`) as a projection of the log.
//!
//! The Codex SDKs (acodex, `@openai/codex-sdk`) read a turn as JSON lines
//! of `ThreadEvent`s: `thread.started`, `turn.started`, `item.started` /
//! `item.updated` / `item.completed` carrying a **full snapshot** of a
//! thread item each time (there are no text deltas), and one end:
//! `turn.completed` with usage or `turn.failed` (preceded by `error`).
//!
//! A thread is a conversation and a turn is one run on it, so the thread id
//! is the run's conversation (the run's own id when it has none). Items are
//! numbered `item_0`, `item_1`, … in the order they first appear, as the
//! codex binary numbers them per process. How spool's items map:
//!
//! - an assistant message → `agent_message` (completed only, the full text);
//! - reasoning → `reasoning` (summary, else reasoning text; skipped if blank);
//! - a server-side tool call (MCP, or hosted in Rust under the `spool`
//!   label) → `mcp_tool_call`, started `in_progress`, completed `completed`
//!   with `result.content` or `failed` with `error.message`;
//! - an MCP server whose tools could not be listed → an `error` item, a
//!   non-fatal warning; so is a run that stopped early (`run.incomplete`),
//!   which still ends `turn.completed`.
//!
//! Client function calls, MCP tool listings and approval requests have no
//! Codex counterpart and are not shown. A cancelled run ends
//! `turn.failed` saying so (codex itself sends nothing, leaving a reader
//! waiting), and a tool call still open at a failed or cancelled end is
//! completed `failed` first, so every started item ends.

use super::{Frame, Projection, ProjectionError};
use crate::event::{Envelope, Event};
use crate::fold::RunFold;
use crate::item::{ContentPart, Item, ItemStatus, McpCallItem, ReasoningItem, Role, ToolCallItem};
use crate::tool::HOSTED_TOOLS_LABEL;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The message of the `turn.failed` that ends a cancelled run.
pub const CANCELLED_MESSAGE: &str = "The turn was cancelled.";

/// Projects a canonical log into Codex `ThreadEvent`s.
#[derive(Debug, Clone, Default)]
pub struct CodexProjection {
    fold: RunFold,
    next_index: u64,
    next_item: u64,
    /// Codex item ids of the items shown as started and not yet completed,
    /// by output index.
    open: BTreeMap<u32, String>,
}

impl CodexProjection {
    pub fn new() -> Self {
        Self::default()
    }

    fn item_id(&mut self) -> String {
        let id = format!("item_{}", self.next_item);
        self.next_item += 1;
        id
    }

    fn emit<T: Serialize>(
        &mut self,
        event: &'static str,
        payload: &T,
        out: &mut dyn FnMut(Frame),
    ) -> Result<(), ProjectionError> {
        let data = serde_json::to_string(payload)?;
        out(Frame {
            index: self.next_index,
            event: Some(event),
            data,
        });
        self.next_index += 1;
        Ok(())
    }

    fn emit_item(
        &mut self,
        event: &'static str,
        item: ThreadItem,
        out: &mut dyn FnMut(Frame),
    ) -> Result<(), ProjectionError> {
        self.emit(event, &ItemEvent { ty: event, item }, out)
    }

    /// Closes every tool call still shown open as failed, with `reason`.
    fn fail_open_items(
        &mut self,
        reason: &str,
        out: &mut dyn FnMut(Frame),
    ) -> Result<(), ProjectionError> {
        let open = std::mem::take(&mut self.open);
        for (index, id) in open {
            let Some(item) = self.fold.output().get(index as usize) else {
                continue;
            };
            if let Some(mut call) = tool_call(id, item) {
                call.status = "failed";
                call.result = None;
                call.error = Some(ToolError {
                    message: reason.to_owned(),
                });
                self.emit_item("item.completed", ThreadItem::McpToolCall(call), out)?;
            }
        }
        Ok(())
    }
}

impl Projection for CodexProjection {
    fn fold(&self) -> &RunFold {
        &self.fold
    }

    fn apply(
        &mut self,
        envelope: &Envelope,
        out: &mut dyn FnMut(Frame),
    ) -> Result<(), ProjectionError> {
        self.fold.apply(envelope)?;
        match &envelope.event {
            Event::RunCreated(created) => {
                let run = &created.run;
                let thread_id = run
                    .conversation
                    .as_ref()
                    .map_or_else(|| run.id.as_str().to_owned(), |c| c.as_str().to_owned());
                self.emit(
                    "thread.started",
                    &ThreadStarted {
                        ty: "thread.started",
                        thread_id,
                    },
                    out,
                )?;
            }
            Event::RunStarted => self.emit("turn.started", &Bare { ty: "turn.started" }, out)?,
            Event::ItemStarted { output_index, item } => {
                if matches!(item, Item::ToolCall(_) | Item::McpCall(_)) {
                    let id = self.item_id();
                    self.open.insert(*output_index, id.clone());
                    if let Some(call) = tool_call(id, item) {
                        self.emit_item("item.started", ThreadItem::McpToolCall(call), out)?;
                    }
                }
            }
            Event::ItemCompleted { output_index, .. } => {
                let Some(item) = self.fold.output().get(*output_index as usize).cloned() else {
                    return Ok(());
                };
                let shown = match self.open.remove(output_index) {
                    Some(id) => tool_call(id, &item).map(ThreadItem::McpToolCall),
                    None => completed_item(&item).map(|shown| shown.with_id(self.item_id())),
                };
                if let Some(shown) = shown {
                    self.emit_item("item.completed", shown, out)?;
                }
            }
            Event::RunCompleted => self.emit_turn_completed(out)?,
            Event::RunIncomplete { reason } => {
                let message = format!("The turn stopped early: {}.", reason.as_str());
                let id = self.item_id();
                self.emit_item(
                    "item.completed",
                    ThreadItem::Error(ErrorItem { id, message }),
                    out,
                )?;
                self.emit_turn_completed(out)?;
            }
            Event::RunFailed { error } => {
                self.fail_open_items("The turn failed before the call finished.", out)?;
                let message = error.message.clone();
                self.emit(
                    "error",
                    &StreamError {
                        ty: "error",
                        message: &message,
                    },
                    out,
                )?;
                self.emit(
                    "turn.failed",
                    &TurnFailed {
                        ty: "turn.failed",
                        error: FailedError { message: &message },
                    },
                    out,
                )?;
            }
            Event::RunCancelled => {
                self.fail_open_items(CANCELLED_MESSAGE, out)?;
                self.emit(
                    "turn.failed",
                    &TurnFailed {
                        ty: "turn.failed",
                        error: FailedError {
                            message: CANCELLED_MESSAGE,
                        },
                    },
                    out,
                )?;
            }
            // Text grows inside items that Codex shows only once complete;
            // steps, statuses and usage show in the turn's end.
            Event::StepStarted { .. }
            | Event::StepCompleted { .. }
            | Event::PartStarted { .. }
            | Event::PartDelta { .. }
            | Event::PartDone { .. }
            | Event::ArgumentsDelta { .. }
            | Event::ToolFinished { .. }
            | Event::Status(_)
            | Event::Usage { .. }
            | Event::ItemUpdated { .. }
            | Event::ToolExecuted { .. } => {}
        }
        Ok(())
    }
}

impl CodexProjection {
    fn emit_turn_completed(&mut self, out: &mut dyn FnMut(Frame)) -> Result<(), ProjectionError> {
        let usage = self.fold.usage().cloned().unwrap_or_default();
        self.emit(
            "turn.completed",
            &TurnCompleted {
                ty: "turn.completed",
                usage: TurnUsage {
                    input_tokens: usage.input_tokens,
                    cached_input_tokens: usage.input_tokens_details.cached_tokens,
                    output_tokens: usage.output_tokens,
                },
            },
            out,
        )
    }
}

/// What a completed spool item shows as, before it is given its id;
/// `None` for the kinds Codex has no counterpart for.
fn completed_item(item: &Item) -> Option<Shown> {
    match item {
        Item::Message(m) if m.role == Role::Assistant => Some(Shown::AgentMessage(m.text())),
        Item::Reasoning(r) => {
            let text = reasoning_text(r);
            (!text.trim().is_empty()).then_some(Shown::Reasoning(text))
        }
        Item::McpListTools(list) => list.error.as_ref().map(|error| {
            Shown::Error(format!(
                "The tools of MCP server '{}' could not be listed: {error}",
                list.server_label
            ))
        }),
        _ => None,
    }
}

/// A completed item's content, waiting for its id.
enum Shown {
    AgentMessage(String),
    Reasoning(String),
    Error(String),
}

impl Shown {
    fn with_id(self, id: String) -> ThreadItem {
        match self {
            Shown::AgentMessage(text) => ThreadItem::AgentMessage(AgentMessage { id, text }),
            Shown::Reasoning(text) => ThreadItem::Reasoning(Reasoning { id, text }),
            Shown::Error(message) => ThreadItem::Error(ErrorItem { id, message }),
        }
    }
}

/// A reasoning item's text: its summary parts joined by newlines, as codex
/// shows it, else its reasoning text.
fn reasoning_text(r: &ReasoningItem) -> String {
    if !r.summary.is_empty() {
        return r
            .summary
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
    }
    r.content
        .iter()
        .filter_map(|p| match p {
            ContentPart::ReasoningText { text } => Some(text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `mcp_tool_call` snapshot of a server-side tool call.
fn tool_call(id: String, item: &Item) -> Option<McpToolCall> {
    match item {
        Item::ToolCall(call) => Some(from_tool_call(id, call)),
        Item::McpCall(call) => Some(from_mcp_call(id, call)),
        _ => None,
    }
}

fn from_tool_call(id: String, call: &ToolCallItem) -> McpToolCall {
    let mut shown = McpToolCall {
        id,
        server: call
            .server
            .clone()
            .unwrap_or_else(|| HOSTED_TOOLS_LABEL.to_owned()),
        tool: call.name.clone(),
        arguments: arguments(&call.arguments),
        status: "in_progress",
        result: None,
        error: None,
    };
    if call.status != ItemStatus::InProgress {
        match &call.result {
            Some(r) if r.success => shown.succeed(r.output.clone().unwrap_or_default()),
            Some(r) => shown.fail(r.error.clone().unwrap_or_default()),
            None => shown.fail("The call ended without a result.".to_owned()),
        }
    }
    shown
}

fn from_mcp_call(id: String, call: &McpCallItem) -> McpToolCall {
    let mut shown = McpToolCall {
        id,
        server: call.server_label.clone(),
        tool: call.name.clone(),
        arguments: arguments(&call.arguments),
        status: "in_progress",
        result: None,
        error: None,
    };
    if call.status != ItemStatus::InProgress {
        match (&call.error, &call.output) {
            (Some(error), _) => shown.fail(error.clone()),
            (None, output) => shown.succeed(output.clone().unwrap_or_default()),
        }
    }
    shown
}

/// Arguments as JSON, as codex shows them; kept as a string if the model
/// wrote something that is not JSON.
fn arguments(text: &str) -> Value {
    if text.trim().is_empty() {
        return Value::Object(Default::default());
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

// === wire shapes ===

#[derive(Serialize)]
struct Bare {
    #[serde(rename = "type")]
    ty: &'static str,
}

#[derive(Serialize)]
struct ThreadStarted {
    #[serde(rename = "type")]
    ty: &'static str,
    thread_id: String,
}

#[derive(Serialize)]
struct ItemEvent {
    #[serde(rename = "type")]
    ty: &'static str,
    item: ThreadItem,
}

#[derive(Serialize)]
struct TurnCompleted {
    #[serde(rename = "type")]
    ty: &'static str,
    usage: TurnUsage,
}

/// `turn.completed.usage`: the run's tokens over all its model calls.
#[derive(Serialize)]
struct TurnUsage {
    input_tokens: u64,
    cached_input_tokens: u64,
    output_tokens: u64,
}

#[derive(Serialize)]
struct TurnFailed<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    error: FailedError<'a>,
}

#[derive(Serialize)]
struct FailedError<'a> {
    message: &'a str,
}

#[derive(Serialize)]
struct StreamError<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    message: &'a str,
}

/// A thread item, tagged by `type`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ThreadItem {
    AgentMessage(AgentMessage),
    Reasoning(Reasoning),
    McpToolCall(McpToolCall),
    Error(ErrorItem),
}

#[derive(Debug, Serialize)]
struct AgentMessage {
    id: String,
    text: String,
}

#[derive(Debug, Serialize)]
struct Reasoning {
    id: String,
    text: String,
}

#[derive(Debug, Serialize)]
struct ErrorItem {
    id: String,
    message: String,
}

#[derive(Debug, Serialize)]
struct McpToolCall {
    id: String,
    server: String,
    tool: String,
    arguments: Value,
    status: &'static str,
    result: Option<ToolOutput>,
    error: Option<ToolError>,
}

impl McpToolCall {
    fn succeed(&mut self, output: String) {
        self.status = "completed";
        self.result = Some(ToolOutput {
            content: vec![TextBlock {
                ty: "text",
                text: output,
            }],
            structured_content: None,
        });
    }

    fn fail(&mut self, message: String) {
        self.status = "failed";
        self.error = Some(ToolError { message });
    }
}

/// `result`: the tool's output as MCP content blocks. spool keeps a tool's
/// output as text, so it is one text block and `structured_content` is null.
#[derive(Debug, Serialize)]
struct ToolOutput {
    content: Vec<TextBlock>,
    structured_content: Option<Value>,
}

#[derive(Debug, Serialize)]
struct TextBlock {
    #[serde(rename = "type")]
    ty: &'static str,
    text: String,
}

#[derive(Debug, Serialize)]
struct ToolError {
    message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::RunError;
    use crate::run::tests::header;
    use serde_json::json;

    fn project(events: Vec<Event>) -> Vec<Value> {
        let mut projection = CodexProjection::new();
        let mut frames = Vec::new();
        for envelope in crate::event::tests::log(events) {
            projection
                .apply(&envelope, &mut |f| frames.push(f))
                .unwrap();
        }
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(f.index, i as u64);
        }
        frames
            .into_iter()
            .map(|f| {
                let v: Value = serde_json::from_str(&f.data).unwrap();
                assert_eq!(v["type"], f.event.unwrap());
                v
            })
            .collect()
    }

    fn created() -> Event {
        crate::event::tests::created_with(header())
    }

    #[test]
    fn a_failed_run_sends_error_then_turn_failed() {
        let events = project(vec![
            created(),
            Event::RunStarted,
            Event::RunFailed {
                error: RunError::new("server_error", "boom"),
            },
        ]);
        let types: Vec<_> = events.iter().map(|e| e["type"].clone()).collect();
        assert_eq!(
            types,
            json!(["thread.started", "turn.started", "error", "turn.failed"])
                .as_array()
                .unwrap()
                .clone()
        );
        assert_eq!(events[3]["error"]["message"], "boom");
    }

    #[test]
    fn a_cancelled_run_ends_with_turn_failed_saying_so() {
        let events = project(vec![created(), Event::RunStarted, Event::RunCancelled]);
        assert_eq!(events.last().unwrap()["type"], "turn.failed");
        assert_eq!(
            events.last().unwrap()["error"]["message"],
            CANCELLED_MESSAGE
        );
    }

    #[test]
    fn a_tool_call_open_at_a_cancelled_end_is_completed_failed_first() {
        let call = Item::ToolCall(Box::new(ToolCallItem {
            id: "mcp_1".into(),
            status: ItemStatus::InProgress,
            call_id: "call_1".into(),
            name: "slow".into(),
            server: Some("calc".into()),
            arguments: "{}".into(),
            approval_request_id: None,
            result: None,
        }));
        let events = project(vec![
            created(),
            Event::RunStarted,
            Event::StepStarted {
                step_id: "step_1".into(),
                kind: crate::event::StepKind::ToolExecution,
            },
            Event::ItemStarted {
                output_index: 0,
                item: call,
            },
            Event::RunCancelled,
        ]);
        let n = events.len();
        assert_eq!(events[n - 2]["type"], "item.completed");
        assert_eq!(events[n - 2]["item"]["id"], "item_0");
        assert_eq!(events[n - 2]["item"]["status"], "failed");
        assert_eq!(events[n - 2]["item"]["error"]["message"], CANCELLED_MESSAGE);
        assert_eq!(events[n - 1]["type"], "turn.failed");
    }

    #[test]
    fn the_dialect_registry_names_codex() {
        assert_eq!(
            super::super::Dialect::parse("codex"),
            Some(super::super::Dialect::Codex)
        );
    }

    #[test]
    fn a_completed_run_reports_usage_even_without_model_calls() {
        let events = project(vec![created(), Event::RunStarted, Event::RunCompleted]);
        assert_eq!(
            events.last().unwrap(),
            &json!({"type":"turn.completed","usage":{"input_tokens":0,"cached_input_tokens":0,"output_tokens":0}})
        );
    }
}
