//! roboto's agent threads (seed 003) as a pure fold of a thread's run logs.
//!
//! A roboto thread is a spool conversation and each of its turns a run (a
//! turn that waits for client tools spans two runs or more). Folding the
//! logs of a thread's runs, oldest first, gives roboto's records: the
//! thread's messages (`user`, `assistant`, and `roboto` for tool results),
//! each a list of content blocks with a generation status, and the thread's
//! status (`roboto_turn` while a run goes, `client_tool_turn` while the
//! model waits for the client's tools, `user_turn` otherwise).
//!
//! How a run becomes messages:
//! - its input: user (and seeded assistant) messages as they were sent;
//!   client tool results as one `roboto` message of `tool_result` blocks;
//! - each inference step opens an assistant message; every text delta is
//!   one `text` block (roboto streams text as blocks), a client function
//!   call a `tool_use` block once complete, a call spool runs a `tool_use`
//!   block with `answered_by_server` when it starts;
//! - the results of the calls spool runs are `tool_result` blocks (with
//!   their runtime) of one `roboto` message per tool step;
//! - a failed, cancelled or cut-short run ends its assistant message with an
//!   `error` block, and so does an MCP call that waits for an approval
//!   (roboto has none to give).
//!
//! Blocks are only ever appended, so a position in the logs (a
//! [`ThreadSnapshot`]) is all a poll needs to send exactly what is new
//! ([`ThreadFold::delta_since`]).

use super::ProjectionError;
use crate::event::{Envelope, Event, StepKind};
use crate::fold::RunFold;
use crate::item::{ClientToolStatus, Item, MessageItem, PartKind, Role};
use crate::tool::ToolResult;
use serde::Serialize;
use serde::ser::Serializer;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// Who wrote a message (`AgentRole`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentRole {
    User,
    Assistant,
    /// The platform: tool results.
    Roboto,
}

/// Where a message is in its generation (`AgentMessageStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Generating,
    Completed,
    Failed,
    Cancelled,
}

impl MessageStatus {
    pub fn is_terminal(self) -> bool {
        self != MessageStatus::Generating
    }
}

/// Whose turn it is (`AgentThreadStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadStatus {
    /// Nothing has run on the thread yet.
    NotStarted,
    UserTurn,
    RobotoTurn,
    /// The model called client tools; the thread waits for their results.
    ClientToolTurn,
}

/// One content block of a message (`AgentContent`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "content_type", rename_all = "snake_case")]
pub enum ContentBlock {
    Text {
        text: String,
    },
    ToolUse {
        tool_name: String,
        tool_use_id: String,
        /// The arguments as an object; `None` when the model wrote
        /// something that is not one.
        input: Option<Value>,
        /// True for the calls spool runs itself: no client may answer them.
        answered_by_server: bool,
    },
    ToolResult {
        tool_name: String,
        tool_use_id: String,
        runtime_ms: u64,
        /// `success`, `error`, or (a client's) `declined`.
        status: &'static str,
        /// What the tool returned: JSON when it is JSON, else text.
        payload: Option<Value>,
    },
    Error {
        error_message: String,
        error_code: Option<String>,
    },
}

/// One message of a thread (`AgentMessage`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentMessage {
    pub role: AgentRole,
    pub content: Vec<ContentBlock>,
    pub status: MessageStatus,
    #[serde(serialize_with = "iso8601")]
    pub created: i64,
}

impl AgentMessage {
    fn new(role: AgentRole, status: MessageStatus, created: i64) -> Self {
        Self {
            role,
            content: Vec::new(),
            status,
            created,
        }
    }

    /// The message with adjacent text blocks joined: how a record shows it.
    pub fn coalesced(&self) -> Self {
        Self {
            content: coalesce(&self.content),
            ..self.clone()
        }
    }
}

/// Adjacent text blocks joined into one.
fn coalesce(blocks: &[ContentBlock]) -> Vec<ContentBlock> {
    let mut out: Vec<ContentBlock> = Vec::with_capacity(blocks.len());
    for block in blocks {
        match (out.last_mut(), block) {
            (Some(ContentBlock::Text { text }), ContentBlock::Text { text: more }) => {
                text.push_str(more)
            }
            _ => out.push(block.clone()),
        }
    }
    out
}

/// Unix milliseconds as an RFC 3339 UTC timestamp, as pydantic reads them.
fn iso8601<S: Serializer>(ts_ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_ts(*ts_ms))
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_ts(ts_ms: i64) -> String {
    let t = crate::clock::UtcTime::from_unix_ms(ts_ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.millis
    )
}

/// How far a fold had got: per message, how many blocks it held and its
/// status, and the thread's status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadSnapshot {
    messages: Vec<(usize, MessageStatus)>,
    status: Option<ThreadStatus>,
}

impl ThreadSnapshot {
    /// The thread's status there; `None` before its first run.
    pub fn status(&self) -> Option<ThreadStatus> {
        self.status
    }
}

/// What changed since a snapshot (`AgentThreadDelta` without its token):
/// new messages whole, grown ones with only their new blocks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThreadDelta {
    pub messages_by_idx: BTreeMap<usize, AgentMessage>,
    pub status: ThreadStatus,
}

impl ThreadDelta {
    pub fn is_empty(&self) -> bool {
        self.messages_by_idx.is_empty()
    }
}

/// The fold of a thread's runs into roboto's messages and status.
#[derive(Debug, Clone, Default)]
pub struct ThreadFold {
    messages: Vec<AgentMessage>,
    status: Option<ThreadStatus>,
    /// The run being folded.
    run: RunFold,
    /// Runs folded before the current one.
    runs_before: u32,
    /// The assistant message the current inference step writes to.
    assistant: Option<usize>,
    /// The `roboto` message the current tool step's results go to.
    results: Option<usize>,
    /// Tool names by call id, for the results a later run's input holds.
    call_names: HashMap<String, String>,
    /// Client tool calls of the last run still waiting for results.
    awaited: Vec<String>,
}

impl ThreadFold {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every message so far, text blocks as they streamed.
    pub fn messages(&self) -> &[AgentMessage] {
        &self.messages
    }

    pub fn status(&self) -> ThreadStatus {
        self.status.unwrap_or(ThreadStatus::NotStarted)
    }

    /// The client tool calls (ids, in call order) the thread waits for.
    pub fn awaited_calls(&self) -> &[String] {
        &self.awaited
    }

    /// The name of the tool a call id belongs to, if the thread made it.
    pub fn call_name(&self, call_id: &str) -> Option<&str> {
        self.call_names.get(call_id).map(String::as_str)
    }

    /// The run being folded.
    pub fn run(&self) -> &RunFold {
        &self.run
    }

    /// How many runs were folded before the current one.
    pub fn runs_before(&self) -> u32 {
        self.runs_before
    }

    pub fn snapshot(&self) -> ThreadSnapshot {
        ThreadSnapshot {
            messages: self
                .messages
                .iter()
                .map(|m| (m.content.len(), m.status))
                .collect(),
            status: self.status,
        }
    }

    /// What changed since `before`: each new message, and each message that
    /// grew or changed status with only its new blocks (text joined).
    pub fn delta_since(&self, before: &ThreadSnapshot) -> ThreadDelta {
        let mut messages_by_idx = BTreeMap::new();
        for (idx, message) in self.messages.iter().enumerate() {
            let (seen, status) = before
                .messages
                .get(idx)
                .copied()
                .unwrap_or((0, MessageStatus::Generating));
            let new = before.messages.get(idx).is_none();
            if new || message.content.len() > seen || message.status != status {
                messages_by_idx.insert(
                    idx,
                    AgentMessage {
                        content: coalesce(&message.content[seen.min(message.content.len())..]),
                        ..message.clone()
                    },
                );
            }
        }
        ThreadDelta {
            messages_by_idx,
            status: self.status(),
        }
    }

    /// Folds in the next envelope of the thread's logs; a `run.created`
    /// begins the next run.
    pub fn apply(&mut self, envelope: &Envelope) -> Result<(), ProjectionError> {
        if matches!(envelope.event, Event::RunCreated(_)) && self.run.header().is_some() {
            self.run = RunFold::new();
            self.runs_before += 1;
        }
        self.run.apply(envelope)?;
        let ts = envelope.ts_ms;
        match &envelope.event {
            Event::RunCreated(created) => {
                self.assistant = None;
                self.results = None;
                self.awaited.clear();
                self.status = Some(ThreadStatus::RobotoTurn);
                for item in &created.input {
                    self.input_item(item, ts);
                }
                self.results = None;
            }
            Event::StepStarted { kind, .. } => match kind {
                StepKind::Inference => {
                    self.close_open(MessageStatus::Completed);
                    self.assistant = Some(self.push(AgentRole::Assistant, ts));
                }
                StepKind::ToolExecution => self.results = None,
                // A llama-stack agent's safety check: roboto has no form
                // for it (a violation's message is written as text).
                StepKind::ShieldCall => {}
            },
            Event::PartDelta {
                output_index,
                content_index,
                delta,
                ..
            } => {
                let kind = match self.run.output().get(*output_index as usize) {
                    Some(item @ Item::Message(_)) => item
                        .content()
                        .get(*content_index as usize)
                        .and_then(|part| part.kind()),
                    _ => None,
                };
                // Reasoning has no roboto form; text and refusals are text.
                if kind.is_some_and(|k| k != PartKind::ReasoningText) {
                    let at = self.assistant(ts);
                    self.messages[at].content.push(ContentBlock::Text {
                        text: delta.clone(),
                    });
                }
            }
            Event::ItemStarted { item, .. } => match item {
                Item::ToolCall(call) => {
                    self.server_tool_use(&call.call_id, &call.name, &call.arguments, ts)
                }
                Item::McpCall(call) => {
                    self.server_tool_use(&call.id, &call.name, &call.arguments, ts)
                }
                _ => {}
            },
            Event::ItemCompleted { output_index, .. } => {
                match self.run.output().get(*output_index as usize).cloned() {
                    Some(Item::FunctionCall(call)) => {
                        self.call_names
                            .insert(call.call_id.clone(), call.name.clone());
                        let at = self.assistant(ts);
                        self.messages[at].content.push(ContentBlock::ToolUse {
                            tool_name: call.name,
                            tool_use_id: call.call_id.clone(),
                            input: arguments_object(&call.arguments),
                            answered_by_server: false,
                        });
                        self.awaited.push(call.call_id);
                    }
                    // roboto has no approvals to give: the thread is told
                    // the call waits for one it cannot answer.
                    Some(Item::McpApprovalRequest(request)) => {
                        let at = self.assistant(ts);
                        self.messages[at].content.push(ContentBlock::Error {
                            error_message: format!(
                                "The call of '{}' on MCP server '{}' needs an approval a roboto \
                                 thread cannot give; serve it with require_approval = \"never\".",
                                request.name, request.server_label
                            ),
                            error_code: Some("approval_required".into()),
                        });
                    }
                    // Older logs: an MCP call's result is on the item itself.
                    Some(Item::McpCall(call)) => {
                        let result = ToolResult {
                            success: call.error.is_none(),
                            output: call.output,
                            error: call.error,
                            runtime_ms: 0,
                        };
                        self.server_tool_result(&call.id, &call.name, &result, ts);
                    }
                    _ => {}
                }
            }
            Event::ToolFinished {
                output_index,
                result,
            } => {
                if let Some(Item::ToolCall(call)) = self.run.output().get(*output_index as usize) {
                    let (call_id, name) = (call.call_id.clone(), call.name.clone());
                    self.server_tool_result(&call_id, &name, result, ts);
                }
            }
            Event::StepCompleted { .. } => {
                // A tool step that wrote results ends the exchange: the
                // calls and their results are complete.
                if self.results.is_some() {
                    self.close_open(MessageStatus::Completed);
                }
            }
            Event::RunCompleted => {
                self.close_open(MessageStatus::Completed);
                self.status = Some(if self.awaited.is_empty() {
                    ThreadStatus::UserTurn
                } else {
                    ThreadStatus::ClientToolTurn
                });
            }
            Event::RunIncomplete { reason } => {
                let message = format!("The run stopped early: {reason}.");
                self.end_with_error(message, reason.as_str(), MessageStatus::Failed, ts);
            }
            Event::RunFailed { error } => {
                let (message, code) = (error.message.clone(), error.code.as_str().to_owned());
                self.end_with_error(message, &code, MessageStatus::Failed, ts);
            }
            Event::RunCancelled => {
                let message = "The run was cancelled.".to_owned();
                self.end_with_error(message, "cancelled", MessageStatus::Cancelled, ts);
            }
            Event::RunStarted
            | Event::PartStarted { .. }
            | Event::PartDone { .. }
            | Event::ArgumentsDelta { .. }
            | Event::Status(_)
            | Event::Usage { .. }
            | Event::ItemUpdated { .. }
            | Event::ToolExecuted { .. } => {}
        }
        Ok(())
    }

    fn push(&mut self, role: AgentRole, ts: i64) -> usize {
        self.messages
            .push(AgentMessage::new(role, MessageStatus::Generating, ts));
        self.messages.len() - 1
    }

    /// The assistant message being written, opened if there is none.
    fn assistant(&mut self, ts: i64) -> usize {
        match self.assistant {
            Some(at) => at,
            None => {
                let at = self.push(AgentRole::Assistant, ts);
                self.assistant = Some(at);
                at
            }
        }
    }

    /// The `roboto` message the current step's results go to, opened if
    /// there is none. The assistant message stays open until the step
    /// ends: a call may start after another one's result.
    fn results(&mut self, ts: i64) -> usize {
        match self.results {
            Some(at) => at,
            None => {
                let at = self.push(AgentRole::Roboto, ts);
                self.results = Some(at);
                at
            }
        }
    }

    /// Completes (or fails) every message still generating.
    fn close_open(&mut self, status: MessageStatus) {
        for at in [self.assistant, self.results].into_iter().flatten() {
            if self.messages[at].status == MessageStatus::Generating {
                self.messages[at].status = status;
            }
        }
        self.results = None;
    }

    fn end_with_error(&mut self, message: String, code: &str, status: MessageStatus, ts: i64) {
        self.close_open(MessageStatus::Completed);
        // The error belongs to the assistant message the run was writing;
        // one already complete (or a run that wrote none) gets a new one.
        let at = match self.assistant {
            Some(at) if self.messages.len() == at + 1 => at,
            _ => self.push(AgentRole::Assistant, ts),
        };
        self.assistant = Some(at);
        self.messages[at].content.push(ContentBlock::Error {
            error_message: message,
            error_code: Some(code.to_owned()),
        });
        self.messages[at].status = status;
        self.awaited.clear();
        self.status = Some(ThreadStatus::UserTurn);
    }

    fn server_tool_use(&mut self, call_id: &str, name: &str, arguments: &str, ts: i64) {
        self.call_names.insert(call_id.to_owned(), name.to_owned());
        let at = self.assistant(ts);
        self.messages[at].content.push(ContentBlock::ToolUse {
            tool_name: name.to_owned(),
            tool_use_id: call_id.to_owned(),
            input: arguments_object(arguments),
            answered_by_server: true,
        });
    }

    fn server_tool_result(&mut self, call_id: &str, name: &str, result: &ToolResult, ts: i64) {
        let at = self.results(ts);
        let payload = match (&result.output, &result.error) {
            (Some(output), _) => Some(payload(output)),
            (None, Some(error)) => Some(Value::String(error.clone())),
            (None, None) => None,
        };
        self.messages[at].content.push(ContentBlock::ToolResult {
            tool_name: name.to_owned(),
            tool_use_id: call_id.to_owned(),
            runtime_ms: result.runtime_ms,
            status: if result.success { "success" } else { "error" },
            payload,
        });
    }

    /// One item of a run's input, as the messages a client sent.
    fn input_item(&mut self, item: &Item, ts: i64) {
        match item {
            Item::Message(message) => {
                let role = match message.role {
                    Role::User => AgentRole::User,
                    Role::Assistant => AgentRole::Assistant,
                    // Instructions are the thread's system prompt, not a message.
                    Role::System | Role::Developer => return,
                };
                self.results = None;
                let at = self.push(role, ts);
                self.messages[at].status = MessageStatus::Completed;
                self.messages[at].content = text_blocks(message);
            }
            Item::FunctionCallOutput(output) => {
                let at = match self.results {
                    Some(at) => at,
                    None => {
                        let at = self.push(AgentRole::Roboto, ts);
                        self.messages[at].status = MessageStatus::Completed;
                        self.results = Some(at);
                        at
                    }
                };
                let (status, runtime_ms) = output
                    .outcome
                    .map_or((ClientToolStatus::Success, 0), |o| (o.status, o.runtime_ms));
                let tool_name = self
                    .call_name(&output.call_id)
                    .unwrap_or_default()
                    .to_owned();
                self.messages[at].content.push(ContentBlock::ToolResult {
                    tool_name,
                    tool_use_id: output.call_id.clone(),
                    runtime_ms,
                    status: status.as_str(),
                    payload: Some(match &output.output {
                        Value::String(text) => payload(text),
                        other => other.clone(),
                    }),
                });
            }
            _ => {}
        }
    }
}

/// A message's text parts as text blocks.
fn text_blocks(message: &MessageItem) -> Vec<ContentBlock> {
    message
        .content
        .iter()
        .filter_map(|part| part.text())
        .map(|text| ContentBlock::Text {
            text: text.to_owned(),
        })
        .collect()
}

/// A call's arguments as the object roboto's `input` is.
fn arguments_object(arguments: &str) -> Option<Value> {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => Some(v),
        _ if arguments.trim().is_empty() => Some(Value::Object(Default::default())),
        _ => None,
    }
}

/// A tool's output as roboto's payload: a JSON object or array as such,
/// anything else as text.
fn payload(output: &str) -> Value {
    match serde_json::from_str::<Value>(output) {
        Ok(v @ (Value::Object(_) | Value::Array(_))) => v,
        _ => Value::String(output.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(format_ts(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_ts(1_767_225_600_001), "2026-01-01T00:00:00.001Z");
        assert_eq!(format_ts(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn adjacent_text_blocks_are_joined_and_others_kept() {
        let t = |s: &str| ContentBlock::Text { text: s.into() };
        let e = ContentBlock::Error {
            error_message: "x".into(),
            error_code: None,
        };
        assert_eq!(
            coalesce(&[t("a"), t("b"), e.clone(), t("c")]),
            vec![t("ab"), e, t("c")]
        );
    }
}
