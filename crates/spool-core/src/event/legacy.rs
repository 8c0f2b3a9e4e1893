//! Forms older logs hold, read so they keep replaying byte for byte.
//!
//! Before the log was dialect-neutral, `run.created` carried the Responses
//! response header, and server-side tool calls were logged after they ran
//! (an `mcp_call` item, `tool.executed`, then `item.updated` with the
//! result). Such logs stay in stores written then; this module reads them
//! into today's types, and the fold and the Responses projection still
//! accept their `usage`, `item.updated` and `tool.executed` events. Nothing
//! writes these forms any more.

use crate::ids::{ConversationId, ResponseId};
use crate::run::{ResponsesEcho, RunHeader, Sampling};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The Responses header that `run.created` carried until the log was made
/// dialect-neutral.
#[derive(Debug, Clone, Deserialize)]
pub struct ResponseHeader {
    id: ResponseId,
    created_at: i64,
    model: String,
    instructions: Option<String>,
    previous_response_id: Option<ResponseId>,
    tools: Vec<Value>,
    tool_choice: Value,
    parallel_tool_calls: bool,
    temperature: f64,
    top_p: f64,
    presence_penalty: f64,
    frequency_penalty: f64,
    top_logprobs: u32,
    max_output_tokens: Option<u64>,
    max_tool_calls: Option<u64>,
    truncation: String,
    text: Value,
    reasoning: Value,
    store: bool,
    background: bool,
    service_tier: String,
    metadata: BTreeMap<String, String>,
    safety_identifier: Option<String>,
    prompt_cache_key: Option<String>,
    user: Option<String>,
    #[serde(default)]
    conversation: Option<ConversationRef>,
    #[serde(default)]
    agent_reference: Option<AgentReference>,
}

#[derive(Debug, Clone, Deserialize)]
struct ConversationRef {
    id: ConversationId,
}

#[derive(Debug, Clone, Deserialize)]
struct AgentReference {
    name: String,
}

impl ResponseHeader {
    /// The same run in today's header. The Responses defaults that the old
    /// header spelled out (temperature 1, top_p 1, …) become explicit
    /// values, so the response object renders exactly as it did.
    pub fn into_run_header(self) -> RunHeader {
        RunHeader {
            id: self.id,
            created_at: self.created_at,
            model: self.model,
            instructions: self.instructions,
            previous_response_id: self.previous_response_id,
            conversation: self.conversation.map(|c| c.id),
            agent: self.agent_reference.map(|a| a.name),
            store: self.store,
            background: self.background,
            metadata: self.metadata,
            sampling: Sampling {
                temperature: Some(self.temperature),
                top_p: Some(self.top_p),
                presence_penalty: Some(self.presence_penalty),
                frequency_penalty: Some(self.frequency_penalty),
                max_output_tokens: self.max_output_tokens,
                max_tool_calls: self.max_tool_calls,
                parallel_tool_calls: self.parallel_tool_calls,
                stop: Vec::new(),
            },
            responses: ResponsesEcho {
                tools: self.tools,
                tools_not_offered: Vec::new(),
                tool_choice: self.tool_choice,
                top_logprobs: self.top_logprobs,
                truncation: self.truncation,
                text: self.text,
                reasoning: self.reasoning,
                service_tier: self.service_tier,
                safety_identifier: self.safety_identifier,
                prompt_cache_key: self.prompt_cache_key,
                user: self.user,
            },
            chat: Default::default(),
            continues_turn: None,
        }
    }
}

/// What `tool.executed` recorded of one server-side tool execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolExecution {
    pub call_id: String,
    pub name: String,
    pub success: bool,
    pub output: String,
    pub error: Option<String>,
    pub started_at_ms: i64,
    pub runtime_ms: u64,
}
