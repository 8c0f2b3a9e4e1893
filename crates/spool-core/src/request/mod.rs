//! A validated `POST /v1/responses` request: [`RunRequest`] and
//! [`RequestError`].
//!
//! [`CreateResponseBody`] is the body as JSON gives it (unknown fields are
//! ignored, as the hosted API does); [`RunRequest::parse`] turns it into a
//! [`RunRequest`] whose every field is known to be usable, or into a
//! [`RequestError`] naming the offending parameter by its full path.
//!
//! One file per concern: `input` (input items and their normalization into
//! [`Item`]s with ids), `tools` (tools and `tool_choice`), `mcp` (MCP server
//! specs), `params` (sampling, `text`, `reasoning`, metadata, the echoed
//! fields) and `deserialize` (typed parsing whose errors carry the full
//! parameter path). Other request families (chat completions, threads,
//! agent sessions) are to sit beside them as their own modules.

pub mod chat;
mod deserialize;
mod input;
pub mod llama_stack;
mod mcp;
mod params;
pub mod roboto;
pub mod threads;
mod tools;

pub use input::{normalize_input, normalize_items};
pub use params::{TextFormat, check_metadata};
pub use tools::{
    AllowedTools, ClientCallShape, FunctionTool, HOSTED_TOOL_TYPES, LOCAL_SHELL_FUNCTION,
    ToolChoice, flat_tool_name,
};

use crate::ids::{ConversationId, IdSource, ResponseId};
use crate::item::Item;
use crate::run::{ChatStreamOptions, ResponsesEcho, RunHeader, Sampling};
use crate::tool::{McpServerSpec, RunShields};
use params::{
    Echo, MAX_INFER_ITERS, MIN_MAX_OUTPUT_TOKENS, check_range, parse_reasoning, parse_text,
};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use tools::{Tools, parse_tool_choice, parse_tools};

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
    /// The MCP tool (from the operator's config) serving each hosted tool
    /// type a client may offer, e.g. `web_search`.
    #[serde(skip)]
    pub hosted_tool_servers: BTreeMap<String, Value>,
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

    fn missing(param: impl Into<String>) -> Self {
        let param = param.into();
        Self {
            message: format!("Missing required parameter: '{param}'."),
            param: Some(param),
            code: "missing_required_parameter",
        }
    }
}

/// The mode flags of a request: how the caller wants the run delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeFlags {
    pub stream: bool,
    pub store: bool,
    pub background: bool,
}

/// Request fields passed to the upstream as they are, where it takes them
/// (OpenAI's chat completions does): routing and caching hints that change
/// nothing spool does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamHints {
    pub service_tier: Option<String>,
    pub prompt_cache_key: Option<String>,
    pub safety_identifier: Option<String>,
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
    /// `conversation` is an id the server just made for this request (a
    /// chat completion's new thread): the run creates it, so there is no
    /// history to read and nothing to claim. Never read from a body.
    pub opens_conversation: bool,
    pub tools: Vec<FunctionTool>,
    /// How calls of the caller's tools that are not plain functions are
    /// shown, by the name the model knows the tool by.
    pub call_shapes: BTreeMap<String, ClientCallShape>,
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
    /// Sequences that end the model's output (set by the chat request
    /// parser; the Responses API has no such parameter).
    pub stop: Vec<String>,
    pub text_format: TextFormat,
    /// `reasoning.effort`, passed to models that take it.
    pub reasoning_effort: Option<String>,
    /// The most model calls the tool loop may make, if the request limits it.
    pub max_infer_iters: Option<u32>,
    /// The named agent whose defaults the request was completed with.
    pub agent: Option<String>,
    /// `truncation: "auto"`: when the upstream says the context is too
    /// long, the oldest items are dropped and the call is tried once more.
    pub truncate_auto: bool,
    pub upstream_hints: UpstreamHints,
    /// `include: ["message.output_text.logprobs"]`: the output text's log
    /// probabilities, with `top_logprobs` alternatives per token.
    pub logprobs: Option<u32>,
    pub modes: ModeFlags,
    pub metadata: BTreeMap<String, String>,
    /// How the chat-completions dialects show the run (set by the chat
    /// request parser; a Responses request keeps the default).
    pub chat: ChatStreamOptions,
    /// The input ended with `{"type": "compaction_trigger"}` (Codex CLI's
    /// compaction, "responses_compaction_v2"): the run's one output is a
    /// `compaction` item standing for the whole conversation, not an
    /// answer. The trigger itself is not an input item.
    pub compaction_trigger: bool,
    /// The agent turn this run resumes (set by the llama-stack turn resume;
    /// never read from a body).
    pub continues_turn: Option<ResponseId>,
    /// Shields checking the input and the answer (set by the llama-stack
    /// Agents API from an agent's config; never read from a body).
    pub shields: RunShields,
    /// Parameters echoed back unchanged in the response object.
    echo: Echo,
}

impl RunRequest {
    /// Validates a parsed body. Nothing is looked up: ids such as
    /// `previous_response_id` are checked for form here and for existence by
    /// the caller.
    /// Input items without an id get one from `ids`.
    pub fn parse(mut body: CreateResponseBody, ids: &dyn IdSource) -> Result<Self, RequestError> {
        let model = match body.model {
            Some(m) if !m.trim().is_empty() => m,
            _ => return Err(RequestError::missing("model")),
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
        let compaction_trigger = match &mut body.input {
            Some(Value::Array(items)) => take_compaction_trigger(items)?,
            _ => false,
        };
        let input = match body.input {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => normalize_input(v, ids)?,
        };
        if input.is_empty() && previous_response_id.is_none() && conversation.is_none() {
            return Err(RequestError::missing("input"));
        }
        let mut parsed_tools = Tools::default();
        parse_tools(
            body.tools.unwrap_or_default(),
            false,
            &body.hosted_tool_servers,
            &mut parsed_tools,
        )?;
        parse_tools(
            std::mem::take(&mut body.trusted_tools),
            true,
            &BTreeMap::new(),
            &mut parsed_tools,
        )?;
        let Tools {
            functions: tools,
            shapes: call_shapes,
            mcp: mcp_servers,
            echoed: echoed_tools,
            not_offered: tools_not_offered,
        } = parsed_tools;
        let mcp_labels: Vec<&str> = mcp_servers
            .iter()
            .map(|s| s.server_label.as_str())
            .collect();
        let (tool_choice, echoed_choice) =
            parse_tool_choice(body.tool_choice, &tools, &mcp_labels)?;
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
            opens_conversation: false,
            compaction_trigger,
            model,
            instructions: body.instructions,
            input,
            previous_response_id,
            conversation,
            tools,
            call_shapes,
            mcp_servers,
            tool_choice,
            parallel_tool_calls: body.parallel_tool_calls.unwrap_or(true),
            temperature: body.temperature,
            top_p: body.top_p,
            presence_penalty: body.presence_penalty,
            frequency_penalty: body.frequency_penalty,
            max_output_tokens: body.max_output_tokens,
            max_tool_calls: body.max_tool_calls,
            stop: Vec::new(),
            text_format,
            reasoning_effort,
            max_infer_iters: body.max_infer_iters,
            agent: body
                .agent
                .as_ref()
                .and_then(|a| a.get("name"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            truncate_auto: truncation == "auto",
            logprobs: body
                .include
                .as_ref()
                .is_some_and(|i| i.iter().any(|v| v == "message.output_text.logprobs"))
                .then(|| body.top_logprobs.unwrap_or(0)),
            upstream_hints: UpstreamHints {
                service_tier: body.service_tier.clone(),
                prompt_cache_key: body.prompt_cache_key.clone(),
                safety_identifier: body.safety_identifier.clone(),
            },
            modes: ModeFlags {
                stream,
                store,
                background,
            },
            metadata,
            chat: ChatStreamOptions::default(),
            continues_turn: None,
            shields: RunShields::default(),
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
                tools_not_offered,
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
                stop: self.stop.clone(),
            },
            responses: ResponsesEcho {
                tools: self.echo.tools.clone(),
                tools_not_offered: self.echo.tools_not_offered.clone(),
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
            chat: self.chat,
            continues_turn: self.continues_turn.clone(),
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

/// Removes the `compaction_trigger` that ends `items`, saying whether there
/// was one. It is a signal, not history: anywhere but last it is refused.
fn take_compaction_trigger(items: &mut Vec<Value>) -> Result<bool, RequestError> {
    let is_trigger =
        |v: &Value| v.get("type").and_then(Value::as_str) == Some("compaction_trigger");
    let Some(at) = items.iter().position(is_trigger) else {
        return Ok(false);
    };
    if at + 1 != items.len() {
        return Err(RequestError::invalid(
            format!("input[{at}]"),
            "A compaction_trigger must be the last input item.",
        ));
    }
    items.pop();
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SequentialIds;
    use crate::item::{ContentPart, Role};
    use serde_json::json;

    fn body(v: Value) -> CreateResponseBody {
        serde_json::from_value(v).unwrap()
    }

    fn parse(v: Value) -> Result<RunRequest, RequestError> {
        RunRequest::parse(body(v), &SequentialIds::default())
    }

    #[test]
    fn tool_choice_required_is_met_by_mcp_tools_too() {
        let mcp = json!({"type": "mcp", "server_label": "calc",
                         "server_url": "https://calc.example/mcp"});
        let r = parse(json!({"model": "m", "input": "x", "tools": [mcp],
                             "tool_choice": "required"}))
        .unwrap();
        assert_eq!(r.tool_choice, ToolChoice::Required);
        let e = parse(json!({"model": "m", "input": "x", "tool_choice": "required"})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tool_choice"));
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
        assert_eq!(e.param.as_deref(), Some("input[0].content[0].type"));
    }

    #[test]
    fn an_unknown_tool_type_is_refused_clearly() {
        let e = parse(json!({"model": "m", "input": "x", "tools": [{"type": "computer_use"}]}))
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tools[0].type"));
        assert_eq!(e.code, "unsupported_parameter");
    }

    #[test]
    fn a_hosted_tool_not_offered_is_recorded_in_the_response() {
        let r = parse(json!({"model": "m", "input": "x",
                             "tools": [{"type": "web_search"}, {"type": "local_shell"}]}))
        .unwrap();
        assert_eq!(r.tools.len(), 1);
        let h = r.header(ResponseId::parse("resp_1").unwrap(), 0);
        assert_eq!(h.responses.tools_not_offered, ["web_search"]);
        assert_eq!(h.responses.tools.len(), 2);
    }

    #[test]
    fn function_tools_are_echoed_with_every_field() {
        let r = parse(
            json!({"model": "m", "input": "x", "tools": [{"type": "function", "name": "f"}]}),
        )
        .unwrap();
        let h = r.header(ResponseId::parse("resp_1").unwrap(), 0);
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
        let h = r.header(ResponseId::parse("resp_1").unwrap(), 0);
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
        let h = a.header(ResponseId::parse("resp_1").unwrap(), 0);
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
        let h = r.header(ResponseId::parse("resp_1").unwrap(), 0);
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

    #[test]
    fn a_compaction_trigger_ends_the_input_and_is_not_an_item() {
        let r = parse(json!({"model": "m", "input": [
            {"role": "user", "content": "hi"}, {"type": "compaction_trigger"}]}))
        .unwrap();
        assert!(r.compaction_trigger);
        assert_eq!(r.input.len(), 1);
        assert!(
            !parse(json!({"model": "m", "input": "hi"}))
                .unwrap()
                .compaction_trigger
        );
        let misplaced = parse(json!({"model": "m", "input": [
            {"type": "compaction_trigger"}, {"role": "user", "content": "hi"}]}));
        assert!(misplaced.is_err());
        // A trigger alone has nothing to compact.
        assert!(parse(json!({"model": "m", "input": [{"type": "compaction_trigger"}]})).is_err());
    }
}
