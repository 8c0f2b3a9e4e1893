//! A validated `POST /v1/responses` request.
//!
//! [`CreateResponseBody`] is the body as JSON gives it (unknown fields are
//! ignored, as the hosted API does); [`RunRequest::parse`] turns it into a
//! [`RunRequest`] whose every field is known to be usable, or into a
//! [`RequestError`] naming the offending parameter. Input in any shorthand
//! form is normalized here into [`Item`]s with ids.

use crate::ids::{ConversationId, ResponseId, new_id};
use crate::item::{
    ContentPart, FunctionCallItem, FunctionCallOutputItem, Item, ItemStatus, MessageItem,
    ReasoningItem, Role,
};
use crate::run::{ResponsesEcho, RunHeader, Sampling};
use crate::tool::{ApprovalPolicy, McpServerSpec, McpTransport};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The body of `POST /v1/responses`, as parsed from JSON.
#[derive(Debug, Default, Deserialize)]
pub struct CreateResponseBody {
    pub model: Option<String>,
    pub input: Option<Value>,
    pub instructions: Option<String>,
    pub previous_response_id: Option<String>,
    pub tools: Option<Vec<Value>>,
    pub tool_choice: Option<Value>,
    pub parallel_tool_calls: Option<bool>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    pub top_logprobs: Option<u32>,
    pub max_output_tokens: Option<u64>,
    pub max_tool_calls: Option<u64>,
    pub truncation: Option<String>,
    pub text: Option<Value>,
    pub reasoning: Option<Value>,
    pub store: Option<bool>,
    pub background: Option<bool>,
    pub stream: Option<bool>,
    pub stream_options: Option<Value>,
    pub service_tier: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub safety_identifier: Option<String>,
    pub prompt_cache_key: Option<String>,
    pub user: Option<String>,
    pub include: Option<Vec<String>>,
    pub conversation: Option<Value>,
    pub prompt: Option<Value>,
    /// spool extension (as in llama-stack): the most model calls the run's
    /// tool loop may make.
    pub max_infer_iters: Option<u32>,
    /// `{"type": "agent_reference", "name": …}`: the named agent to run.
    pub agent: Option<Value>,
    /// Tools from the operator's config (a named agent's MCP servers),
    /// which may do what a request may not (start a command).
    #[serde(skip)]
    pub trusted_tools: Vec<Value>,
}

/// A request parameter that cannot be used, with the parameter's path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    pub message: String,
    /// The parameter at fault, e.g. `input[2].content[0].type`.
    pub param: Option<String>,
    /// Machine-readable, e.g. `missing_required_parameter`, `invalid_value`.
    pub code: &'static str,
}

impl RequestError {
    fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            param: Some(param.into()),
            code: "invalid_value",
        }
    }

    fn unsupported(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            param: Some(param.into()),
            code: "unsupported_parameter",
        }
    }
}

/// How the model may use tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    None,
    Auto,
    Required,
    /// Must call this function.
    Function(String),
}

/// A function tool the caller offers the model; the caller runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionTool {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    pub parameters: Option<Value>,
    pub strict: Option<bool>,
}

/// The output format asked for in `text.format`.
#[derive(Debug, Clone, PartialEq)]
pub enum TextFormat {
    Text,
    JsonObject,
    JsonSchema {
        name: String,
        schema: Value,
        description: Option<String>,
        strict: Option<bool>,
    },
}

/// The mode flags of a request: how the caller wants the run delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeFlags {
    pub stream: bool,
    pub store: bool,
    pub background: bool,
}

/// A validated request to create a response.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRequest {
    pub model: String,
    pub instructions: Option<String>,
    /// This request's input, normalized, every item with an id.
    pub input: Vec<Item>,
    pub previous_response_id: Option<ResponseId>,
    /// The conversation this turn belongs to: its items are the history, and
    /// this turn's input and output are appended to it.
    pub conversation: Option<ConversationId>,
    pub tools: Vec<FunctionTool>,
    /// MCP servers the run may call.
    pub mcp_servers: Vec<McpServerSpec>,
    pub tool_choice: ToolChoice,
    pub parallel_tool_calls: bool,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    pub max_output_tokens: Option<u64>,
    pub max_tool_calls: Option<u64>,
    pub text_format: TextFormat,
    /// `reasoning.effort`, passed to models that take it.
    pub reasoning_effort: Option<String>,
    /// The most model calls the tool loop may make, if the request limits it.
    pub max_infer_iters: Option<u32>,
    /// The named agent whose defaults the request was completed with.
    pub agent: Option<String>,
    pub modes: ModeFlags,
    pub metadata: BTreeMap<String, String>,
    /// Parameters echoed back unchanged in the response object.
    echo: Echo,
}

/// Request fields spool does not act on but must echo back.
#[derive(Debug, Clone, PartialEq)]
struct Echo {
    truncation: String,
    text: Value,
    reasoning: Value,
    top_logprobs: u32,
    service_tier: String,
    safety_identifier: Option<String>,
    prompt_cache_key: Option<String>,
    user: Option<String>,
    tools: Vec<Value>,
    tool_choice: Value,
}

const METADATA_MAX_PAIRS: usize = 16;
const METADATA_MAX_KEY: usize = 64;
const METADATA_MAX_VALUE: usize = 512;
const MIN_MAX_OUTPUT_TOKENS: u64 = 16;
const MAX_INFER_ITERS: u32 = 100;

impl RunRequest {
    /// Validates a parsed body. Nothing is looked up: ids such as
    /// `previous_response_id` are checked for form here and for existence by
    /// the caller.
    pub fn parse(mut body: CreateResponseBody) -> Result<Self, RequestError> {
        let model = match body.model {
            Some(m) if !m.trim().is_empty() => m,
            _ => {
                return Err(RequestError {
                    message: "Missing required parameter: 'model'.".into(),
                    param: Some("model".into()),
                    code: "missing_required_parameter",
                });
            }
        };
        let store = body.store.unwrap_or(true);
        let background = body.background.unwrap_or(false);
        let stream = body.stream.unwrap_or(false);
        if background && !store {
            return Err(RequestError::unsupported(
                "background",
                "background=true requires store=true: a background response must be stored to be retrieved.",
            ));
        }
        if body.stream_options.is_some() && !stream {
            return Err(RequestError::invalid(
                "stream",
                "stream_options may only be set when stream is true.",
            ));
        }
        let conversation = body.conversation.map(parse_conversation).transpose()?;
        if conversation.is_some() && !store {
            return Err(RequestError::invalid(
                "store",
                "A response in a conversation is stored with it: conversation requires store=true.",
            ));
        }
        if conversation.is_some() && body.previous_response_id.is_some() {
            return Err(RequestError::invalid(
                "conversation",
                "conversation and previous_response_id cannot be used together.",
            ));
        }
        if body.prompt.is_some() {
            return Err(RequestError::unsupported(
                "prompt",
                "Stored prompt templates are not supported by this server.",
            ));
        }
        let previous_response_id = body
            .previous_response_id
            .map(|id| {
                ResponseId::parse(&id).map_err(|e| {
                    RequestError::invalid(
                        "previous_response_id",
                        format!("Invalid previous_response_id '{id}': {e}."),
                    )
                })
            })
            .transpose()?;
        let input = match body.input {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => normalize_input(v)?,
        };
        if input.is_empty() && previous_response_id.is_none() && conversation.is_none() {
            return Err(RequestError {
                message: "Missing required parameter: 'input'.".into(),
                param: Some("input".into()),
                code: "missing_required_parameter",
            });
        }
        let mut parsed_tools = Tools::default();
        parse_tools(body.tools.unwrap_or_default(), false, &mut parsed_tools)?;
        parse_tools(
            std::mem::take(&mut body.trusted_tools),
            true,
            &mut parsed_tools,
        )?;
        let Tools {
            functions: tools,
            mcp: mcp_servers,
            echoed: echoed_tools,
        } = parsed_tools;
        let (tool_choice, echoed_choice) = parse_tool_choice(body.tool_choice, &tools)?;
        check_range("temperature", body.temperature, 0.0, 2.0)?;
        check_range("top_p", body.top_p, 0.0, 1.0)?;
        check_range("presence_penalty", body.presence_penalty, -2.0, 2.0)?;
        check_range("frequency_penalty", body.frequency_penalty, -2.0, 2.0)?;
        if let Some(n) = body.top_logprobs
            && n > 20
        {
            return Err(RequestError::invalid(
                "top_logprobs",
                "top_logprobs must be between 0 and 20.",
            ));
        }
        if let Some(n) = body.max_output_tokens
            && n < MIN_MAX_OUTPUT_TOKENS
        {
            return Err(RequestError::invalid(
                "max_output_tokens",
                format!("max_output_tokens must be at least {MIN_MAX_OUTPUT_TOKENS}, got {n}."),
            ));
        }
        let truncation = body.truncation.unwrap_or_else(|| "disabled".into());
        if truncation != "disabled" && truncation != "auto" {
            return Err(RequestError::invalid(
                "truncation",
                "truncation must be 'auto' or 'disabled'.",
            ));
        }
        let metadata = body.metadata.unwrap_or_default();
        check_metadata(&metadata)?;
        let (text_format, text) = parse_text(body.text)?;
        let (reasoning_effort, reasoning) = parse_reasoning(body.reasoning)?;
        if let Some(n) = body.max_infer_iters
            && !(1..=MAX_INFER_ITERS).contains(&n)
        {
            return Err(RequestError::invalid(
                "max_infer_iters",
                format!("max_infer_iters must be between 1 and {MAX_INFER_ITERS}, got {n}."),
            ));
        }
        Ok(RunRequest {
            model,
            instructions: body.instructions,
            input,
            previous_response_id,
            conversation,
            tools,
            mcp_servers,
            tool_choice,
            parallel_tool_calls: body.parallel_tool_calls.unwrap_or(true),
            temperature: body.temperature,
            top_p: body.top_p,
            presence_penalty: body.presence_penalty,
            frequency_penalty: body.frequency_penalty,
            max_output_tokens: body.max_output_tokens,
            max_tool_calls: body.max_tool_calls,
            text_format,
            reasoning_effort,
            max_infer_iters: body.max_infer_iters,
            agent: body
                .agent
                .as_ref()
                .and_then(|a| a.get("name"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            modes: ModeFlags {
                stream,
                store,
                background,
            },
            metadata,
            echo: Echo {
                truncation,
                text,
                reasoning,
                top_logprobs: body.top_logprobs.unwrap_or(0),
                service_tier: body.service_tier.unwrap_or_else(|| "default".into()),
                safety_identifier: body.safety_identifier,
                prompt_cache_key: body.prompt_cache_key,
                user: body.user,
                tools: echoed_tools,
                tool_choice: echoed_choice,
            },
        })
    }

    /// The fixed part of the response this request creates.
    pub fn header(&self, id: ResponseId, created_at: i64) -> RunHeader {
        RunHeader {
            id,
            created_at,
            model: self.model.clone(),
            instructions: self.instructions.clone(),
            previous_response_id: self.previous_response_id.clone(),
            conversation: self.conversation.clone(),
            agent: self.agent.clone(),
            store: self.modes.store,
            background: self.modes.background,
            metadata: self.metadata.clone(),
            sampling: Sampling {
                temperature: self.temperature,
                top_p: self.top_p,
                presence_penalty: self.presence_penalty,
                frequency_penalty: self.frequency_penalty,
                max_output_tokens: self.max_output_tokens,
                max_tool_calls: self.max_tool_calls,
                parallel_tool_calls: self.parallel_tool_calls,
            },
            responses: ResponsesEcho {
                tools: self.echo.tools.clone(),
                tool_choice: self.echo.tool_choice.clone(),
                top_logprobs: self.echo.top_logprobs,
                truncation: self.echo.truncation.clone(),
                text: self.echo.text.clone(),
                reasoning: self.echo.reasoning.clone(),
                service_tier: self.echo.service_tier.clone(),
                safety_identifier: self.echo.safety_identifier.clone(),
                prompt_cache_key: self.echo.prompt_cache_key.clone(),
                user: self.echo.user.clone(),
            },
        }
    }
}

/// `conversation` is an id or `{"id": …}`.
fn parse_conversation(v: Value) -> Result<ConversationId, RequestError> {
    let raw = match &v {
        Value::String(s) => s.as_str(),
        Value::Object(o) => o.get("id").and_then(Value::as_str).unwrap_or_default(),
        _ => "",
    };
    ConversationId::parse(raw).map_err(|e| {
        RequestError::invalid(
            "conversation",
            format!("conversation must be a conversation id or {{\"id\": …}}: {e}."),
        )
    })
}

fn check_range(param: &str, v: Option<f64>, lo: f64, hi: f64) -> Result<(), RequestError> {
    match v {
        Some(x) if !(lo..=hi).contains(&x) => Err(RequestError::invalid(
            param,
            format!("{param} must be between {lo} and {hi}, got {x}."),
        )),
        _ => Ok(()),
    }
}

/// Checks `metadata` against the API's limits (16 pairs, 64-character keys,
/// 512-character values).
pub fn check_metadata(metadata: &BTreeMap<String, String>) -> Result<(), RequestError> {
    if metadata.len() > METADATA_MAX_PAIRS {
        return Err(RequestError::invalid(
            "metadata",
            format!("metadata may hold at most {METADATA_MAX_PAIRS} pairs."),
        ));
    }
    for (k, v) in metadata {
        if k.chars().count() > METADATA_MAX_KEY {
            return Err(RequestError::invalid(
                "metadata",
                format!("metadata keys may be at most {METADATA_MAX_KEY} characters."),
            ));
        }
        if v.chars().count() > METADATA_MAX_VALUE {
            return Err(RequestError::invalid(
                format!("metadata.{k}"),
                format!("metadata values may be at most {METADATA_MAX_VALUE} characters."),
            ));
        }
    }
    Ok(())
}

// === input ===

/// Normalizes `input`: a string is one user message; an array is a list of
/// items in any of the forms the Responses API accepts.
pub fn normalize_input(input: Value) -> Result<Vec<Item>, RequestError> {
    match input {
        Value::String(text) => Ok(vec![Item::Message(MessageItem {
            id: new_id("msg"),
            status: ItemStatus::Completed,
            role: Role::User,
            content: vec![ContentPart::InputText { text }],
        })]),
        Value::Array(items) => normalize_items(items, "input"),
        _ => Err(RequestError::invalid(
            "input",
            "input must be a string or an array of items.",
        )),
    }
}

/// Normalizes a list of items given as the request field `field` (errors
/// name `field[i]…`); item ids must be unique, as they are paging cursors.
pub fn normalize_items(items: Vec<Value>, field: &str) -> Result<Vec<Item>, RequestError> {
    let items: Vec<Item> = items
        .into_iter()
        .enumerate()
        .map(|(i, v)| normalize_item(v, &format!("{field}[{i}]")))
        .collect::<Result<_, _>>()?;
    let mut seen = std::collections::HashSet::new();
    for (i, item) in items.iter().enumerate() {
        if !seen.insert(item.id()) {
            return Err(RequestError::invalid(
                format!("{field}[{i}].id"),
                format!("Duplicate item id '{}' in {field}.", item.id()),
            ));
        }
    }
    Ok(items)
}

fn take_string(obj: &mut Map<String, Value>, key: &str, at: &str) -> Result<String, RequestError> {
    match obj.remove(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(RequestError::invalid(
            format!("{at}.{key}"),
            format!("{at}.{key} must be a string."),
        )),
        None => Err(RequestError {
            message: format!("Missing required parameter: '{at}.{key}'."),
            param: Some(format!("{at}.{key}")),
            code: "missing_required_parameter",
        }),
    }
}

fn take_id(obj: &mut Map<String, Value>, prefix: &str, at: &str) -> Result<String, RequestError> {
    match obj.remove("id") {
        None | Some(Value::Null) => Ok(new_id(prefix)),
        Some(Value::String(s)) => crate::ids::parse_item_id(&s)
            .map_err(|e| RequestError::invalid(format!("{at}.id"), format!("Invalid id: {e}."))),
        Some(_) => Err(RequestError::invalid(
            format!("{at}.id"),
            "id must be a string.",
        )),
    }
}

fn normalize_item(v: Value, at: &str) -> Result<Item, RequestError> {
    let Value::Object(mut obj) = v else {
        return Err(RequestError::invalid(
            at,
            format!("{at} must be an object."),
        ));
    };
    let ty = match obj.remove("type") {
        Some(Value::String(t)) => t,
        None if obj.contains_key("role") => "message".to_owned(),
        Some(_) => {
            return Err(RequestError::invalid(
                format!("{at}.type"),
                "type must be a string.",
            ));
        }
        None => {
            return Err(RequestError {
                message: format!("Missing required parameter: '{at}.type'."),
                param: Some(format!("{at}.type")),
                code: "missing_required_parameter",
            });
        }
    };
    match ty.as_str() {
        "message" => {
            let role = match take_string(&mut obj, "role", at)?.as_str() {
                "user" => Role::User,
                "assistant" => Role::Assistant,
                "system" => Role::System,
                "developer" => Role::Developer,
                other => {
                    return Err(RequestError::invalid(
                        format!("{at}.role"),
                        format!(
                            "Invalid role '{other}': expected user, assistant, system or developer."
                        ),
                    ));
                }
            };
            let content = match obj.remove("content") {
                Some(Value::String(text)) if role == Role::Assistant => {
                    vec![ContentPart::OutputText {
                        text,
                        annotations: Vec::new(),
                        logprobs: Vec::new(),
                    }]
                }
                Some(Value::String(text)) => vec![ContentPart::InputText { text }],
                Some(Value::Array(parts)) => parts
                    .into_iter()
                    .enumerate()
                    .map(|(j, p)| {
                        let at = format!("{at}.content[{j}]");
                        serde_json::from_value::<ContentPart>(p).map_err(|e| {
                            RequestError::invalid(
                                at.clone(),
                                format!("Invalid content part at {at}: {e}."),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
                _ => {
                    return Err(RequestError::invalid(
                        format!("{at}.content"),
                        "content must be a string or an array of content parts.",
                    ));
                }
            };
            Ok(Item::Message(MessageItem {
                id: take_id(&mut obj, "msg", at)?,
                status: ItemStatus::Completed,
                role,
                content,
            }))
        }
        "function_call" => Ok(Item::FunctionCall(FunctionCallItem {
            id: take_id(&mut obj, "fc", at)?,
            status: ItemStatus::Completed,
            call_id: take_string(&mut obj, "call_id", at)?,
            name: take_string(&mut obj, "name", at)?,
            arguments: take_string(&mut obj, "arguments", at)?,
        })),
        "function_call_output" => {
            let call_id = take_string(&mut obj, "call_id", at)?;
            let output = match obj.remove("output") {
                Some(v @ (Value::String(_) | Value::Array(_))) => v,
                _ => {
                    return Err(RequestError::invalid(
                        format!("{at}.output"),
                        "output must be a string or an array of content parts.",
                    ));
                }
            };
            Ok(Item::FunctionCallOutput(FunctionCallOutputItem {
                id: take_id(&mut obj, "fco", at)?,
                status: ItemStatus::Completed,
                call_id,
                output,
            }))
        }
        "mcp_approval_response" | "mcp_call" | "mcp_approval_request" | "mcp_list_tools" => {
            let prefix = match ty.as_str() {
                "mcp_approval_response" => "mcpa",
                "mcp_call" => "mcp",
                "mcp_approval_request" => "mcpr",
                _ => "mcpl",
            };
            let id = take_id(&mut obj, prefix, at)?;
            obj.insert("id".into(), Value::String(id));
            obj.insert("status".into(), json!("completed"));
            obj.insert("type".into(), Value::String(ty.clone()));
            serde_json::from_value::<Item>(Value::Object(obj))
                .map_err(|e| RequestError::invalid(at, format!("Invalid {ty} item: {e}.")))
        }
        "reasoning" => {
            let id = take_id(&mut obj, "rs", at)?;
            obj.insert("id".into(), Value::String(id));
            obj.insert("status".into(), json!("completed"));
            serde_json::from_value::<ReasoningItem>(Value::Object(obj))
                .map(Item::Reasoning)
                .map_err(|e| RequestError::invalid(at, format!("Invalid reasoning item: {e}.")))
        }
        other => Err(RequestError::unsupported(
            format!("{at}.type"),
            format!("Input items of type '{other}' are not supported by this server."),
        )),
    }
}

// === tools ===

/// The tools of a request: function tools, MCP servers, and the echo.
#[derive(Default)]
struct Tools {
    functions: Vec<FunctionTool>,
    mcp: Vec<McpServerSpec>,
    echoed: Vec<Value>,
}

fn string_list(v: &Value, at: &str) -> Result<Vec<String>, RequestError> {
    let list = match v {
        Value::Array(a) => a,
        Value::Object(o) => match o.get("tool_names") {
            Some(Value::Array(a)) => a,
            _ => {
                return Err(RequestError::invalid(
                    at,
                    format!("{at} must list tool_names."),
                ));
            }
        },
        _ => {
            return Err(RequestError::invalid(
                at,
                format!("{at} must be a list of tool names."),
            ));
        }
    };
    list.iter()
        .map(|t| {
            t.as_str()
                .map(str::to_owned)
                .ok_or_else(|| RequestError::invalid(at, format!("{at} must hold strings.")))
        })
        .collect()
}

/// Parses an `mcp` tool. Only the operator's (trusted) config may start a
/// local server with `command`; a request names a URL.
fn parse_mcp(
    mut obj: Map<String, Value>,
    at: &str,
    trusted: bool,
) -> Result<(McpServerSpec, Value), RequestError> {
    let server_label = take_string(&mut obj, "server_label", at)?;
    let valid_label = !server_label.is_empty()
        && server_label.len() <= 64
        && server_label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid_label {
        return Err(RequestError::invalid(
            format!("{at}.server_label"),
            "server_label must be 1 to 64 characters of a-z, A-Z, 0-9, '_' and '-'.",
        ));
    }
    if obj.contains_key("connector_id") {
        return Err(RequestError::unsupported(
            format!("{at}.connector_id"),
            "Connectors are not supported by this server; give a server_url.",
        ));
    }
    let headers: BTreeMap<String, String> = match obj.remove("headers") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(v) => serde_json::from_value(v).map_err(|_| {
            RequestError::invalid(
                format!("{at}.headers"),
                "headers must be an object of strings.",
            )
        })?,
    };
    let transport = match (obj.remove("server_url"), obj.remove("command")) {
        (Some(Value::String(url)), None) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(RequestError::invalid(
                    format!("{at}.server_url"),
                    "server_url must be an http:// or https:// URL.",
                ));
            }
            McpTransport::Http { url, headers }
        }
        (None, Some(command)) if trusted => {
            let command = string_list(&command, &format!("{at}.command"))?;
            if command.is_empty() {
                return Err(RequestError::invalid(
                    format!("{at}.command"),
                    "command must not be empty.",
                ));
            }
            McpTransport::Stdio { command }
        }
        (None, Some(_)) => {
            return Err(RequestError::unsupported(
                format!("{at}.command"),
                "Only MCP servers in the server's config file may be started as commands; give a server_url.",
            ));
        }
        _ => {
            return Err(RequestError {
                message: format!("Missing required parameter: '{at}.server_url'."),
                param: Some(format!("{at}.server_url")),
                code: "missing_required_parameter",
            });
        }
    };
    let allowed_tools = match obj.remove("allowed_tools") {
        None | Some(Value::Null) => None,
        Some(v) => Some(string_list(&v, &format!("{at}.allowed_tools"))?),
    };
    let require_approval = match obj.remove("require_approval") {
        None | Some(Value::Null) => ApprovalPolicy::Always,
        Some(Value::String(s)) if s == "always" => ApprovalPolicy::Always,
        Some(Value::String(s)) if s == "never" => ApprovalPolicy::Never,
        Some(Value::Object(o)) => match o.get("never") {
            Some(never) => ApprovalPolicy::AllExcept(string_list(
                never,
                &format!("{at}.require_approval.never"),
            )?),
            None => ApprovalPolicy::Always,
        },
        Some(_) => {
            return Err(RequestError::invalid(
                format!("{at}.require_approval"),
                "require_approval must be 'always', 'never' or {\"never\": {\"tool_names\": […]}}.",
            ));
        }
    };
    // Headers may carry credentials: they are not echoed back.
    let echo = json!({
        "type": "mcp",
        "server_label": server_label,
        "server_url": match &transport { McpTransport::Http { url, .. } => Value::String(url.clone()), McpTransport::Stdio { .. } => Value::Null },
        "allowed_tools": allowed_tools,
        "headers": null,
        "require_approval": match &require_approval {
            ApprovalPolicy::Always => json!("always"),
            ApprovalPolicy::Never => json!("never"),
            ApprovalPolicy::AllExcept(free) => json!({"never": {"tool_names": free}}),
        },
    });
    Ok((
        McpServerSpec {
            server_label,
            transport,
            allowed_tools,
            require_approval,
            trusted,
        },
        echo,
    ))
}

fn parse_tools(tools: Vec<Value>, trusted: bool, out: &mut Tools) -> Result<(), RequestError> {
    for (i, tool) in tools.into_iter().enumerate() {
        let at = format!("tools[{i}]");
        let Value::Object(mut obj) = tool else {
            return Err(RequestError::invalid(
                at.clone(),
                format!("{at} must be an object."),
            ));
        };
        match obj.get("type").and_then(Value::as_str) {
            Some("function") if !trusted => {}
            Some("mcp") => {
                let (spec, echo) = parse_mcp(obj, &at, trusted)?;
                if out.mcp.iter().any(|s| s.server_label == spec.server_label) {
                    return Err(RequestError::invalid(
                        format!("{at}.server_label"),
                        format!("Two MCP servers are labelled '{}'.", spec.server_label),
                    ));
                }
                out.mcp.push(spec);
                out.echoed.push(echo);
                continue;
            }
            Some(other) => {
                return Err(RequestError::unsupported(
                    format!("{at}.type"),
                    format!(
                        "Tools of type '{other}' are not supported by this server; 'function' and 'mcp' tools are."
                    ),
                ));
            }
            None => {
                return Err(RequestError {
                    message: format!("Missing required parameter: '{at}.type'."),
                    param: Some(format!("{at}.type")),
                    code: "missing_required_parameter",
                });
            }
        }
        let name = take_string(&mut obj, "name", &at)?;
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid_name {
            return Err(RequestError::invalid(
                format!("{at}.name"),
                "A function name must be 1 to 64 characters of a-z, A-Z, 0-9, '_' and '-'.",
            ));
        }
        let description = match obj.remove("description") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                return Err(RequestError::invalid(
                    format!("{at}.description"),
                    "description must be a string.",
                ));
            }
        };
        let parameters = match obj.remove("parameters") {
            None | Some(Value::Null) => None,
            Some(v @ Value::Object(_)) => Some(v),
            Some(_) => {
                return Err(RequestError::invalid(
                    format!("{at}.parameters"),
                    "parameters must be a JSON Schema object.",
                ));
            }
        };
        let strict = match obj.remove("strict") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(b),
            Some(_) => {
                return Err(RequestError::invalid(
                    format!("{at}.strict"),
                    "strict must be a boolean.",
                ));
            }
        };
        out.echoed.push(json!({
            "type": "function",
            "name": name,
            "description": description,
            "parameters": parameters,
            "strict": strict,
        }));
        out.functions.push(FunctionTool {
            name,
            description,
            parameters,
            strict,
        });
    }
    Ok(())
}

fn parse_tool_choice(
    choice: Option<Value>,
    tools: &[FunctionTool],
) -> Result<(ToolChoice, Value), RequestError> {
    let Some(choice) = choice else {
        return Ok((ToolChoice::Auto, json!("auto")));
    };
    let parsed = match &choice {
        Value::String(s) => match s.as_str() {
            "none" => ToolChoice::None,
            "auto" => ToolChoice::Auto,
            "required" => ToolChoice::Required,
            other => {
                return Err(RequestError::invalid(
                    "tool_choice",
                    format!(
                        "Invalid tool_choice '{other}': expected none, auto, required or a function."
                    ),
                ));
            }
        },
        Value::Object(obj) if obj.get("type").and_then(Value::as_str) == Some("function") => {
            let Some(name) = obj.get("name").and_then(Value::as_str) else {
                return Err(RequestError::invalid(
                    "tool_choice.name",
                    "tool_choice.name must be a string.",
                ));
            };
            if !tools.iter().any(|t| t.name == name) {
                return Err(RequestError::invalid(
                    "tool_choice",
                    format!("tool_choice names function '{name}', which is not in tools."),
                ));
            }
            ToolChoice::Function(name.to_owned())
        }
        _ => {
            return Err(RequestError::unsupported(
                "tool_choice",
                "tool_choice must be 'none', 'auto', 'required' or {\"type\":\"function\",\"name\":…}.",
            ));
        }
    };
    if matches!(parsed, ToolChoice::Required | ToolChoice::Function(_)) && tools.is_empty() {
        return Err(RequestError::invalid(
            "tool_choice",
            "tool_choice requires a tool call, but no tools were given.",
        ));
    }
    Ok((parsed, choice))
}

fn parse_text(text: Option<Value>) -> Result<(TextFormat, Value), RequestError> {
    let default_echo = json!({"format": {"type": "text"}, "verbosity": "medium"});
    let Some(text) = text else {
        return Ok((TextFormat::Text, default_echo));
    };
    let Some(obj) = text.as_object() else {
        return Err(RequestError::invalid("text", "text must be an object."));
    };
    let format = match obj.get("format") {
        None | Some(Value::Null) => TextFormat::Text,
        Some(f) => match f.get("type").and_then(Value::as_str) {
            Some("text") => TextFormat::Text,
            Some("json_object") => TextFormat::JsonObject,
            Some("json_schema") => {
                let name = f.get("name").and_then(Value::as_str).ok_or_else(|| {
                    RequestError::invalid("text.format.name", "A json_schema format needs a name.")
                })?;
                let schema = f.get("schema").filter(|s| s.is_object()).ok_or_else(|| {
                    RequestError::invalid(
                        "text.format.schema",
                        "A json_schema format needs a schema object.",
                    )
                })?;
                TextFormat::JsonSchema {
                    name: name.to_owned(),
                    schema: schema.clone(),
                    description: f
                        .get("description")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    strict: f.get("strict").and_then(Value::as_bool),
                }
            }
            _ => {
                return Err(RequestError::invalid(
                    "text.format.type",
                    "text.format.type must be text, json_object or json_schema.",
                ));
            }
        },
    };
    let mut echo = obj.clone();
    // The format is echoed in its full form, every key present.
    let format_echo = match &format {
        TextFormat::Text => json!({"type": "text"}),
        TextFormat::JsonObject => json!({"type": "json_object"}),
        TextFormat::JsonSchema {
            name,
            schema,
            description,
            strict,
        } => json!({"type": "json_schema", "name": name, "schema": schema,
                    "description": description, "strict": strict}),
    };
    echo.insert("format".into(), format_echo);
    echo.entry("verbosity").or_insert_with(|| json!("medium"));
    Ok((format, Value::Object(echo)))
}

fn parse_reasoning(reasoning: Option<Value>) -> Result<(Option<String>, Value), RequestError> {
    let default_echo = json!({"effort": null, "summary": null});
    match reasoning {
        None | Some(Value::Null) => Ok((None, default_echo)),
        Some(Value::Object(obj)) => {
            let effort = match obj.get("effort") {
                None | Some(Value::Null) => None,
                Some(Value::String(e)) => Some(e.clone()),
                Some(_) => {
                    return Err(RequestError::invalid(
                        "reasoning.effort",
                        "reasoning.effort must be a string.",
                    ));
                }
            };
            let mut echo = obj;
            echo.entry("effort").or_insert(Value::Null);
            echo.entry("summary").or_insert(Value::Null);
            Ok((effort, Value::Object(echo)))
        }
        Some(_) => Err(RequestError::invalid(
            "reasoning",
            "reasoning must be an object.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> CreateResponseBody {
        serde_json::from_value(v).unwrap()
    }

    fn parse(v: Value) -> Result<RunRequest, RequestError> {
        RunRequest::parse(body(v))
    }

    #[test]
    fn a_string_input_becomes_a_user_message_with_an_id() {
        let r = parse(json!({"model": "m", "input": "hi"})).unwrap();
        let Item::Message(m) = &r.input[0] else {
            panic!()
        };
        assert!(m.id.starts_with("msg_"));
        assert_eq!(m.role, Role::User);
        assert_eq!(
            m.content,
            vec![ContentPart::InputText { text: "hi".into() }]
        );
    }

    #[test]
    fn a_missing_model_is_named() {
        let e = parse(json!({"input": "hi"})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("model"));
        assert_eq!(e.code, "missing_required_parameter");
    }

    #[test]
    fn background_without_store_is_refused() {
        let e = parse(json!({"model": "m", "input": "x", "background": true, "store": false}))
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("background"));
    }

    #[test]
    fn shorthand_messages_are_normalized() {
        let r = parse(json!({"model": "m", "input": [
            {"role": "developer", "content": "be brief"},
            {"role": "assistant", "content": "ok"},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"}
        ]}))
        .unwrap();
        assert!(
            matches!(&r.input[1], Item::Message(m) if matches!(m.content[0], ContentPart::OutputText { .. }))
        );
        assert!(matches!(&r.input[2], Item::FunctionCallOutput(o) if o.id.starts_with("fco_")));
    }

    #[test]
    fn a_bad_content_part_is_reported_with_its_path() {
        let e = parse(
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "nope"}]}]}),
        )
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("input[0].content[0]"));
    }

    #[test]
    fn an_unknown_tool_type_is_refused_clearly() {
        let e = parse(json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}))
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tools[0].type"));
        assert_eq!(e.code, "unsupported_parameter");
    }

    #[test]
    fn function_tools_are_echoed_with_every_field() {
        let r = parse(
            json!({"model": "m", "input": "x", "tools": [{"type": "function", "name": "f"}]}),
        )
        .unwrap();
        let h = r.header(ResponseId::generate(), 0);
        assert_eq!(
            h.responses.tools[0],
            json!({"type":"function","name":"f","description":null,"parameters":null,"strict":null})
        );
    }

    #[test]
    fn tool_choice_must_name_an_offered_function() {
        let e = parse(json!({"model": "m", "input": "x",
            "tools": [{"type": "function", "name": "f"}],
            "tool_choice": {"type": "function", "name": "g"}}))
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tool_choice"));
    }

    #[test]
    fn out_of_range_sampling_is_refused() {
        assert!(parse(json!({"model": "m", "input": "x", "temperature": 3.0})).is_err());
        assert!(parse(json!({"model": "m", "input": "x", "max_output_tokens": 3})).is_err());
    }

    #[test]
    fn oversized_metadata_is_refused() {
        let many: BTreeMap<String, String> = (0..17).map(|i| (i.to_string(), "v".into())).collect();
        let e = parse(json!({"model": "m", "input": "x", "metadata": many})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("metadata"));
    }

    #[test]
    fn two_input_items_may_not_share_an_id() {
        let e = parse(json!({"model": "m", "input": [
            {"id": "msg_a", "role": "user", "content": "x"},
            {"id": "msg_a", "role": "user", "content": "y"}
        ]}))
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("input[1].id"));
    }

    #[test]
    fn a_json_schema_format_is_echoed_with_every_key() {
        let r = parse(json!({"model": "m", "input": "x",
            "text": {"format": {"type": "json_schema", "name": "n", "schema": {"type": "object"}}}}))
        .unwrap();
        let h = r.header(ResponseId::generate(), 0);
        assert_eq!(
            h.responses.text["format"],
            json!({"type": "json_schema", "name": "n", "schema": {"type": "object"},
                   "description": null, "strict": null})
        );
        assert_eq!(h.responses.text["verbosity"], "medium");
    }

    #[test]
    fn a_conversation_is_an_id_or_an_object_and_excludes_previous_response_id() {
        let a = parse(json!({"model": "m", "input": "x", "conversation": "conv_1"})).unwrap();
        let b =
            parse(json!({"model": "m", "input": "x", "conversation": {"id": "conv_1"}})).unwrap();
        assert_eq!(a.conversation, b.conversation);
        let h = a.header(ResponseId::generate(), 0);
        assert_eq!(
            serde_json::to_value(&h.conversation).unwrap(),
            json!("conv_1")
        );
        let e = parse(json!({"model": "m", "input": "x", "conversation": "conv_1",
            "previous_response_id": "resp_1"}))
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("conversation"));
        assert!(parse(json!({"model": "m", "input": "x", "conversation": 5})).is_err());
    }

    #[test]
    fn mcp_tools_are_parsed_and_echoed_without_their_headers() {
        let r = parse(json!({"model": "m", "input": "x", "tools": [
            {"type": "mcp", "server_label": "calc", "server_url": "http://h/mcp",
             "headers": {"Authorization": "Bearer s3cret"},
             "allowed_tools": {"tool_names": ["add"]},
             "require_approval": {"never": {"tool_names": ["add"]}}},
            {"type": "mcp", "server_label": "other", "server_url": "https://o/mcp"}
        ]}))
        .unwrap();
        let calc = &r.mcp_servers[0];
        assert!(calc.offers("add") && !calc.offers("sub"));
        assert!(!calc.requires_approval("add") && calc.requires_approval("sub"));
        assert!(
            r.mcp_servers[1].requires_approval("anything"),
            "approval by default"
        );
        assert!(!calc.trusted);
        let h = r.header(ResponseId::generate(), 0);
        assert_eq!(h.responses.tools[0]["headers"], Value::Null);
        assert!(!h.responses.tools[0].to_string().contains("s3cret"));
    }

    #[test]
    fn a_request_may_not_start_a_command_or_repeat_a_label() {
        let e = parse(json!({"model": "m", "input": "x",
            "tools": [{"type": "mcp", "server_label": "c", "command": ["sh"]}]}))
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tools[0].command"));
        let e = parse(
            json!({"model": "m", "input": "x", "tools": [{"type": "mcp", "server_label": "c"}]}),
        )
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tools[0].server_url"));
        let e = parse(json!({"model": "m", "input": "x", "tools": [
            {"type": "mcp", "server_label": "c", "server_url": "http://a/"},
            {"type": "mcp", "server_label": "c", "server_url": "http://b/"}]}))
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tools[1].server_label"));
    }

    #[test]
    fn input_may_be_omitted_only_when_continuing() {
        assert!(parse(json!({"model": "m"})).is_err());
        assert!(parse(json!({"model": "m", "previous_response_id": "resp_1"})).is_ok());
    }
}
