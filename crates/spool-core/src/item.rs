//! Conversation items in the normalized form spool stores and serves.
//!
//! Input items arrive in many shorthand forms (a bare string, a message with
//! string content, items without ids); [`crate::request`] normalizes them into
//! these types, so stored input and model output share one shape and every
//! item has an id. The serialization is the Responses API's item schema.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One item of a conversation: input the caller sent or output a run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Item {
    Message(MessageItem),
    FunctionCall(FunctionCallItem),
    FunctionCallOutput(FunctionCallOutputItem),
    Reasoning(ReasoningItem),
    // Boxed: the largest kinds, rare beside messages and deltas, would
    // otherwise size every event.
    McpListTools(Box<McpListToolsItem>),
    McpCall(Box<McpCallItem>),
    McpApprovalRequest(McpApprovalRequestItem),
    McpApprovalResponse(McpApprovalResponseItem),
    /// A server-side tool call spool made (an MCP tool or one hosted in
    /// Rust). Only in logs: the Responses API shows it as an `mcp_call`.
    ToolCall(Box<ToolCallItem>),
    /// A call of a caller's `custom` tool: freeform text, not JSON.
    CustomToolCall(CustomToolCallItem),
    /// The caller's result for a custom tool call.
    CustomToolCallOutput(CustomToolCallOutputItem),
    /// A command the model asked the caller's `local_shell` tool to run;
    /// its result comes back as a `function_call_output` with its `call_id`.
    LocalShellCall(LocalShellCallItem),
    /// A web search a hosted API made, sent back as history. spool keeps it
    /// but shows the model nothing of it: its findings are in the messages.
    WebSearchCall(WebSearchCallItem),
    /// An input item standing for an earlier item, by its id.
    ItemReference(ItemReferenceItem),
    /// Everything a `POST /v1/responses/compact` summarised: the summary,
    /// sealed by the server that made it.
    Compaction(CompactionItem),
}

impl Item {
    pub fn id(&self) -> &str {
        match self {
            Item::Message(m) => &m.id,
            Item::FunctionCall(f) => &f.id,
            Item::FunctionCallOutput(o) => &o.id,
            Item::Reasoning(r) => &r.id,
            Item::McpListTools(l) => &l.id,
            Item::McpCall(c) => &c.id,
            Item::McpApprovalRequest(r) => &r.id,
            Item::McpApprovalResponse(r) => &r.id,
            Item::ToolCall(c) => &c.id,
            Item::CustomToolCall(c) => &c.id,
            Item::CustomToolCallOutput(o) => &o.id,
            Item::LocalShellCall(c) => &c.id,
            Item::WebSearchCall(w) => &w.id,
            Item::ItemReference(r) => &r.id,
            Item::Compaction(c) => &c.id,
        }
    }

    pub fn status(&self) -> ItemStatus {
        match self {
            Item::Message(m) => m.status,
            Item::FunctionCall(f) => f.status,
            Item::FunctionCallOutput(o) => o.status,
            Item::Reasoning(r) => r.status,
            Item::McpListTools(l) => l.status,
            Item::McpCall(c) => c.status,
            Item::McpApprovalRequest(r) => r.status,
            Item::McpApprovalResponse(r) => r.status,
            Item::ToolCall(c) => c.status,
            Item::CustomToolCall(c) => c.status,
            Item::CustomToolCallOutput(o) => o.status,
            Item::LocalShellCall(c) => c.status,
            Item::WebSearchCall(w) => w.status,
            // A reference has no life of its own: it is input, complete.
            Item::ItemReference(_) | Item::Compaction(_) => ItemStatus::Completed,
        }
    }

    /// Whether the item goes through `in_progress` to an end status. One
    /// that does not (a reference, a compaction) is whole the moment it
    /// exists, even as it is written out.
    pub fn has_lifecycle(&self) -> bool {
        !matches!(self, Item::ItemReference(_) | Item::Compaction(_))
    }

    pub(crate) fn set_status(&mut self, status: ItemStatus) {
        match self {
            Item::Message(m) => m.status = status,
            Item::FunctionCall(f) => f.status = status,
            Item::FunctionCallOutput(o) => o.status = status,
            Item::Reasoning(r) => r.status = status,
            Item::McpListTools(l) => l.status = status,
            Item::McpCall(c) => c.status = status,
            Item::McpApprovalRequest(r) => r.status = status,
            Item::McpApprovalResponse(r) => r.status = status,
            Item::ToolCall(c) => c.status = status,
            Item::CustomToolCall(c) => c.status = status,
            Item::CustomToolCallOutput(o) => o.status = status,
            Item::LocalShellCall(c) => c.status = status,
            Item::WebSearchCall(w) => w.status = status,
            Item::ItemReference(_) | Item::Compaction(_) => {}
        }
    }

    /// The item's content parts, for the kinds that have them.
    pub(crate) fn content_mut(&mut self) -> Option<&mut Vec<ContentPart>> {
        match self {
            Item::Message(m) => Some(&mut m.content),
            Item::Reasoning(r) => Some(&mut r.content),
            _ => None,
        }
    }

    pub fn content(&self) -> &[ContentPart] {
        match self {
            Item::Message(m) => &m.content,
            Item::Reasoning(r) => &r.content,
            _ => &[],
        }
    }

    /// The `call_id` of a call the caller runs and answers: a function,
    /// custom tool or local shell call.
    pub fn client_call_id(&self) -> Option<&str> {
        match self {
            Item::FunctionCall(c) => Some(&c.call_id),
            Item::CustomToolCall(c) => Some(&c.call_id),
            Item::LocalShellCall(c) => Some(&c.call_id),
            _ => None,
        }
    }

    /// The `call_id` a caller's tool result answers.
    pub fn answered_call_id(&self) -> Option<&str> {
        match self {
            Item::FunctionCallOutput(o) => Some(&o.call_id),
            Item::CustomToolCallOutput(o) => Some(&o.call_id),
            _ => None,
        }
    }

    /// An empty in-progress assistant message, as a run opens one.
    pub fn assistant_message(id: String) -> Self {
        Item::Message(MessageItem {
            id,
            status: ItemStatus::InProgress,
            role: Role::Assistant,
            content: Vec::new(),
            phase: None,
        })
    }

    /// An in-progress function call with no arguments yet.
    pub fn function_call(id: String, call_id: impl Into<String>, name: impl Into<String>) -> Self {
        Item::FunctionCall(FunctionCallItem {
            id,
            status: ItemStatus::InProgress,
            call_id: call_id.into(),
            name: name.into(),
            namespace: None,
            arguments: String::new(),
        })
    }

    /// An empty in-progress reasoning item.
    pub fn reasoning(id: String) -> Self {
        Item::Reasoning(ReasoningItem {
            id,
            status: ItemStatus::InProgress,
            summary: Vec::new(),
            content: Vec::new(),
            encrypted_content: None,
        })
    }
}

/// A call of a tool that spool runs itself, logged when it starts; its
/// result arrives with `tool.finished`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallItem {
    pub id: String,
    pub status: ItemStatus,
    /// The model's own id for the call.
    pub call_id: String,
    /// The tool's name where it lives (the model may know it under a
    /// prefixed name when two servers offer the same one).
    pub name: String,
    /// The label of the MCP server that runs it; `None` for a tool spool
    /// hosts in Rust.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The arguments, a JSON document in a string.
    pub arguments: String,
    /// The approval request this call answers, when one was needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_request_id: Option<String>,
    /// How the call ended; `None` while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<crate::tool::ToolResult>,
}

/// The tools an MCP server offers, as listed at the start of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McpListToolsItem {
    pub id: String,
    #[serde(default = "completed")]
    pub status: ItemStatus,
    pub server_label: String,
    #[serde(default)]
    pub tools: Vec<McpToolInfo>,
    /// Why the tools could not be listed; omitted, not `null`, when they
    /// were (strict clients refuse `null`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One tool of an MCP server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McpToolInfo {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    pub input_schema: Value,
    /// Omitted, not `null`, when the server gave none (strict clients
    /// refuse `null`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Value>,
}

/// A call of an MCP tool that spool made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McpCallItem {
    pub id: String,
    #[serde(default = "completed")]
    pub status: ItemStatus,
    pub server_label: String,
    pub name: String,
    /// The arguments, a JSON document in a string.
    pub arguments: String,
    #[serde(default)]
    pub output: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    /// The approval request this call answers, when one was needed.
    #[serde(default)]
    pub approval_request_id: Option<String>,
}

/// A call of an MCP tool waiting for the caller's approval; the run ends
/// with it, and the caller answers with an `mcp_approval_response`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McpApprovalRequestItem {
    pub id: String,
    #[serde(default = "completed")]
    pub status: ItemStatus,
    pub server_label: String,
    pub name: String,
    pub arguments: String,
}

/// The caller's answer to an approval request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McpApprovalResponseItem {
    pub id: String,
    #[serde(default = "completed")]
    pub status: ItemStatus,
    pub approval_request_id: String,
    pub approve: bool,
    #[serde(default)]
    pub reason: Option<String>,
}

fn completed() -> ItemStatus {
    ItemStatus::Completed
}

/// Where an item is in its own life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    InProgress,
    Completed,
    Incomplete,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
    System,
    Developer,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageItem {
    pub id: String,
    pub status: ItemStatus,
    pub role: Role,
    pub content: Vec<ContentPart>,
    /// What an assistant message was, as the caller labelled it in its
    /// input: kept so the history reads back as it was sent (models such
    /// as gpt-5.3-codex want it resent). spool's own output has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<MessagePhase>,
}

/// The `phase` of an assistant message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessagePhase {
    /// Intermediate commentary, between tool calls.
    Commentary,
    /// The final answer of a turn.
    FinalAnswer,
}

impl MessageItem {
    /// The message's text: `input_text`/`output_text` parts joined, other parts
    /// skipped.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for part in &self.content {
            if let Some(t) = part.text() {
                out.push_str(t);
            }
        }
        out
    }
}

/// A call of a function tool that the model asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallItem {
    pub id: String,
    pub status: ItemStatus,
    /// Pairs the call with the caller's `function_call_output`.
    pub call_id: String,
    pub name: String,
    /// The `namespace` tool the function belongs to, if it is in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The arguments as the model wrote them: a JSON document in a string.
    pub arguments: String,
}

/// A call of a caller's `custom` tool: its input is freeform text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomToolCallItem {
    pub id: String,
    pub status: ItemStatus,
    /// Pairs the call with the caller's `custom_tool_call_output`.
    pub call_id: String,
    pub name: String,
    /// The `namespace` tool the custom tool belongs to, if it is in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub input: String,
}

/// The caller's result for a custom tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomToolCallOutputItem {
    pub id: String,
    #[serde(default = "completed")]
    pub status: ItemStatus,
    pub call_id: String,
    /// A string, or an array of input content parts.
    pub output: Value,
}

/// A command for the caller's `local_shell` tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalShellCallItem {
    pub id: String,
    pub status: ItemStatus,
    /// Pairs the call with the caller's `function_call_output`.
    pub call_id: String,
    /// `{"type": "exec", "command": [...], …}`, as the Responses API shapes it.
    pub action: Value,
}

/// A web search made by a hosted API, kept as the caller sent it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebSearchCallItem {
    pub id: String,
    #[serde(default = "completed")]
    pub status: ItemStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Value>,
}

/// A compacted stretch of conversation: its summary, sealed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactionItem {
    pub id: String,
    /// The summary, sealed by the server that made it; only it can open it.
    pub encrypted_content: String,
    /// The summary, once the server opened it for a model call. Never
    /// stored nor shown: the item is kept as the client sent it.
    #[serde(skip)]
    pub summary: Option<String>,
}

/// An input item that stands for an earlier item of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemReferenceItem {
    /// The id of the item it stands for.
    pub id: String,
}

impl CustomToolCallOutputItem {
    /// The output as text: a string as is, the text parts of an array joined.
    pub fn output_text(&self) -> String {
        output_text(&self.output)
    }
}

/// The caller's result for a function call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallOutputItem {
    pub id: String,
    pub status: ItemStatus,
    pub call_id: String,
    /// A string, or an array of input content parts.
    pub output: Value,
    /// How the caller's run of the tool ended, when its client reports it
    /// (roboto's client tools send a status and a runtime with each result).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<ClientToolOutcome>,
}

impl FunctionCallOutputItem {
    /// The output as text for a model that only takes strings: a string as
    /// is, the text parts of an array joined. A result the client reports
    /// as failed or declined says so first, so the model reads it as such.
    pub fn output_text(&self) -> String {
        let text = output_text(&self.output);
        match self.outcome.as_ref().map(|o| o.status) {
            None | Some(ClientToolStatus::Success) => text,
            Some(status) => format!("The tool call {}: {text}", status.told()),
        }
    }
}

/// A client's report of how its run of a tool ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientToolOutcome {
    pub status: ClientToolStatus,
    /// Wall-clock time the client's tool ran.
    pub runtime_ms: u64,
}

/// How a client's run of a tool ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientToolStatus {
    Success,
    Error,
    /// The client (or its user) refused to run the tool.
    Declined,
}

impl ClientToolStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientToolStatus::Success => "success",
            ClientToolStatus::Error => "error",
            ClientToolStatus::Declined => "declined",
        }
    }

    /// How the model is told a result that is not a success.
    fn told(self) -> &'static str {
        match self {
            ClientToolStatus::Success => "succeeded",
            ClientToolStatus::Error => "failed",
            ClientToolStatus::Declined => "was declined by the client",
        }
    }
}

/// A tool's output as text for a model that only takes strings: a string as
/// is, the text parts of an array joined.
fn output_text(output: &Value) -> String {
    match output {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        other => other.to_string(),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReasoningItem {
    pub id: String,
    pub status: ItemStatus,
    #[serde(default)]
    pub summary: Vec<SummaryText>,
    #[serde(default)]
    pub content: Vec<ContentPart>,
    /// Omitted, not `null`, when there is none: the OpenAI API leaves it out
    /// unless `include` asks for it, and the Open Responses schema allows
    /// only a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_content: Option<String>,
}

/// One part of a reasoning summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "summary_text")]
pub struct SummaryText {
    pub text: String,
}

/// A content part of a message or reasoning item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    InputText {
        text: String,
    },
    InputImage {
        #[serde(default = "default_detail")]
        detail: String,
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

fn default_detail() -> String {
    "auto".to_owned()
}

impl ContentPart {
    /// The part's text, for the kinds that carry text the model wrote or read.
    pub fn text(&self) -> Option<&str> {
        match self {
            ContentPart::InputText { text }
            | ContentPart::OutputText { text, .. }
            | ContentPart::ReasoningText { text } => Some(text),
            ContentPart::Refusal { refusal } => Some(refusal),
            ContentPart::InputImage { .. } | ContentPart::InputFile { .. } => None,
        }
    }

    /// Which streamed kind this part is, if it is one a run streams.
    pub fn kind(&self) -> Option<PartKind> {
        match self {
            ContentPart::OutputText { .. } => Some(PartKind::OutputText),
            ContentPart::Refusal { .. } => Some(PartKind::Refusal),
            ContentPart::ReasoningText { .. } => Some(PartKind::ReasoningText),
            _ => None,
        }
    }

    pub(crate) fn push_text(&mut self, delta: &str) {
        match self {
            ContentPart::InputText { text }
            | ContentPart::OutputText { text, .. }
            | ContentPart::ReasoningText { text } => text.push_str(delta),
            ContentPart::Refusal { refusal } => refusal.push_str(delta),
            ContentPart::InputImage { .. } | ContentPart::InputFile { .. } => {}
        }
    }
}

/// The kinds of content part a run streams delta by delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartKind {
    OutputText,
    Refusal,
    ReasoningText,
}

impl PartKind {
    /// An empty part of this kind, as it is announced before its first delta.
    pub fn empty_part(self) -> ContentPart {
        match self {
            PartKind::OutputText => ContentPart::OutputText {
                text: String::new(),
                annotations: Vec::new(),
                logprobs: Vec::new(),
            },
            PartKind::Refusal => ContentPart::Refusal {
                refusal: String::new(),
            },
            PartKind::ReasoningText => ContentPart::ReasoningText {
                text: String::new(),
            },
        }
    }
}

/// The first tool result in `input` that answers no call made earlier, in
/// `history` or in `input` before it: its index and `call_id`. A result
/// without its call cannot be shown to the model, so the request carrying
/// it is refused rather than the result silently dropped.
pub fn unanswerable_output<'a>(history: &[Item], input: &'a [Item]) -> Option<(usize, &'a str)> {
    let made = |call_id: &str, before: &[Item]| {
        history
            .iter()
            .chain(before)
            .any(|i| i.client_call_id() == Some(call_id))
    };
    input.iter().enumerate().find_map(|(index, item)| {
        item.answered_call_id()
            .filter(|call_id| !made(call_id, &input[..index]))
            .map(|call_id| (index, call_id))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_message_serializes_in_the_responses_shape() {
        let item = Item::Message(MessageItem {
            id: "msg_1".into(),
            status: ItemStatus::Completed,
            role: Role::User,
            content: vec![ContentPart::InputText { text: "hi".into() }],
            phase: None,
        });
        assert_eq!(
            serde_json::to_value(&item).unwrap(),
            json!({"type":"message","id":"msg_1","status":"completed","role":"user",
                   "content":[{"type":"input_text","text":"hi"}]})
        );
    }

    #[test]
    fn an_output_text_part_always_carries_annotations_and_logprobs() {
        let v = serde_json::to_value(PartKind::OutputText.empty_part()).unwrap();
        assert_eq!(
            v,
            json!({"type":"output_text","text":"","annotations":[],"logprobs":[]})
        );
    }

    #[test]
    fn function_call_output_text_joins_text_parts() {
        let o = FunctionCallOutputItem {
            id: "x".into(),
            status: ItemStatus::Completed,
            call_id: "c".into(),
            output: json!([{"type":"input_text","text":"a"},{"type":"input_text","text":"b"}]),
            outcome: None,
        };
        assert_eq!(o.output_text(), "ab");
    }

    #[test]
    fn a_tool_listing_omits_what_it_does_not_have_rather_than_null() {
        let item = Item::McpListTools(Box::new(McpListToolsItem {
            id: "mcpl_1".into(),
            status: ItemStatus::Completed,
            server_label: "calc".into(),
            tools: vec![McpToolInfo {
                name: "add".into(),
                description: Some("adds".into()),
                input_schema: json!({"type": "object"}),
                annotations: None,
            }],
            error: None,
        }));
        let v = serde_json::to_value(&item).unwrap();
        assert!(v.get("error").is_none(), "{v}");
        assert!(v["tools"][0].get("annotations").is_none(), "{v}");
        let back: Item = serde_json::from_value(v).unwrap();
        assert_eq!(back, item);
    }

    #[test]
    fn a_reasoning_item_without_encrypted_content_omits_it_rather_than_null() {
        let v = serde_json::to_value(Item::reasoning("rs_1".into())).unwrap();
        assert!(v.get("encrypted_content").is_none(), "{v}");
        // Logs written before still read.
        let old = json!({"type": "reasoning", "id": "rs_1", "status": "completed",
                         "summary": [], "content": [], "encrypted_content": null});
        assert!(serde_json::from_value::<Item>(old).is_ok());
    }

    fn output(call_id: &str) -> Item {
        Item::FunctionCallOutput(FunctionCallOutputItem {
            id: format!("fco_{call_id}"),
            status: ItemStatus::Completed,
            call_id: call_id.into(),
            output: json!("42"),
            outcome: None,
        })
    }

    #[test]
    fn a_result_must_answer_a_call_made_before_it() {
        let call = Item::function_call("fc_1".into(), "call_1", "f");
        assert_eq!(
            unanswerable_output(&[], &[call.clone(), output("call_1")]),
            None
        );
        assert_eq!(
            unanswerable_output(std::slice::from_ref(&call), &[output("call_1")]),
            None
        );
        assert_eq!(
            unanswerable_output(
                std::slice::from_ref(&call),
                &[output("call_1"), output("call_9")]
            ),
            Some((1, "call_9"))
        );
        // A call after its result does not answer for it.
        assert_eq!(
            unanswerable_output(&[], &[output("call_1"), call]),
            Some((0, "call_1"))
        );
    }

    #[test]
    fn custom_and_local_shell_calls_are_answered_too() {
        let custom = Item::CustomToolCall(CustomToolCallItem {
            id: "ctc_1".into(),
            status: ItemStatus::Completed,
            call_id: "c1".into(),
            name: "apply_patch".into(),
            namespace: None,
            input: "p".into(),
        });
        let shell = Item::LocalShellCall(LocalShellCallItem {
            id: "lsh_1".into(),
            status: ItemStatus::Completed,
            call_id: "c2".into(),
            action: json!({"type": "exec", "command": ["ls"]}),
        });
        let custom_output = Item::CustomToolCallOutput(CustomToolCallOutputItem {
            id: "ctco_1".into(),
            status: ItemStatus::Completed,
            call_id: "c1".into(),
            output: json!("done"),
        });
        assert_eq!(
            unanswerable_output(&[custom, shell], &[custom_output, output("c2")]),
            None
        );
    }
}
