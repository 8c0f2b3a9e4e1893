//! A `POST /v1/chat/completions` request, read into the same
//! [`CreateResponseBody`] a Responses request is, so a chat run is a spool
//! run like any other.
//!
//! [`ChatCompletionBody::parse`] checks the messages and the chat-only
//! fields and gives a [`ChatRequest`]: the messages as [`ChatMessage`]s
//! and the rest as a Responses body without input. The caller then drops
//! the messages a thread already holds ([`new_messages`]: whole-history
//! clients resend them, only-new clients do not), checks every tool
//! message answers a call ([`check_tool_results`]) and puts the rest in as
//! input ([`ChatMessage::input_items`]).

use super::{CreateResponseBody, RequestError};
use crate::item::{ContentPart, Item, Role};
use crate::run::ChatStreamOptions;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The body of `POST /v1/chat/completions`, as parsed from JSON.
#[derive(Debug, Default, Deserialize)]
pub struct ChatCompletionBody {
    pub model: Option<String>,
    pub messages: Option<Vec<Value>>,
    pub tools: Option<Vec<Value>>,
    pub tool_choice: Option<Value>,
    pub parallel_tool_calls: Option<bool>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    pub max_tokens: Option<u64>,
    pub max_completion_tokens: Option<u64>,
    pub stop: Option<Value>,
    pub response_format: Option<Value>,
    pub reasoning_effort: Option<String>,
    pub stream: Option<bool>,
    pub stream_options: Option<ChatStreamOptionsParam>,
    pub n: Option<u32>,
    pub user: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub store: Option<bool>,
    /// The thread (a conversation) to continue: watsonx Orchestrate's and
    /// Flexo's `thread_id`, top level or in `extra_body`.
    pub thread_id: Option<String>,
    pub extra_body: Option<ExtraBody>,
}

/// `stream_options`.
#[derive(Debug, Default, Deserialize)]
pub struct ChatStreamOptionsParam {
    pub include_usage: Option<bool>,
    /// spool extension: `false` leaves out the agent status chunks.
    pub status_chunks: Option<bool>,
}

/// `extra_body`, for clients that send it literally.
#[derive(Debug, Default, Deserialize)]
pub struct ExtraBody {
    pub thread_id: Option<String>,
}

/// One chat message, checked, in the form threads are compared in.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatMessage {
    /// A system, developer or user message: its text and image parts.
    Content { role: Role, parts: Vec<ChatPart> },
    /// What the assistant said and the client function calls it made.
    Assistant {
        text: String,
        tool_calls: Vec<ChatToolCall>,
    },
    /// The client's result for a function call.
    Tool { call_id: String, content: String },
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChatPart {
    Text(String),
    Image { url: String, detail: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// A checked chat request.
#[derive(Debug)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    /// Everything but the input, in the Responses form.
    pub body: CreateResponseBody,
    pub thread_id: Option<String>,
    pub stream: bool,
    /// `stream_options.status_chunks`, if the request set it.
    pub status_chunks: Option<bool>,
    pub include_usage: bool,
    /// Sequences that end the model's output.
    pub stop: Vec<String>,
}

impl ChatRequest {
    /// The stream options for the run, the agent's choice under the
    /// request's.
    pub fn stream_options(&self, agent_status_chunks: Option<bool>) -> ChatStreamOptions {
        ChatStreamOptions {
            status_chunks: self.status_chunks.or(agent_status_chunks).unwrap_or(true),
            include_usage: self.include_usage,
        }
    }
}

impl ChatCompletionBody {
    pub fn parse(self) -> Result<ChatRequest, RequestError> {
        let messages = match self.messages {
            Some(m) if !m.is_empty() => m
                .into_iter()
                .enumerate()
                .map(|(i, m)| parse_message(m, &format!("messages[{i}]")))
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => {
                return Err(RequestError::invalid(
                    "messages",
                    "messages must hold at least one message.",
                ));
            }
            None => return Err(RequestError::missing("messages")),
        };
        if self.n.is_some_and(|n| n != 1) {
            return Err(RequestError::unsupported(
                "n",
                "Only one choice (n=1) is supported.",
            ));
        }
        let stop = match self.stop {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s],
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|s| match s {
                    Value::String(s) => Ok(s),
                    _ => Err(RequestError::invalid(
                        "stop",
                        "stop must be a string or an array of strings.",
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(RequestError::invalid(
                    "stop",
                    "stop must be a string or an array of strings.",
                ));
            }
        };
        if stop.len() > 4 || stop.iter().any(String::is_empty) {
            return Err(RequestError::invalid(
                "stop",
                "stop takes up to 4 non-empty sequences.",
            ));
        }
        let stream = self.stream.unwrap_or(false);
        if self.stream_options.is_some() && !stream {
            return Err(RequestError::invalid(
                "stream_options",
                "stream_options may only be set when stream is true.",
            ));
        }
        let options = self.stream_options.unwrap_or_default();
        let tools = self
            .tools
            .map(|tools| {
                tools
                    .into_iter()
                    .enumerate()
                    .map(|(i, t)| chat_tool(t, &format!("tools[{i}]")))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let tool_choice = self.tool_choice.map(chat_tool_choice).transpose()?;
        let text = self.response_format.map(response_format).transpose()?;
        let thread_id = self
            .thread_id
            .or_else(|| self.extra_body.and_then(|e| e.thread_id))
            .filter(|t| !t.is_empty());
        let body = CreateResponseBody {
            model: self.model,
            tools,
            tool_choice,
            parallel_tool_calls: self.parallel_tool_calls,
            temperature: self.temperature,
            top_p: self.top_p,
            presence_penalty: self.presence_penalty,
            frequency_penalty: self.frequency_penalty,
            max_output_tokens: self.max_completion_tokens.or(self.max_tokens),
            text,
            reasoning: self.reasoning_effort.map(|e| json!({"effort": e})),
            store: self.store,
            stream: Some(stream),
            metadata: self.metadata,
            user: self.user,
            ..CreateResponseBody::default()
        };
        Ok(ChatRequest {
            messages,
            body,
            thread_id,
            stream,
            status_chunks: options.status_chunks,
            include_usage: options.include_usage.unwrap_or(false),
            stop,
        })
    }
}

fn parse_message(message: Value, path: &str) -> Result<ChatMessage, RequestError> {
    let Value::Object(mut m) = message else {
        return Err(RequestError::invalid(path, "A message must be an object."));
    };
    let role = match m.remove("role") {
        Some(Value::String(r)) => r,
        Some(_) => {
            return Err(RequestError::invalid(
                format!("{path}.role"),
                "role must be a string.",
            ));
        }
        None => return Err(RequestError::missing(format!("{path}.role"))),
    };
    let content = m.remove("content").unwrap_or(Value::Null);
    let content_path = format!("{path}.content");
    match role.as_str() {
        "system" | "developer" | "user" => {
            let role = match role.as_str() {
                "system" => Role::System,
                "developer" => Role::Developer,
                _ => Role::User,
            };
            let parts = content_parts(content, &content_path, role == Role::User)?;
            if parts.is_empty() {
                return Err(RequestError::missing(content_path));
            }
            Ok(ChatMessage::Content { role, parts })
        }
        "assistant" => {
            let text = match content {
                Value::Null => String::new(),
                other => content_parts(other, &content_path, false)?
                    .into_iter()
                    .filter_map(|p| match p {
                        ChatPart::Text(t) => Some(t),
                        ChatPart::Image { .. } => None,
                    })
                    .collect(),
            };
            let tool_calls = match m.remove("tool_calls") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(calls)) => calls
                    .into_iter()
                    .enumerate()
                    .map(|(i, c)| tool_call(c, &format!("{path}.tool_calls[{i}]")))
                    .collect::<Result<_, _>>()?,
                Some(_) => {
                    return Err(RequestError::invalid(
                        format!("{path}.tool_calls"),
                        "tool_calls must be an array.",
                    ));
                }
            };
            if text.is_empty() && tool_calls.is_empty() {
                return Err(RequestError::invalid(
                    content_path,
                    "An assistant message needs content or tool_calls.",
                ));
            }
            Ok(ChatMessage::Assistant { text, tool_calls })
        }
        "tool" => {
            let call_id = match m.remove("tool_call_id") {
                Some(Value::String(id)) if !id.is_empty() => id,
                _ => return Err(RequestError::missing(format!("{path}.tool_call_id"))),
            };
            let content = content_parts(content, &content_path, false)?
                .into_iter()
                .filter_map(|p| match p {
                    ChatPart::Text(t) => Some(t),
                    ChatPart::Image { .. } => None,
                })
                .collect();
            Ok(ChatMessage::Tool { call_id, content })
        }
        "function" => Err(RequestError::unsupported(
            format!("{path}.role"),
            "The deprecated 'function' role is not supported; use 'tool'.",
        )),
        other => Err(RequestError::invalid(
            format!("{path}.role"),
            format!("Invalid role '{other}': expected system, developer, user, assistant or tool."),
        )),
    }
}

/// A message's content: a string, or text (and, for a user, image) parts.
fn content_parts(content: Value, path: &str, images: bool) -> Result<Vec<ChatPart>, RequestError> {
    match content {
        Value::String(s) => Ok(vec![ChatPart::Text(s)]),
        Value::Array(parts) => parts
            .into_iter()
            .enumerate()
            .map(|(i, p)| content_part(p, &format!("{path}[{i}]"), images))
            .collect(),
        Value::Null => Ok(Vec::new()),
        _ => Err(RequestError::invalid(
            path,
            "content must be a string or an array of content parts.",
        )),
    }
}

fn content_part(part: Value, path: &str, images: bool) -> Result<ChatPart, RequestError> {
    let kind = part.get("type").and_then(Value::as_str);
    match kind {
        Some("text") => match part.get("text") {
            Some(Value::String(t)) => Ok(ChatPart::Text(t.clone())),
            _ => Err(RequestError::missing(format!("{path}.text"))),
        },
        // An assistant's refusal part is its text as far as history goes.
        Some("refusal") => match part.get("refusal") {
            Some(Value::String(t)) => Ok(ChatPart::Text(t.clone())),
            _ => Err(RequestError::missing(format!("{path}.refusal"))),
        },
        Some("image_url") if images => {
            let image = part.get("image_url");
            let url = image.and_then(|i| i.get("url")).and_then(Value::as_str);
            let Some(url) = url else {
                return Err(RequestError::missing(format!("{path}.image_url.url")));
            };
            let detail = image
                .and_then(|i| i.get("detail"))
                .and_then(Value::as_str)
                .unwrap_or("auto");
            if !matches!(detail, "auto" | "low" | "high") {
                return Err(RequestError::invalid(
                    format!("{path}.image_url.detail"),
                    "detail must be auto, low or high.",
                ));
            }
            Ok(ChatPart::Image {
                url: url.to_owned(),
                detail: detail.to_owned(),
            })
        }
        Some(other) => Err(RequestError::unsupported(
            format!("{path}.type"),
            format!("Content parts of type '{other}' are not supported here."),
        )),
        None => Err(RequestError::missing(format!("{path}.type"))),
    }
}

fn tool_call(call: Value, path: &str) -> Result<ChatToolCall, RequestError> {
    if let Some(kind) = call.get("type").and_then(Value::as_str)
        && kind != "function"
    {
        return Err(RequestError::unsupported(
            format!("{path}.type"),
            format!("Tool calls of type '{kind}' are not supported."),
        ));
    }
    let id = match call.get("id") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        _ => return Err(RequestError::missing(format!("{path}.id"))),
    };
    let function = call.get("function");
    let name = match function.and_then(|f| f.get("name")) {
        Some(Value::String(n)) if !n.is_empty() => n.clone(),
        _ => return Err(RequestError::missing(format!("{path}.function.name"))),
    };
    let arguments = match function.and_then(|f| f.get("arguments")) {
        Some(Value::String(a)) => a.clone(),
        None | Some(Value::Null) => String::new(),
        Some(_) => {
            return Err(RequestError::invalid(
                format!("{path}.function.arguments"),
                "arguments must be a string of JSON.",
            ));
        }
    };
    Ok(ChatToolCall {
        id,
        name,
        arguments,
    })
}

/// A chat tool (`{type:function, function:{name, …}}`) in the Responses
/// form (`{type:function, name, …}`).
fn chat_tool(tool: Value, path: &str) -> Result<Value, RequestError> {
    match tool.get("type").and_then(Value::as_str) {
        Some("function") => {}
        Some(other) => {
            return Err(RequestError::unsupported(
                format!("{path}.type"),
                format!("Tools of type '{other}' are not supported; use 'function'."),
            ));
        }
        None => return Err(RequestError::missing(format!("{path}.type"))),
    }
    let Some(Value::Object(function)) = tool.get("function") else {
        return Err(RequestError::missing(format!("{path}.function")));
    };
    let mut out = function.clone();
    out.insert("type".into(), "function".into());
    Ok(Value::Object(out))
}

fn chat_tool_choice(choice: Value) -> Result<Value, RequestError> {
    match &choice {
        Value::String(_) => Ok(choice),
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            match o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
            {
                Some(name) => Ok(json!({"type": "function", "name": name})),
                None => Err(RequestError::missing("tool_choice.function.name")),
            }
        }
        _ => Err(RequestError::invalid(
            "tool_choice",
            "tool_choice must be none, auto, required or {\"type\": \"function\", \"function\": {\"name\": …}}.",
        )),
    }
}

/// `response_format` as the Responses `text` parameter.
fn response_format(format: Value) -> Result<Value, RequestError> {
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(json!({"format": {"type": "text"}})),
        Some("json_object") => Ok(json!({"format": {"type": "json_object"}})),
        Some("json_schema") => {
            let Some(Value::Object(schema)) = format.get("json_schema") else {
                return Err(RequestError::missing("response_format.json_schema"));
            };
            let mut f = schema.clone();
            f.insert("type".into(), "json_schema".into());
            Ok(json!({ "format": f }))
        }
        _ => Err(RequestError::invalid(
            "response_format.type",
            "response_format.type must be text, json_object or json_schema.",
        )),
    }
}

impl ChatMessage {
    /// The message as Responses input items.
    pub fn input_items(&self) -> Vec<Value> {
        match self {
            ChatMessage::Content { role, parts } => {
                let role = match role {
                    Role::System => "system",
                    Role::Developer => "developer",
                    _ => "user",
                };
                let content: Vec<Value> = parts
                    .iter()
                    .map(|p| match p {
                        ChatPart::Text(t) => json!({"type": "input_text", "text": t}),
                        ChatPart::Image { url, detail } => {
                            json!({"type": "input_image", "image_url": url, "detail": detail})
                        }
                    })
                    .collect();
                vec![json!({"type": "message", "role": role, "content": content})]
            }
            ChatMessage::Assistant { text, tool_calls } => {
                let mut items = Vec::new();
                if !text.is_empty() {
                    items.push(json!({"type": "message", "role": "assistant", "content": text}));
                }
                items.extend(tool_calls.iter().map(|c| {
                    json!({
                        "type": "function_call",
                        "call_id": c.id,
                        "name": c.name,
                        "arguments": c.arguments,
                    })
                }));
                items
            }
            ChatMessage::Tool { call_id, content } => vec![json!({
                "type": "function_call_output",
                "call_id": call_id,
                "output": content,
            })],
        }
    }
}

/// A thread's stored items as the chat messages a client saw: consecutive
/// assistant output (text and client function calls) is one assistant
/// message, and server-side tool work and reasoning are not shown.
pub fn chat_history(items: &[Item]) -> Vec<ChatMessage> {
    let mut out: Vec<ChatMessage> = Vec::new();
    for item in items {
        match item {
            Item::Message(m) if m.role == Role::Assistant => {
                let text: String = m.content.iter().filter_map(ContentPart::text).collect();
                assistant(&mut out).0.push_str(&text);
            }
            Item::Message(m) => out.push(ChatMessage::Content {
                role: m.role,
                parts: m
                    .content
                    .iter()
                    .filter_map(|p| match p {
                        ContentPart::InputText { text } | ContentPart::OutputText { text, .. } => {
                            Some(ChatPart::Text(text.clone()))
                        }
                        ContentPart::InputImage {
                            image_url: Some(url),
                            detail,
                            ..
                        } => Some(ChatPart::Image {
                            url: url.clone(),
                            detail: detail.clone(),
                        }),
                        _ => None,
                    })
                    .collect(),
            }),
            Item::FunctionCall(c) => assistant(&mut out).1.push(ChatToolCall {
                id: c.call_id.clone(),
                name: c.name.clone(),
                arguments: c.arguments.clone(),
            }),
            Item::FunctionCallOutput(o) => out.push(ChatMessage::Tool {
                call_id: o.call_id.clone(),
                content: o.output_text(),
            }),
            _ => {}
        }
    }
    out
}

/// The assistant message at the end of `out`, opened if there is none.
fn assistant(out: &mut Vec<ChatMessage>) -> (&mut String, &mut Vec<ChatToolCall>) {
    if !matches!(out.last(), Some(ChatMessage::Assistant { .. })) {
        out.push(ChatMessage::Assistant {
            text: String::new(),
            tool_calls: Vec::new(),
        });
    }
    match out.last_mut() {
        Some(ChatMessage::Assistant { text, tool_calls }) => (text, tool_calls),
        _ => unreachable!("an assistant message was just pushed"),
    }
}

/// The messages of a request that a thread does not hold yet: when the
/// request begins with the thread's messages (a whole-history client) only
/// the rest; otherwise (an only-new client) all of them.
pub fn new_messages<'a>(request: &'a [ChatMessage], stored: &[ChatMessage]) -> &'a [ChatMessage] {
    if !stored.is_empty() && request.len() > stored.len() && request[..stored.len()] == *stored {
        &request[stored.len()..]
    } else {
        request
    }
}

/// Checks every tool message answers a function call made earlier in the
/// thread or the request.
pub fn check_tool_results(
    new: &[ChatMessage],
    stored: &[ChatMessage],
    first_index: usize,
) -> Result<(), RequestError> {
    fn note(m: &ChatMessage, known: &mut Vec<String>) {
        if let ChatMessage::Assistant { tool_calls, .. } = m {
            known.extend(tool_calls.iter().map(|c| c.id.clone()));
        }
    }
    let mut known: Vec<String> = Vec::new();
    for m in stored {
        note(m, &mut known);
    }
    for (i, m) in new.iter().enumerate() {
        note(m, &mut known);
        if let ChatMessage::Tool { call_id, .. } = m
            && !known.iter().any(|k| k == call_id)
        {
            return Err(RequestError::invalid(
                format!("messages[{}].tool_call_id", first_index + i),
                format!(
                    "The tool message answers '{call_id}', but no assistant message before it made that call."
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: Value) -> Result<ChatRequest, RequestError> {
        serde_json::from_value::<ChatCompletionBody>(body)
            .unwrap()
            .parse()
    }

    #[test]
    fn every_role_and_part_reads_into_responses_input() {
        let r = parse(json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "https://x/i.png"}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "42"}
            ],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "max_tokens": 50,
            "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}}},
        }))
        .unwrap();
        let items: Vec<Value> = r.messages.iter().flat_map(|m| m.input_items()).collect();
        assert_eq!(items[1]["content"][1]["type"], "input_image");
        assert_eq!(items[2]["type"], "function_call");
        assert_eq!(items[3]["type"], "function_call_output");
        assert_eq!(r.body.tools.as_ref().unwrap()[0]["name"], "f");
        assert_eq!(
            r.body.tool_choice,
            Some(json!({"type": "function", "name": "f"}))
        );
        assert_eq!(r.body.max_output_tokens, Some(50));
        assert_eq!(
            r.body.text.as_ref().unwrap()["format"]["type"],
            "json_schema"
        );
        check_tool_results(&r.messages, &[], 0).unwrap();
    }

    #[test]
    fn malformed_messages_name_their_parameter() {
        let e = parse(json!({"model": "m", "messages": [{"content": "x"}]})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages[0].role"));
        let e = parse(json!({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}))
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages[0].role"));
        let e = parse(json!({"model": "m", "messages": []})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages"));
    }

    #[test]
    fn a_tool_message_must_answer_a_call() {
        let r = parse(json!({"model": "m", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "tool", "tool_call_id": "call_9", "content": "x"}
        ]}))
        .unwrap();
        let e = check_tool_results(&r.messages, &[], 0).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages[1].tool_call_id"));
    }

    #[test]
    fn a_whole_history_request_is_cut_to_what_the_thread_lacks() {
        let user = |t: &str| ChatMessage::Content {
            role: Role::User,
            parts: vec![ChatPart::Text(t.into())],
        };
        let said = ChatMessage::Assistant {
            text: "hello".into(),
            tool_calls: Vec::new(),
        };
        let stored = vec![user("hi"), said.clone()];
        let whole = vec![user("hi"), said, user("again")];
        assert_eq!(new_messages(&whole, &stored), &whole[2..]);
        let only_new = vec![user("again")];
        assert_eq!(new_messages(&only_new, &stored), &only_new[..]);
    }
}
