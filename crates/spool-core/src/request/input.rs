//! Input items: the forms the Responses API accepts (a bare string, a
//! message given by its `role` alone, string content, items without ids)
//! and their normalization into stored [`Item`]s, each with an id.
//!
//! Each item is read as a typed [`InputItem`] (and each content part as a
//! [`ContentPartParam`]) through [`deserialize_tagged`], so an error names
//! its parameter exactly, e.g. `input[2].content[0].image_url`.

use super::RequestError;
use super::deserialize::{deserialize_at, deserialize_tagged, take_tag};
use crate::ids::IdSource;
use crate::item::{
    CompactionItem, ContentPart, CustomToolCallItem, CustomToolCallOutputItem, FunctionCallItem,
    FunctionCallOutputItem, Item, ItemReferenceItem, ItemStatus, LocalShellCallItem,
    McpApprovalRequestItem, McpApprovalResponseItem, McpCallItem, McpListToolsItem, McpToolInfo,
    MessageItem, MessagePhase, ReasoningItem, Role, SummaryText, WebSearchCallItem,
};
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::fmt;

/// Normalizes `input`: a string is one user message; an array is a list of
/// items in any of the forms the Responses API accepts.
pub fn normalize_input(input: Value, ids: &dyn IdSource) -> Result<Vec<Item>, RequestError> {
    match input {
        Value::String(text) => Ok(vec![Item::Message(MessageItem {
            id: ids.new_id("msg"),
            status: ItemStatus::Completed,
            role: Role::User,
            content: vec![ContentPart::InputText { text }],
            phase: None,
        })]),
        Value::Array(items) => normalize_items(items, "input", ids),
        _ => Err(RequestError::invalid(
            "input",
            "input must be a string or an array of items.",
        )),
    }
}

/// Normalizes a list of items given as the request field `field` (errors
/// name `field[i]…`); item ids must be unique, as they are paging cursors.
/// Items without an id get one from `ids`.
pub fn normalize_items(
    items: Vec<Value>,
    field: &str,
    ids: &dyn IdSource,
) -> Result<Vec<Item>, RequestError> {
    let items: Vec<Item> = items
        .into_iter()
        .enumerate()
        .map(|(i, v)| normalize_item(v, &format!("{field}[{i}]"), ids))
        .collect::<Result<_, _>>()?;
    let mut seen = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        // A reference bears the id of the item it stands for.
        if !matches!(item, Item::ItemReference(_)) && !seen.insert(item.id()) {
            return Err(RequestError::invalid(
                format!("{field}[{i}].id"),
                format!("Duplicate item id '{}' in {field}.", item.id()),
            ));
        }
    }
    Ok(items)
}

/// One input item as the request gives it, by its `type`; ids and statuses
/// are read apart (every input item is stored `completed`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum InputItem {
    Message(MessageParam),
    FunctionCall(FunctionCallParam),
    FunctionCallOutput(FunctionCallOutputParam),
    Reasoning(ReasoningParam),
    McpListTools(McpListToolsParam),
    McpCall(McpCallParam),
    McpApprovalRequest(McpApprovalRequestParam),
    McpApprovalResponse(McpApprovalResponseParam),
    CustomToolCall(CustomToolCallParam),
    CustomToolCallOutput(CustomToolCallOutputParam),
    LocalShellCall(LocalShellCallParam),
    WebSearchCall(WebSearchCallParam),
    ItemReference {},
    Compaction(CompactionParam),
}

#[derive(Debug, Deserialize)]
struct CompactionParam {
    encrypted_content: String,
}

#[derive(Debug, Deserialize)]
struct CustomToolCallParam {
    call_id: String,
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    input: String,
}

#[derive(Debug, Deserialize)]
struct CustomToolCallOutputParam {
    call_id: String,
    output: FunctionOutput,
}

#[derive(Debug, Deserialize)]
struct LocalShellCallParam {
    call_id: String,
    action: LocalShellAction,
}

/// A `local_shell_call`'s action: an object, `{"type": "exec", …}`.
#[derive(Debug)]
struct LocalShellAction(Value);

impl<'de> Deserialize<'de> for LocalShellAction {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            action @ Value::Object(_) => Ok(LocalShellAction(action)),
            _ => Err(de::Error::custom("action must be an object")),
        }
    }
}

#[derive(Debug, Deserialize)]
struct WebSearchCallParam {
    #[serde(default)]
    action: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct MessageParam {
    role: Role,
    /// Kept on assistant messages only: it labels nothing else.
    #[serde(default)]
    phase: Option<MessagePhase>,
    content: MessageContent,
}

/// A message's content: a string, or content parts (read one by one, as
/// they are tagged unions).
#[derive(Debug)]
enum MessageContent {
    Text(String),
    Parts(Vec<Map<String, Value>>),
}

#[derive(Debug, Deserialize)]
struct FunctionCallParam {
    call_id: String,
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    arguments: String,
}

#[derive(Debug, Deserialize)]
struct FunctionCallOutputParam {
    call_id: String,
    output: FunctionOutput,
}

/// A function call's output: a string or an array of content parts, kept
/// as given.
#[derive(Debug)]
struct FunctionOutput(Value);

#[derive(Debug, Deserialize)]
struct ReasoningParam {
    #[serde(default)]
    summary: Vec<SummaryText>,
    #[serde(default)]
    content: Vec<Map<String, Value>>,
    #[serde(default)]
    encrypted_content: Option<String>,
}

#[derive(Debug, Deserialize)]
struct McpListToolsParam {
    server_label: String,
    #[serde(default)]
    tools: Vec<McpToolInfo>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct McpCallParam {
    server_label: String,
    name: String,
    arguments: String,
    #[serde(default)]
    output: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    approval_request_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct McpApprovalRequestParam {
    server_label: String,
    name: String,
    arguments: String,
}

#[derive(Debug, Deserialize)]
struct McpApprovalResponseParam {
    approval_request_id: String,
    approve: bool,
    #[serde(default)]
    reason: Option<String>,
}

/// A content part as the request gives it, by its `type`: the externally
/// tagged twin of [`ContentPart`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ContentPartParam {
    InputText {
        text: String,
    },
    InputImage {
        #[serde(default)]
        detail: Option<String>,
        #[serde(default)]
        file_id: Option<String>,
        #[serde(default)]
        image_url: Option<String>,
    },
    InputFile {
        #[serde(default)]
        file_id: Option<String>,
        #[serde(default)]
        file_data: Option<String>,
        #[serde(default)]
        file_url: Option<String>,
        #[serde(default)]
        filename: Option<String>,
    },
    OutputText {
        text: String,
        #[serde(default)]
        annotations: Vec<Value>,
        #[serde(default)]
        logprobs: Vec<Value>,
    },
    Refusal {
        refusal: String,
    },
    ReasoningText {
        text: String,
    },
}

const CONTENT_PART_TYPES: &str =
    "input_text, input_image, input_file, output_text, refusal or reasoning_text";

impl From<ContentPartParam> for ContentPart {
    fn from(part: ContentPartParam) -> Self {
        match part {
            ContentPartParam::InputText { text } => ContentPart::InputText { text },
            ContentPartParam::InputImage {
                detail,
                file_id,
                image_url,
            } => ContentPart::InputImage {
                detail: detail.unwrap_or_else(|| "auto".to_owned()),
                file_id,
                image_url,
            },
            ContentPartParam::InputFile {
                file_id,
                file_data,
                file_url,
                filename,
            } => ContentPart::InputFile {
                file_id,
                file_data,
                file_url,
                filename,
            },
            ContentPartParam::OutputText {
                text,
                annotations,
                logprobs,
            } => ContentPart::OutputText {
                text,
                annotations,
                logprobs,
            },
            ContentPartParam::Refusal { refusal } => ContentPart::Refusal { refusal },
            ContentPartParam::ReasoningText { text } => ContentPart::ReasoningText { text },
        }
    }
}

fn normalize_item(value: Value, at: &str, ids: &dyn IdSource) -> Result<Item, RequestError> {
    let Value::Object(mut fields) = value else {
        return Err(RequestError::invalid(
            at,
            format!("{at} must be an object."),
        ));
    };
    let implied = fields.contains_key("role").then_some("message");
    let tag = take_tag(&mut fields, at, implied)?;
    let id = match fields.remove("id") {
        None | Some(Value::Null) => None,
        Some(id) => Some(deserialize_at::<InputItemId>(id, &format!("{at}.id"))?.0),
    };
    // Input is history: whatever status the caller names, it is complete.
    fields.remove("status");
    let Some(item) = deserialize_tagged::<InputItem>(&tag, fields, at)? else {
        return Err(RequestError::unsupported(
            format!("{at}.type"),
            format!("Input items of type '{tag}' are not supported by this server."),
        ));
    };
    item.into_item(id, at, ids)
}

/// An item id a caller chose.
#[derive(Debug)]
struct InputItemId(String);

impl<'de> Deserialize<'de> for InputItemId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = String::deserialize(deserializer)?;
        crate::ids::parse_item_id(&id)
            .map(InputItemId)
            .map_err(|e| de::Error::custom(format!("not an item id: {e}")))
    }
}

impl InputItem {
    /// The stored item; `id` is the caller's, or a new one.
    fn into_item(
        self,
        id: Option<String>,
        at: &str,
        ids: &dyn IdSource,
    ) -> Result<Item, RequestError> {
        let id_given = id.clone();
        // The caller's id, or a new one with the prefix of the item's kind.
        let id = move |prefix: &str| id.unwrap_or_else(|| ids.new_id(prefix));
        let status = ItemStatus::Completed;
        Ok(match self {
            InputItem::Message(MessageParam {
                role,
                phase,
                content,
            }) => {
                let content = match content {
                    MessageContent::Text(text) if role == Role::Assistant => {
                        vec![ContentPart::OutputText {
                            text,
                            annotations: Vec::new(),
                            logprobs: Vec::new(),
                        }]
                    }
                    MessageContent::Text(text) => vec![ContentPart::InputText { text }],
                    MessageContent::Parts(parts) => content_parts(parts, &format!("{at}.content"))?,
                };
                Item::Message(MessageItem {
                    id: id("msg"),
                    status,
                    role,
                    content,
                    phase: phase.filter(|_| role == Role::Assistant),
                })
            }
            InputItem::FunctionCall(FunctionCallParam {
                call_id,
                name,
                namespace,
                arguments,
            }) => Item::FunctionCall(FunctionCallItem {
                id: id("fc"),
                status,
                call_id,
                name,
                namespace,
                arguments,
            }),
            InputItem::CustomToolCall(CustomToolCallParam {
                call_id,
                name,
                namespace,
                input,
            }) => Item::CustomToolCall(CustomToolCallItem {
                id: id("ctc"),
                status,
                call_id,
                name,
                namespace,
                input,
            }),
            InputItem::CustomToolCallOutput(CustomToolCallOutputParam { call_id, output }) => {
                Item::CustomToolCallOutput(CustomToolCallOutputItem {
                    id: id("ctco"),
                    status,
                    call_id,
                    output: output.0,
                })
            }
            InputItem::LocalShellCall(LocalShellCallParam { call_id, action }) => {
                Item::LocalShellCall(LocalShellCallItem {
                    id: id("lsh"),
                    status,
                    call_id,
                    action: action.0,
                })
            }
            InputItem::WebSearchCall(WebSearchCallParam { action }) => {
                Item::WebSearchCall(WebSearchCallItem {
                    id: id("ws"),
                    status,
                    action,
                })
            }
            InputItem::Compaction(CompactionParam { encrypted_content }) => {
                Item::Compaction(CompactionItem {
                    id: id("cmp"),
                    encrypted_content,
                    summary: None,
                })
            }
            // A reference is its id: without one it stands for nothing.
            InputItem::ItemReference {} => match id_given {
                Some(referenced) => Item::ItemReference(ItemReferenceItem { id: referenced }),
                None => return Err(RequestError::missing(format!("{at}.id"))),
            },
            InputItem::FunctionCallOutput(FunctionCallOutputParam { call_id, output }) => {
                Item::FunctionCallOutput(FunctionCallOutputItem {
                    id: id("fco"),
                    status,
                    call_id,
                    output: output.0,
                    outcome: None,
                })
            }
            InputItem::Reasoning(ReasoningParam {
                summary,
                content,
                encrypted_content,
            }) => Item::Reasoning(ReasoningItem {
                id: id("rs"),
                status,
                summary,
                content: content_parts(content, &format!("{at}.content"))?,
                encrypted_content,
            }),
            InputItem::McpListTools(McpListToolsParam {
                server_label,
                tools,
                error,
            }) => Item::McpListTools(Box::new(McpListToolsItem {
                id: id("mcpl"),
                status,
                server_label,
                tools,
                error,
            })),
            InputItem::McpCall(McpCallParam {
                server_label,
                name,
                arguments,
                output,
                error,
                approval_request_id,
            }) => Item::McpCall(Box::new(McpCallItem {
                id: id("mcp"),
                status,
                server_label,
                name,
                arguments,
                output,
                error,
                approval_request_id,
            })),
            InputItem::McpApprovalRequest(McpApprovalRequestParam {
                server_label,
                name,
                arguments,
            }) => Item::McpApprovalRequest(McpApprovalRequestItem {
                id: id("mcpr"),
                status,
                server_label,
                name,
                arguments,
            }),
            InputItem::McpApprovalResponse(McpApprovalResponseParam {
                approval_request_id,
                approve,
                reason,
            }) => Item::McpApprovalResponse(McpApprovalResponseItem {
                id: id("mcpa"),
                status,
                approval_request_id,
                approve,
                reason,
            }),
        })
    }
}

/// Reads content parts given as the field `at`.
fn content_parts(
    parts: Vec<Map<String, Value>>,
    at: &str,
) -> Result<Vec<ContentPart>, RequestError> {
    parts
        .into_iter()
        .enumerate()
        .map(|(j, mut fields)| {
            let at = format!("{at}[{j}]");
            let tag = take_tag(&mut fields, &at, None)?;
            match deserialize_tagged::<ContentPartParam>(&tag, fields, &at)? {
                Some(part) => Ok(part.into()),
                None => Err(RequestError::invalid(
                    format!("{at}.type"),
                    format!(
                        "Invalid content part type '{tag}' at {at}: expected {CONTENT_PART_TYPES}."
                    ),
                )),
            }
        })
        .collect()
}

impl<'de> Deserialize<'de> for MessageContent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ContentVisitor;

        impl<'de> Visitor<'de> for ContentVisitor {
            type Value = MessageContent;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of content parts")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<MessageContent, E> {
                Ok(MessageContent::Text(text.to_owned()))
            }

            fn visit_string<E: de::Error>(self, text: String) -> Result<MessageContent, E> {
                Ok(MessageContent::Text(text))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MessageContent, A::Error> {
                let mut parts = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                // Each element is read as an object here (its path is
                // tracked), and as a content part by `content_parts`.
                while let Some(part) = seq.next_element()? {
                    parts.push(part);
                }
                Ok(MessageContent::Parts(parts))
            }
        }

        deserializer.deserialize_any(ContentVisitor)
    }
}

impl<'de> Deserialize<'de> for FunctionOutput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            output @ (Value::String(_) | Value::Array(_)) => Ok(FunctionOutput(output)),
            _ => Err(de::Error::custom(
                "output must be a string or an array of content parts",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SequentialIds;
    use serde_json::json;

    fn error(input: Value) -> RequestError {
        normalize_input(input, &SequentialIds::default()).unwrap_err()
    }

    #[test]
    fn an_assistant_messages_phase_is_kept_and_read_back_as_sent() {
        let input = json!([
            {"type": "message", "role": "assistant", "phase": "commentary", "content": "checking"},
            {"type": "message", "role": "assistant", "phase": "final_answer",
             "content": [{"type": "output_text", "text": "four", "annotations": []}]},
            {"type": "message", "role": "assistant", "content": "no phase"},
            // It labels only assistant messages.
            {"type": "message", "role": "user", "phase": "commentary", "content": "x"},
        ]);
        let items = normalize_input(input, &SequentialIds::default()).unwrap();
        let phases: Vec<Value> = items
            .iter()
            .map(|i| serde_json::to_value(i).unwrap()["phase"].clone())
            .collect();
        assert_eq!(
            phases,
            [
                json!("commentary"),
                json!("final_answer"),
                Value::Null,
                Value::Null
            ]
        );
        let e = error(json!([{"role": "assistant", "phase": "musing", "content": "x"}]));
        assert_eq!(e.param.as_deref(), Some("input[0].phase"));
    }

    #[test]
    fn a_bad_field_of_a_content_part_is_named_by_its_full_path() {
        let e = error(json!([
            {"role": "user", "content": "x"},
            {"role": "user", "content": "y"},
            {"role": "user", "content": [{"type": "input_image", "image_url": 5}]}
        ]));
        assert_eq!(e.param.as_deref(), Some("input[2].content[0].image_url"));
        assert_eq!(e.code, "invalid_value");
    }

    #[test]
    fn a_content_part_of_an_unknown_or_missing_type_is_named() {
        let e = error(
            json!([{"role": "user", "content": [{"type": "input_text", "text": "a"}, {"type": "nope"}]}]),
        );
        assert_eq!(e.param.as_deref(), Some("input[0].content[1].type"));
        assert!(e.message.contains("'nope'"), "{}", e.message);
        let e = error(json!([{"role": "user", "content": [{"text": "a"}]}]));
        assert_eq!(e.param.as_deref(), Some("input[0].content[0].type"));
        assert_eq!(e.code, "missing_required_parameter");
        let e = error(json!([{"role": "user", "content": ["a"]}]));
        assert_eq!(e.param.as_deref(), Some("input[0].content[0]"));
    }

    #[test]
    fn a_missing_field_of_an_item_is_named() {
        let e = error(json!([{"type": "function_call_output", "output": "x"}]));
        assert_eq!(e.param.as_deref(), Some("input[0].call_id"));
        assert_eq!(e.code, "missing_required_parameter");
        assert_eq!(e.message, "Missing required parameter: 'input[0].call_id'.");
        let e = error(json!([{"type": "message", "content": "x"}]));
        assert_eq!(e.param.as_deref(), Some("input[0].role"));
    }

    #[test]
    fn nested_errors_in_mcp_and_reasoning_items_keep_their_path() {
        let e = error(json!([{"type": "mcp_list_tools", "server_label": "s",
            "tools": [{"name": "a", "input_schema": {}}, {"input_schema": {}}]}]));
        assert_eq!(e.param.as_deref(), Some("input[0].tools[1].name"));
        let e = error(json!([{"type": "reasoning",
            "content": [{"type": "reasoning_text", "text": 1}]}]));
        assert_eq!(e.param.as_deref(), Some("input[0].content[0].text"));
        let e = error(json!([{"type": "mcp_approval_response",
            "approval_request_id": "mcpr_1", "approve": "yes"}]));
        assert_eq!(e.param.as_deref(), Some("input[0].approve"));
    }

    #[test]
    fn bad_roles_ids_types_and_outputs_are_named() {
        let e = error(json!([{"role": "robot", "content": "x"}]));
        assert_eq!(e.param.as_deref(), Some("input[0].role"));
        assert!(e.message.contains("robot"), "{}", e.message);
        let e = error(json!([{"role": "user", "content": "x", "id": "a/b"}]));
        assert_eq!(e.param.as_deref(), Some("input[0].id"));
        let e = error(json!([{"type": "compaction"}]));
        assert_eq!(e.param.as_deref(), Some("input[0].encrypted_content"));
        let e = error(json!([{"type": "computer_call_output"}]));
        assert_eq!(e.param.as_deref(), Some("input[0].type"));
        assert_eq!(e.code, "unsupported_parameter");
        let e = error(json!([{"content": "x"}]));
        assert_eq!(e.param.as_deref(), Some("input[0].type"));
        let e = error(json!([{"type": "function_call_output", "call_id": "c", "output": 5}]));
        assert_eq!(e.param.as_deref(), Some("input[0].output"));
        let e = error(json!([{"role": "user", "content": null}]));
        assert_eq!(e.param.as_deref(), Some("input[0].content"));
        assert_eq!(error(json!([5])).param.as_deref(), Some("input[0]"));
        assert_eq!(error(json!(5)).param.as_deref(), Some("input"));
    }

    #[test]
    fn every_item_kind_is_normalized_completed_with_an_id_of_its_kind() {
        let items = normalize_input(json!([
            {"type": "message", "role": "user", "status": "in_progress",
             "content": [{"type": "input_image", "image_url": "https://i/x.png"}]},
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c", "output": [{"type": "input_text", "text": "t"}]},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "s"}]},
            {"type": "mcp_list_tools", "server_label": "s", "tools": []},
            {"type": "mcp_call", "server_label": "s", "name": "n", "arguments": "{}"},
            {"type": "mcp_approval_request", "server_label": "s", "name": "n", "arguments": "{}"},
            {"type": "mcp_approval_response", "id": "mcpa_mine", "approval_request_id": "r", "approve": true}
        ]), &SequentialIds::default())
        .unwrap();
        let prefixes: Vec<&str> = items
            .iter()
            .map(|i| i.id().split('_').next().unwrap_or_default())
            .collect();
        assert_eq!(
            prefixes,
            ["msg", "fc", "fco", "rs", "mcpl", "mcp", "mcpr", "mcpa"]
        );
        assert_eq!(items[7].id(), "mcpa_mine");
        assert!(items.iter().all(|i| i.status() == ItemStatus::Completed));
        assert_eq!(
            items[0].content(),
            [ContentPart::InputImage {
                detail: "auto".into(),
                file_id: None,
                image_url: Some("https://i/x.png".into())
            }]
        );
    }

    #[test]
    fn the_items_of_client_and_hosted_tools_are_accepted() {
        let items = normalize_input(
            json!([
                {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "p"},
                {"type": "custom_tool_call_output", "call_id": "c1", "output": "done"},
                {"type": "local_shell_call", "call_id": "c2", "status": "completed",
                 "action": {"type": "exec", "command": ["ls"]}},
                {"type": "web_search_call", "status": "completed",
                 "action": {"type": "search", "query": "q"}},
                {"type": "reasoning", "summary": [], "encrypted_content": "sealed"},
                {"type": "function_call", "call_id": "c3", "name": "spawn_agent",
                 "namespace": "multi_agent_v1", "arguments": "{}"},
                {"type": "item_reference", "id": "msg_earlier"}
            ]),
            &SequentialIds::default(),
        )
        .unwrap();
        let kinds: Vec<Value> = items
            .iter()
            .map(|i| serde_json::to_value(i).unwrap()["type"].clone())
            .collect();
        assert_eq!(
            kinds,
            json!([
                "custom_tool_call",
                "custom_tool_call_output",
                "local_shell_call",
                "web_search_call",
                "reasoning",
                "function_call",
                "item_reference"
            ])
            .as_array()
            .unwrap()
            .clone()
        );
        let Item::Reasoning(r) = &items[4] else {
            panic!()
        };
        assert_eq!(r.encrypted_content.as_deref(), Some("sealed"));
        let Item::FunctionCall(f) = &items[5] else {
            panic!()
        };
        assert_eq!(f.namespace.as_deref(), Some("multi_agent_v1"));
        assert_eq!(
            items[6],
            Item::ItemReference(crate::item::ItemReferenceItem {
                id: "msg_earlier".into()
            })
        );
    }

    #[test]
    fn bad_client_tool_items_are_named() {
        let e = error(json!([{"type": "item_reference"}]));
        assert_eq!(e.param.as_deref(), Some("input[0].id"));
        assert_eq!(e.code, "missing_required_parameter");
        let e = error(json!([{"type": "local_shell_call", "call_id": "c", "action": "ls"}]));
        assert_eq!(e.param.as_deref(), Some("input[0].action"));
        let e = error(json!([{"type": "custom_tool_call", "call_id": "c", "name": "n"}]));
        assert_eq!(e.param.as_deref(), Some("input[0].input"));
    }
}
