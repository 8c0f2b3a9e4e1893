//! roboto's agent-thread request bodies (seed 003) as Responses requests.
//!
//! A roboto thread is a conversation whose defaults live in its metadata
//! ([`super::threads::ThreadDefaults`], shared with the Codex threads), and
//! each body that makes the model work (start a thread, send a message,
//! submit client tool results) becomes a [`CreateResponseBody`] on that
//! conversation: a background run, so a polling client never holds it.
//!
//! Fields roboto has that spool has no concept for are refused with a 400
//! when a request relies on them (goals, skills, an analysis scope,
//! organisation visibility); `client_context`, which roboto itself calls
//! informational, is accepted and not used.

use super::threads::{THREAD_KEY_PREFIX, ThreadDefaults};
use super::{CreateResponseBody, RequestError};
use crate::ids::ConversationId;
use crate::item::ClientToolStatus;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Where a thread keeps its client tools (`ClientToolSpec`s, as JSON):
/// roboto's client tools hold for the turn that declares them and every
/// later one.
const CLIENT_TOOLS_KEY: &str = "spool.thread.client_tools";

/// The body of `POST /v1/ai/threads` (`StartAgentThreadRequest`).
#[derive(Debug, Default, Deserialize)]
pub struct StartThreadBody {
    #[serde(default)]
    pub messages: Vec<MessageParam>,
    pub system_prompt: Option<String>,
    /// A named agent of spool's, or a model.
    pub model_profile: Option<String>,
    pub client_tools: Option<Vec<ClientToolSpec>>,
    #[serde(flatten)]
    pub unsupported: UnsupportedFields,
    pub visibility: Option<String>,
}

/// The body of `POST /v1/ai/threads/{id}/messages` (`SendMessageRequest`).
#[derive(Debug, Default, Deserialize)]
pub struct SendMessageBody {
    pub message: Option<MessageParam>,
    pub client_tools: Option<Vec<ClientToolSpec>>,
    #[serde(flatten)]
    pub unsupported: UnsupportedFields,
}

/// The body of `POST /v1/ai/threads/{id}/tool-results`
/// (`SubmitToolResultsRequest`).
#[derive(Debug, Default, Deserialize)]
pub struct SubmitToolResultsBody {
    pub tool_results: Vec<ClientToolResult>,
    pub client_tools: Option<Vec<ClientToolSpec>>,
}

/// One client tool's result (`ClientToolResult`).
#[derive(Debug, Clone, Deserialize)]
pub struct ClientToolResult {
    pub tool_use_id: String,
    pub tool_name: String,
    pub runtime_ms: u64,
    pub status: ClientToolStatus,
    pub output: Option<serde_json::Map<String, Value>>,
}

/// A tool the client runs (`ClientToolSpec`).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct ClientToolSpec {
    pub name: String,
    pub description: String,
    pub input_schema: Value,
}

/// A message a client sends (`AgentMessage`): only its role and text
/// blocks mean anything to spool; `status` and `created` are the client's.
#[derive(Debug, Clone, Deserialize)]
pub struct MessageParam {
    pub role: String,
    #[serde(default)]
    pub content: Vec<Value>,
}

/// roboto fields with no spool counterpart. Present with a value that
/// asks for something (a goal, a skill, a scope) they are refused.
#[derive(Debug, Default, Deserialize)]
pub struct UnsupportedFields {
    goals: Option<Vec<Value>>,
    #[serde(default)]
    invoke_skills: Vec<Value>,
    available_skills: Option<Vec<Value>>,
    analysis_scope: Option<Value>,
}

impl UnsupportedFields {
    fn check(&self) -> Result<(), RequestError> {
        if self.goals.as_ref().is_some_and(|g| !g.is_empty()) {
            return Err(RequestError::unsupported(
                "goals",
                "spool has no goals: declare none (the turn runs on its message).",
            ));
        }
        if !self.invoke_skills.is_empty() {
            return Err(RequestError::unsupported(
                "invoke_skills",
                "spool has no skills to invoke.",
            ));
        }
        if self
            .available_skills
            .as_ref()
            .is_some_and(|s| !s.is_empty())
        {
            return Err(RequestError::unsupported(
                "available_skills",
                "spool has no skills to make available.",
            ));
        }
        if self.analysis_scope.as_ref().is_some_and(|s| !s.is_null()) {
            return Err(RequestError::unsupported(
                "analysis_scope",
                "spool has no analysis scopes.",
            ));
        }
        Ok(())
    }
}

/// What a thread's model profile names: a spool agent or a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Profile {
    Agent(String),
    Model(String),
}

impl Profile {
    /// The thread defaults this profile and system prompt make.
    pub fn defaults(self, system_prompt: Option<String>) -> ThreadDefaults {
        let (model, agent) = match self {
            Profile::Agent(name) => (None, Some(name)),
            Profile::Model(model) => (Some(model), None),
        };
        ThreadDefaults {
            model,
            agent,
            instructions: system_prompt,
        }
    }

    /// The profile a thread's defaults hold, as roboto names it.
    pub fn name(defaults: &ThreadDefaults) -> Option<&str> {
        defaults.agent.as_deref().or(defaults.model.as_deref())
    }
}

impl StartThreadBody {
    /// The thread's first input (Responses input items), checked.
    pub fn input(&self) -> Result<Value, RequestError> {
        self.unsupported.check()?;
        if let Some(visibility) = &self.visibility
            && visibility != "private"
        {
            return Err(RequestError::unsupported(
                "visibility",
                "spool has no organisations: a thread is private.",
            ));
        }
        if self.messages.is_empty() {
            return Err(RequestError::missing("messages"));
        }
        let items = self
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| message_item(&format!("messages[{i}]"), m, &["user", "assistant"]))
            .collect::<Result<Vec<_>, _>>()?;
        if !self.messages.iter().any(|m| m.role == "user") {
            return Err(RequestError::invalid(
                "messages",
                "a thread starts with at least one user message.",
            ));
        }
        check_client_tools(self.client_tools.as_deref())?;
        Ok(Value::Array(items))
    }
}

impl SendMessageBody {
    /// The turn's input (one user message), checked.
    pub fn input(&self) -> Result<Value, RequestError> {
        self.unsupported.check()?;
        let message = self
            .message
            .as_ref()
            .ok_or_else(|| RequestError::missing("message"))?;
        if message.content.is_empty() {
            return Err(RequestError::invalid(
                "message.content",
                "the message must contain at least one text block.",
            ));
        }
        check_client_tools(self.client_tools.as_deref())?;
        Ok(json!([message_item("message", message, &["user"])?]))
    }
}

impl SubmitToolResultsBody {
    /// The continuation's input: one `function_call_output` per awaited
    /// call, in the order the model made them. Every awaited call must be
    /// answered, each once, and nothing else.
    pub fn input(&self, awaited: &[String]) -> Result<Value, RequestError> {
        check_client_tools(self.client_tools.as_deref())?;
        let mut by_id: BTreeMap<&str, &ClientToolResult> = BTreeMap::new();
        for (i, result) in self.tool_results.iter().enumerate() {
            let at = format!("tool_results[{i}].tool_use_id");
            if !awaited.contains(&result.tool_use_id) {
                return Err(RequestError::invalid(
                    at,
                    format!(
                        "No tool use '{}' awaits a result in this thread.",
                        result.tool_use_id
                    ),
                ));
            }
            if by_id.insert(&result.tool_use_id, result).is_some() {
                return Err(RequestError::invalid(
                    at,
                    format!("Tool use '{}' is answered twice.", result.tool_use_id),
                ));
            }
        }
        let missing: Vec<&str> = awaited
            .iter()
            .map(String::as_str)
            .filter(|id| !by_id.contains_key(id))
            .collect();
        if !missing.is_empty() {
            return Err(RequestError::invalid(
                "tool_results",
                format!(
                    "Every awaited tool use needs its result in one submission; missing: {}.",
                    missing.join(", ")
                ),
            ));
        }
        let items = awaited
            .iter()
            .filter_map(|id| by_id.get(id.as_str()))
            .map(|result| {
                let output = result.output.clone().unwrap_or_default();
                json!({
                    "type": "function_call_output",
                    "call_id": result.tool_use_id,
                    "output": Value::Object(output).to_string(),
                })
            })
            .collect();
        Ok(Value::Array(items))
    }

    /// How each result ended, by call id, to be logged with its output.
    pub fn outcomes(&self) -> impl Iterator<Item = (&str, ClientToolStatus, u64)> {
        self.tool_results
            .iter()
            .map(|r| (r.tool_use_id.as_str(), r.status, r.runtime_ms))
    }
}

/// Client tool names must be roboto's (`client_…`), so they never collide
/// with the tools spool runs.
fn check_client_tools(tools: Option<&[ClientToolSpec]>) -> Result<(), RequestError> {
    for (i, tool) in tools.unwrap_or_default().iter().enumerate() {
        let name = &tool.name;
        let valid = name.strip_prefix("client_").is_some_and(|rest| {
            rest.starts_with(|c: char| c.is_ascii_lowercase())
                && rest
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        });
        if !valid {
            return Err(RequestError::invalid(
                format!("client_tools[{i}].name"),
                format!("client tool name '{name}' must match ^client_[a-z][a-z0-9_]*$."),
            ));
        }
        if !tool.input_schema.is_object() {
            return Err(RequestError::invalid(
                format!("client_tools[{i}].input_schema"),
                "input_schema must be a JSON schema object.",
            ));
        }
    }
    Ok(())
}

/// A client's message as a Responses input message: its text blocks.
fn message_item(at: &str, message: &MessageParam, roles: &[&str]) -> Result<Value, RequestError> {
    if !roles.contains(&message.role.as_str()) {
        return Err(RequestError::invalid(
            format!("{at}.role"),
            format!(
                "role must be {}; got '{}'.",
                roles.join(" or "),
                message.role
            ),
        ));
    }
    let mut text = String::new();
    for (i, block) in message.content.iter().enumerate() {
        let kind = block
            .get("content_type")
            .and_then(Value::as_str)
            .unwrap_or("text");
        match (kind, block.get("text").and_then(Value::as_str)) {
            ("text", Some(t)) => text.push_str(t),
            _ => {
                return Err(RequestError::invalid(
                    format!("{at}.content[{i}]"),
                    "spool takes text blocks in messages; tool results go to the tool-results endpoint.",
                ));
            }
        }
    }
    let (role, part) = if message.role == "assistant" {
        ("assistant", "output_text")
    } else {
        ("user", "input_text")
    };
    Ok(json!({
        "type": "message",
        "role": role,
        "content": [{"type": part, "text": text}],
    }))
}

/// A thread's client tools, from its conversation's metadata.
pub fn client_tools(metadata: &BTreeMap<String, String>) -> Vec<ClientToolSpec> {
    metadata
        .get(CLIENT_TOOLS_KEY)
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default()
}

/// Adds or replaces (by name) `new` among the thread's client tools in
/// its metadata; true if the metadata changed.
pub fn merge_client_tools(
    metadata: &mut BTreeMap<String, String>,
    new: Option<&[ClientToolSpec]>,
) -> bool {
    let Some(new) = new.filter(|n| !n.is_empty()) else {
        return false;
    };
    let mut tools = client_tools(metadata);
    for tool in new {
        match tools.iter_mut().find(|t| t.name == tool.name) {
            Some(known) => *known = tool.clone(),
            None => tools.push(tool.clone()),
        }
    }
    debug_assert!(CLIENT_TOOLS_KEY.starts_with(THREAD_KEY_PREFIX));
    let json = serde_json::to_string(&tools).unwrap_or_default();
    metadata.insert(CLIENT_TOOLS_KEY.to_owned(), json);
    true
}

/// The Responses request one turn of a roboto thread is: a stored
/// background run on the thread's conversation with the thread's defaults
/// and client tools.
pub fn turn_body(
    thread: &ConversationId,
    defaults: &ThreadDefaults,
    tools: &[ClientToolSpec],
    input: Value,
) -> CreateResponseBody {
    let tools = tools
        .iter()
        .map(|t| {
            json!({
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": t.input_schema,
            })
        })
        .collect::<Vec<_>>();
    CreateResponseBody {
        model: defaults.model.clone(),
        agent: defaults
            .agent
            .as_ref()
            .map(|name| json!({"type": "agent_reference", "name": name})),
        instructions: defaults.instructions.clone(),
        input: Some(input),
        tools: (!tools.is_empty()).then_some(tools),
        conversation: Some(Value::String(thread.as_str().to_owned())),
        store: Some(true),
        background: Some(true),
        ..CreateResponseBody::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(ids: &[&str]) -> SubmitToolResultsBody {
        SubmitToolResultsBody {
            tool_results: ids
                .iter()
                .map(|id| ClientToolResult {
                    tool_use_id: (*id).into(),
                    tool_name: "client_x".into(),
                    runtime_ms: 3,
                    status: ClientToolStatus::Success,
                    output: None,
                })
                .collect(),
            client_tools: None,
        }
    }

    #[test]
    fn results_answer_every_awaited_call_in_call_order() {
        let awaited = vec!["a".to_owned(), "b".to_owned()];
        let input = results(&["b", "a"]).input(&awaited).unwrap();
        assert_eq!(input[0]["call_id"], "a");
        assert_eq!(input[1]["call_id"], "b");
        assert_eq!(input[0]["output"], "{}");
    }

    #[test]
    fn unknown_missing_and_repeated_results_are_refused() {
        let awaited = vec!["a".to_owned(), "b".to_owned()];
        let e = results(&["a", "zzz"]).input(&awaited).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tool_results[1].tool_use_id"));
        let e = results(&["a"]).input(&awaited).unwrap_err();
        assert!(e.message.contains("missing: b"), "{e}");
        let e = results(&["a", "a"]).input(&awaited).unwrap_err();
        assert!(e.message.contains("twice"), "{e}");
    }

    #[test]
    fn client_tool_names_must_be_roboto_client_names() {
        let spec = |name: &str| ClientToolSpec {
            name: name.into(),
            description: String::new(),
            input_schema: json!({"type": "object"}),
        };
        assert!(check_client_tools(Some(&[spec("client_remember_1")])).is_ok());
        for bad in ["remember", "client_", "client_Remember", "client_1x"] {
            assert!(check_client_tools(Some(&[spec(bad)])).is_err(), "{bad}");
        }
    }

    #[test]
    fn what_spool_cannot_honour_is_refused_and_the_sdk_defaults_are_not() {
        let body: StartThreadBody = serde_json::from_value(json!({
            "messages": [{"role": "user", "content": [{"text": "hi"}]}],
            "client_context": null, "system_prompt": null, "model_profile": null,
            "client_tools": null, "analysis_scope": null, "goals": null,
            "invoke_skills": [], "available_skills": null,
        }))
        .unwrap();
        assert_eq!(body.input().unwrap()[0]["content"][0]["text"], "hi");
        let body: StartThreadBody = serde_json::from_value(json!({
            "messages": [{"role": "user", "content": [{"text": "hi"}]}],
            "goals": [{"goal_type": "dataset_summary"}],
        }))
        .unwrap();
        assert_eq!(body.input().unwrap_err().param.as_deref(), Some("goals"));
    }

    #[test]
    fn a_sent_message_must_be_the_users_text() {
        let body: SendMessageBody = serde_json::from_value(json!({
            "message": {"role": "assistant", "content": [{"text": "hi"}]},
        }))
        .unwrap();
        assert_eq!(
            body.input().unwrap_err().param.as_deref(),
            Some("message.role")
        );
    }
}
