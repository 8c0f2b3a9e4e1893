//! The Responses API response object, and how log items look on that wire.
//!
//! [`object`] renders a run's fold as the response object, every field
//! present and `null` where the schema allows, so strict clients (the Open
//! Responses schema) accept it. The rules that only this API has live here:
//! a cancelled response shows no output, usage appears once the run has
//! ended, and a server-side tool call ([`Item::ToolCall`]) is an `mcp_call`
//! item (labelled `spool` for tools hosted in Rust).

use crate::fold::RunFold;
use crate::ids::{ConversationId, ResponseId};
use crate::item::{Item, ItemStatus, McpCallItem};
use crate::run::{ErrorCode, IncompleteReason, RunError, Usage};
use crate::status::RunStatus;
use crate::tool::HOSTED_TOOLS_LABEL;
use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The Responses API response object, borrowed from a fold.
#[derive(Debug, Serialize)]
pub struct ResponseObject<'a> {
    pub id: &'a ResponseId,
    pub object: &'static str,
    pub created_at: i64,
    pub status: RunStatus,
    pub background: bool,
    pub completed_at: Option<i64>,
    pub conversation: Option<ConversationRef<'a>>,
    /// Present only for runs of a named agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_reference: Option<AgentReference<'a>>,
    pub error: Option<ResponseError<'a>>,
    pub incomplete_details: Option<IncompleteDetails<'a>>,
    pub instructions: Option<&'a str>,
    pub max_output_tokens: Option<u64>,
    pub max_tool_calls: Option<u64>,
    pub model: &'a str,
    pub output: Cow<'a, [Item]>,
    pub parallel_tool_calls: bool,
    pub previous_response_id: Option<&'a ResponseId>,
    pub prompt_cache_key: Option<&'a str>,
    pub reasoning: &'a Value,
    pub safety_identifier: Option<&'a str>,
    pub service_tier: &'a str,
    pub store: bool,
    pub temperature: f64,
    pub text: &'a Value,
    pub tool_choice: &'a Value,
    pub tools: &'a [Value],
    /// spool's own field, present only when some are: the types of the
    /// hosted tools in `tools` the model was not offered, as no MCP server
    /// serves them here.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub tools_not_offered: &'a [String],
    pub top_logprobs: u32,
    pub top_p: f64,
    pub presence_penalty: f64,
    pub frequency_penalty: f64,
    pub truncation: &'a str,
    pub usage: Option<&'a Usage>,
    pub user: Option<&'a str>,
    pub metadata: &'a BTreeMap<String, String>,
}

/// `error` on a failed response: the run's error with the `type` strict
/// clients read (the Vercel AI SDK's schema names `code`, `message` and
/// `type`).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ResponseError<'a> {
    pub code: &'a ErrorCode,
    pub message: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

impl<'a> ResponseError<'a> {
    pub fn of(error: &'a RunError) -> Self {
        // A run fails on the server's side or its upstream's, but for a
        // prompt the model refused to take.
        let kind = match error.code.as_str() {
            "invalid_prompt" | "context_length_exceeded" => "invalid_request_error",
            _ => "server_error",
        };
        Self {
            code: &error.code,
            message: &error.message,
            kind,
        }
    }
}

/// `{"id": "conv_…"}`: how a response names its conversation.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ConversationRef<'a> {
    pub id: &'a ConversationId,
}

/// `{"type": "agent_reference", "name": …}`: which named agent ran.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct AgentReference<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub name: &'a str,
}

/// Why a run stopped early: `incomplete_details` on an incomplete response.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct IncompleteDetails<'a> {
    pub reason: &'a IncompleteReason,
}

/// The response object of a fold as it stands; `None` before `run.created`.
pub fn object(fold: &RunFold) -> Option<ResponseObject<'_>> {
    let header = fold.header()?;
    let status = fold.status()?;
    let output: Cow<'_, [Item]> = if status == RunStatus::Cancelled {
        Cow::Borrowed(&[])
    } else {
        wire_items(fold.output())
    };
    let sampling = &header.sampling;
    let echo = &header.responses;
    Some(ResponseObject {
        id: &header.id,
        object: "response",
        created_at: header.created_at,
        status,
        background: header.background,
        completed_at: fold.completed_at(),
        conversation: header
            .conversation
            .as_ref()
            .map(|id| ConversationRef { id }),
        agent_reference: header.agent.as_deref().map(|name| AgentReference {
            kind: "agent_reference",
            name,
        }),
        error: fold.error().map(ResponseError::of),
        incomplete_details: fold
            .incomplete_reason()
            .map(|reason| IncompleteDetails { reason }),
        instructions: header.instructions.as_deref(),
        max_output_tokens: sampling.max_output_tokens,
        max_tool_calls: sampling.max_tool_calls,
        model: &header.model,
        output,
        parallel_tool_calls: sampling.parallel_tool_calls,
        previous_response_id: header.previous_response_id.as_ref(),
        prompt_cache_key: echo.prompt_cache_key.as_deref(),
        reasoning: &echo.reasoning,
        safety_identifier: echo.safety_identifier.as_deref(),
        service_tier: &echo.service_tier,
        store: header.store,
        temperature: sampling.temperature.unwrap_or(1.0),
        text: &echo.text,
        tool_choice: &echo.tool_choice,
        tools: &echo.tools,
        tools_not_offered: &echo.tools_not_offered,
        top_logprobs: echo.top_logprobs,
        top_p: sampling.top_p.unwrap_or(1.0),
        presence_penalty: sampling.presence_penalty.unwrap_or(0.0),
        frequency_penalty: sampling.frequency_penalty.unwrap_or(0.0),
        truncation: &echo.truncation,
        usage: if status.is_terminal() {
            fold.usage()
        } else {
            None
        },
        user: echo.user.as_deref(),
        metadata: &header.metadata,
    })
}

/// Items as the Responses API shows them: borrowed unless one is a tool call.
pub fn wire_items(items: &[Item]) -> Cow<'_, [Item]> {
    if items.iter().any(|i| matches!(i, Item::ToolCall(_))) {
        Cow::Owned(items.iter().map(|i| wire_item(i).into_owned()).collect())
    } else {
        Cow::Borrowed(items)
    }
}

/// One item as the Responses API shows it.
pub fn wire_item(item: &Item) -> Cow<'_, Item> {
    match item {
        Item::ToolCall(call) => {
            let result = call.result.as_ref();
            Cow::Owned(Item::McpCall(Box::new(McpCallItem {
                id: call.id.clone(),
                status: call.status,
                server_label: call
                    .server
                    .clone()
                    .unwrap_or_else(|| HOSTED_TOOLS_LABEL.to_owned()),
                name: call.name.clone(),
                arguments: call.arguments.clone(),
                output: result.filter(|r| r.success).and_then(|r| r.output.clone()),
                error: result.and_then(|r| r.error.clone()),
                approval_request_id: call.approval_request_id.clone(),
            })))
        }
        other => Cow::Borrowed(other),
    }
}

/// An item as `response.output_item.added` shows it: in progress, before
/// any result (an MCP call without arguments yet, a tool listing without
/// tools), whatever the log already knows.
pub fn added_item(item: &Item) -> Cow<'_, Item> {
    match item {
        Item::ToolCall(_) => {
            let mut wire = wire_item(item).into_owned();
            if let Item::McpCall(call) = &mut wire {
                call.status = ItemStatus::InProgress;
                call.arguments.clear();
                call.output = None;
                call.error = None;
            }
            Cow::Owned(wire)
        }
        Item::McpListTools(list) if !list.tools.is_empty() || list.error.is_some() => {
            let mut list = list.clone();
            list.status = ItemStatus::InProgress;
            list.tools.clear();
            list.error = None;
            Cow::Owned(Item::McpListTools(list))
        }
        other => Cow::Borrowed(other),
    }
}
