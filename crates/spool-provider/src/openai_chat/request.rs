//! Mapping a [`ModelRequest`] onto a chat-completions request body.
//!
//! Items become messages: `instructions` the first system message,
//! developer messages system messages (most OpenAI-compatible servers know
//! no `developer` role), consecutive function calls one assistant message
//! with `tool_calls`, and function call outputs `tool` messages. The
//! caller's other tools are functions to the model (see
//! [`spool_core::request::ClientCallShape`]), so their calls go back as
//! function calls: a namespaced call under its flat name, a custom tool call
//! with its input as the one argument `input`, a local shell call with its
//! action's fields. An `item_reference` stands for the earlier item with its
//! id; a `compaction` item, once the server opened it, is its summary in a
//! user message. Reasoning items (encrypted or not) and web search calls are not sent
//! back: chat-completions servers take no reasoning input, and a search's
//! findings are in the messages that follow it.

use crate::ModelRequest;
use serde_json::{Map, Value, json};
use spool_core::item::{ContentPart, Item, Role};
use spool_core::request::{LOCAL_SHELL_FUNCTION, TextFormat, ToolChoice, flat_tool_name};
use std::borrow::Cow;
use std::collections::HashMap;

/// The JSON body of a streaming `POST /chat/completions` for `request`.
pub fn chat_body(request: &ModelRequest) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(request.model));
    body.insert("messages".into(), Value::Array(messages(request)));
    body.insert("stream".into(), json!(true));
    body.insert("stream_options".into(), json!({"include_usage": true}));
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| {
                let mut function = Map::new();
                function.insert("name".into(), json!(t.name));
                if let Some(d) = &t.description {
                    function.insert("description".into(), json!(d));
                }
                function.insert(
                    "parameters".into(),
                    t.parameters
                        .clone()
                        .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                );
                if let Some(strict) = t.strict {
                    function.insert("strict".into(), json!(strict));
                }
                json!({"type": "function", "function": function})
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
        body.insert(
            "tool_choice".into(),
            match &request.tool_choice {
                ToolChoice::None => json!("none"),
                ToolChoice::Auto => json!("auto"),
                ToolChoice::Required => json!("required"),
                ToolChoice::Function(name) => {
                    json!({"type": "function", "function": {"name": name}})
                }
                // The agent has already narrowed the tools to those allowed.
                ToolChoice::Allowed(allowed) if allowed.required => json!("required"),
                ToolChoice::Allowed(_) => json!("auto"),
            },
        );
        body.insert(
            "parallel_tool_calls".into(),
            json!(request.parallel_tool_calls),
        );
    }
    let numbers = [
        ("temperature", request.temperature),
        ("top_p", request.top_p),
        ("presence_penalty", request.presence_penalty),
        ("frequency_penalty", request.frequency_penalty),
    ];
    for (key, value) in numbers {
        if let Some(v) = value {
            body.insert(key.into(), json!(v));
        }
    }
    // `max_completion_tokens` is OpenAI's current name (its reasoning
    // models refuse `max_tokens`); vLLM and others accept it too.
    if let Some(n) = request.max_output_tokens {
        body.insert("max_completion_tokens".into(), json!(n));
    }
    if !request.stop.is_empty() {
        body.insert("stop".into(), json!(request.stop));
    }
    if let Some(effort) = &request.reasoning_effort {
        body.insert("reasoning_effort".into(), json!(effort));
    }
    if let Some(top) = request.logprobs {
        body.insert("logprobs".into(), json!(true));
        if top > 0 {
            body.insert("top_logprobs".into(), json!(top));
        }
    }
    let hints = &request.upstream_hints;
    for (key, value) in [
        ("service_tier", &hints.service_tier),
        ("prompt_cache_key", &hints.prompt_cache_key),
        ("safety_identifier", &hints.safety_identifier),
    ] {
        if let Some(v) = value {
            body.insert(key.into(), json!(v));
        }
    }
    match &request.text_format {
        TextFormat::Text => {}
        TextFormat::JsonObject => {
            body.insert("response_format".into(), json!({"type": "json_object"}));
        }
        TextFormat::JsonSchema {
            name,
            schema,
            description,
            strict,
        } => {
            let mut js = Map::new();
            js.insert("name".into(), json!(name));
            js.insert("schema".into(), schema.clone());
            if let Some(d) = description {
                js.insert("description".into(), json!(d));
            }
            if let Some(s) = strict {
                js.insert("strict".into(), json!(s));
            }
            body.insert(
                "response_format".into(),
                json!({"type": "json_schema", "json_schema": js}),
            );
        }
    }
    Value::Object(body)
}

/// How a compacted conversation's summary is introduced to the model.
const COMPACTION_PREFIX: &str = "Summary of the conversation so far (it was compacted):\n";

fn messages(request: &ModelRequest) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(request.items.len() + 1);
    if let Some(instructions) = &request.instructions {
        out.push(json!({"role": "system", "content": instructions}));
    }
    let mut group = CallGroup::default();
    for (position, item) in request.items.iter().enumerate() {
        // A reference stands for the latest earlier item with its id; one
        // that names nothing earlier is left out.
        let item = match item {
            Item::ItemReference(r) => {
                let referenced = request.items[..position]
                    .iter()
                    .rev()
                    .find(|i| i.id() == r.id && !matches!(i, Item::ItemReference(_)));
                match referenced {
                    Some(referenced) => referenced,
                    None => continue,
                }
            }
            item => item,
        };
        match item {
            Item::Message(m) => {
                group.flush(&mut out);
                let role = match m.role {
                    Role::User => "user",
                    Role::Assistant => "assistant",
                    Role::System | Role::Developer => "system",
                };
                let content = content(&m.content, m.role);
                if m.role == Role::Assistant {
                    // The calls that follow belong to this message.
                    group.text = Some(content);
                } else {
                    out.push(json!({"role": role, "content": content}));
                }
            }
            Item::FunctionCall(call) => {
                let name = match &call.namespace {
                    Some(namespace) => Cow::Owned(flat_tool_name(namespace, &call.name)),
                    None => Cow::Borrowed(call.name.as_str()),
                };
                group.call(&call.call_id, &name, &call.arguments);
            }
            Item::FunctionCallOutput(o) => group.result(&o.call_id, o.output_text()),
            Item::CustomToolCall(call) => {
                let name = match &call.namespace {
                    Some(namespace) => Cow::Owned(flat_tool_name(namespace, &call.name)),
                    None => Cow::Borrowed(call.name.as_str()),
                };
                let arguments = json!({"input": call.input}).to_string();
                group.call(&call.call_id, &name, &arguments);
            }
            Item::CustomToolCallOutput(o) => group.result(&o.call_id, o.output_text()),
            // The summary of what came before, once the server opened it.
            Item::Compaction(c) => {
                if let Some(summary) = &c.summary {
                    group.flush(&mut out);
                    out.push(json!({
                        "role": "user",
                        "content": format!("{COMPACTION_PREFIX}{summary}"),
                    }));
                }
            }
            Item::LocalShellCall(call) => {
                // The action's fields but its `type` are the arguments.
                let mut arguments = call.action.clone();
                if let Value::Object(fields) = &mut arguments {
                    fields.remove("type");
                }
                group.call(&call.call_id, LOCAL_SHELL_FUNCTION, &arguments.to_string());
            }
            Item::McpCall(call) => {
                let output = match (&call.output, &call.error) {
                    (_, Some(error)) => format!("Error: {error}"),
                    (Some(output), None) => output.clone(),
                    (None, None) => String::new(),
                };
                match &call.approval_request_id {
                    // The approval request was the call; this is its result.
                    Some(request_id) => group.result(request_id, output),
                    None => {
                        group.call(&call.id, &call.name, &call.arguments);
                        group.result(&call.id, output);
                    }
                }
            }
            Item::ToolCall(call) => {
                let output = call
                    .result
                    .as_ref()
                    .map(|r| r.model_output())
                    .unwrap_or_default();
                match &call.approval_request_id {
                    // The approval request was the call; this is its result.
                    Some(request_id) => group.result(request_id, output),
                    None => {
                        group.call(&call.call_id, &call.name, &call.arguments);
                        group.result(&call.call_id, output);
                    }
                }
            }
            Item::McpApprovalRequest(r) => group.call(&r.id, &r.name, &r.arguments),
            Item::McpApprovalResponse(r) if !r.approve => {
                let reason = r
                    .reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                group.result(
                    &r.approval_request_id,
                    format!("The user declined to run this tool{reason}."),
                );
            }
            // An approved call's result comes with its mcp_call; listings
            // and reasoning are not sent back.
            Item::McpApprovalResponse(_)
            | Item::McpListTools(_)
            | Item::Reasoning(_)
            | Item::WebSearchCall(_)
            | Item::ItemReference(_) => {}
        }
    }
    group.flush(&mut out);
    out
}

/// One assistant turn being mapped: its text, the calls it made, and their
/// results. Chat completions wants every call of an assistant message
/// answered by a tool message, right after it, before anything else.
#[derive(Default)]
struct CallGroup {
    text: Option<Value>,
    calls: Vec<Value>,
    call_ids: Vec<String>,
    results: HashMap<String, String>,
}

impl CallGroup {
    fn call(&mut self, id: &str, name: &str, arguments: &str) {
        self.calls.push(json!({
            "id": id,
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }));
        self.call_ids.push(id.to_owned());
    }

    fn result(&mut self, call_id: &str, content: String) {
        self.results.insert(call_id.to_owned(), content);
    }

    /// Writes the assistant message and one result per call (a call left
    /// unanswered, such as an approval never given, says so); results for
    /// calls not in this group are dropped.
    fn flush(&mut self, out: &mut Vec<Value>) {
        let text = self.text.take();
        if self.calls.is_empty() {
            if let Some(text) = text {
                out.push(json!({"role": "assistant", "content": text}));
            }
        } else {
            out.push(json!({
                "role": "assistant",
                "content": text.unwrap_or(Value::Null),
                "tool_calls": std::mem::take(&mut self.calls),
            }));
            for id in self.call_ids.drain(..) {
                let content = self
                    .results
                    .remove(&id)
                    .unwrap_or_else(|| "No result: the call was not run.".to_owned());
                out.push(json!({"role": "tool", "tool_call_id": id, "content": content}));
            }
        }
        self.results.clear();
    }
}

/// A message's content: a plain string when it is only text (what every
/// server accepts), content parts when it carries images or files.
fn content(parts: &[ContentPart], role: Role) -> Value {
    let only_text = parts.iter().all(|p| p.text().is_some());
    if only_text || role == Role::Assistant {
        let text: String = parts.iter().filter_map(ContentPart::text).collect();
        return json!(text);
    }
    let parts: Vec<Value> = parts
        .iter()
        .filter_map(|p| match p {
            ContentPart::InputImage {
                detail,
                file_id,
                image_url,
            } => {
                let url = image_url.clone().or_else(|| file_id.clone())?;
                Some(json!({"type": "image_url", "image_url": {"url": url, "detail": detail}}))
            }
            ContentPart::InputFile {
                file_id,
                file_data,
                filename,
                ..
            } => Some(json!({"type": "file", "file": {
                "file_id": file_id, "file_data": file_data, "filename": filename
            }})),
            other => other.text().map(|t| json!({"type": "text", "text": t})),
        })
        .collect();
    Value::Array(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use spool_core::item::{FunctionCallItem, FunctionCallOutputItem, ItemStatus, MessageItem};
    use spool_core::request::FunctionTool;

    fn request(items: Vec<Item>) -> ModelRequest {
        ModelRequest {
            model: "m".into(),
            instructions: Some("be brief".into()),
            items,
            tools: vec![],
            tool_choice: ToolChoice::Auto,
            parallel_tool_calls: true,
            temperature: Some(0.5),
            top_p: None,
            presence_penalty: None,
            frequency_penalty: None,
            max_output_tokens: Some(100),
            stop: Vec::new(),
            text_format: TextFormat::Text,
            reasoning_effort: None,
            upstream_hints: Default::default(),
            logprobs: None,
        }
    }

    fn user(text: &str) -> Item {
        Item::Message(MessageItem {
            id: "m1".into(),
            status: ItemStatus::Completed,
            role: Role::User,
            content: vec![ContentPart::InputText { text: text.into() }],
            phase: None,
        })
    }

    fn call(id: &str) -> Item {
        Item::FunctionCall(FunctionCallItem {
            id: format!("fc_{id}"),
            status: ItemStatus::Completed,
            call_id: id.into(),
            name: "get_weather".into(),
            namespace: None,
            arguments: "{}".into(),
        })
    }

    #[test]
    fn instructions_lead_and_sampling_is_passed_on() {
        let body = chat_body(&request(vec![user("hi")]));
        assert_eq!(
            body["messages"][0],
            json!({"role": "system", "content": "be brief"})
        );
        assert_eq!(
            body["messages"][1],
            json!({"role": "user", "content": "hi"})
        );
        assert_eq!(body["temperature"], 0.5);
        assert_eq!(body["max_completion_tokens"], 100);
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert!(body.get("tools").is_none());
    }

    #[test]
    fn parallel_calls_share_one_assistant_message_and_outputs_become_tool_messages() {
        let out = |id: &str| {
            Item::FunctionCallOutput(FunctionCallOutputItem {
                id: "o".into(),
                status: ItemStatus::Completed,
                call_id: id.into(),
                output: json!("sunny"),
                outcome: None,
            })
        };
        let body = chat_body(&request(vec![
            user("hi"),
            call("c1"),
            call("c2"),
            out("c1"),
            out("c2"),
        ]));
        let msgs = body["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 5);
        assert_eq!(msgs[2]["role"], "assistant");
        assert_eq!(msgs[2]["tool_calls"].as_array().unwrap().len(), 2);
        assert_eq!(msgs[2]["tool_calls"][1]["id"], "c2");
        assert_eq!(
            msgs[3],
            json!({"role": "tool", "tool_call_id": "c1", "content": "sunny"})
        );
    }

    fn mcp_call(id: &str, approval: Option<&str>) -> Item {
        Item::McpCall(Box::new(spool_core::item::McpCallItem {
            id: id.into(),
            status: ItemStatus::Completed,
            server_label: "s".into(),
            name: "t".into(),
            arguments: "{}".into(),
            output: Some(format!("out-{id}")),
            error: None,
            approval_request_id: approval.map(str::to_owned),
        }))
    }

    /// What OpenAI checks: every assistant tool call is answered by a tool
    /// message before the next non-tool message, and no tool message
    /// answers a call that was not made.
    fn assert_valid_sequence(msgs: &[Value]) {
        let mut open: Vec<String> = Vec::new();
        for m in msgs {
            if m["role"] == "tool" {
                let id = m["tool_call_id"].as_str().unwrap().to_owned();
                assert!(open.contains(&id), "unanswerable tool message {m}");
                open.retain(|o| *o != id);
            } else {
                assert!(open.is_empty(), "calls {open:?} unanswered before {m}");
                for call in m["tool_calls"].as_array().into_iter().flatten() {
                    open.push(call["id"].as_str().unwrap().to_owned());
                }
            }
        }
    }

    #[test]
    fn calls_of_one_step_share_one_assistant_message_whatever_their_kind() {
        let out = Item::FunctionCallOutput(FunctionCallOutputItem {
            id: "o".into(),
            status: ItemStatus::Completed,
            call_id: "c1".into(),
            output: json!("client says hi"),
            outcome: None,
        });
        let body = chat_body(&request(vec![
            user("hi"),
            call("c1"),
            mcp_call("m1", None),
            mcp_call("m2", None),
            out,
        ]));
        let msgs = body["messages"].as_array().unwrap();
        assert_valid_sequence(msgs);
        assert_eq!(msgs[2]["tool_calls"].as_array().unwrap().len(), 3);
        assert_eq!(
            msgs[3]["content"], "client says hi",
            "results in call order"
        );
    }

    #[test]
    fn an_approval_never_answered_still_gets_a_result() {
        let approval = Item::McpApprovalRequest(spool_core::item::McpApprovalRequestItem {
            id: "r1".into(),
            status: ItemStatus::Completed,
            server_label: "s".into(),
            name: "t".into(),
            arguments: "{}".into(),
        });
        let declined_unknown =
            Item::McpApprovalResponse(spool_core::item::McpApprovalResponseItem {
                id: "a".into(),
                status: ItemStatus::Completed,
                approval_request_id: "nope".into(),
                approve: false,
                reason: None,
            });
        let body = chat_body(&request(vec![
            user("x"),
            approval,
            user("never mind"),
            declined_unknown,
        ]));
        let msgs = body["messages"].as_array().unwrap();
        assert_valid_sequence(msgs);
        assert_eq!(msgs[3]["content"], "No result: the call was not run.");
        // An approved call's output answers its approval request.
        let approved = chat_body(&request(vec![
            user("x"),
            Item::McpApprovalRequest(spool_core::item::McpApprovalRequestItem {
                id: "r2".into(),
                status: ItemStatus::Completed,
                server_label: "s".into(),
                name: "t".into(),
                arguments: "{}".into(),
            }),
            mcp_call("m9", Some("r2")),
        ]));
        let msgs = approved["messages"].as_array().unwrap();
        assert_valid_sequence(msgs);
        assert_eq!(
            msgs[3],
            json!({"role": "tool", "tool_call_id": "r2", "content": "out-m9"})
        );
    }

    #[test]
    fn tools_and_a_forced_choice_are_mapped() {
        let mut r = request(vec![user("hi")]);
        r.tools = vec![FunctionTool {
            name: "f".into(),
            description: None,
            parameters: None,
            strict: None,
        }];
        r.tool_choice = ToolChoice::Function("f".into());
        r.parallel_tool_calls = false;
        let body = chat_body(&r);
        assert_eq!(body["tools"][0]["function"]["name"], "f");
        assert_eq!(body["tool_choice"]["function"]["name"], "f");
        assert_eq!(body["parallel_tool_calls"], false);
    }

    #[test]
    fn every_client_tool_item_goes_back_as_a_call_and_its_result() {
        let items: Vec<Item> = serde_json::from_value(json!([
            {"type": "message", "id": "msg_1", "status": "completed", "role": "user",
             "content": [{"type": "input_text", "text": "go"}]},
            {"type": "reasoning", "id": "rs_1", "status": "completed", "summary": [],
             "encrypted_content": "opaque"},
            {"type": "web_search_call", "id": "ws_1", "status": "completed"},
            {"type": "function_call", "id": "fc_1", "status": "completed", "call_id": "c1",
             "name": "spawn_agent", "namespace": "multi_agent_v1", "arguments": "{}"},
            {"type": "custom_tool_call", "id": "ctc_1", "status": "completed", "call_id": "c2",
             "name": "apply_patch", "input": "*** Begin"},
            {"type": "local_shell_call", "id": "lsh_1", "status": "completed", "call_id": "c3",
             "action": {"type": "exec", "command": ["ls"]}},
            {"type": "function_call_output", "id": "fco_1", "status": "completed",
             "call_id": "c1", "output": "spawned"},
            {"type": "custom_tool_call_output", "id": "ctco_1", "status": "completed",
             "call_id": "c2", "output": "patched"},
            {"type": "function_call_output", "id": "fco_3", "status": "completed",
             "call_id": "c3", "output": "a.txt"},
            {"type": "item_reference", "id": "msg_1"},
            {"type": "item_reference", "id": "msg_unknown"}
        ]))
        .unwrap();
        let body = chat_body(&request(items));
        assert_eq!(
            body["messages"],
            json!([
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function",
                     "function": {"name": "multi_agent_v1__spawn_agent", "arguments": "{}"}},
                    {"id": "c2", "type": "function",
                     "function": {"name": "apply_patch", "arguments": "{\"input\":\"*** Begin\"}"}},
                    {"id": "c3", "type": "function",
                     "function": {"name": "local_shell", "arguments": "{\"command\":[\"ls\"]}"}}
                ]},
                {"role": "tool", "tool_call_id": "c1", "content": "spawned"},
                {"role": "tool", "tool_call_id": "c2", "content": "patched"},
                {"role": "tool", "tool_call_id": "c3", "content": "a.txt"},
                {"role": "user", "content": "go"}
            ])
        );
    }
}
