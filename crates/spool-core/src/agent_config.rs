//! Named agents: a model with instructions, tools and defaults, by name.
//!
//! An [`AgentDefinition`] is what an operator writes in the config file (and
//! what a later Agents API will create). A request selects one with
//! `agent: {"type": "agent_reference", "name": …}` or `model: "agent:NAME"`;
//! [`AgentDefinition::apply`] then fills every field the request left unset
//! from the agent, so request fields override the agent's for that run, and
//! the request's function tools join the agent's.

use crate::ids::SequentialIds;
use crate::request::{CreateResponseBody, RequestError, RunRequest};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The `model` prefix that selects an agent instead of a model.
pub const AGENT_MODEL_PREFIX: &str = "agent:";

/// A named agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentDefinition {
    pub name: String,
    /// The model it runs on (a model the server routes: `echo` or one of
    /// the upstream's).
    pub model: String,
    #[serde(default)]
    pub instructions: Option<String>,
    /// Function tools and MCP servers, in the Responses API's form; an MCP
    /// server may be a `command` spool starts (stdio) instead of a URL.
    #[serde(default)]
    pub tools: Vec<Value>,
    #[serde(default)]
    pub tool_choice: Option<Value>,
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    /// Most model calls of the tool loop in one run.
    #[serde(default)]
    pub max_infer_iters: Option<u32>,
    /// `text.format` of the Responses API, e.g. a JSON schema.
    #[serde(default)]
    pub response_format: Option<Value>,
    /// Chat Completions streams of this agent carry agent status chunks
    /// (seed 001); `false` for clients that want plain chunks. A request's
    /// `stream_options.status_chunks` overrides it.
    #[serde(default)]
    pub status_chunks: Option<bool>,
    /// The dialect `POST /v1/chat/completions` streams this agent in:
    /// `chat` (the default) or `wxo` (the Orchestrate external-agent
    /// stream). A request's `X-Spool-Dialect` header overrides it.
    #[serde(default)]
    pub chat_dialect: Option<String>,
}

impl AgentDefinition {
    /// Checks that the definition makes valid requests (its tools, sampling
    /// and format), naming the agent in the error.
    pub fn validate(&self) -> Result<(), RequestError> {
        let valid_name = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid_name {
            return Err(RequestError {
                message: format!(
                    "Agent name '{}' must be 1 to 64 characters of a-z, A-Z, 0-9, '_' and '-'.",
                    self.name
                ),
                param: Some("name".into()),
                code: "invalid_value",
            });
        }
        if let Some(dialect) = &self.chat_dialect
            && dialect != "chat"
            && dialect != "wxo"
        {
            return Err(RequestError {
                message: format!(
                    "Agent '{}': chat_dialect must be 'chat' or 'wxo', got '{dialect}'.",
                    self.name
                ),
                param: Some("chat_dialect".into()),
                code: "invalid_value",
            });
        }
        let mut body = CreateResponseBody {
            input: Some(json!("probe")),
            ..CreateResponseBody::default()
        };
        self.apply(&mut body);
        // A probe: its ids are thrown away with it.
        RunRequest::parse(body, &SequentialIds::default())
            .map(drop)
            .map_err(|e| RequestError {
                message: format!("Agent '{}': {}", self.name, e.message),
                ..e
            })
    }

    /// Fills what `body` leaves unset from this agent.
    pub fn apply(&self, body: &mut CreateResponseBody) {
        if body
            .model
            .as_deref()
            .is_none_or(|m| m.starts_with(AGENT_MODEL_PREFIX))
        {
            body.model = Some(self.model.clone());
        }
        if body.instructions.is_none() {
            body.instructions.clone_from(&self.instructions);
        }
        // The agent's tools, then the request's; a request tool of the same
        // name replaces the agent's.
        let requested = body.tools.take().unwrap_or_default();
        let name = |t: &Value| t.get("name").and_then(Value::as_str).map(str::to_owned);
        let is_mcp = |t: &&Value| t.get("type").and_then(Value::as_str) == Some("mcp");
        // The agent's MCP servers are the operator's: they may be commands.
        body.trusted_tools = self.tools.iter().filter(is_mcp).cloned().collect();
        let mut tools: Vec<Value> = self
            .tools
            .iter()
            .filter(|t| !is_mcp(t))
            .filter(|t| {
                !requested
                    .iter()
                    .any(|r| name(r).is_some() && name(r) == name(t))
            })
            .cloned()
            .collect();
        tools.extend(requested);
        if !tools.is_empty() {
            body.tools = Some(tools);
        }
        if body.tool_choice.is_none() {
            body.tool_choice.clone_from(&self.tool_choice);
        }
        if body.parallel_tool_calls.is_none() {
            body.parallel_tool_calls = self.parallel_tool_calls;
        }
        if body.temperature.is_none() {
            body.temperature = self.temperature;
        }
        if body.top_p.is_none() {
            body.top_p = self.top_p;
        }
        if body.max_output_tokens.is_none() {
            body.max_output_tokens = self.max_output_tokens;
        }
        if body.max_infer_iters.is_none() {
            body.max_infer_iters = self.max_infer_iters;
        }
        if body.text.is_none()
            && let Some(format) = &self.response_format
        {
            body.text = Some(json!({ "format": format }));
        }
        body.agent = Some(json!({"type": "agent_reference", "name": self.name}));
    }
}

/// The agent a request selects, if any.
pub fn selected_agent(body: &CreateResponseBody) -> Result<Option<String>, RequestError> {
    if let Some(reference) = &body.agent {
        let name = reference.get("name").and_then(Value::as_str);
        let kind = reference.get("type").and_then(Value::as_str);
        return match (kind, name) {
            (None | Some("agent_reference"), Some(name)) => Ok(Some(name.to_owned())),
            _ => Err(RequestError {
                message: "agent must be {\"type\": \"agent_reference\", \"name\": …}.".into(),
                param: Some("agent".into()),
                code: "invalid_value",
            }),
        };
    }
    Ok(body
        .model
        .as_deref()
        .and_then(|m| m.strip_prefix(AGENT_MODEL_PREFIX))
        .map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> AgentDefinition {
        AgentDefinition {
            name: "helper".into(),
            model: "up-model".into(),
            instructions: Some("be brief".into()),
            tools: vec![json!({"type": "function", "name": "lookup"})],
            tool_choice: None,
            parallel_tool_calls: None,
            temperature: Some(0.2),
            top_p: None,
            max_output_tokens: Some(100),
            max_infer_iters: Some(3),
            response_format: None,
            status_chunks: None,
            chat_dialect: None,
        }
    }

    fn body(v: Value) -> CreateResponseBody {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn an_agent_is_selected_by_reference_or_by_model_prefix() {
        assert_eq!(
            selected_agent(&body(
                json!({"agent": {"type": "agent_reference", "name": "a"}})
            ))
            .unwrap(),
            Some("a".into())
        );
        assert_eq!(
            selected_agent(&body(json!({"model": "agent:b"}))).unwrap(),
            Some("b".into())
        );
        assert_eq!(
            selected_agent(&body(json!({"model": "gpt"}))).unwrap(),
            None
        );
        assert!(selected_agent(&body(json!({"agent": {"type": "other"}}))).is_err());
    }

    #[test]
    fn request_fields_override_and_tools_join() {
        let mut b = body(
            json!({"model": "agent:helper", "input": "x", "temperature": 0.9,
            "tools": [{"type": "function", "name": "mine"}]}),
        );
        agent().apply(&mut b);
        let r = RunRequest::parse(b, &SequentialIds::default()).unwrap();
        assert_eq!(r.model, "up-model");
        assert_eq!(r.instructions.as_deref(), Some("be brief"));
        assert_eq!(r.temperature, Some(0.9));
        assert_eq!(r.max_output_tokens, Some(100));
        assert_eq!(r.max_infer_iters, Some(3));
        let names: Vec<_> = r.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["lookup", "mine"]);
        assert_eq!(r.agent.as_deref(), Some("helper"));
    }

    #[test]
    fn an_invalid_definition_is_reported_with_the_agent_name() {
        let mut bad = agent();
        bad.temperature = Some(9.0);
        let e = bad.validate().unwrap_err();
        assert!(e.message.starts_with("Agent 'helper':"), "{}", e.message);
        bad = agent();
        bad.name = "no spaces".into();
        assert!(bad.validate().is_err());
    }
}
