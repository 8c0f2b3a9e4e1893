//! Server-side tools: functions spool runs itself inside a run's loop.
//!
//! A [`Tool`] has a definition (what the model is told) and a call. The
//! built-in agent offers a run's tools to the model beside the caller's
//! function tools; when the model calls one, spool runs it, records the
//! result, and calls the model again. Calls of functions spool does not
//! host are the caller's: the run ends with them, as for any client tool.

use crate::request::FunctionTool;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A function spool runs itself.
#[async_trait]
pub trait Tool: Send + Sync + 'static {
    /// The name, description and JSON Schema the model sees.
    fn definition(&self) -> FunctionTool;

    /// Runs the tool. `Ok` is the output the model reads next; `Err` is a
    /// failure, reported to the model as the tool's output too.
    async fn call(&self, arguments: Value) -> Result<String, String>;
}

/// The tools of a run, by name.
#[derive(Clone, Default)]
pub struct ToolSet {
    by_name: BTreeMap<String, Arc<dyn Tool>>,
}

impl ToolSet {
    pub fn with(mut self, tool: Arc<dyn Tool>) -> Self {
        self.by_name.insert(tool.definition().name, tool);
        self
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.by_name.get(name)
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    pub fn definitions(&self) -> impl Iterator<Item = FunctionTool> + '_ {
        self.by_name.values().map(|t| t.definition())
    }
}

/// The label the Responses API shows for tools spool hosts in Rust, in
/// `mcp_call` items.
pub const HOSTED_TOOLS_LABEL: &str = "spool";

/// A shield a run checks text with: a moderation model of the upstream
/// (its OpenAI-compatible `/v1/moderations`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shield {
    /// The shield's name, as agents name it.
    pub id: String,
    /// The moderation model.
    pub model: String,
}

/// The shields a run checks its input with before the model is called,
/// and its answer with before it ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunShields {
    pub input: Vec<Shield>,
    pub output: Vec<Shield>,
}

/// An MCP server a run may call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpServerSpec {
    pub server_label: String,
    pub transport: McpTransport,
    /// Only these tools are offered to the model; all when `None`.
    pub allowed_tools: Option<Vec<String>>,
    pub require_approval: ApprovalPolicy,
    /// Configured by the operator (the config file), not by a request: no
    /// allow-list check.
    pub trusted: bool,
}

/// How to reach an MCP server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum McpTransport {
    /// Streamable HTTP.
    Http {
        url: String,
        headers: BTreeMap<String, String>,
    },
    /// A command spool starts, speaking MCP over stdin/stdout.
    Stdio { command: Vec<String> },
}

impl McpServerSpec {
    /// Whether calling `tool` needs the caller's approval first.
    pub fn requires_approval(&self, tool: &str) -> bool {
        self.require_approval.requires(tool)
    }

    pub fn offers(&self, tool: &str) -> bool {
        self.allowed_tools
            .as_ref()
            .is_none_or(|allowed| allowed.iter().any(|t| t == tool))
    }
}

/// When calls need the caller's approval (`require_approval`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ApprovalPolicy {
    /// Every call (the hosted API's default).
    #[default]
    Always,
    Never,
    /// Tools listed under `never` run without approval; every other needs it.
    AllExcept(Vec<String>),
}

impl ApprovalPolicy {
    pub fn requires(&self, tool: &str) -> bool {
        match self {
            ApprovalPolicy::Always => true,
            ApprovalPolicy::Never => false,
            ApprovalPolicy::AllExcept(free) => !free.iter().any(|t| t == tool),
        }
    }
}

/// The agent status vocabulary (seed 001), recorded in the log as the
/// tool loop moves: dialects that show agent status project it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum AgentStatus {
    StartingGeneration,
    /// The model called server-side tools; they run next.
    ToolCallDetected {
        details: DetectedCalls,
    },
    ToolsExecuted,
    ContinuingGeneration,
    /// The loop called the model as often as it may.
    MaxDepthReached {
        details: DepthReached,
    },
}

/// The server-side calls a model answer asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectedCalls {
    pub tools: Vec<DetectedCall>,
}

/// One server-side call as the model made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DetectedCall {
    /// The model's id for the call (older logs did not keep it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// The tool's name as the model called it.
    pub name: String,
    /// The arguments, a JSON document in a string.
    pub arguments: String,
}

impl<'de> Deserialize<'de> for DetectedCall {
    /// Reads the object, and the JSON string `{"arguments","name"}` that
    /// older logs kept.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Call {
            #[serde(default)]
            call_id: Option<String>,
            name: String,
            #[serde(default)]
            arguments: String,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Object(Call),
            Text(String),
        }
        let call = match Stored::deserialize(d)? {
            Stored::Object(call) => call,
            Stored::Text(text) => serde_json::from_str(&text).map_err(serde::de::Error::custom)?,
        };
        Ok(DetectedCall {
            call_id: call.call_id,
            name: call.name,
            arguments: call.arguments,
        })
    }
}

/// How deep the loop went before it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepthReached {
    pub max_infer_iters: u32,
}

/// How a server-side tool call ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolResult {
    pub success: bool,
    /// The tool's output, when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Why it failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Wall-clock time it ran.
    pub runtime_ms: u64,
}

impl ToolResult {
    /// What the model is given as the call's output.
    pub fn model_output(&self) -> String {
        match (&self.output, &self.error) {
            (Some(output), _) if self.success => output.clone(),
            (_, Some(error)) => format!("Error: {error}"),
            _ => String::new(),
        }
    }
}
