//! The watsonx Orchestrate external-agent stream (vocabularies.md §2b) as a
//! projection of the canonical log.
//!
//! Every frame is data only, an OpenAI-chunk-like object with `id`,
//! `object`, `thread_id`, `model`, `created` and `choices[0].delta`:
//! - output text (and a refusal) is `thread.message.delta` content;
//! - reasoning text is a `thread.run.step.delta` of type `thinking`;
//! - the server-side calls the model made are one `thread.run.step.delta`
//!   of type `tool_calls` (`args` as an object, every call of the batch in
//!   one event), from the loop's `tool_call_detected` status; a client
//!   function call is one too, when it is complete;
//! - each server-side result is a `tool_response` step delta whose
//!   `tool_call_id` matches its call;
//! - a failure or the tool loop's limit is told as text; then `[DONE]`.
//!
//! The contract carries no usage and no agent status chunks.

use super::chat::{MAX_DEPTH_TEXT, completion_id, failure_text};
use super::{Frame, Projection, ProjectionError};
use crate::event::{Envelope, Event};
use crate::fold::RunFold;
use crate::item::{ContentPart, Item, PartKind};
use crate::run::IncompleteReason;
use crate::tool::AgentStatus;
use serde::Serialize;
use serde_json::Value;

/// Projects a canonical log into Orchestrate external-agent frames.
#[derive(Debug, Default)]
pub struct WxoProjection {
    fold: RunFold,
    next_index: u64,
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: String,
    object: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    thread_id: Option<&'a str>,
    model: &'a str,
    created: i64,
    choices: [Choice; 1],
}

#[derive(Serialize)]
struct Choice {
    index: u32,
    delta: Value,
    finish_reason: Option<()>,
}

/// A call's arguments as the object Orchestrate wants; text that is not a
/// JSON object is kept whole under `arguments`.
fn args_object(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ if arguments.trim().is_empty() => Value::Object(Default::default()),
        _ => serde_json::json!({ "arguments": arguments }),
    }
}

impl WxoProjection {
    pub fn new() -> Self {
        Self::default()
    }

    fn emit(
        &mut self,
        out: &mut dyn FnMut(Frame),
        object: &'static str,
        delta: Value,
    ) -> Result<(), ProjectionError> {
        let Some(header) = self.fold.header() else {
            return Ok(());
        };
        let chunk = Chunk {
            id: completion_id(&self.fold),
            object,
            thread_id: header.conversation.as_ref().map(|c| c.as_str()),
            model: &header.model,
            created: header.created_at,
            choices: [Choice {
                index: 0,
                delta,
                finish_reason: None,
            }],
        };
        let data = serde_json::to_string(&chunk)?;
        self.frame(out, data);
        Ok(())
    }

    fn frame(&mut self, out: &mut dyn FnMut(Frame), data: String) {
        out(Frame {
            index: self.next_index,
            event: None,
            data,
        });
        self.next_index += 1;
    }

    fn text(&mut self, out: &mut dyn FnMut(Frame), text: &str) -> Result<(), ProjectionError> {
        self.emit(
            out,
            "thread.message.delta",
            serde_json::json!({"role": "assistant", "content": text}),
        )
    }

    fn step(
        &mut self,
        out: &mut dyn FnMut(Frame),
        step_details: Value,
    ) -> Result<(), ProjectionError> {
        self.emit(
            out,
            "thread.run.step.delta",
            serde_json::json!({"role": "assistant", "step_details": step_details}),
        )
    }
}

impl Projection for WxoProjection {
    fn apply(
        &mut self,
        envelope: &Envelope,
        out: &mut dyn FnMut(Frame),
    ) -> Result<(), ProjectionError> {
        self.fold.apply(envelope)?;
        match &envelope.event {
            Event::PartDelta {
                output_index,
                content_index,
                delta,
                ..
            } if !delta.is_empty() => {
                let item = &self.fold.output()[*output_index as usize];
                match item
                    .content()
                    .get(*content_index as usize)
                    .and_then(ContentPart::kind)
                {
                    Some(PartKind::ReasoningText) => self.step(
                        out,
                        serde_json::json!({"type": "thinking", "content": delta}),
                    )?,
                    Some(PartKind::OutputText | PartKind::Refusal) => self.text(out, delta)?,
                    None => {}
                }
            }
            Event::Status(AgentStatus::ToolCallDetected { details }) => {
                let calls: Vec<Value> = details
                    .tools
                    .iter()
                    .map(|t| {
                        serde_json::json!({
                            "id": t.call_id,
                            "name": t.name,
                            "args": args_object(&t.arguments),
                        })
                    })
                    .collect();
                self.step(
                    out,
                    serde_json::json!({"type": "tool_calls", "tool_calls": calls}),
                )?;
            }
            Event::ItemCompleted { output_index, .. } => {
                // A client function call: the run ends waiting for its
                // result.
                if let Item::FunctionCall(call) = &self.fold.output()[*output_index as usize] {
                    let calls = serde_json::json!([{
                        "id": call.call_id,
                        "name": call.name,
                        "args": args_object(&call.arguments),
                    }]);
                    self.step(
                        out,
                        serde_json::json!({"type": "tool_calls", "tool_calls": calls}),
                    )?;
                }
            }
            Event::ToolFinished {
                output_index,
                result,
            } => {
                if let Item::ToolCall(call) = &self.fold.output()[*output_index as usize] {
                    let details = serde_json::json!({
                        "type": "tool_response",
                        "content": result.model_output(),
                        "name": call.name,
                        "tool_call_id": call.call_id,
                    });
                    self.step(out, details)?;
                }
            }
            // A log written before tool calls were logged at their start:
            // the execution record names the call by its item id (the
            // model's call id was not kept then).
            Event::ToolExecuted { execution } => {
                let details = serde_json::json!({
                    "type": "tool_response",
                    "content": execution.output,
                    "name": execution.name,
                    "tool_call_id": execution.call_id,
                });
                self.step(out, details)?;
            }
            Event::RunIncomplete {
                reason: IncompleteReason::MaxInferIters,
            } => {
                self.text(out, MAX_DEPTH_TEXT)?;
                self.frame(out, "[DONE]".into());
            }
            Event::RunFailed { error } => {
                self.text(out, &failure_text(&error.message))?;
                self.frame(out, "[DONE]".into());
            }
            e if e.is_terminal() => self.frame(out, "[DONE]".into()),
            _ => {}
        }
        Ok(())
    }

    fn fold(&self) -> &RunFold {
        &self.fold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_become_an_object_whatever_the_model_wrote() {
        assert_eq!(args_object("{\"a\":1}"), serde_json::json!({"a": 1}));
        assert_eq!(args_object(""), serde_json::json!({}));
        assert_eq!(args_object("[1]"), serde_json::json!({"arguments": "[1]"}));
    }
}
