//! The llama-stack Agents API's request bodies (seed 004), typed, and the
//! Responses request a turn becomes.
//!
//! An agent's [`AgentConfig`] is checked when the agent is created, so a
//! turn never meets a config it cannot run. A turn (`messages`) or a
//! resume (`tool_responses`) becomes a [`CreateResponseBody`] on the
//! session's conversation with the agent's model, instructions, sampling
//! and client tools, validated by the Responses path like any request.
//!
//! Toolgroups name MCP servers from the operator's config (`mcp::LABEL`,
//! or `mcp::LABEL/TOOL` for one of its tools): [`resolve_toolgroups`]
//! turns them into the MCP tools a run calls server-side.
//!
//! A turn's documents (text, or `data:` URLs of text types) join its last
//! user message.
//!
//! Shields name the config's moderation models ([`resolve_shields`]).
//!
//! What spool does not serve is refused by name rather than ignored:
//! builtin toolgroups, unknown shields, other documents, the `top_k` strategy and a
//! repetition penalty (the OpenAI-compatible upstream has neither), and
//! grammar response formats.

use super::{CreateResponseBody, RequestError};
use crate::ids::ConversationId;
use crate::tool::{RunShields, Shield};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The schema name a `json_schema` response format is given.
pub const RESPONSE_FORMAT_NAME: &str = "response_format";

/// `AgentConfig`.
#[derive(Debug, Clone, Deserialize)]
pub struct AgentConfig {
    pub model: String,
    pub instructions: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub sampling_params: Option<SamplingParams>,
    #[serde(default)]
    pub input_shields: Option<Vec<String>>,
    #[serde(default)]
    pub output_shields: Option<Vec<String>>,
    #[serde(default)]
    pub toolgroups: Option<Vec<Value>>,
    #[serde(default)]
    pub client_tools: Option<Vec<ToolDef>>,
    /// Deprecated in favour of `tool_config.tool_choice`.
    #[serde(default)]
    pub tool_choice: Option<String>,
    #[serde(default)]
    pub tool_prompt_format: Option<String>,
    #[serde(default)]
    pub tool_config: Option<ToolConfig>,
    #[serde(default)]
    pub max_infer_iters: Option<u32>,
    #[serde(default)]
    pub enable_session_persistence: Option<bool>,
    #[serde(default)]
    pub response_format: Option<ResponseFormat>,
}

/// `SamplingParams`.
#[derive(Debug, Clone, Deserialize)]
pub struct SamplingParams {
    #[serde(default)]
    pub strategy: Option<Strategy>,
    /// 0 means unset, as llama-stack reads it.
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub repetition_penalty: Option<f64>,
    #[serde(default)]
    pub stop: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Strategy {
    Greedy,
    TopP {
        #[serde(default)]
        temperature: Option<f64>,
        #[serde(default)]
        top_p: Option<f64>,
    },
    TopK {
        top_k: u32,
    },
}

/// `ToolDef`: a tool the client runs. 0.2.x clients describe its
/// parameters as a list, 0.3.x as a JSON schema (`input_schema`).
#[derive(Debug, Clone, Deserialize)]
pub struct ToolDef {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Option<Vec<ToolParameter>>,
    #[serde(default)]
    pub input_schema: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ToolParameter {
    pub name: String,
    pub parameter_type: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default = "required_default")]
    pub required: bool,
    #[serde(default)]
    pub default: Option<Value>,
}

fn required_default() -> bool {
    true
}

/// `ToolConfig`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ToolConfig {
    /// `auto`, `required`, `none`, or a tool's name.
    #[serde(default)]
    pub tool_choice: Option<String>,
    #[serde(default)]
    pub tool_prompt_format: Option<String>,
    #[serde(default)]
    pub system_message_behavior: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    JsonSchema { json_schema: Value },
    Grammar { bnf: Value },
}

/// Deserializes `value` as a `T`, naming the failing field under `root`.
fn typed<T: for<'de> Deserialize<'de>>(value: Value, root: &str) -> Result<T, RequestError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let param = if path == "." {
            root.to_owned()
        } else {
            format!("{root}.{path}")
        };
        RequestError::invalid(param, format!("Invalid '{root}': {}", e.inner()))
    })
}

impl AgentConfig {
    /// Reads and checks `agent_config`: everything a turn would refuse is
    /// refused now.
    pub fn parse(value: Value) -> Result<Self, RequestError> {
        if !value.is_object() {
            return Err(RequestError::missing("agent_config"));
        }
        let config: AgentConfig = typed(value, "agent_config")?;
        if config.model.trim().is_empty() {
            return Err(RequestError::invalid(
                "agent_config.model",
                "agent_config.model must name a model.",
            ));
        }
        toolgroup_names(config.toolgroups.as_deref(), "agent_config.toolgroups")?;
        if let (Some(config_choice), Some(choice)) = (
            config
                .tool_config
                .as_ref()
                .and_then(|t| t.tool_choice.as_ref()),
            &config.tool_choice,
        ) && config_choice != choice
        {
            return Err(RequestError::invalid(
                "agent_config.tool_choice",
                "tool_choice is deprecated. Use tool_choice in tool_config instead.",
            ));
        }
        if config.max_infer_iters == Some(0) {
            return Err(RequestError::invalid(
                "agent_config.max_infer_iters",
                "max_infer_iters must be at least 1.",
            ));
        }
        if let Some(sampling) = &config.sampling_params {
            if let Some(Strategy::TopK { .. }) = sampling.strategy {
                return Err(RequestError::unsupported(
                    "agent_config.sampling_params.strategy",
                    "The top_k strategy is not available: the model upstream is an OpenAI-compatible \
                     server, which has no top_k. Use greedy or top_p.",
                ));
            }
            if sampling.repetition_penalty.is_some_and(|p| p != 1.0) {
                return Err(RequestError::unsupported(
                    "agent_config.sampling_params.repetition_penalty",
                    "repetition_penalty is not available: the model upstream is an \
                     OpenAI-compatible server, which has none (1.0, no penalty, is accepted).",
                ));
            }
        }
        if let Some(ResponseFormat::Grammar { .. }) = config.response_format {
            return Err(RequestError::unsupported(
                "agent_config.response_format",
                "Grammar response formats are not available; use json_schema.",
            ));
        }
        for (i, tool) in config.client_tools.iter().flatten().enumerate() {
            if tool.name.trim().is_empty() {
                return Err(RequestError::invalid(
                    format!("agent_config.client_tools[{i}].name"),
                    "A client tool must have a name.",
                ));
            }
        }
        Ok(config)
    }

    /// The tool choice in force: the turn's, else the agent's.
    fn tool_choice(&self, turn: Option<&ToolConfig>) -> Option<String> {
        turn.and_then(|t| t.tool_choice.clone())
            .or_else(|| {
                self.tool_config
                    .as_ref()
                    .and_then(|t| t.tool_choice.clone())
            })
            .or_else(|| self.tool_choice.clone())
    }

    /// The Responses request of one run of a turn on `session`, with
    /// `input` (Responses input items).
    pub fn run_body(
        &self,
        session: &ConversationId,
        input: Vec<Value>,
        turn_tool_config: Option<&ToolConfig>,
    ) -> CreateResponseBody {
        let tools: Vec<Value> = self
            .client_tools
            .iter()
            .flatten()
            .map(ToolDef::function_tool)
            .collect();
        let tool_choice = self
            .tool_choice(turn_tool_config)
            .map(|c| match c.as_str() {
                "auto" | "required" | "none" => Value::String(c),
                name => json!({"type": "function", "name": name}),
            });
        let (temperature, top_p) = match self
            .sampling_params
            .as_ref()
            .and_then(|s| s.strategy.as_ref())
        {
            Some(Strategy::Greedy) => (Some(0.0), None),
            Some(Strategy::TopP { temperature, top_p }) => (*temperature, *top_p),
            Some(Strategy::TopK { .. }) | None => (None, None),
        };
        let max_output_tokens = self
            .sampling_params
            .as_ref()
            .and_then(|s| s.max_tokens)
            .filter(|&n| n > 0);
        let text = match &self.response_format {
            Some(ResponseFormat::JsonSchema { json_schema }) => Some(json!({"format": {
                "type": "json_schema",
                "name": RESPONSE_FORMAT_NAME,
                "schema": json_schema,
            }})),
            _ => None,
        };
        CreateResponseBody {
            model: Some(self.model.clone()),
            instructions: Some(self.instructions.clone()),
            input: Some(Value::Array(input)),
            tools: (!tools.is_empty()).then_some(tools),
            tool_choice,
            temperature,
            top_p,
            max_output_tokens,
            text,
            conversation: Some(Value::String(session.as_str().to_owned())),
            store: Some(true),
            stream: Some(true),
            max_infer_iters: Some(self.max_infer_iters.unwrap_or(DEFAULT_MAX_INFER_ITERS)),
            ..CreateResponseBody::default()
        }
    }

    /// Stop sequences of the sampling parameters.
    pub fn stop(&self) -> Vec<String> {
        self.sampling_params
            .as_ref()
            .and_then(|s| s.stop.clone())
            .unwrap_or_default()
    }
}

/// llama-stack's default for `max_infer_iters`.
pub const DEFAULT_MAX_INFER_ITERS: u32 = 10;

/// The shields an agent's config names, from `available` (the config's
/// shields: name → moderation model). A shield spool does not have is
/// refused, naming those it has.
pub fn resolve_shields(
    config: &AgentConfig,
    available: &BTreeMap<String, String>,
) -> Result<RunShields, RequestError> {
    let resolve = |field: &str, names: &Option<Vec<String>>| {
        names
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, name)| match available.get(name) {
                Some(model) => Ok(Shield {
                    id: name.clone(),
                    model: model.clone(),
                }),
                None => {
                    let known: Vec<&str> = available.keys().map(String::as_str).collect();
                    Err(RequestError::unsupported(
                        format!("agent_config.{field}[{i}]"),
                        format!(
                            "Shield '{name}' is not available on this server; it has {}.",
                            if known.is_empty() {
                                "none (shields are defined in its config, [[shields]])".to_owned()
                            } else {
                                known.join(", ")
                            }
                        ),
                    ))
                }
            })
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(RunShields {
        input: resolve("input_shields", &config.input_shields)?,
        output: resolve("output_shields", &config.output_shields)?,
    })
}

/// The prefix of a toolgroup that names an MCP server of the config.
pub const MCP_TOOLGROUP_PREFIX: &str = "mcp::";

/// One toolgroup entry: a group, and a tool of it when the entry names one
/// (`mcp::LABEL/TOOL`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ToolgroupName {
    group: String,
    tool: Option<String>,
}

/// The toolgroup entries (a name, or `{name, args}`) checked for form.
fn toolgroup_names(
    toolgroups: Option<&[Value]>,
    param: &str,
) -> Result<Vec<ToolgroupName>, RequestError> {
    toolgroups
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let name = match entry {
                Value::String(name) => name.as_str(),
                Value::Object(o) => {
                    if o.get("args")
                        .is_some_and(|a| a.as_object().is_some_and(|a| !a.is_empty()))
                    {
                        return Err(RequestError::unsupported(
                            format!("{param}[{i}].args"),
                            "Toolgroup args are not available: an MCP toolgroup's tools take \
                             their arguments from the model.",
                        ));
                    }
                    o.get("name")
                        .and_then(Value::as_str)
                        .ok_or_else(|| RequestError::missing(format!("{param}[{i}].name")))?
                }
                _ => {
                    return Err(RequestError::invalid(
                        format!("{param}[{i}]"),
                        "A toolgroup is a name or {\"name\", \"args\"}.",
                    ));
                }
            };
            let (group, tool) = match name.split_once('/') {
                Some((group, tool)) => (group, Some(tool.to_owned())),
                None => (name, None),
            };
            Ok(ToolgroupName {
                group: group.to_owned(),
                tool,
            })
        })
        .collect()
}

/// The MCP tools (Responses `mcp` tools, from the operator's config) that
/// `toolgroups` name, from `available` (by toolgroup id, `mcp::LABEL`).
/// A toolgroup spool does not have (`builtin::websearch`, …) is refused,
/// naming those it has. A run of an agent turn cannot stop for approvals,
/// so the servers' calls need none.
pub fn resolve_toolgroups(
    toolgroups: &[Value],
    param: &str,
    available: &BTreeMap<String, Value>,
) -> Result<Vec<Value>, RequestError> {
    let names = toolgroup_names(Some(toolgroups), param)?;
    // By group: the tools it is limited to, `None` for all of them.
    let mut chosen: BTreeMap<&str, Option<Vec<String>>> = BTreeMap::new();
    for (i, name) in names.iter().enumerate() {
        if !available.contains_key(&name.group) {
            let known: Vec<&str> = available.keys().map(String::as_str).collect();
            return Err(RequestError::unsupported(
                format!("{param}[{i}]"),
                format!(
                    "Toolgroup '{}' is not available on this server; it has {}.",
                    name.group,
                    if known.is_empty() {
                        "none (MCP servers of its config are toolgroups mcp::LABEL)".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
        let entry = chosen
            .entry(name.group.as_str())
            .or_insert(Some(Vec::new()));
        match (&name.tool, entry.as_mut()) {
            (Some(tool), Some(tools)) => tools.push(tool.clone()),
            (None, _) => *entry = None,
            (Some(_), None) => {}
        }
    }
    Ok(chosen
        .into_iter()
        .filter_map(|(group, tools)| {
            let mut server = available.get(group)?.clone();
            server["require_approval"] = json!("never");
            if let Some(tools) = tools {
                server["allowed_tools"] = json!(tools);
            }
            Some(server)
        })
        .collect())
}

impl ToolDef {
    /// The tool as a Responses function tool.
    fn function_tool(&self) -> Value {
        let parameters = match (&self.input_schema, &self.parameters) {
            (Some(schema), _) => schema.clone(),
            (None, Some(params)) => {
                let properties: serde_json::Map<String, Value> = params
                    .iter()
                    .map(|p| {
                        let mut property = json!({"type": json_type(&p.parameter_type)});
                        if let Some(description) = &p.description {
                            property["description"] = Value::String(description.clone());
                        }
                        if let Some(default) = &p.default {
                            property["default"] = default.clone();
                        }
                        (p.name.clone(), property)
                    })
                    .collect();
                let required: Vec<&str> = params
                    .iter()
                    .filter(|p| p.required)
                    .map(|p| p.name.as_str())
                    .collect();
                json!({"type": "object", "properties": properties, "required": required})
            }
            (None, None) => json!({"type": "object", "properties": {}}),
        };
        json!({
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": parameters,
        })
    }
}

/// A llama-stack parameter type (Python's names) as a JSON schema type.
fn json_type(parameter_type: &str) -> &str {
    match parameter_type {
        "str" | "string" => "string",
        "int" | "integer" => "integer",
        "float" | "number" => "number",
        "bool" | "boolean" => "boolean",
        "list" | "array" => "array",
        "dict" | "object" => "object",
        _ => "string",
    }
}

/// The body of `POST …/session`.
#[derive(Debug, Deserialize)]
pub struct CreateSessionBody {
    pub session_name: String,
}

/// The body of `POST …/turn`.
#[derive(Debug, Deserialize)]
pub struct CreateTurnBody {
    pub messages: Vec<Value>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub documents: Option<Vec<Value>>,
    #[serde(default)]
    pub toolgroups: Option<Vec<Value>>,
    #[serde(default)]
    pub tool_config: Option<ToolConfig>,
}

impl CreateTurnBody {
    /// The turn's messages as Responses input items, checked.
    pub fn input(&self) -> Result<Vec<Value>, RequestError> {
        if self.messages.is_empty() {
            return Err(RequestError::invalid(
                "messages",
                "A turn needs at least one message.",
            ));
        }
        toolgroup_names(self.toolgroups.as_deref(), "toolgroups")?;
        let mut items = self
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| input_item(m, &format!("messages[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        // Documents go into the model's context with the turn's last user
        // message (llama-stack without a memory tool does the same), and
        // stay in the turn's input.
        let documents = self
            .documents
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, d)| document_part(d, &format!("documents[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        if !documents.is_empty() {
            let last_user = items.iter_mut().rev().find(|item| item["role"] == "user");
            match last_user.and_then(|m| m["content"].as_array_mut()) {
                Some(content) => content.extend(documents),
                None => {
                    items.push(json!({"type": "message", "role": "user", "content": documents}))
                }
            }
        }
        Ok(items)
    }
}

/// A turn document as an input text part: text, or a `data:` URL of a
/// text type. Images and URLs to fetch are refused.
fn document_part(document: &Value, param: &str) -> Result<Value, RequestError> {
    let mime_type = document
        .get("mime_type")
        .and_then(Value::as_str)
        .ok_or_else(|| RequestError::missing(format!("{param}.mime_type")))?;
    if !is_text_type(mime_type) {
        return Err(RequestError::unsupported(
            format!("{param}.mime_type"),
            format!(
                "Documents of type '{mime_type}' are not available; send text (text/*, \
                 application/json, …) or a data: URL of it."
            ),
        ));
    }
    let content = document
        .get("content")
        .ok_or_else(|| RequestError::missing(format!("{param}.content")))?;
    let text = match content.get("uri").and_then(Value::as_str) {
        Some(uri) => data_url_text(uri).ok_or_else(|| {
            RequestError::unsupported(
                format!("{param}.content.uri"),
                "A document URL must be a data: URL of text (the server fetches no URLs).",
            )
        })?,
        None => content_text(content, &format!("{param}.content"))?,
    };
    Ok(json!({
        "type": "input_text",
        "text": format!("Document ({mime_type}):\n{text}"),
    }))
}

fn is_text_type(mime_type: &str) -> bool {
    let essence = mime_type.split(';').next().unwrap_or_default().trim();
    essence.starts_with("text/")
        || matches!(
            essence,
            "application/json" | "application/xml" | "application/yaml" | "application/x-yaml"
        )
}

/// The text a `data:` URL of a text type holds (base64 or percent-encoded).
fn data_url_text(uri: &str) -> Option<String> {
    let (meta, data) = uri.strip_prefix("data:")?.split_once(',')?;
    let mime_type = meta.split(';').next().unwrap_or_default();
    if !(mime_type.is_empty() || is_text_type(mime_type)) {
        return None;
    }
    let bytes = if meta.ends_with(";base64") {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .ok()?
    } else {
        percent_decode(data)?
    };
    String::from_utf8(bytes).ok()
}

fn percent_decode(data: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len());
    let mut bytes = data.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    Some(out)
}

/// One message of a turn as a Responses input item.
fn input_item(message: &Value, param: &str) -> Result<Value, RequestError> {
    match message.get("role").and_then(Value::as_str) {
        Some("user") => {
            let content = message
                .get("content")
                .ok_or_else(|| RequestError::missing(format!("{param}.content")))?;
            Ok(json!({
                "type": "message",
                "role": "user",
                "content": input_content(content, &format!("{param}.content"))?,
            }))
        }
        Some("tool") => {
            let call_id = message
                .get("call_id")
                .and_then(Value::as_str)
                .ok_or_else(|| RequestError::missing(format!("{param}.call_id")))?;
            let content = message
                .get("content")
                .ok_or_else(|| RequestError::missing(format!("{param}.content")))?;
            Ok(json!({
                "type": "function_call_output",
                "call_id": call_id,
                "output": content_text(content, &format!("{param}.content"))?,
            }))
        }
        _ => Err(RequestError::invalid(
            format!("{param}.role"),
            "A turn message must be a user message (role 'user') or a tool response (role 'tool').",
        )),
    }
}

/// `InterleavedContent` as Responses input content parts.
fn input_content(content: &Value, param: &str) -> Result<Value, RequestError> {
    let items: Vec<&Value> = match content {
        Value::String(text) => return Ok(json!([{"type": "input_text", "text": text}])),
        Value::Array(items) => items.iter().collect(),
        item => vec![item],
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(text) => Ok(json!({"type": "input_text", "text": text})),
            _ => match item.get("type").and_then(Value::as_str) {
                Some("text") => item
                    .get("text")
                    .and_then(Value::as_str)
                    .map(|text| json!({"type": "input_text", "text": text}))
                    .ok_or_else(|| RequestError::missing(format!("{param}[{i}].text"))),
                Some("image") => {
                    let image = item.get("image");
                    let url = image
                        .and_then(|i| i.get("url"))
                        .and_then(|u| u.get("uri"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .or_else(|| {
                            image
                                .and_then(|i| i.get("data"))
                                .and_then(Value::as_str)
                                .map(|data| format!("data:image/png;base64,{data}"))
                        });
                    url.map(|url| json!({"type": "input_image", "image_url": url, "detail": "auto"}))
                        .ok_or_else(|| {
                            RequestError::invalid(
                                format!("{param}[{i}].image"),
                                "An image needs a url ({\"uri\"}) or base64 data.",
                            )
                        })
                }
                _ => Err(RequestError::invalid(
                    format!("{param}[{i}]"),
                    "Content must be a string or {\"type\": \"text\"} / {\"type\": \"image\"} items.",
                )),
            },
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

/// `InterleavedContent` as text (a tool's output): the text items joined.
fn content_text(content: &Value, param: &str) -> Result<String, RequestError> {
    match content {
        Value::String(text) => Ok(text.clone()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| content_text(item, &format!("{param}[{i}]")))
            .collect(),
        item => match (item.get("type").and_then(Value::as_str), item.get("text")) {
            (Some("text"), Some(Value::String(text))) => Ok(text.clone()),
            _ => Err(RequestError::invalid(
                param,
                "A tool's content must be text: a string or {\"type\": \"text\"} items.",
            )),
        },
    }
}

/// `ToolResponse` as a client sends it back.
#[derive(Debug, Clone, Deserialize)]
pub struct ToolResponseIn {
    pub call_id: String,
    #[serde(default)]
    pub tool_name: Option<String>,
    pub content: Value,
}

/// The body of `POST …/turn/{turn_id}/resume`.
#[derive(Debug, Deserialize)]
pub struct ResumeTurnBody {
    pub tool_responses: Vec<ToolResponseIn>,
    #[serde(default)]
    pub stream: Option<bool>,
}

impl ResumeTurnBody {
    /// The tool responses as Responses input items, checked against the
    /// calls the turn waits for: one response for each, none for others.
    pub fn input(&self, awaited: &[String]) -> Result<Vec<Value>, RequestError> {
        let mut items = Vec::new();
        for (i, response) in self.tool_responses.iter().enumerate() {
            if !awaited.contains(&response.call_id) {
                return Err(RequestError::invalid(
                    format!("tool_responses[{i}].call_id"),
                    format!(
                        "The turn does not wait for a tool call '{}'; it waits for: {}.",
                        response.call_id,
                        awaited.join(", ")
                    ),
                ));
            }
            if self.tool_responses[..i]
                .iter()
                .any(|r| r.call_id == response.call_id)
            {
                return Err(RequestError::invalid(
                    format!("tool_responses[{i}].call_id"),
                    format!("Tool call '{}' is answered twice.", response.call_id),
                ));
            }
            items.push(json!({
                "type": "function_call_output",
                "call_id": response.call_id,
                "output": content_text(&response.content, &format!("tool_responses[{i}].content"))?,
            }));
        }
        if let Some(missing) = awaited
            .iter()
            .find(|id| !self.tool_responses.iter().any(|r| &r.call_id == *id))
        {
            return Err(RequestError::invalid(
                "tool_responses",
                format!("No response for tool call '{missing}'."),
            ));
        }
        Ok(items)
    }
}

/// Parses a body of type `T`, naming the failing field.
pub fn parse_body<T: for<'de> Deserialize<'de>>(value: Value) -> Result<T, RequestError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        RequestError::invalid(
            if path == "." { "body".to_owned() } else { path },
            e.inner().to_string(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SequentialIds;

    fn config(extra: Value) -> Value {
        let mut c = json!({"model": "m", "instructions": "be brief"});
        if let (Value::Object(c), Value::Object(extra)) = (&mut c, extra) {
            c.extend(extra);
        }
        c
    }

    #[test]
    fn a_config_becomes_a_run_on_the_session() {
        let c = AgentConfig::parse(config(json!({
            "sampling_params": {"strategy": {"type": "greedy"}, "max_tokens": 50},
            "client_tools": [{"name": "get_weather", "description": "weather",
                "parameters": [{"name": "city", "parameter_type": "str", "description": "a city", "required": true}]}],
            "tool_config": {"tool_choice": "get_weather"},
            "max_infer_iters": 3,
        })))
        .unwrap();
        let session = ConversationId::generate(&SequentialIds::default());
        let body = c.run_body(&session, vec![json!({"type": "message"})], None);
        assert_eq!(body.temperature, Some(0.0));
        assert_eq!(body.max_output_tokens, Some(50));
        assert_eq!(body.max_infer_iters, Some(3));
        assert_eq!(
            body.tool_choice,
            Some(json!({"type": "function", "name": "get_weather"}))
        );
        let tools = body.tools.unwrap();
        assert_eq!(
            tools[0]["parameters"]["properties"]["city"]["type"],
            "string"
        );
        assert_eq!(tools[0]["parameters"]["required"], json!(["city"]));
        assert_eq!(body.conversation, Some(json!(session.as_str())));
    }

    #[test]
    fn what_spool_cannot_serve_is_refused_by_name() {
        for (extra, param) in [
            (
                json!({"toolgroups": [{"name": "mcp::x", "args": {"k": 1}}]}),
                "agent_config.toolgroups[0].args",
            ),
            (
                json!({"sampling_params": {"strategy": {"type": "top_k", "top_k": 5}}}),
                "agent_config.sampling_params.strategy",
            ),
            (
                json!({"response_format": {"type": "grammar", "bnf": {}}}),
                "agent_config.response_format",
            ),
            (json!({"model": 3}), "agent_config.model"),
        ] {
            let e = AgentConfig::parse(config(extra)).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{e}");
        }
        assert!(AgentConfig::parse(json!({"model": "m"})).is_err());
    }

    #[test]
    fn mcp_toolgroups_resolve_to_the_configured_servers() {
        let available = BTreeMap::from([(
            "mcp::calc".to_owned(),
            json!({"type": "mcp", "server_label": "calc", "server_url": "http://x/mcp",
                   "require_approval": "always"}),
        )]);
        let tools = resolve_toolgroups(
            &[
                json!("mcp::calc/add"),
                json!({"name": "mcp::calc/div", "args": {}}),
            ],
            "toolgroups",
            &available,
        )
        .unwrap();
        assert_eq!(tools.len(), 1);
        assert_eq!(tools[0]["allowed_tools"], json!(["add", "div"]));
        assert_eq!(tools[0]["require_approval"], "never");
        let all = resolve_toolgroups(
            &[json!("mcp::calc/add"), json!("mcp::calc")],
            "t",
            &available,
        )
        .unwrap();
        assert!(all[0].get("allowed_tools").is_none());
        let e = resolve_toolgroups(&[json!("builtin::websearch")], "toolgroups", &available)
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("toolgroups[0]"));
        assert!(
            e.message.contains("builtin::websearch") && e.message.contains("mcp::calc"),
            "{e}"
        );
    }

    #[test]
    fn shields_resolve_to_the_configured_moderation_models() {
        let available = BTreeMap::from([("safety".to_owned(), "omni-moderation".to_owned())]);
        let c = AgentConfig::parse(config(json!({"output_shields": ["safety"]}))).unwrap();
        let shields = resolve_shields(&c, &available).unwrap();
        assert!(shields.input.is_empty());
        assert_eq!(shields.output[0].model, "omni-moderation");
        let c = AgentConfig::parse(config(json!({"input_shields": ["llama-guard"]}))).unwrap();
        let e = resolve_shields(&c, &available).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("agent_config.input_shields[0]"));
        assert!(e.message.contains("safety"), "{e}");
    }

    #[test]
    fn turn_messages_become_input_items() {
        let body: CreateTurnBody = parse_body(json!({"messages": [
            {"role": "user", "content": "hi"},
            {"role": "tool", "call_id": "c1", "content": [{"type": "text", "text": "42"}]},
        ]}))
        .unwrap();
        let input = body.input().unwrap();
        assert_eq!(input[0]["content"][0]["text"], "hi");
        assert_eq!(
            input[1],
            json!({"type": "function_call_output", "call_id": "c1", "output": "42"})
        );
    }

    #[test]
    fn documents_join_the_last_user_message_and_only_text_is_taken() {
        let body: CreateTurnBody = parse_body(json!({
            "messages": [{"role": "user", "content": "summarize"}],
            "documents": [
                {"content": "plain words", "mime_type": "text/plain"},
                {"content": {"uri": "data:text/markdown;base64,IyBUaXRsZQ=="}, "mime_type": "text/markdown"},
                {"content": {"uri": "data:,a%20b"}, "mime_type": "text/plain"},
            ],
        }))
        .unwrap();
        let input = body.input().unwrap();
        let texts: Vec<&str> = input[0]["content"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["text"].as_str().unwrap())
            .collect();
        assert_eq!(
            texts,
            [
                "summarize",
                "Document (text/plain):\nplain words",
                "Document (text/markdown):\n# Title",
                "Document (text/plain):\na b"
            ]
        );
        for (document, param) in [
            (
                json!({"content": "x", "mime_type": "image/png"}),
                "documents[0].mime_type",
            ),
            (
                json!({"content": {"uri": "https://example.com/a.txt"}, "mime_type": "text/plain"}),
                "documents[0].content.uri",
            ),
        ] {
            let body: CreateTurnBody = parse_body(json!({
                "messages": [{"role": "user", "content": "x"}],
                "documents": [document],
            }))
            .unwrap();
            assert_eq!(body.input().unwrap_err().param.as_deref(), Some(param));
        }
    }

    #[test]
    fn a_resume_answers_exactly_the_awaited_calls() {
        let body: ResumeTurnBody = parse_body(json!({"tool_responses": [
            {"call_id": "c1", "tool_name": "f", "content": "ok"}
        ]}))
        .unwrap();
        assert!(body.input(&["c1".into()]).is_ok());
        assert_eq!(
            body.input(&["c2".into()]).unwrap_err().param.as_deref(),
            Some("tool_responses[0].call_id")
        );
        assert_eq!(
            body.input(&["c1".into(), "c2".into()])
                .unwrap_err()
                .param
                .as_deref(),
            Some("tool_responses")
        );
    }
}
