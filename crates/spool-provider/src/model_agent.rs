//! The built-in agent: one model call, its deltas turned into run events.
//!
//! Items stream one at a time, as the Responses protocol requires: text,
//! refusal and reasoning deltas open (and close) message and reasoning
//! items as the model switches between them, and the first tool call
//! becomes a `function_call` item streamed as it arrives. Fragments of any
//! other call are buffered, whatever order the upstream interleaves them
//! in, and each buffered call is written as its own item when the model
//! finishes. A fragment for a call whose item already ended (text came in
//! between) is a protocol error.
//! The run ends with the function calls for the caller to answer with
//! `function_call_output` items.

use crate::{FinishReason, ModelDelta, ModelProvider, ModelRequest, ProviderError};
use async_trait::async_trait;
use futures::StreamExt;
use spool_core::agent::{Agent, RunContext, RunOutcome};
use spool_core::emit::{EmitError, RunWriter};
use spool_core::event::Event;
use spool_core::ids::new_id;
use spool_core::item::{Item, ItemStatus, PartKind};
use spool_core::response::RunError;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Serves a run with one call to a model provider.
#[derive(Clone)]
pub struct ModelAgent {
    provider: Arc<dyn ModelProvider>,
}

impl ModelAgent {
    pub fn new(provider: Arc<dyn ModelProvider>) -> Self {
        Self { provider }
    }
}

fn emit_failed(e: EmitError) -> RunError {
    RunError::new(
        "server_error",
        format!("the run's log refused an event: {e}"),
    )
}

/// The open text-like part: which item, which part, what kind.
#[derive(Debug, Clone, Copy)]
struct OpenPart {
    output_index: u32,
    content_index: u32,
    kind: PartKind,
}

/// A tool call being streamed, by the model's call index.
#[derive(Debug, Default)]
struct PendingCall {
    id: Option<String>,
    name: Option<String>,
    /// Arguments received while the call could not open yet.
    buffered: String,
    /// Set once the call's item is open (or was).
    output_index: Option<u32>,
    ended: bool,
}

/// Maps one model call's deltas onto the run's items.
#[derive(Default)]
struct TurnMapper {
    /// The open message or reasoning item and its open part.
    open: Option<OpenPart>,
    /// The call index of the open function call item.
    open_call: Option<u32>,
    calls: BTreeMap<u32, PendingCall>,
}

impl TurnMapper {
    /// Closes whatever item is open, ending it as `status`.
    async fn close_item(
        &mut self,
        out: &mut RunWriter<'_>,
        status: ItemStatus,
    ) -> Result<(), RunError> {
        if let Some(p) = self.open.take() {
            out.emit(Event::PartDone {
                output_index: p.output_index,
                content_index: p.content_index,
            })
            .await
            .map_err(emit_failed)?;
            out.emit(Event::ItemCompleted {
                output_index: p.output_index,
                status,
            })
            .await
            .map_err(emit_failed)?;
        }
        if let Some(index) = self.open_call.take()
            && let Some(call) = self.calls.get_mut(&index)
        {
            call.ended = true;
            if let Some(output_index) = call.output_index {
                out.emit(Event::ItemCompleted {
                    output_index,
                    status,
                })
                .await
                .map_err(emit_failed)?;
            }
        }
        Ok(())
    }

    async fn text(
        &mut self,
        out: &mut RunWriter<'_>,
        kind: PartKind,
        delta: String,
    ) -> Result<(), RunError> {
        // Text and refusal share a message; reasoning has its own item.
        let same_item = |open: &OpenPart| {
            (open.kind == PartKind::ReasoningText) == (kind == PartKind::ReasoningText)
        };
        let open = match self.open {
            Some(open) if open.kind == kind => open,
            Some(open) if same_item(&open) => {
                out.emit(Event::PartDone {
                    output_index: open.output_index,
                    content_index: open.content_index,
                })
                .await
                .map_err(emit_failed)?;
                let next = OpenPart {
                    content_index: open.content_index + 1,
                    kind,
                    ..open
                };
                out.emit(Event::PartStarted {
                    output_index: next.output_index,
                    content_index: next.content_index,
                    kind,
                })
                .await
                .map_err(emit_failed)?;
                next
            }
            _ => {
                self.close_item(out, ItemStatus::Completed).await?;
                let output_index = out.next_output_index();
                let item = if kind == PartKind::ReasoningText {
                    Item::reasoning()
                } else {
                    Item::assistant_message()
                };
                out.emit(Event::ItemStarted { output_index, item })
                    .await
                    .map_err(emit_failed)?;
                out.emit(Event::PartStarted {
                    output_index,
                    content_index: 0,
                    kind,
                })
                .await
                .map_err(emit_failed)?;
                OpenPart {
                    output_index,
                    content_index: 0,
                    kind,
                }
            }
        };
        self.open = Some(open);
        out.emit(Event::PartDelta {
            output_index: open.output_index,
            content_index: open.content_index,
            delta,
        })
        .await
        .map_err(emit_failed)
    }

    async fn tool_call(
        &mut self,
        out: &mut RunWriter<'_>,
        index: u32,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
    ) -> Result<(), RunError> {
        let call = self.calls.entry(index).or_default();
        if call.ended {
            return Err(ProviderError::Protocol(format!(
                "arguments for tool call {index} arrived after the model moved on from it"
            ))
            .into());
        }
        if call.id.is_none() {
            call.id = id;
        }
        if call.name.is_none() {
            call.name = name;
        }
        if self.open_call == Some(index) {
            if let Some(output_index) = call.output_index
                && !arguments.is_empty()
            {
                out.emit(Event::ArgumentsDelta {
                    output_index,
                    delta: arguments,
                })
                .await
                .map_err(emit_failed)?;
            }
            return Ok(());
        }
        call.buffered.push_str(&arguments);
        // Only one call streams live; the others wait for the finish.
        if self.open_call.is_none() && call.name.is_some() && call.output_index.is_none() {
            self.open_call_item(out, index).await?;
        }
        Ok(())
    }

    /// Opens call `index` (closing the open item) and sends what it has.
    async fn open_call_item(
        &mut self,
        out: &mut RunWriter<'_>,
        index: u32,
    ) -> Result<(), RunError> {
        self.close_item(out, ItemStatus::Completed).await?;
        let Some(call) = self.calls.get_mut(&index) else {
            return Ok(());
        };
        let output_index = out.next_output_index();
        let call_id = call.id.clone().unwrap_or_else(|| new_id("call"));
        let name = call.name.clone().unwrap_or_default();
        out.emit(Event::ItemStarted {
            output_index,
            item: Item::function_call(call_id, name),
        })
        .await
        .map_err(emit_failed)?;
        call.output_index = Some(output_index);
        let buffered = std::mem::take(&mut call.buffered);
        self.open_call = Some(index);
        if !buffered.is_empty() {
            out.emit(Event::ArgumentsDelta {
                output_index,
                delta: buffered,
            })
            .await
            .map_err(emit_failed)?;
        }
        Ok(())
    }

    /// Closes everything at the end of the model's answer; the last item
    /// ends as `status` (incomplete when the model was cut off).
    async fn finish(
        &mut self,
        out: &mut RunWriter<'_>,
        status: ItemStatus,
    ) -> Result<(), RunError> {
        let waiting: Vec<u32> = self
            .calls
            .iter()
            .filter(|(_, c)| c.output_index.is_none())
            .map(|(i, _)| *i)
            .collect();
        for index in waiting {
            if self.calls.get(&index).is_some_and(|c| c.name.is_none()) {
                return Err(ProviderError::Protocol(format!(
                    "tool call {index} never received a function name"
                ))
                .into());
            }
            self.open_call_item(out, index).await?;
        }
        self.close_item(out, status).await
    }
}

#[async_trait]
impl Agent for ModelAgent {
    async fn run(&self, ctx: RunContext, out: &mut RunWriter<'_>) -> Result<RunOutcome, RunError> {
        let request = ModelRequest::from_context(&ctx);
        let mut stream = self.provider.stream(request).await?;
        let mut mapper = TurnMapper::default();
        let mut finish = None;
        while let Some(delta) = stream.next().await {
            match delta? {
                ModelDelta::Text(t) => mapper.text(out, PartKind::OutputText, t).await?,
                ModelDelta::Refusal(t) => mapper.text(out, PartKind::Refusal, t).await?,
                ModelDelta::Reasoning(t) => mapper.text(out, PartKind::ReasoningText, t).await?,
                ModelDelta::ToolCall {
                    index,
                    id,
                    name,
                    arguments,
                } => mapper.tool_call(out, index, id, name, arguments).await?,
                ModelDelta::Usage(u) => out.usage(u).await.map_err(emit_failed)?,
                ModelDelta::Finish(reason) => finish = Some(reason),
            }
        }
        let outcome = match finish {
            Some(FinishReason::Length) => RunOutcome::Incomplete {
                reason: "max_output_tokens".into(),
            },
            Some(FinishReason::ContentFilter) => RunOutcome::Incomplete {
                reason: "content_filter".into(),
            },
            _ => RunOutcome::Completed,
        };
        let last_item = match outcome {
            RunOutcome::Completed => ItemStatus::Completed,
            RunOutcome::Incomplete { .. } => ItemStatus::Incomplete,
        };
        mapper.finish(out, last_item).await?;
        Ok(outcome)
    }
}
