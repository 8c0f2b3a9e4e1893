//! The response object.
//!
//! A response is a [`ResponseHeader`], fixed when the run is created from its
//! request, plus what the run's events fold into (status, output, usage,
//! error). [`ResponseObject`] borrows both and serializes as the Responses
//! API response, every field present and `null` where the schema allows, so
//! strict clients (the Open Responses schema) accept it.

use crate::ids::{ConversationId, ResponseId};
use crate::item::Item;
use crate::status::RunStatus;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Everything about a response that is fixed at creation: its id, the model
/// and the request parameters it echoes back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseHeader {
    pub id: ResponseId,
    /// Unix seconds.
    pub created_at: i64,
    pub model: String,
    pub instructions: Option<String>,
    pub previous_response_id: Option<ResponseId>,
    /// The request's tools in their wire form, echoed back unchanged.
    pub tools: Vec<Value>,
    pub tool_choice: Value,
    pub parallel_tool_calls: bool,
    pub temperature: f64,
    pub top_p: f64,
    pub presence_penalty: f64,
    pub frequency_penalty: f64,
    pub top_logprobs: u32,
    pub max_output_tokens: Option<u64>,
    pub max_tool_calls: Option<u64>,
    pub truncation: String,
    pub text: Value,
    pub reasoning: Value,
    pub store: bool,
    pub background: bool,
    pub service_tier: String,
    pub metadata: BTreeMap<String, String>,
    pub safety_identifier: Option<String>,
    pub prompt_cache_key: Option<String>,
    pub user: Option<String>,
    /// The conversation the response belongs to, if any.
    #[serde(default)]
    pub conversation: Option<ConversationRef>,
    /// The named agent that ran, if any.
    #[serde(default)]
    pub agent_reference: Option<AgentReference>,
}

/// `{"type": "agent_reference", "name": …}`: which named agent ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentReference {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
}

impl AgentReference {
    pub fn new(name: String) -> Self {
        Self {
            kind: "agent_reference".into(),
            name,
        }
    }
}

/// `{"id": "conv_…"}`: how a response names its conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationRef {
    pub id: ConversationId,
}

/// Token counts, as the Responses API reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub input_tokens_details: InputTokensDetails,
    pub output_tokens: u64,
    pub output_tokens_details: OutputTokensDetails,
    pub total_tokens: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputTokensDetails {
    pub cached_tokens: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputTokensDetails {
    pub reasoning_tokens: u64,
}

impl Usage {
    /// Adds another model call's usage, for runs that call the model more
    /// than once.
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.input_tokens_details.cached_tokens += other.input_tokens_details.cached_tokens;
        self.output_tokens += other.output_tokens;
        self.output_tokens_details.reasoning_tokens += other.output_tokens_details.reasoning_tokens;
        self.total_tokens += other.total_tokens;
    }
}

/// Why a run failed: `error` on a failed response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunError {
    /// Machine-readable, e.g. `server_error`, `upstream_error`.
    pub code: String,
    pub message: String,
}

impl RunError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// Why a run stopped early: `incomplete_details` on an incomplete response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncompleteDetails {
    /// `max_output_tokens`, `content_filter`, …
    pub reason: String,
}

/// The Responses API response object, borrowed from a header and a fold.
#[derive(Debug, Serialize)]
pub struct ResponseObject<'a> {
    pub id: &'a ResponseId,
    pub object: &'static str,
    pub created_at: i64,
    pub status: RunStatus,
    pub background: bool,
    pub completed_at: Option<i64>,
    pub conversation: Option<&'a ConversationRef>,
    /// Present only for runs of a named agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_reference: Option<&'a AgentReference>,
    pub error: Option<&'a RunError>,
    pub incomplete_details: Option<&'a IncompleteDetails>,
    pub instructions: Option<&'a str>,
    pub max_output_tokens: Option<u64>,
    pub max_tool_calls: Option<u64>,
    pub model: &'a str,
    pub output: &'a [Item],
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
    pub top_logprobs: u32,
    pub top_p: f64,
    pub presence_penalty: f64,
    pub frequency_penalty: f64,
    pub truncation: &'a str,
    pub usage: Option<&'a Usage>,
    pub user: Option<&'a str>,
    pub metadata: &'a BTreeMap<String, String>,
}

/// The parts of a response that its events decide.
#[derive(Debug, Clone, Copy)]
pub struct ResponseBody<'a> {
    pub status: RunStatus,
    pub completed_at: Option<i64>,
    pub output: &'a [Item],
    pub error: Option<&'a RunError>,
    pub incomplete_details: Option<&'a IncompleteDetails>,
    pub usage: Option<&'a Usage>,
}

impl ResponseHeader {
    /// The wire object for this header with the given state.
    pub fn object<'a>(&'a self, body: ResponseBody<'a>) -> ResponseObject<'a> {
        ResponseObject {
            id: &self.id,
            object: "response",
            created_at: self.created_at,
            status: body.status,
            background: self.background,
            completed_at: body.completed_at,
            conversation: self.conversation.as_ref(),
            agent_reference: self.agent_reference.as_ref(),
            error: body.error,
            incomplete_details: body.incomplete_details,
            instructions: self.instructions.as_deref(),
            max_output_tokens: self.max_output_tokens,
            max_tool_calls: self.max_tool_calls,
            model: &self.model,
            output: body.output,
            parallel_tool_calls: self.parallel_tool_calls,
            previous_response_id: self.previous_response_id.as_ref(),
            prompt_cache_key: self.prompt_cache_key.as_deref(),
            reasoning: &self.reasoning,
            safety_identifier: self.safety_identifier.as_deref(),
            service_tier: &self.service_tier,
            store: self.store,
            temperature: self.temperature,
            text: &self.text,
            tool_choice: &self.tool_choice,
            tools: &self.tools,
            top_logprobs: self.top_logprobs,
            top_p: self.top_p,
            presence_penalty: self.presence_penalty,
            frequency_penalty: self.frequency_penalty,
            truncation: &self.truncation,
            usage: body.usage,
            user: self.user.as_deref(),
            metadata: &self.metadata,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn header() -> ResponseHeader {
        ResponseHeader {
            id: ResponseId::parse("resp_test").unwrap(),
            created_at: 1_700_000_000,
            model: "echo".into(),
            instructions: None,
            previous_response_id: None,
            tools: vec![],
            tool_choice: json!("auto"),
            parallel_tool_calls: true,
            temperature: 1.0,
            top_p: 1.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            top_logprobs: 0,
            max_output_tokens: None,
            max_tool_calls: None,
            truncation: "disabled".into(),
            text: json!({"format":{"type":"text"},"verbosity":"medium"}),
            reasoning: json!({"effort":null,"summary":null}),
            store: true,
            background: false,
            service_tier: "default".into(),
            metadata: BTreeMap::new(),
            safety_identifier: None,
            prompt_cache_key: None,
            user: None,
            conversation: None,
            agent_reference: None,
        }
    }

    #[test]
    fn nullable_fields_are_present_as_null() {
        let h = header();
        let body = ResponseBody {
            status: RunStatus::InProgress,
            completed_at: None,
            output: &[],
            error: None,
            incomplete_details: None,
            usage: None,
        };
        let v = serde_json::to_value(h.object(body)).unwrap();
        for key in [
            "error",
            "incomplete_details",
            "completed_at",
            "usage",
            "previous_response_id",
            "instructions",
            "max_output_tokens",
        ] {
            assert_eq!(v.get(key), Some(&Value::Null), "{key}");
        }
        assert_eq!(v["object"], "response");
        assert_eq!(v["status"], "in_progress");
    }

    #[test]
    fn usage_adds_up_across_model_calls() {
        let mut u = Usage::default();
        let one = Usage {
            input_tokens: 3,
            input_tokens_details: InputTokensDetails { cached_tokens: 1 },
            output_tokens: 2,
            output_tokens_details: OutputTokensDetails {
                reasoning_tokens: 1,
            },
            total_tokens: 5,
        };
        u.add(&one);
        u.add(&one);
        assert_eq!(u.total_tokens, 10);
        assert_eq!(u.input_tokens_details.cached_tokens, 2);
    }
}
