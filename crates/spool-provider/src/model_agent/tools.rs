//! The server-side tools of a run: what the model is offered, where each
//! call goes, and how calls run and are logged.
//!
//! Tools come from two places: [`Tool`]s hosted in Rust (the agent's
//! [`ToolSet`]) and the MCP servers the request names, reached through an
//! [`McpConnector`]. Each is offered to the model as a function under a
//! valid, unique name. A batch of calls is one `tool_execution` step: the
//! calls run concurrently (bounded), each is logged as a tool-call item
//! when it starts and given its result when it ends, and each ends — with
//! its output, its error, or a timeout — so no call is left open.

use super::{LoopLimits, emit_failed};
use crate::mcp::McpClients;
use async_trait::async_trait;
use futures::FutureExt;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde_json::Value;
use spool_core::agent::RunContext;
use spool_core::clock::Clock;
use spool_core::emit::RunWriter;
use spool_core::event::StepKind;
use spool_core::item::{Item, ItemStatus, McpListToolsItem, McpToolInfo, ToolCallItem};
use spool_core::request::FunctionTool;
use spool_core::run::RunError;
use spool_core::tool::{HOSTED_TOOLS_LABEL, McpServerSpec, ToolResult, ToolSet};
use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::time::{SystemTime, UNIX_EPOCH};

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
pub(super) enum Route {
    Hosted {
        name: String,
    },
    /// The run's MCP server at this index, and the tool's own name there.
    Mcp {
        server: usize,
        tool: String,
    },
}

/// A server-side call to run.
#[derive(Debug, Clone)]
pub(super) struct PlannedCall {
    pub route: Route,
    /// The model's id for the call (the approval request's, for a call the
    /// caller approved).
    pub call_id: String,
    pub arguments: String,
    /// The approval request this call answers, if one was needed.
    pub approval_request_id: Option<String>,
}

/// The server-side tools of one run: what the model is offered, and where
/// each call goes.
#[derive(Default)]
pub(super) struct RunTools {
    pub offered: Vec<FunctionTool>,
    pub routes: HashMap<String, Route>,
    pub servers: Vec<McpServerSpec>,
}

impl RunTools {
    /// Gathers what the model is offered: the hosted tools, then each MCP
    /// server's, listing each server's tools (and logging the listing,
    /// unless an earlier turn did).
    pub async fn gather(
        ctx: &RunContext,
        hosted: &ToolSet,
        mcp: Option<&dyn McpConnector>,
        out: &mut RunWriter<'_>,
    ) -> Result<Self, RunError> {
        let mut tools = RunTools {
            servers: ctx.request.mcp_servers.clone(),
            ..RunTools::default()
        };
        let taken: HashSet<String> = ctx.request.tools.iter().map(|t| t.name.clone()).collect();
        for definition in hosted.definitions() {
            let route = Route::Hosted {
                name: definition.name.clone(),
            };
            tools.expose(definition, route, HOSTED_TOOLS_LABEL, &taken);
        }
        for index in 0..tools.servers.len() {
            let spec = tools.servers[index].clone();
            let listed = match mcp {
                Some(clients) => clients.list_tools(&spec).await,
                None => Err("this server runs no MCP client".to_owned()),
            };
            let listed_before = ctx.conversation().any(|item| {
                matches!(item, Item::McpListTools(l) if l.server_label == spec.server_label && l.error.is_none())
            });
            if !listed_before || listed.is_err() {
                let item = McpListToolsItem {
                    id: out.new_id("mcpl"),
                    status: ItemStatus::InProgress,
                    server_label: spec.server_label.clone(),
                    tools: listed.as_ref().cloned().unwrap_or_default(),
                    error: listed.as_ref().err().cloned(),
                };
                out.whole_item(Item::McpListTools(Box::new(item)))
                    .await
                    .map_err(emit_failed)?;
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

    /// The label of the MCP server a route goes to; `None` for hosted tools.
    pub fn server(&self, route: &Route) -> Option<&str> {
        match route {
            Route::Hosted { .. } => None,
            Route::Mcp { server, .. } => Some(&self.servers[*server].server_label),
        }
    }

    pub fn label(&self, route: &Route) -> &str {
        self.server(route).unwrap_or(HOSTED_TOOLS_LABEL)
    }

    /// The tool's own name where it lives.
    pub fn tool_name<'r>(&self, route: &'r Route) -> &'r str {
        match route {
            Route::Hosted { name } => name,
            Route::Mcp { tool, .. } => tool,
        }
    }

    /// Whether a call on `route` waits for the caller's approval.
    pub fn needs_approval(&self, route: &Route) -> bool {
        match route {
            Route::Mcp { server, tool } => self.servers[*server].requires_approval(tool),
            Route::Hosted { .. } => false,
        }
    }
}

/// Runs one batch of server-side calls as a `tool_execution` step.
pub(super) struct ToolRunner<'a> {
    pub tools: &'a RunTools,
    pub hosted: &'a ToolSet,
    pub mcp: Option<&'a dyn McpConnector>,
    pub clock: &'a dyn Clock,
    pub limits: LoopLimits,
}

impl ToolRunner<'_> {
    /// Runs `calls` concurrently (at most `max_parallel_tools` at once),
    /// logging each call as it starts and its result as it ends. Calls past
    /// `budget` (what `max_tool_calls` leaves) are logged as failed without
    /// running. Returns how many calls ran.
    pub async fn run(
        &self,
        calls: Vec<PlannedCall>,
        budget: Option<u64>,
        out: &mut RunWriter<'_>,
    ) -> Result<u64, RunError> {
        if calls.is_empty() {
            return Ok(0);
        }
        let step = out
            .start_step(StepKind::ToolExecution)
            .await
            .map_err(emit_failed)?;
        let mut ran = 0_u64;
        let mut waiting = calls.into_iter();
        let mut running = FuturesUnordered::new();
        loop {
            while running.len() < self.limits.max_parallel_tools.max(1) {
                let Some(call) = waiting.next() else {
                    break;
                };
                let item = ToolCallItem {
                    id: out.new_id("mcp"),
                    status: ItemStatus::InProgress,
                    call_id: call.call_id,
                    name: self.tools.tool_name(&call.route).to_owned(),
                    server: self.tools.server(&call.route).map(str::to_owned),
                    arguments: call.arguments.clone(),
                    approval_request_id: call.approval_request_id,
                    result: None,
                };
                let output_index = out.start_tool_call(item).await.map_err(emit_failed)?;
                if budget.is_some_and(|left| ran >= left) {
                    let refused = ToolResult {
                        success: false,
                        output: None,
                        error: Some(format!(
                            "not run: the response may make at most {} tool calls (max_tool_calls)",
                            budget.unwrap_or_default()
                        )),
                        runtime_ms: 0,
                    };
                    out.finish_tool_call(output_index, refused)
                        .await
                        .map_err(emit_failed)?;
                    continue;
                }
                ran += 1;
                running.push(
                    self.execute(call.route, call.arguments)
                        .map(move |result| (output_index, result)),
                );
            }
            let Some((output_index, result)) = running.next().await else {
                break;
            };
            out.finish_tool_call(output_index, result)
                .await
                .map_err(emit_failed)?;
        }
        out.complete_step(step, None).await.map_err(emit_failed)?;
        Ok(ran)
    }

    /// Runs one call, bounded by the tool timeout.
    async fn execute(&self, route: Route, arguments: String) -> ToolResult {
        let started_ms = self.clock.now_ms();
        let call = async {
            let arguments: Value = if arguments.trim().is_empty() {
                Value::Object(Default::default())
            } else {
                serde_json::from_str(&arguments)
                    .map_err(|e| format!("the arguments are not valid JSON: {e}"))?
            };
            match &route {
                Route::Hosted { name } => match self.hosted.get(name) {
                    // A tool that panics is a failed call, not a failed run.
                    Some(tool) => AssertUnwindSafe(tool.call(arguments))
                        .catch_unwind()
                        .await
                        .unwrap_or_else(|_| Err("the tool panicked".to_owned())),
                    None => Err(format!("no tool named '{name}'")),
                },
                Route::Mcp { server, tool } => match self.mcp {
                    Some(clients) => {
                        clients
                            .call_tool(&self.tools.servers[*server], tool, arguments)
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
        let runtime_ms = (self.clock.now_ms() - started_ms).max(0) as u64;
        match result {
            Ok(output) => ToolResult {
                success: true,
                output: Some(output),
                error: None,
                runtime_ms,
            },
            Err(error) => ToolResult {
                success: false,
                output: None,
                error: Some(error),
                runtime_ms,
            },
        }
    }
}

/// A valid function name for a tool name: other characters become `_`, and
/// a name past 64 characters is shortened with a hash of the whole.
pub(super) fn function_name(name: &str) -> String {
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
