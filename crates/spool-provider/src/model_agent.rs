//! The built-in agent: the model, and the tool loop around it.
//!
//! Each step is one model call whose deltas become items. Items stream one
//! at a time, as the Responses protocol requires: text, refusal and
//! reasoning deltas open (and close) message and reasoning items as the
//! model switches between them, and the first tool call becomes a
//! `function_call` item streamed as it arrives. Fragments of any other call
//! are buffered, whatever order the upstream interleaves them in, and each
//! is written as its own item when the model finishes.
//!
//! When the model calls tools the agent hosts ([`ToolSet`]), they run
//! concurrently (bounded, each under a timeout) and each execution is
//! recorded (`tool.executed`: success, output or error, runtime) and
//! answered with a `function_call_output` item; then the model is called
//! again. The loop ends when the model answers without tool calls, when a
//! call is for one of the caller's functions (the run ends with it, as for
//! any client tool), or after `max_infer_iters` model calls (`incomplete`).
//! Its progress is recorded in the agent status vocabulary.

use crate::{FinishReason, ModelDelta, ModelProvider, ModelRequest, ProviderError};
use async_trait::async_trait;
use futures::FutureExt;
use futures::StreamExt;
use serde_json::{Value, json};
use spool_core::agent::{Agent, RunContext, RunOutcome};
use spool_core::emit::{EmitError, RunWriter};
use spool_core::event::Event;
use spool_core::ids::new_id;
use spool_core::item::{FunctionCallItem, FunctionCallOutputItem, Item, ItemStatus, PartKind};
use spool_core::request::ToolChoice;
use spool_core::response::RunError;
use spool_core::tool::{AgentStatus, ToolExecution, ToolSet};
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Limits of the tool loop.
#[derive(Debug, Clone, Copy)]
pub struct LoopLimits {
    /// Most model calls in one run (a request's `max_infer_iters` overrides).
    pub max_infer_iters: u32,
    /// Longest a server-side tool may run before it counts as failed.
    pub tool_timeout: Duration,
    /// Most server-side tools running at once.
    pub max_parallel_tools: usize,
}

impl Default for LoopLimits {
    fn default() -> Self {
        Self {
            max_infer_iters: 10,
            tool_timeout: Duration::from_secs(60),
            max_parallel_tools: 4,
        }
    }
}

/// The built-in agent: calls the model, runs the server-side tools it asks
/// for, and calls it again, until it answers without tool calls, a caller's
/// function is needed, or the loop reaches its limit.
#[derive(Clone)]
pub struct ModelAgent {
    provider: Arc<dyn ModelProvider>,
    /// The model named upstream; `None` sends the request's `model`.
    model: Option<String>,
    tools: ToolSet,
    limits: LoopLimits,
}

impl ModelAgent {
    /// One model call per run, no server-side tools.
    pub fn new(provider: Arc<dyn ModelProvider>) -> Self {
        Self {
            provider,
            model: None,
            tools: ToolSet::default(),
            limits: LoopLimits::default(),
        }
    }

    /// Names the upstream model, whatever the request's `model` says (a
    /// hosted agent is selected by its own name).
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Tools spool runs itself, offered to the model with the caller's.
    pub fn with_tools(mut self, tools: ToolSet) -> Self {
        self.tools = tools;
        self
    }

    pub fn with_limits(mut self, limits: LoopLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Runs one server-side tool call, bounded by the tool timeout.
    async fn execute(&self, call: FunctionCallItem) -> ToolExecution {
        let started_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let started = Instant::now();
        let result = match (
            self.tools.get(&call.name),
            serde_json::from_str(&call.arguments),
        ) {
            (None, _) => Err(format!("no tool named '{}'", call.name)),
            (_, Err(e)) => Err(format!("the arguments are not valid JSON: {e}")),
            (Some(tool), Ok(arguments)) => {
                // A tool that panics is a failed call, not a failed run.
                let call = AssertUnwindSafe(tool.call(arguments)).catch_unwind();
                match tokio::time::timeout(self.limits.tool_timeout, call).await {
                    Ok(Ok(result)) => result,
                    Ok(Err(_)) => Err("the tool panicked".to_owned()),
                    Err(_) => Err(format!(
                        "the tool did not finish within {} ms",
                        self.limits.tool_timeout.as_millis()
                    )),
                }
            }
        };
        let runtime_ms = started.elapsed().as_millis() as u64;
        let (success, output, error) = match result {
            Ok(output) => (true, output, None),
            Err(error) => (false, format!("Error: {error}"), Some(error)),
        };
        ToolExecution {
            call_id: call.call_id,
            name: call.name,
            success,
            output,
            error,
            started_at_ms,
            runtime_ms,
        }
    }

    /// One model call: streams its answer into items; returns how it ended.
    async fn infer(
        &self,
        ctx: &RunContext,
        out: &mut RunWriter<'_>,
        after_tools: bool,
    ) -> Result<Option<FinishReason>, RunError> {
        let mut request = ModelRequest::from_context(ctx);
        // A forced tool choice holds for the first step only; after tools
        // ran the model must be free to answer, or the loop never ends.
        if after_tools
            && matches!(
                request.tool_choice,
                ToolChoice::Required | ToolChoice::Function(_)
            )
        {
            request.tool_choice = ToolChoice::Auto;
        }
        // The run's own output so far (earlier steps' calls and results).
        request.items.extend(out.fold().output().iter().cloned());
        request.tools.extend(self.tools.definitions());
        if let Some(model) = &self.model {
            request.model.clone_from(model);
        }
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
        let cut_off = matches!(
            finish,
            Some(FinishReason::Length | FinishReason::ContentFilter)
        );
        let last_item = if cut_off {
            ItemStatus::Incomplete
        } else {
            ItemStatus::Completed
        };
        mapper.finish(out, last_item).await?;
        Ok(finish)
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
        let max_iters = ctx
            .request
            .max_infer_iters
            .unwrap_or(self.limits.max_infer_iters)
            .max(1);
        let looping = !self.tools.is_empty();
        for iteration in 1..=max_iters {
            if looping {
                let status = if iteration == 1 {
                    AgentStatus::StartingGeneration
                } else {
                    AgentStatus::ContinuingGeneration
                };
                out.status(status, None).await.map_err(emit_failed)?;
            }
            let first_new = out.next_output_index() as usize;
            match self.infer(&ctx, out, iteration > 1).await? {
                Some(FinishReason::Length) => {
                    return Ok(RunOutcome::Incomplete {
                        reason: "max_output_tokens".into(),
                    });
                }
                Some(FinishReason::ContentFilter) => {
                    return Ok(RunOutcome::Incomplete {
                        reason: "content_filter".into(),
                    });
                }
                _ => {}
            }
            let calls: Vec<FunctionCallItem> = out.fold().output()[first_new..]
                .iter()
                .filter_map(|item| match item {
                    Item::FunctionCall(call) => Some(call.clone()),
                    _ => None,
                })
                .collect();
            let (server, client): (Vec<_>, Vec<_>) = calls
                .into_iter()
                .partition(|call| self.tools.get(&call.name).is_some());
            if server.is_empty() {
                // Answered, or the caller's functions are needed.
                return Ok(RunOutcome::Completed);
            }
            let detected: Vec<String> = server
                .iter()
                .map(|c| json!({"name": c.name, "arguments": c.arguments}).to_string())
                .collect();
            out.status(
                AgentStatus::ToolCallDetected,
                Some(json!({"tools": detected})),
            )
            .await
            .map_err(emit_failed)?;
            // Run concurrently (bounded), record in call order.
            let executions: Vec<ToolExecution> = futures::stream::iter(server)
                .map(|call| self.execute(call))
                .buffered(self.limits.max_parallel_tools.max(1))
                .collect()
                .await;
            for execution in executions {
                let output_index = out.next_output_index();
                let item = Item::FunctionCallOutput(FunctionCallOutputItem {
                    id: new_id("fco"),
                    status: ItemStatus::InProgress,
                    call_id: execution.call_id.clone(),
                    output: Value::String(execution.output.clone()),
                });
                out.tool_executed(execution).await.map_err(emit_failed)?;
                out.emit(Event::ItemStarted { output_index, item })
                    .await
                    .map_err(emit_failed)?;
                out.emit(Event::ItemCompleted {
                    output_index,
                    status: ItemStatus::Completed,
                })
                .await
                .map_err(emit_failed)?;
            }
            out.status(AgentStatus::ToolsExecuted, None)
                .await
                .map_err(emit_failed)?;
            if !client.is_empty() {
                return Ok(RunOutcome::Completed);
            }
        }
        out.status(
            AgentStatus::MaxDepthReached,
            Some(json!({"max_infer_iters": max_iters})),
        )
        .await
        .map_err(emit_failed)?;
        Ok(RunOutcome::Incomplete {
            reason: "max_infer_iters".into(),
        })
    }
}
