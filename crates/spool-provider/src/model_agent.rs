//! The built-in agent: one model call, its deltas turned into run events.
//!
//! Text, refusal and reasoning deltas open (and close) message and reasoning
//! items as the model switches between them. Tool-call fragments open one
//! `function_call` item per call index once the call's name is known; calls
//! may stream interleaved, so they stay open until the model finishes and
//! are then completed in order. The run ends with the function calls for
//! the caller to answer with `function_call_output` items.

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

/// The open text-like part, if any: which item, which part, what kind.
#[derive(Debug, Clone, Copy)]
struct OpenPart {
    output_index: u32,
    content_index: u32,
    kind: PartKind,
}

/// A tool call being streamed.
#[derive(Debug, Default)]
struct PendingCall {
    id: Option<String>,
    name: Option<String>,
    /// Arguments received before the name, so before the item could open.
    buffered: String,
    output_index: Option<u32>,
}

/// Maps one model call's deltas onto the run's items.
#[derive(Default)]
struct TurnMapper {
    /// The open message or reasoning item and its open part.
    open: Option<OpenPart>,
    calls: BTreeMap<u32, PendingCall>,
}

impl TurnMapper {
    async fn close_open(&mut self, out: &mut RunWriter<'_>) -> Result<(), EmitError> {
        if let Some(p) = self.open.take() {
            out.emit(Event::PartDone {
                output_index: p.output_index,
                content_index: p.content_index,
            })
            .await?;
            out.emit(Event::ItemCompleted {
                output_index: p.output_index,
                status: ItemStatus::Completed,
            })
            .await?;
        }
        Ok(())
    }

    async fn text(
        &mut self,
        out: &mut RunWriter<'_>,
        kind: PartKind,
        delta: String,
    ) -> Result<(), EmitError> {
        let same_item = |open: &OpenPart| {
            // Text and refusal share a message; reasoning has its own item.
            (open.kind == PartKind::ReasoningText) == (kind == PartKind::ReasoningText)
        };
        match self.open {
            Some(open) if open.kind == kind => {}
            Some(open) if same_item(&open) => {
                out.emit(Event::PartDone {
                    output_index: open.output_index,
                    content_index: open.content_index,
                })
                .await?;
                let content_index = open.content_index + 1;
                out.emit(Event::PartStarted {
                    output_index: open.output_index,
                    content_index,
                    kind,
                })
                .await?;
                self.open = Some(OpenPart {
                    content_index,
                    kind,
                    ..open
                });
            }
            _ => {
                self.close_open(out).await?;
                let output_index = out.next_output_index();
                let item = if kind == PartKind::ReasoningText {
                    Item::reasoning()
                } else {
                    Item::assistant_message()
                };
                out.emit(Event::ItemStarted { output_index, item }).await?;
                out.emit(Event::PartStarted {
                    output_index,
                    content_index: 0,
                    kind,
                })
                .await?;
                self.open = Some(OpenPart {
                    output_index,
                    content_index: 0,
                    kind,
                });
            }
        }
        let Some(open) = self.open else {
            return Ok(());
        };
        out.emit(Event::PartDelta {
            output_index: open.output_index,
            content_index: open.content_index,
            delta,
        })
        .await
    }

    async fn tool_call(
        &mut self,
        out: &mut RunWriter<'_>,
        index: u32,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
    ) -> Result<(), EmitError> {
        self.close_open(out).await?;
        let call = self.calls.entry(index).or_default();
        if call.id.is_none() {
            call.id = id;
        }
        if call.name.is_none() {
            call.name = name;
        }
        match (call.output_index, &call.name) {
            (Some(output_index), _) => {
                if !arguments.is_empty() {
                    out.emit(Event::ArgumentsDelta {
                        output_index,
                        delta: arguments,
                    })
                    .await?;
                }
            }
            (None, Some(name)) => {
                let output_index = out.next_output_index();
                let call_id = call.id.clone().unwrap_or_else(|| new_id("call"));
                out.emit(Event::ItemStarted {
                    output_index,
                    item: Item::function_call(call_id, name.clone()),
                })
                .await?;
                call.output_index = Some(output_index);
                let delta = std::mem::take(&mut call.buffered) + &arguments;
                if !delta.is_empty() {
                    out.emit(Event::ArgumentsDelta {
                        output_index,
                        delta,
                    })
                    .await?;
                }
            }
            (None, None) => call.buffered.push_str(&arguments),
        }
        Ok(())
    }

    /// Closes everything at the end of the model's answer.
    async fn finish(&mut self, out: &mut RunWriter<'_>) -> Result<(), RunError> {
        self.close_open(out).await.map_err(emit_failed)?;
        for (index, call) in std::mem::take(&mut self.calls) {
            let Some(output_index) = call.output_index else {
                return Err(ProviderError::Protocol(format!(
                    "tool call {index} never received a function name"
                ))
                .into());
            };
            out.emit(Event::ItemCompleted {
                output_index,
                status: ItemStatus::Completed,
            })
            .await
            .map_err(emit_failed)?;
        }
        Ok(())
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
            let emitted = match delta? {
                ModelDelta::Text(t) => mapper.text(out, PartKind::OutputText, t).await,
                ModelDelta::Refusal(t) => mapper.text(out, PartKind::Refusal, t).await,
                ModelDelta::Reasoning(t) => mapper.text(out, PartKind::ReasoningText, t).await,
                ModelDelta::ToolCall {
                    index,
                    id,
                    name,
                    arguments,
                } => mapper.tool_call(out, index, id, name, arguments).await,
                ModelDelta::Usage(u) => out.usage(u).await,
                ModelDelta::Finish(reason) => {
                    finish = Some(reason);
                    Ok(())
                }
            };
            emitted.map_err(emit_failed)?;
        }
        mapper.finish(out).await?;
        Ok(match finish {
            Some(FinishReason::Length) => RunOutcome::Incomplete {
                reason: "max_output_tokens".into(),
            },
            Some(FinishReason::ContentFilter) => RunOutcome::Incomplete {
                reason: "content_filter".into(),
            },
            _ => RunOutcome::Completed,
        })
    }
}
