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

use crate::mcp::McpClients;
use crate::{FinishReason, ModelDelta, ModelProvider, ModelRequest, ProviderError};
use async_trait::async_trait;
use futures::FutureExt;
use futures::StreamExt;
use serde_json::{Value, json};
use spool_core::agent::{Agent, RunContext, RunOutcome};
use spool_core::clock::Clock;
use spool_core::emit::{EmitError, RunWriter};
use spool_core::event::Event;
use spool_core::item::{
    Item, ItemStatus, McpApprovalRequestItem, McpCallItem, McpListToolsItem, McpToolInfo, PartKind,
};
use spool_core::request::FunctionTool;
use spool_core::request::ToolChoice;
use spool_core::response::RunError;
use spool_core::tool::{AgentStatus, HOSTED_TOOLS_LABEL, McpServerSpec, ToolExecution, ToolSet};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// How the agent reaches MCP servers: [`McpClients`] in a server, a
/// scripted stand-in in tests.
#[async_trait]
pub trait McpConnector: Send + Sync + 'static {
    /// The tools `server` offers.
    async fn list_tools(&self, server: &McpServerSpec) -> Result<Vec<McpToolInfo>, String>;
    /// Calls `tool` on `server`; `Ok` is the output, `Err` the failure.
    async fn call_tool(
        &self,
        server: &McpServerSpec,
        tool: &str,
        arguments: Value,
    ) -> Result<String, String>;
}

#[async_trait]
impl McpConnector for McpClients {
    async fn list_tools(&self, server: &McpServerSpec) -> Result<Vec<McpToolInfo>, String> {
        McpClients::list_tools(self, server).await
    }

    async fn call_tool(
        &self,
        server: &McpServerSpec,
        tool: &str,
        arguments: Value,
    ) -> Result<String, String> {
        McpClients::call_tool(self, server, tool, arguments).await
    }
}

/// The system clock, for servers.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

/// Where a server-side tool call goes.
#[derive(Debug, Clone)]
enum Route {
    Hosted {
        name: String,
    },
    /// The run's MCP server at this index, and the tool's own name there.
    Mcp {
        server: usize,
        tool: String,
    },
}

/// The server-side tools of one run: what the model is offered, and where
/// each call goes.
#[derive(Default)]
struct RunTools {
    offered: Vec<FunctionTool>,
    routes: HashMap<String, Route>,
    servers: Vec<McpServerSpec>,
}

/// A server-side call to run: where it goes, its arguments, and the
/// approval request it answers, if one was needed.
type PlannedCall = (Route, String, Option<String>);

impl RunTools {
    /// Offers `tool` under its own name, unless that is taken, made a valid
    /// function name (1–64 of `a-zA-Z0-9_-`).
    fn expose(&mut self, tool: FunctionTool, route: Route, label: &str, taken: &HashSet<String>) {
        let own = function_name(&tool.name);
        let name = if taken.contains(&own) || self.routes.contains_key(&own) {
            function_name(&format!("{label}__{}", tool.name))
        } else {
            own
        };
        if self.routes.contains_key(&name) {
            tracing::warn!(tool = %name, "two server-side tools share a name; the second is not offered");
            return;
        }
        self.routes.insert(name.clone(), route);
        self.offered.push(FunctionTool { name, ..tool });
    }

    fn label(&self, route: &Route) -> &str {
        match route {
            Route::Hosted { .. } => HOSTED_TOOLS_LABEL,
            Route::Mcp { server, .. } => &self.servers[*server].server_label,
        }
    }

    fn tool_name<'r>(&self, route: &'r Route) -> &'r str {
        match route {
            Route::Hosted { name } => name,
            Route::Mcp { tool, .. } => tool,
        }
    }
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

    /// The sessions through which runs reach the MCP servers they name.
    pub fn with_mcp(mut self, clients: Arc<dyn McpConnector>) -> Self {
        self.mcp = Some(clients);
        self
    }

    /// The clock that times tool executions.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Lists the run's MCP servers' tools (recording each listing unless an
    /// earlier turn did) and gathers what the model is offered.
    async fn run_tools(
        &self,
        ctx: &RunContext,
        out: &mut RunWriter<'_>,
    ) -> Result<RunTools, RunError> {
        let mut tools = RunTools {
            servers: ctx.request.mcp_servers.clone(),
            ..RunTools::default()
        };
        let taken: HashSet<String> = ctx.request.tools.iter().map(|t| t.name.clone()).collect();
        for definition in self.tools.definitions() {
            let route = Route::Hosted {
                name: definition.name.clone(),
            };
            tools.expose(definition, route, HOSTED_TOOLS_LABEL, &taken);
        }
        for index in 0..tools.servers.len() {
            let spec = tools.servers[index].clone();
            let listed = match &self.mcp {
                Some(clients) => clients.list_tools(&spec).await,
                None => Err("this server runs no MCP client".to_owned()),
            };
            let listed_before = ctx.conversation().any(|item| {
                matches!(item, Item::McpListTools(l) if l.server_label == spec.server_label && l.error.is_none())
            });
            if !listed_before || listed.is_err() {
                record_listing(out, &spec.server_label, &listed).await?;
            }
            for tool in listed.unwrap_or_default() {
                if !spec.offers(&tool.name) {
                    continue;
                }
                let definition = FunctionTool {
                    name: tool.name.clone(),
                    description: tool.description.clone(),
                    parameters: Some(tool.input_schema.clone()),
                    strict: None,
                };
                let route = Route::Mcp {
                    server: index,
                    tool: tool.name,
                };
                tools.expose(definition, route, &spec.server_label, &taken);
            }
        }
        Ok(tools)
    }

    /// Runs one server-side tool call, bounded by the tool timeout.
    async fn execute(&self, tools: &RunTools, route: &Route, arguments: &str) -> ToolExecution {
        let started_at_ms = self.clock.now_ms();
        let call = async {
            let arguments: Value = if arguments.trim().is_empty() {
                Value::Object(Default::default())
            } else {
                serde_json::from_str(arguments)
                    .map_err(|e| format!("the arguments are not valid JSON: {e}"))?
            };
            match route {
                Route::Hosted { name } => match self.tools.get(name) {
                    // A tool that panics is a failed call, not a failed run.
                    Some(tool) => AssertUnwindSafe(tool.call(arguments))
                        .catch_unwind()
                        .await
                        .unwrap_or_else(|_| Err("the tool panicked".to_owned())),
                    None => Err(format!("no tool named '{name}'")),
                },
                Route::Mcp { server, tool } => match &self.mcp {
                    Some(clients) => {
                        clients
                            .call_tool(&tools.servers[*server], tool, arguments)
                            .await
                    }
                    None => Err("this server runs no MCP client".to_owned()),
                },
            }
        };
        let result = tokio::time::timeout(self.limits.tool_timeout, call)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "the tool did not finish within {} ms",
                    self.limits.tool_timeout.as_millis()
                ))
            });
        let runtime_ms = (self.clock.now_ms() - started_at_ms).max(0) as u64;
        let (success, output, error) = match result {
            Ok(output) => (true, output, None),
            Err(error) => (false, format!("Error: {error}"), Some(error)),
        };
        ToolExecution {
            call_id: String::new(),
            name: tools.tool_name(route).to_owned(),
            success,
            output,
            error,
            started_at_ms,
            runtime_ms,
        }
    }

    /// Runs calls concurrently (bounded) and records each as an `mcp_call`
    /// item, in call order.
    async fn run_calls(
        &self,
        tools: &RunTools,
        calls: Vec<PlannedCall>,
        out: &mut RunWriter<'_>,
    ) -> Result<(), RunError> {
        let planned: Vec<(Route, String)> = calls
            .iter()
            .map(|(r, a, _)| (r.clone(), a.clone()))
            .collect();
        let executions: Vec<ToolExecution> = futures::stream::iter(planned)
            .map(|(route, arguments)| async move { self.execute(tools, &route, &arguments).await })
            .buffered(self.limits.max_parallel_tools.max(1))
            .collect()
            .await;
        for ((route, arguments, approval_request_id), mut execution) in
            calls.into_iter().zip(executions)
        {
            let mut call = McpCallItem {
                id: out.new_id("mcp"),
                status: ItemStatus::InProgress,
                server_label: tools.label(&route).to_owned(),
                name: tools.tool_name(&route).to_owned(),
                arguments: String::new(),
                output: None,
                error: None,
                approval_request_id,
            };
            execution.call_id.clone_from(&call.id);
            let output_index = out
                .start_item(Item::McpCall(Box::new(call.clone())))
                .await
                .map_err(emit_failed)?;
            if !arguments.is_empty() {
                out.emit(Event::ArgumentsDelta {
                    output_index,
                    delta: arguments.clone(),
                })
                .await
                .map_err(emit_failed)?;
            }
            call.arguments = arguments;
            if execution.success {
                call.output = Some(execution.output.clone());
            } else {
                call.error.clone_from(&execution.error);
            }
            out.tool_executed(execution).await.map_err(emit_failed)?;
            out.finish_item(output_index, Item::McpCall(Box::new(call)))
                .await
                .map_err(emit_failed)?;
        }
        Ok(())
    }

    /// One model call: streams its answer into items; returns how it ended
    /// and the calls of server-side tools it made.
    async fn infer(
        &self,
        ctx: &RunContext,
        tools: &RunTools,
        out: &mut RunWriter<'_>,
        after_tools: bool,
    ) -> Result<(Option<FinishReason>, Vec<ServerCall>), RunError> {
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
        request.tools.extend(tools.offered.iter().cloned());
        if let Some(model) = &self.model {
            request.model.clone_from(model);
        }
        let mut stream = self.provider.stream(request).await?;
        let mut mapper = TurnMapper {
            server_tools: tools.routes.keys().cloned().collect(),
            ..TurnMapper::default()
        };
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
        let server_calls = mapper.finish(out, last_item).await?;
        Ok((finish, server_calls))
    }
}

/// A valid function name for a tool name: other characters become `_`, and
/// a name past 64 characters is shortened with a hash of the whole.
fn function_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        return "tool".to_owned();
    }
    if clean.len() <= 64 {
        return clean;
    }
    // FNV-1a: stable across runs and processes.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{}_{:08x}", &clean[..55], hash as u32)
}

/// Records an MCP server's tool listing as an `mcp_list_tools` item.
async fn record_listing(
    out: &mut RunWriter<'_>,
    server_label: &str,
    listed: &Result<Vec<McpToolInfo>, String>,
) -> Result<(), RunError> {
    let mut item = McpListToolsItem {
        id: out.new_id("mcpl"),
        status: ItemStatus::InProgress,
        server_label: server_label.to_owned(),
        tools: Vec::new(),
        error: None,
    };
    let output_index = out
        .start_item(Item::McpListTools(Box::new(item.clone())))
        .await
        .map_err(emit_failed)?;
    match listed {
        Ok(tools) => item.tools.clone_from(tools),
        Err(e) => item.error = Some(e.clone()),
    }
    out.finish_item(output_index, Item::McpListTools(Box::new(item)))
        .await
        .map_err(emit_failed)
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

/// A call of a tool spool runs itself, collected from the model's answer.
#[derive(Debug, Clone)]
struct ServerCall {
    name: String,
    arguments: String,
}

/// Maps one model call's deltas onto the run's items.
#[derive(Default)]
struct TurnMapper {
    /// The open message or reasoning item and its open part.
    open: Option<OpenPart>,
    /// The call index of the open function call item.
    open_call: Option<u32>,
    calls: BTreeMap<u32, PendingCall>,
    /// Names of the tools spool runs itself: their calls become no
    /// `function_call` item; they are collected and run after the answer.
    server_tools: HashSet<String>,
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
                    Item::reasoning(out.new_id("rs"))
                } else {
                    Item::assistant_message(out.new_id("msg"))
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
        if call
            .name
            .as_ref()
            .is_some_and(|n| self.server_tools.contains(n))
        {
            call.buffered.push_str(&arguments);
            return Ok(());
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
        let call_id = call.id.clone().unwrap_or_else(|| out.new_id("call"));
        let name = call.name.clone().unwrap_or_default();
        out.emit(Event::ItemStarted {
            output_index,
            item: Item::function_call(out.new_id("fc"), call_id, name),
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
    /// Returns the calls of tools spool runs itself, in the model's order.
    async fn finish(
        &mut self,
        out: &mut RunWriter<'_>,
        status: ItemStatus,
    ) -> Result<Vec<ServerCall>, RunError> {
        let mut server_calls = Vec::new();
        let waiting: Vec<u32> = self
            .calls
            .iter()
            .filter(|(_, c)| c.output_index.is_none())
            .map(|(i, _)| *i)
            .collect();
        for index in waiting {
            let Some(call) = self.calls.get(&index) else {
                continue;
            };
            let Some(name) = call.name.clone() else {
                return Err(ProviderError::Protocol(format!(
                    "tool call {index} never received a function name"
                ))
                .into());
            };
            if self.server_tools.contains(&name) {
                server_calls.push(ServerCall {
                    name,
                    arguments: call.buffered.clone(),
                });
                continue;
            }
            self.open_call_item(out, index).await?;
        }
        self.close_item(out, status).await?;
        Ok(server_calls)
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
        let tools = self.run_tools(&ctx, out).await?;
        let looping = !tools.routes.is_empty();
        // Calls the caller approved in this request run first.
        let approved: Vec<PlannedCall> = ctx
            .request
            .input
            .iter()
            .filter_map(|item| match item {
                Item::McpApprovalResponse(r) if r.approve => Some(r),
                _ => None,
            })
            .filter_map(|response| {
                // The request may carry the conversation itself (a client
                // that keeps no stored state), so the input is searched too.
                ctx.conversation().find_map(|item| match item {
                    Item::McpApprovalRequest(q) if q.id == response.approval_request_id => {
                        let server = tools
                            .servers
                            .iter()
                            .position(|s| s.server_label == q.server_label)?;
                        // Only tools the server may offer, and each approved
                        // call once: an approval cannot widen allowed_tools
                        // or replay a call.
                        let ran = ctx.conversation().any(|i| {
                            matches!(i, Item::McpCall(c) if c.approval_request_id.as_deref() == Some(q.id.as_str()))
                        });
                        if ran || !tools.servers[server].offers(&q.name) {
                            return None;
                        }
                        let route = Route::Mcp {
                            server,
                            tool: q.name.clone(),
                        };
                        Some((route, q.arguments.clone(), Some(q.id.clone())))
                    }
                    _ => None,
                })
            })
            .collect();
        if !approved.is_empty() {
            self.run_calls(&tools, approved, out).await?;
        }
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
            let (finish, server_calls) = self.infer(&ctx, &tools, out, iteration > 1).await?;
            match finish {
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
            let client_calls = out.fold().output()[first_new..]
                .iter()
                .any(|item| matches!(item, Item::FunctionCall(_)));
            if server_calls.is_empty() {
                // Answered, or the caller's functions are needed.
                return Ok(RunOutcome::Completed);
            }
            let detected: Vec<String> = server_calls
                .iter()
                .map(|c| json!({"name": c.name, "arguments": c.arguments}).to_string())
                .collect();
            out.status(
                AgentStatus::ToolCallDetected,
                Some(json!({"tools": detected})),
            )
            .await
            .map_err(emit_failed)?;
            let mut runnable = Vec::new();
            let mut awaiting_approval = false;
            for call in server_calls {
                let Some(route) = tools.routes.get(&call.name).cloned() else {
                    continue;
                };
                let needs_approval = match &route {
                    Route::Mcp { server, tool } => tools.servers[*server].requires_approval(tool),
                    Route::Hosted { .. } => false,
                };
                if !needs_approval {
                    runnable.push((route, call.arguments, None));
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
                let item = Item::McpApprovalRequest(request);
                let output_index = out.start_item(item.clone()).await.map_err(emit_failed)?;
                out.finish_item(output_index, item)
                    .await
                    .map_err(emit_failed)?;
            }
            self.run_calls(&tools, runnable, out).await?;
            out.status(AgentStatus::ToolsExecuted, None)
                .await
                .map_err(emit_failed)?;
            if client_calls || awaiting_approval {
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

#[cfg(test)]
mod tests {
    use super::function_name;

    #[test]
    fn tool_names_become_valid_function_names() {
        assert_eq!(function_name("files.read/all"), "files_read_all");
        assert_eq!(function_name(""), "tool");
        let long = "x".repeat(100);
        let a = function_name(&long);
        assert_eq!(a.len(), 64);
        assert_ne!(
            a,
            function_name(&"x".repeat(101)),
            "distinct long names stay distinct"
        );
    }
}
