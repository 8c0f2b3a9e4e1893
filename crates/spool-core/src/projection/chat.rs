//! The OpenAI Chat Completions stream, with seed 001's agent status chunks,
//! as a projection of the canonical log.
//!
//! Every frame is a `chat.completion.chunk` (data only, no `event:` line)
//! carrying the run's `thread_id` (its conversation) when it has one:
//! - `status` events become status chunks (`id` `status_…`,
//!   `delta.role:"system"`, `delta.metadata.status`); `tool_call_detected`
//!   lists the calls as JSON strings of `{name, arguments}`, as seed 001
//!   does. The run's [`ChatStreamOptions`] may turn them off.
//! - output text streams as `delta.role:"assistant"`, `delta.content`;
//!   reasoning streams as `delta.reasoning_content`, the field
//!   OpenAI-compatible servers (DeepSeek, vLLM) and clients (LiteLLM,
//!   LangChain) use for it, so it is never shown as content; server-side
//!   tool calls are not shown at all.
//! - a client function call streams as standard `delta.tool_calls`.
//! - the run's end is one stop chunk with its `finish_reason` (`stop`,
//!   `tool_calls`, `length`, `content_filter`) and any refusal; a failure or
//!   the tool loop's limit is told in-band as the stop chunk's content, as
//!   seed 001 does. A cancelled run has no stop chunk.
//! - then a usage chunk (`choices: []`) when `include_usage`, and
//!   `data: [DONE]`.

use super::{Frame, Projection, ProjectionError};
use crate::event::{Envelope, Event};
use crate::fold::RunFold;
use crate::item::{ContentPart, Item, PartKind};
use crate::run::{ChatStreamOptions, IncompleteReason, Usage};
use crate::tool::AgentStatus;
use serde::Serialize;
use serde_json::{Map, Value};

/// The chunk text told when the tool loop reached its limit (seed 001's).
pub const MAX_DEPTH_TEXT: &str = "Maximum streaming depth reached. Please try your request again.";

/// The in-band text of a failed run (seed 001's apology, with the reason).
pub fn failure_text(message: &str) -> String {
    format!("I apologize - I've encountered an unexpected error: {message}")
}

/// Projects a canonical log into `chat.completion.chunk` frames.
#[derive(Debug, Default)]
pub struct ChatProjection {
    fold: RunFold,
    next_index: u64,
    /// Status chunks sent so far: numbers their ids.
    statuses: u32,
    /// `output_index` → position in `delta.tool_calls` for client function
    /// calls, in the order they started.
    function_calls: Vec<u32>,
    /// The `chatcmpl-` id of every content chunk, made once per run.
    completion_id: String,
}

/// The parts of a chunk every frame shares.
#[derive(Serialize)]
struct Chunk<'a, D> {
    id: &'a str,
    object: &'static str,
    created: i64,
    model: &'a str,
    choices: &'a [Choice<D>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<ChatUsage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thread_id: Option<&'a str>,
}

#[derive(Serialize)]
struct Choice<D> {
    index: u32,
    delta: D,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

/// The delta of a text chunk, typed: one per token, so it is written
/// without building a JSON map (fields in the map's order, as the other
/// deltas are written).
#[derive(Serialize)]
struct TextDelta<'a> {
    content: &'a str,
    role: &'static str,
}

/// The delta of a reasoning chunk.
#[derive(Serialize)]
struct ReasoningDelta<'a> {
    reasoning_content: &'a str,
    role: &'static str,
}

/// Token counts in the Chat Completions form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChatUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub prompt_tokens_details: CachedTokens,
    pub completion_tokens_details: ReasoningTokens,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CachedTokens {
    pub cached_tokens: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReasoningTokens {
    pub reasoning_tokens: u64,
}

impl From<&Usage> for ChatUsage {
    fn from(u: &Usage) -> Self {
        Self {
            prompt_tokens: u.input_tokens,
            completion_tokens: u.output_tokens,
            total_tokens: u.total_tokens,
            prompt_tokens_details: CachedTokens {
                cached_tokens: u.input_tokens_details.cached_tokens,
            },
            completion_tokens_details: ReasoningTokens {
                reasoning_tokens: u.output_tokens_details.reasoning_tokens,
            },
        }
    }
}

/// How a finished run's end reads in Chat Completions: `finish_reason`,
/// plus text told in-band in the stop chunk's content.
pub fn finish(fold: &RunFold) -> (&'static str, Option<String>) {
    if let Some(error) = fold.error() {
        return ("stop", Some(failure_text(&error.message)));
    }
    match fold.incomplete_reason() {
        Some(IncompleteReason::MaxOutputTokens) => return ("length", None),
        Some(IncompleteReason::ContentFilter) => return ("content_filter", None),
        Some(_) => return ("stop", Some(MAX_DEPTH_TEXT.to_owned())),
        None => {}
    }
    let has_function_calls = fold
        .output()
        .iter()
        .any(|i| matches!(i, Item::FunctionCall(_)));
    if has_function_calls {
        ("tool_calls", None)
    } else {
        ("stop", None)
    }
}

/// A finished run as a non-streaming `chat.completion` object.
pub fn completion(fold: &RunFold) -> Option<Value> {
    let header = fold.header()?;
    let (finish_reason, told) = finish(fold);
    let mut text: String = fold
        .output()
        .iter()
        .filter(|i| matches!(i, Item::Message(_)))
        .flat_map(Item::content)
        .filter_map(|p| match p {
            ContentPart::OutputText { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    if let Some(told) = told {
        text.push_str(&told);
    }
    let tool_calls: Vec<Value> = fold
        .output()
        .iter()
        .filter_map(|i| match i {
            Item::FunctionCall(c) => Some(serde_json::json!({
                "id": c.call_id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            })),
            _ => None,
        })
        .collect();
    let mut message = Map::new();
    message.insert("role".into(), "assistant".into());
    message.insert(
        "content".into(),
        if text.is_empty() {
            Value::Null
        } else {
            text.into()
        },
    );
    message.insert(
        "refusal".into(),
        refusal(fold).map_or(Value::Null, Value::from),
    );
    if !tool_calls.is_empty() {
        message.insert("tool_calls".into(), tool_calls.into());
    }
    let reasoning: String = fold
        .output()
        .iter()
        .filter(|i| matches!(i, Item::Reasoning(_)))
        .flat_map(Item::content)
        .filter_map(|p| match p {
            ContentPart::ReasoningText { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    if !reasoning.is_empty() {
        message.insert("reasoning_content".into(), reasoning.into());
    }
    let usage = ChatUsage::from(&fold.usage().copied().unwrap_or_default());
    let mut object = serde_json::json!({
        "id": completion_id(fold),
        "object": "chat.completion",
        "created": header.created_at,
        "model": header.model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason,
        }],
        "usage": usage,
    });
    if let (Some(thread), Value::Object(o)) = (&header.conversation, &mut object) {
        o.insert("thread_id".into(), thread.as_str().into());
    }
    Some(object)
}

/// The run's refusal text, if its answer was a refusal.
pub fn refusal(fold: &RunFold) -> Option<String> {
    let text: String = fold
        .output()
        .iter()
        .flat_map(Item::content)
        .filter_map(|p| match p {
            ContentPart::Refusal { refusal } => Some(refusal.as_str()),
            _ => None,
        })
        .collect();
    (!text.is_empty()).then_some(text)
}

/// The run's `chatcmpl-` id: the same on every chunk of one completion.
pub fn completion_id(fold: &RunFold) -> String {
    fold.header()
        .map(|h| format!("chatcmpl-{}", h.id))
        .unwrap_or_default()
}

impl ChatProjection {
    pub fn new() -> Self {
        Self::default()
    }

    fn options(&self) -> ChatStreamOptions {
        self.fold.header().map(|h| h.chat).unwrap_or_default()
    }

    fn emit<D: Serialize>(
        &mut self,
        out: &mut dyn FnMut(Frame),
        id: &str,
        choices: &[Choice<D>],
        usage: Option<ChatUsage>,
    ) -> Result<(), ProjectionError> {
        let Some(header) = self.fold.header() else {
            return Ok(());
        };
        let chunk = Chunk {
            id,
            object: "chat.completion.chunk",
            created: header.created_at,
            model: &header.model,
            choices,
            usage,
            thread_id: header.conversation.as_ref().map(|c| c.as_str()),
        };
        let data = serde_json::to_string(&chunk)?;
        out(Frame {
            index: self.next_index,
            event: None,
            data,
        });
        self.next_index += 1;
        Ok(())
    }

    fn delta<D: Serialize>(
        &mut self,
        out: &mut dyn FnMut(Frame),
        delta: D,
        finish_reason: Option<&'static str>,
    ) -> Result<(), ProjectionError> {
        if self.completion_id.is_empty() {
            self.completion_id = completion_id(&self.fold);
        }
        let id = std::mem::take(&mut self.completion_id);
        let choice = Choice {
            index: 0,
            delta,
            logprobs: None,
            finish_reason,
        };
        let emitted = self.emit(out, &id, &[choice], None);
        self.completion_id = id;
        emitted
    }

    fn status(
        &mut self,
        out: &mut dyn FnMut(Frame),
        status: &AgentStatus,
    ) -> Result<(), ProjectionError> {
        if !self.options().status_chunks {
            return Ok(());
        }
        let mut metadata = Map::new();
        let name = match status {
            AgentStatus::StartingGeneration => "starting_generation",
            AgentStatus::ToolCallDetected { details } => {
                // Seed 001 sends each call as a JSON string of
                // `{name, arguments}`, not as an object.
                let tools = details
                    .tools
                    .iter()
                    .map(|t| {
                        // `name` first, as Python's json.dumps writes it.
                        Ok::<_, serde_json::Error>(Value::String(format!(
                            "{{\"name\":{},\"arguments\":{}}}",
                            serde_json::to_string(&t.name)?,
                            serde_json::to_string(&t.arguments)?,
                        )))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                metadata.insert("tools".into(), Value::Array(tools));
                "tool_call_detected"
            }
            AgentStatus::ToolsExecuted => "tools_executed",
            AgentStatus::ContinuingGeneration => "continuing_generation",
            AgentStatus::MaxDepthReached { details } => {
                metadata.insert("max_infer_iters".into(), details.max_infer_iters.into());
                "max_depth_reached"
            }
        };
        metadata.insert("status".into(), name.into());
        let id = match self.fold.header() {
            Some(h) => format!("status_{}_{}", h.id, self.statuses),
            None => return Ok(()),
        };
        self.statuses += 1;
        let choice = Choice {
            index: 0,
            delta: serde_json::json!({"role": "system", "metadata": metadata}),
            logprobs: None,
            finish_reason: None,
        };
        self.emit(out, &id, &[choice], None)
    }

    fn end(&mut self, out: &mut dyn FnMut(Frame), end: &Event) -> Result<(), ProjectionError> {
        if !matches!(end, Event::RunCancelled) {
            let (finish_reason, content) = finish(&self.fold);
            let mut delta = Map::new();
            delta.insert("role".into(), "assistant".into());
            if let Some(content) = content {
                delta.insert("content".into(), content.into());
            }
            if let Some(refusal) = refusal(&self.fold) {
                delta.insert("refusal".into(), refusal.into());
            }
            self.delta(out, Value::Object(delta), Some(finish_reason))?;
        }
        if self.options().include_usage {
            let usage = ChatUsage::from(&self.fold.usage().copied().unwrap_or_default());
            let id = completion_id(&self.fold);
            self.emit::<Value>(out, &id, &[], Some(usage))?;
        }
        out(Frame {
            index: self.next_index,
            event: None,
            data: "[DONE]".into(),
        });
        self.next_index += 1;
        Ok(())
    }
}

impl Projection for ChatProjection {
    fn apply(
        &mut self,
        envelope: &Envelope,
        out: &mut dyn FnMut(Frame),
    ) -> Result<(), ProjectionError> {
        self.fold.apply(envelope)?;
        match &envelope.event {
            Event::Status(status) => self.status(out, status)?,
            Event::PartDelta {
                output_index,
                content_index,
                delta,
                ..
            } => {
                let kind = self.fold.output()[*output_index as usize]
                    .content()
                    .get(*content_index as usize)
                    .and_then(ContentPart::kind);
                // Refusals go whole on the stop chunk.
                match kind {
                    _ if delta.is_empty() => {}
                    Some(PartKind::OutputText) => {
                        let delta = TextDelta {
                            content: delta,
                            role: "assistant",
                        };
                        self.delta(out, delta, None)?;
                    }
                    Some(PartKind::ReasoningText) => {
                        let delta = ReasoningDelta {
                            reasoning_content: delta,
                            role: "assistant",
                        };
                        self.delta(out, delta, None)?;
                    }
                    Some(PartKind::Refusal) | None => {}
                }
            }
            Event::ItemStarted {
                output_index,
                item: Item::FunctionCall(call),
            } => {
                let index = self.function_calls.len();
                self.function_calls.push(*output_index);
                let delta = serde_json::json!({
                    "role": "assistant",
                    "tool_calls": [{
                        "index": index,
                        "id": call.call_id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    }],
                });
                self.delta(out, delta, None)?;
            }
            Event::ArgumentsDelta {
                output_index,
                delta,
            } => {
                // Only client function calls: a server-side call's
                // arguments never reach the client.
                if let Some(index) = self.function_calls.iter().position(|i| i == output_index) {
                    let delta = serde_json::json!({
                        "tool_calls": [{
                            "index": index,
                            "function": {"arguments": delta},
                        }],
                    });
                    self.delta(out, delta, None)?;
                }
            }
            e if e.is_terminal() => self.end(out, e)?,
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
    use crate::event::tests::{created_with, log};
    use crate::run::tests::header;
    use crate::tool::{DetectedCall, DetectedCalls};

    fn project(events: Vec<Event>) -> Vec<Value> {
        let mut p = ChatProjection::new();
        let mut frames = Vec::new();
        for envelope in log(events) {
            p.apply(&envelope, &mut |f| frames.push(f)).unwrap();
        }
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(f.index, i as u64);
        }
        frames
            .into_iter()
            .map(|f| serde_json::from_str(&f.data).unwrap_or(Value::String(f.data)))
            .collect()
    }

    fn created(chat: ChatStreamOptions) -> Event {
        let mut run = header();
        run.chat = chat;
        created_with(run)
    }

    fn detected() -> Event {
        Event::Status(AgentStatus::ToolCallDetected {
            details: DetectedCalls {
                tools: vec![DetectedCall {
                    call_id: Some("call_1".into()),
                    name: "add".into(),
                    arguments: "{\"a\":1}".into(),
                }],
            },
        })
    }

    #[test]
    fn a_refusal_goes_whole_on_the_stop_chunk_and_a_length_stop_says_so() {
        use crate::item::ItemStatus;
        let frames = project(vec![
            created(ChatStreamOptions::default()),
            Event::RunStarted,
            Event::ItemStarted {
                output_index: 0,
                item: Item::assistant_message("msg_1".into()),
            },
            Event::PartStarted {
                output_index: 0,
                content_index: 0,
                kind: PartKind::Refusal,
            },
            Event::PartDelta {
                output_index: 0,
                content_index: 0,
                delta: "I can't".into(),
                logprobs: Vec::new(),
            },
            Event::PartDelta {
                output_index: 0,
                content_index: 0,
                delta: " help.".into(),
                logprobs: Vec::new(),
            },
            Event::PartDone {
                output_index: 0,
                content_index: 0,
            },
            Event::ItemCompleted {
                output_index: 0,
                status: ItemStatus::Completed,
            },
            Event::RunIncomplete {
                reason: IncompleteReason::MaxOutputTokens,
            },
        ]);
        assert_eq!(frames.len(), 2, "{frames:?}");
        let stop = &frames[0]["choices"][0];
        assert_eq!(stop["delta"]["refusal"], "I can't help.");
        assert!(stop["delta"].get("content").is_none());
        assert_eq!(stop["finish_reason"], "length");
        assert_eq!(frames[1], "[DONE]");
    }

    #[test]
    fn status_chunks_follow_seed_001_and_can_be_turned_off() {
        let frames = project(vec![
            created(ChatStreamOptions::default()),
            Event::RunStarted,
            detected(),
            Event::RunCompleted,
        ]);
        let status = &frames[0];
        assert!(status["id"].as_str().unwrap().starts_with("status_"));
        assert_eq!(status["choices"][0]["delta"]["role"], "system");
        let meta = &status["choices"][0]["delta"]["metadata"];
        assert_eq!(meta["status"], "tool_call_detected");
        let tool: Value = serde_json::from_str(meta["tools"][0].as_str().unwrap()).unwrap();
        assert_eq!(
            tool,
            serde_json::json!({"name":"add","arguments":"{\"a\":1}"})
        );
        assert_eq!(frames[1]["choices"][0]["finish_reason"], "stop");
        assert_eq!(frames[2], "[DONE]");

        let plain = project(vec![
            created(ChatStreamOptions {
                status_chunks: false,
                include_usage: true,
            }),
            Event::RunStarted,
            detected(),
            Event::RunCompleted,
        ]);
        assert_eq!(plain.len(), 3, "stop, usage, [DONE]: {plain:?}");
        assert_eq!(plain[1]["choices"], serde_json::json!([]));
        assert_eq!(plain[1]["usage"]["total_tokens"], 0);
    }
}
