//! The built-in agent: the model, and the tool loop around it.
//!
//! A run is a sequence of steps. Each `inference` step is one model call
//! whose answer becomes items ([`turn`]) and whose usage the step reports.
//! When the model calls tools spool runs itself (Rust [`Tool`]s and MCP
//! servers, [`tools`]), they run as one `tool_execution` step, each call
//! logged as it starts and as it ends; then the model is called again. The
//! loop ends when the model answers without server-side calls, when a call
//! is the caller's (a client function, or an approval the caller must give:
//! the run ends with it), or after `max_infer_iters` model calls
//! (`incomplete`). Its progress is recorded in the agent status vocabulary.
//! With `truncation: "auto"`, a model call the upstream refuses because the
//! conversation does not fit the context is tried once more without the
//! oldest half of it.
//!
//! `max_output_tokens` bounds the whole run, and spool enforces it itself
//! rather than trusting the upstream to: each call is asked for what is
//! left of it, and a call whose streamed output goes past what is left is
//! cut off there, ending the run `incomplete` (`max_output_tokens`).
//! Without a tokenizer the output is counted as one token per delta that
//! carries output (a delta holds at least one token), or as the upstream's
//! own usage when it reports more, so a well-behaved upstream is never cut
//! short.
//!
//! [`Tool`]: spool_core::tool::Tool

mod tools;
mod turn;

pub use tools::{McpConnector, SystemClock};

use crate::{FinishReason, ModelDelta, ModelProvider, ModelRequest};
use async_trait::async_trait;
use futures::StreamExt;
use serde_json::Value;
use spool_core::agent::{Agent, RunContext, RunOutcome};
use spool_core::clock::Clock;
use spool_core::emit::{EmitError, RunWriter};
use spool_core::event::StepKind;
use spool_core::item::{Item, ItemStatus, McpApprovalRequestItem, PartKind, Role};
use spool_core::request::ToolChoice;
use spool_core::run::{IncompleteReason, RunError, SafetyViolation, Usage, ViolationLevel};
use spool_core::tool::{AgentStatus, DepthReached, DetectedCall, DetectedCalls, Shield, ToolSet};
use std::sync::Arc;
use std::time::Duration;
use tools::{PlannedCall, Route, RunTools, ToolRunner};
use turn::{ServerCall, TurnMapper};

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
/// function (or an approval) is needed, or the loop reaches its limit.
#[derive(Clone)]
pub struct ModelAgent {
    provider: Arc<dyn ModelProvider>,
    /// The model named upstream; `None` sends the request's `model`.
    model: Option<String>,
    tools: ToolSet,
    limits: LoopLimits,
    /// Sessions to MCP servers, shared by every run.
    mcp: Option<Arc<dyn McpConnector>>,
    /// Times tool executions.
    clock: Arc<dyn Clock>,
}

impl ModelAgent {
    /// One model call per run, no server-side tools.
    pub fn new(provider: Arc<dyn ModelProvider>) -> Self {
        Self {
            provider,
            model: None,
            tools: ToolSet::default(),
            limits: LoopLimits::default(),
            mcp: None,
            clock: Arc::new(SystemClock),
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

    /// How runs reach the MCP servers they name.
    pub fn with_mcp(mut self, clients: Arc<dyn McpConnector>) -> Self {
        self.mcp = Some(clients);
        self
    }

    /// The clock that times tool executions.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn runner<'a>(&'a self, tools: &'a RunTools) -> ToolRunner<'a> {
        ToolRunner {
            tools,
            hosted: &self.tools,
            mcp: self.mcp.as_deref(),
            clock: self.clock.as_ref(),
            limits: self.limits,
        }
    }

    /// One model call, as an inference step: streams its answer into items;
    /// returns how it ended, the calls of server-side tools it made and the
    /// output tokens it spent. `offer_tools` is false once the run may make
    /// no more tool calls; `budget` is what is left of `max_output_tokens`.
    async fn infer(
        &self,
        ctx: &RunContext,
        tools: &RunTools,
        out: &mut RunWriter<'_>,
        after_tools: bool,
        offer_tools: bool,
        budget: Option<u64>,
    ) -> Result<Inference, RunError> {
        let mut request = ModelRequest::from_context(ctx);
        if budget.is_some() {
            request.max_output_tokens = budget;
        }
        // The run's own output so far (earlier steps' calls and results).
        request.items.extend(out.fold().output().iter().cloned());
        if offer_tools {
            request.tools.extend(tools.offered.iter().cloned());
        }
        // `allowed_tools`: the model sees only the tools allowed, and the
        // choice among them is a plain `auto` or `required`.
        if let ToolChoice::Allowed(allowed) = &request.tool_choice {
            request
                .tools
                .retain(|tool| match tools.routes.get(&tool.name) {
                    Some(route) => tools
                        .server(route)
                        .is_some_and(|label| allowed.allows_mcp(label, tools.tool_name(route))),
                    None => allowed.allows_function(&tool.name),
                });
            request.tool_choice = if allowed.required {
                ToolChoice::Required
            } else {
                ToolChoice::Auto
            };
        }
        // A forced tool choice holds for the first step only; after tools
        // ran the model must be free to answer, or the loop never ends. Nor
        // can a tool be forced when none is offered.
        let forced = matches!(
            request.tool_choice,
            ToolChoice::Required | ToolChoice::Function(_)
        );
        if forced && (after_tools || request.tools.is_empty()) {
            request.tool_choice = ToolChoice::Auto;
        }
        if let Some(model) = &self.model {
            request.model.clone_from(model);
        }
        let step = out
            .start_step(StepKind::Inference)
            .await
            .map_err(emit_failed)?;
        // `truncation: "auto"`: a conversation too long for the model loses
        // its oldest half and is tried once more.
        let shorter = ctx.request.truncate_auto.then(|| request.clone());
        let mut stream = match self.provider.stream(request).await {
            Ok(stream) => stream,
            Err(e) => match shorter {
                Some(mut shorter) if e.is_context_too_long() => {
                    drop_oldest_half(&mut shorter.items);
                    self.provider.stream(shorter).await?
                }
                _ => return Err(e.into()),
            },
        };
        let server_tools = if offer_tools {
            tools.routes.keys().cloned().collect()
        } else {
            Default::default()
        };
        let mut mapper = TurnMapper::new(server_tools, ctx.request.call_shapes.clone());
        let mut finish = None;
        let mut usage: Option<Usage> = None;
        // Output tokens streamed so far, at least one per delta with output.
        let mut streamed: u64 = 0;
        while let Some(delta) = stream.next().await {
            let delta = delta?;
            if output_counts(&delta) {
                streamed += 1;
                if budget.is_some_and(|budget| streamed > budget) {
                    // The upstream went past the limit: its answer is cut
                    // here, and the connection dropped with the stream.
                    finish = Some(FinishReason::Length);
                    break;
                }
            }
            match delta {
                // Shown only when asked for, as the Responses API does.
                ModelDelta::TextLogprobs(l) if ctx.request.logprobs.is_some() => {
                    mapper.logprobs(l);
                }
                ModelDelta::TextLogprobs(_) => {}
                ModelDelta::Text(t) => mapper.text(out, PartKind::OutputText, t).await?,
                ModelDelta::Refusal(t) => mapper.text(out, PartKind::Refusal, t).await?,
                ModelDelta::Reasoning(t) => mapper.text(out, PartKind::ReasoningText, t).await?,
                ModelDelta::ToolCall {
                    index,
                    id,
                    name,
                    arguments,
                } => mapper.tool_call(out, index, id, name, arguments).await?,
                ModelDelta::Usage(u) => usage.get_or_insert_with(Usage::default).add(&u),
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
        let server_calls = mapper.finish(out, last_item).await?;
        let spent = usage.map_or(0, |u| u.output_tokens).max(streamed);
        out.complete_step(step, usage).await.map_err(emit_failed)?;
        Ok(Inference {
            finish,
            server_calls,
            spent,
        })
    }
}

/// How one model call ended.
struct Inference {
    finish: Option<FinishReason>,
    server_calls: Vec<ServerCall>,
    /// Output tokens the call spent: its usage, or at least one per delta
    /// with output.
    spent: u64,
}

/// Whether a delta is output that `max_output_tokens` counts: text,
/// refusal, reasoning and tool-call arguments.
fn output_counts(delta: &ModelDelta) -> bool {
    match delta {
        ModelDelta::Text(t) | ModelDelta::Refusal(t) | ModelDelta::Reasoning(t) => !t.is_empty(),
        ModelDelta::ToolCall { arguments, .. } => !arguments.is_empty(),
        ModelDelta::TextLogprobs(_) | ModelDelta::Usage(_) | ModelDelta::Finish(_) => false,
    }
}

/// The calls the caller approved in this request, each of a tool its server
/// may offer and each once: an approval cannot widen `allowed_tools` or
/// replay a call.
fn approved_calls(ctx: &RunContext, tools: &RunTools) -> Vec<PlannedCall> {
    ctx.request
        .input
        .iter()
        .filter_map(|item| match item {
            Item::McpApprovalResponse(r) if r.approve => Some(r),
            _ => None,
        })
        .filter_map(|response| {
            // The request may carry the conversation itself (a client that
            // keeps no stored state), so the input is searched too.
            ctx.conversation().find_map(|item| match item {
                Item::McpApprovalRequest(q) if q.id == response.approval_request_id => {
                    let server = tools
                        .servers
                        .iter()
                        .position(|s| s.server_label == q.server_label)?;
                    let ran = ctx.conversation().any(|i| {
                        matches!(i, Item::McpCall(c) if c.approval_request_id.as_deref() == Some(q.id.as_str()))
                    });
                    if ran || !tools.servers[server].offers(&q.name) {
                        return None;
                    }
                    Some(PlannedCall {
                        route: Route::Mcp {
                            server,
                            tool: q.name.clone(),
                        },
                        call_id: q.id.clone(),
                        arguments: q.arguments.clone(),
                        approval_request_id: Some(q.id.clone()),
                    })
                }
                _ => None,
            })
        })
        .collect()
}

/// Drops the oldest half of `items`, always keeping the last (the turn
/// being answered). A call's result whose call was dropped is left out of
/// the model's view by the request mapping.
fn drop_oldest_half(items: &mut Vec<Item>) {
    let dropped = items.len().div_ceil(2).min(items.len().saturating_sub(1));
    items.drain(..dropped);
}

/// What `max_tool_calls` still allows; unlimited when `None`.
fn remaining(limit: Option<u64>, used: u64) -> Option<u64> {
    limit.map(|limit| limit.saturating_sub(used))
}

fn emit_failed(e: EmitError) -> RunError {
    RunError::new(
        "server_error",
        format!("the run's log refused an event: {e}"),
    )
}

impl ModelAgent {
    /// Checks `text` with `shields` in one shield step, the first flagging
    /// shield deciding. On a violation its message is written as the
    /// answer, and true is returned: the run ends there.
    async fn violated(
        &self,
        shields: &[Shield],
        text: &str,
        out: &mut RunWriter<'_>,
    ) -> Result<bool, RunError> {
        let step = out
            .start_step(StepKind::ShieldCall)
            .await
            .map_err(emit_failed)?;
        let mut violation = None;
        for shield in shields {
            let flagged = self.provider.moderate(&shield.model, text).await?;
            if !flagged.is_empty() {
                let categories = flagged.join(", ");
                violation = Some(SafetyViolation {
                    violation_level: ViolationLevel::Error,
                    user_message: Some(format!(
                        "I can't answer that: the shield '{}' flagged it ({categories}).",
                        shield.id
                    )),
                    metadata: [
                        ("shield".to_owned(), Value::String(shield.id.clone())),
                        ("violation_type".to_owned(), Value::String(categories)),
                    ]
                    .into(),
                });
                break;
            }
        }
        let message = violation.as_ref().and_then(|v| v.user_message.clone());
        out.complete_shield_step(step, violation)
            .await
            .map_err(emit_failed)?;
        match message {
            Some(message) => {
                out.message_text(&message).await.map_err(emit_failed)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// What the user said in a run's input: its user messages' text.
fn user_text(input: &[Item]) -> String {
    input
        .iter()
        .filter_map(|item| match item {
            Item::Message(m) if m.role == Role::User => Some(m.text()),
            _ => None,
        })
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The model's answer among `items`: its assistant messages' text.
fn answer_text(items: &[Item]) -> String {
    items
        .iter()
        .filter_map(|item| match item {
            Item::Message(m) if m.role == Role::Assistant => Some(m.text()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[async_trait]
impl Agent for ModelAgent {
    async fn run(&self, ctx: RunContext, out: &mut RunWriter<'_>) -> Result<RunOutcome, RunError> {
        let max_iters = ctx
            .request
            .max_infer_iters
            .unwrap_or(self.limits.max_infer_iters)
            .max(1);
        let max_tool_calls = ctx.request.max_tool_calls;
        // Input shields check what the user said before anything else.
        let said = user_text(&ctx.request.input);
        if !ctx.request.shields.input.is_empty()
            && !said.is_empty()
            && self
                .violated(&ctx.request.shields.input, &said, out)
                .await?
        {
            return Ok(RunOutcome::Completed);
        }
        let tools = RunTools::gather(&ctx, &self.tools, self.mcp.as_deref(), out).await?;
        let runner = self.runner(&tools);
        let looping = !tools.routes.is_empty();
        // Calls the caller approved in this request run first.
        let mut tool_calls = runner
            .run(approved_calls(&ctx, &tools), max_tool_calls, out)
            .await?;
        let mut output_spent: u64 = 0;
        for iteration in 1..=max_iters {
            let budget = ctx
                .request
                .max_output_tokens
                .map(|limit| limit.saturating_sub(output_spent));
            if budget == Some(0) {
                return Ok(RunOutcome::Incomplete {
                    reason: IncompleteReason::MaxOutputTokens,
                });
            }
            if looping {
                let status = if iteration == 1 {
                    AgentStatus::StartingGeneration
                } else {
                    AgentStatus::ContinuingGeneration
                };
                out.status(status).await.map_err(emit_failed)?;
            }
            let first_new = out.next_output_index() as usize;
            let offer_tools = remaining(max_tool_calls, tool_calls) != Some(0);
            let Inference {
                finish,
                server_calls,
                spent,
            } = self
                .infer(&ctx, &tools, out, iteration > 1, offer_tools, budget)
                .await?;
            output_spent += spent;
            match finish {
                Some(FinishReason::Length) => {
                    return Ok(RunOutcome::Incomplete {
                        reason: IncompleteReason::MaxOutputTokens,
                    });
                }
                Some(FinishReason::ContentFilter) => {
                    return Ok(RunOutcome::Incomplete {
                        reason: IncompleteReason::ContentFilter,
                    });
                }
                _ => {}
            }
            let client_calls = out.fold().output()[first_new..].iter().any(|item| {
                matches!(
                    item,
                    Item::FunctionCall(_) | Item::CustomToolCall(_) | Item::LocalShellCall(_)
                )
            });
            if server_calls.is_empty() {
                // Answered, or the caller's functions are needed. Output
                // shields check an answer before the run ends with it.
                let answer = answer_text(&out.fold().output()[first_new..]);
                if !client_calls && !ctx.request.shields.output.is_empty() && !answer.is_empty() {
                    self.violated(&ctx.request.shields.output, &answer, out)
                        .await?;
                }
                return Ok(RunOutcome::Completed);
            }
            let detected = DetectedCalls {
                tools: server_calls
                    .iter()
                    .map(|c| DetectedCall {
                        call_id: Some(c.call_id.clone()),
                        name: c.name.clone(),
                        arguments: c.arguments.clone(),
                    })
                    .collect(),
            };
            out.status(AgentStatus::ToolCallDetected { details: detected })
                .await
                .map_err(emit_failed)?;
            let mut runnable = Vec::new();
            let mut awaiting_approval = false;
            for call in server_calls {
                let Some(route) = tools.routes.get(&call.name).cloned() else {
                    continue;
                };
                if !tools.needs_approval(&route) {
                    runnable.push(PlannedCall {
                        route,
                        call_id: call.call_id,
                        arguments: call.arguments,
                        approval_request_id: None,
                    });
                    continue;
                }
                awaiting_approval = true;
                let request = McpApprovalRequestItem {
                    id: out.new_id("mcpr"),
                    status: ItemStatus::InProgress,
                    server_label: tools.label(&route).to_owned(),
                    name: tools.tool_name(&route).to_owned(),
                    arguments: call.arguments,
                };
                out.whole_item(Item::McpApprovalRequest(request))
                    .await
                    .map_err(emit_failed)?;
            }
            tool_calls += runner
                .run(runnable, remaining(max_tool_calls, tool_calls), out)
                .await?;
            out.status(AgentStatus::ToolsExecuted)
                .await
                .map_err(emit_failed)?;
            if client_calls || awaiting_approval {
                return Ok(RunOutcome::Completed);
            }
        }
        out.status(AgentStatus::MaxDepthReached {
            details: DepthReached {
                max_infer_iters: max_iters,
            },
        })
        .await
        .map_err(emit_failed)?;
        Ok(RunOutcome::Incomplete {
            reason: IncompleteReason::MaxInferIters,
        })
    }
}
