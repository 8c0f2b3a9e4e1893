//! roboto's six agent-session events (seed 003) as a projection of the
//! canonical log: `start_text`, `text_delta`, `text_end`, `tool_use`,
//! `tool_result` (with `success` and `runtime_ms`) and `error`.
//!
//! roboto's SDK makes these events itself from the content blocks a thread
//! poll returns (`AgentThread.events()`); this projection makes them the
//! same way from the same blocks ([`super::roboto::ThreadFold`]), so a
//! stream read here and the SDK's own events agree. The rules are the
//! SDK's: user messages are skipped; the first text block of a message
//! opens a text span (`start_text`) and each text block is a `text_delta`;
//! any other block closes the span (`text_end`) before its own event; a
//! message that ends closes its span. Each frame is one JSON object whose
//! `type` names the event, and the SSE `event:` line names it too; the
//! other fields are those of roboto's event classes (a tool result's
//! `output` is an object: a payload that is not one is under `result`).
//!
//! Fed the logs of several runs one after another, it streams a whole
//! thread, numbering frames across the runs.

use super::roboto::{AgentRole, ContentBlock, ThreadFold};
use super::{Frame, Projection, ProjectionError};
use crate::event::Envelope;
use crate::fold::RunFold;
use serde_json::{Value, json};

/// Projects a run's (or a thread's) log into agent-session events.
#[derive(Debug, Default)]
pub struct AgentSessionProjection {
    thread: ThreadFold,
    /// Per message: how many of its blocks were told, and whether a text
    /// span is open in it.
    told: Vec<(usize, bool)>,
    /// Messages before this one have ended and were told whole.
    settled: usize,
    next_index: u64,
}

impl AgentSessionProjection {
    pub fn new() -> Self {
        Self::default()
    }

    fn frame(&mut self, out: &mut dyn FnMut(Frame), kind: &'static str, event: Value) {
        let mut event = event;
        if let Value::Object(fields) = &mut event {
            fields.insert("type".into(), Value::String(kind.into()));
        }
        out(Frame {
            index: self.next_index,
            event: Some(kind),
            data: event.to_string(),
        });
        self.next_index += 1;
    }

    /// Tells the blocks and message ends the last envelope added. Messages
    /// before `settled` have ended and were told whole; blocks are only
    /// appended, so only the messages after it can have news.
    fn tell_new(&mut self, out: &mut dyn FnMut(Frame)) {
        let mut events: Vec<(&'static str, Value)> = Vec::new();
        let messages = self.thread.messages();
        self.told.resize(messages.len(), (0, false));
        for (idx, message) in messages.iter().enumerate().skip(self.settled) {
            let (told, mut open) = self.told[idx];
            if message.role != AgentRole::User {
                for block in &message.content[told..] {
                    if let ContentBlock::Text { text } = block {
                        if !open {
                            events.push(("start_text", json!({})));
                            open = true;
                        }
                        events.push(("text_delta", json!({ "text": text })));
                    } else {
                        if open {
                            events.push(("text_end", json!({})));
                            open = false;
                        }
                        events.push(block_event(block));
                    }
                }
                if open && message.status.is_terminal() {
                    events.push(("text_end", json!({})));
                    open = false;
                }
            }
            self.told[idx] = (message.content.len(), open);
            if message.status.is_terminal() && idx == self.settled {
                self.settled += 1;
            }
        }
        for (kind, event) in events {
            self.frame(out, kind, event);
        }
    }
}

/// A tool's payload as the `output` object roboto's event carries: an
/// object as is, anything else under `result` (as roboto's SDK wraps what
/// a client tool returns that is not an object).
fn output_object(payload: Option<&Value>) -> Value {
    match payload {
        None | Some(Value::Null) => Value::Null,
        Some(object @ Value::Object(_)) => object.clone(),
        Some(other) => json!({ "result": other }),
    }
}

/// The event a block other than text is.
fn block_event(block: &ContentBlock) -> (&'static str, Value) {
    match block {
        ContentBlock::Text { text } => ("text_delta", json!({ "text": text })),
        ContentBlock::ToolUse {
            tool_name,
            tool_use_id,
            input,
            answered_by_server,
        } => (
            "tool_use",
            json!({
                "name": tool_name,
                "tool_use_id": tool_use_id,
                "input": input,
                "answered_by_server": answered_by_server,
            }),
        ),
        ContentBlock::ToolResult {
            tool_name,
            tool_use_id,
            runtime_ms,
            status,
            payload,
        } => (
            "tool_result",
            json!({
                "name": tool_name,
                "tool_use_id": tool_use_id,
                "success": *status == "success",
                "output": output_object(payload.as_ref()),
                "runtime_ms": runtime_ms,
            }),
        ),
        ContentBlock::Error {
            error_message,
            error_code,
        } => (
            "error",
            json!({ "error_message": error_message, "error_code": error_code }),
        ),
    }
}

impl Projection for AgentSessionProjection {
    fn apply(
        &mut self,
        envelope: &Envelope,
        out: &mut dyn FnMut(Frame),
    ) -> Result<(), ProjectionError> {
        self.thread.apply(envelope)?;
        self.tell_new(out);
        Ok(())
    }

    fn fold(&self) -> &RunFold {
        self.thread.run()
    }
}
