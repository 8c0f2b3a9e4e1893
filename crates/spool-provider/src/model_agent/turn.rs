//! One model answer mapped onto the run's items.
//!
//! Items are written one at a time, as every dialect expects: text, refusal
//! and reasoning deltas open (and close) message and reasoning items as the
//! model switches between them, and the first call of a caller's function
//! becomes a `function_call` item streamed as it arrives. Fragments of any
//! other call are buffered, whatever order the upstream interleaves them
//! in, and each is written as its own item when the answer ends. Calls of
//! tools spool runs itself are collected instead, for the tool loop.
//!
//! A call of a caller's tool that is not a plain function is shown in the
//! form its tool has ([`ClientCallShape`]): a namespaced function's call
//! streams as a `function_call` with its own name and `namespace`; a custom
//! tool's call (its input is the one string argument the model wrote) and
//! a local shell call (its arguments become an `exec` action) are written
//! whole when the answer ends, as neither can be shown before its
//! arguments are complete JSON.

use super::emit_failed;
use crate::ProviderError;
use serde_json::{Map, Value, json};
use spool_core::emit::RunWriter;
use spool_core::event::Event;
use spool_core::item::{
    CustomToolCallItem, FunctionCallItem, Item, ItemStatus, LocalShellCallItem, PartKind,
};
use spool_core::request::ClientCallShape;
use spool_core::run::RunError;
use std::collections::{BTreeMap, HashSet};

/// The open text-like part: which item, which part, what kind.
#[derive(Debug, Clone, Copy)]
struct OpenPart {
    output_index: u32,
    content_index: u32,
    kind: PartKind,
}

/// A tool call being streamed, by the model's call index.
#[derive(Debug, Default)]
struct PendingCall {
    id: Option<String>,
    name: Option<String>,
    /// Arguments received while the call could not open yet.
    buffered: String,
    /// Set once the call's item is open (or was).
    output_index: Option<u32>,
    ended: bool,
}

/// A call of a tool spool runs itself, collected from the model's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ServerCall {
    /// The model's id for the call.
    pub call_id: String,
    /// The tool's name as the model called it.
    pub name: String,
    pub arguments: String,
}

/// Maps one model call's deltas onto the run's items.
#[derive(Default)]
pub(super) struct TurnMapper {
    /// The open message or reasoning item and its open part.
    open: Option<OpenPart>,
    /// The call index of the open function call item.
    open_call: Option<u32>,
    calls: BTreeMap<u32, PendingCall>,
    /// Names of the tools spool runs itself: their calls become no
    /// `function_call` item; they are collected and run after the answer.
    server_tools: HashSet<String>,
    /// How calls of the caller's tools that are not plain functions are
    /// shown, by the name the model knows the tool by.
    shapes: BTreeMap<String, ClientCallShape>,
    /// Log probabilities of the text delta that comes next.
    pending_logprobs: Vec<Value>,
}

impl TurnMapper {
    /// A mapper for one answer; calls of `server_tools` are collected, not
    /// written; calls of the caller's tools are shown as `shapes` says.
    pub fn new(server_tools: HashSet<String>, shapes: BTreeMap<String, ClientCallShape>) -> Self {
        Self {
            server_tools,
            shapes,
            ..Self::default()
        }
    }

    /// Log probabilities of the next text delta.
    pub fn logprobs(&mut self, logprobs: Vec<Value>) {
        self.pending_logprobs = logprobs;
    }

    /// Whether calls of `name` are written whole when the answer ends.
    fn written_whole(&self, name: &str) -> bool {
        written_whole(&self.server_tools, &self.shapes, name)
    }
}

/// Whether calls of `name` are written whole when the answer ends (or not
/// at all: calls of the tools spool runs).
fn written_whole(
    server_tools: &HashSet<String>,
    shapes: &BTreeMap<String, ClientCallShape>,
    name: &str,
) -> bool {
    server_tools.contains(name)
        || matches!(
            shapes.get(name),
            Some(ClientCallShape::Custom { .. } | ClientCallShape::LocalShell)
        )
}

impl TurnMapper {
    /// Closes whatever item is open, ending it as `status`.
    async fn close_item(
        &mut self,
        out: &mut RunWriter<'_>,
        status: ItemStatus,
    ) -> Result<(), RunError> {
        if let Some(p) = self.open.take() {
            out.emit(Event::PartDone {
                output_index: p.output_index,
                content_index: p.content_index,
            })
            .await
            .map_err(emit_failed)?;
            out.emit(Event::ItemCompleted {
                output_index: p.output_index,
                status,
            })
            .await
            .map_err(emit_failed)?;
        }
        if let Some(index) = self.open_call.take()
            && let Some(call) = self.calls.get_mut(&index)
        {
            call.ended = true;
            if let Some(output_index) = call.output_index {
                out.emit(Event::ItemCompleted {
                    output_index,
                    status,
                })
                .await
                .map_err(emit_failed)?;
            }
        }
        Ok(())
    }

    pub async fn text(
        &mut self,
        out: &mut RunWriter<'_>,
        kind: PartKind,
        delta: String,
    ) -> Result<(), RunError> {
        // Text and refusal share a message; reasoning has its own item.
        let same_item = |open: &OpenPart| {
            (open.kind == PartKind::ReasoningText) == (kind == PartKind::ReasoningText)
        };
        let open = match self.open {
            Some(open) if open.kind == kind => open,
            Some(open) if same_item(&open) => {
                out.emit(Event::PartDone {
                    output_index: open.output_index,
                    content_index: open.content_index,
                })
                .await
                .map_err(emit_failed)?;
                let next = OpenPart {
                    content_index: open.content_index + 1,
                    kind,
                    ..open
                };
                out.emit(Event::PartStarted {
                    output_index: next.output_index,
                    content_index: next.content_index,
                    kind,
                })
                .await
                .map_err(emit_failed)?;
                next
            }
            _ => {
                self.close_item(out, ItemStatus::Completed).await?;
                let output_index = out.next_output_index();
                let item = if kind == PartKind::ReasoningText {
                    Item::reasoning(out.new_id("rs"))
                } else {
                    Item::assistant_message(out.new_id("msg"))
                };
                out.emit(Event::ItemStarted { output_index, item })
                    .await
                    .map_err(emit_failed)?;
                out.emit(Event::PartStarted {
                    output_index,
                    content_index: 0,
                    kind,
                })
                .await
                .map_err(emit_failed)?;
                OpenPart {
                    output_index,
                    content_index: 0,
                    kind,
                }
            }
        };
        self.open = Some(open);
        // Log probabilities belong to output text; they came just before
        // the text they are of.
        let logprobs = std::mem::take(&mut self.pending_logprobs);
        let logprobs = if kind == PartKind::OutputText {
            logprobs
        } else {
            Vec::new()
        };
        out.emit(Event::PartDelta {
            output_index: open.output_index,
            content_index: open.content_index,
            delta,
            logprobs,
        })
        .await
        .map_err(emit_failed)
    }

    pub async fn tool_call(
        &mut self,
        out: &mut RunWriter<'_>,
        index: u32,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
    ) -> Result<(), RunError> {
        let call = self.calls.entry(index).or_default();
        if call.ended {
            return Err(ProviderError::Protocol(format!(
                "arguments for tool call {index} arrived after the model moved on from it"
            ))
            .into());
        }
        // Later fragments often repeat the call's id and name, or send
        // them empty: the first non-empty value stands.
        if call.id.is_none() {
            call.id = id.filter(|s| !s.is_empty());
        }
        if call.name.is_none() {
            call.name = name.filter(|s| !s.is_empty());
        }
        if call
            .name
            .as_ref()
            .is_some_and(|n| written_whole(&self.server_tools, &self.shapes, n))
        {
            call.buffered.push_str(&arguments);
            return Ok(());
        }
        if self.open_call == Some(index) {
            if let Some(output_index) = call.output_index
                && !arguments.is_empty()
            {
                out.emit(Event::ArgumentsDelta {
                    output_index,
                    delta: arguments,
                })
                .await
                .map_err(emit_failed)?;
            }
            return Ok(());
        }
        call.buffered.push_str(&arguments);
        // Only one call streams live; the others wait for the finish.
        if self.open_call.is_none() && call.name.is_some() && call.output_index.is_none() {
            self.open_call_item(out, index).await?;
        }
        Ok(())
    }

    /// Opens call `index` (closing the open item) and sends what it has.
    async fn open_call_item(
        &mut self,
        out: &mut RunWriter<'_>,
        index: u32,
    ) -> Result<(), RunError> {
        self.close_item(out, ItemStatus::Completed).await?;
        let Some(call) = self.calls.get_mut(&index) else {
            return Ok(());
        };
        let output_index = out.next_output_index();
        let call_id = call.id.clone().unwrap_or_else(|| out.new_id("call"));
        let name = call.name.clone().unwrap_or_default();
        let item = match self.shapes.get(&name) {
            Some(ClientCallShape::Namespaced { namespace, name }) => {
                Item::FunctionCall(FunctionCallItem {
                    id: out.new_id("fc"),
                    status: ItemStatus::InProgress,
                    call_id,
                    name: name.clone(),
                    namespace: Some(namespace.clone()),
                    arguments: String::new(),
                })
            }
            _ => Item::function_call(out.new_id("fc"), call_id, name),
        };
        out.emit(Event::ItemStarted { output_index, item })
            .await
            .map_err(emit_failed)?;
        call.output_index = Some(output_index);
        let buffered = std::mem::take(&mut call.buffered);
        self.open_call = Some(index);
        if !buffered.is_empty() {
            out.emit(Event::ArgumentsDelta {
                output_index,
                delta: buffered,
            })
            .await
            .map_err(emit_failed)?;
        }
        Ok(())
    }

    /// Closes everything at the end of the model's answer; the last item
    /// ends as `status` (incomplete when the model was cut off).
    /// Returns the calls of tools spool runs itself, in the model's order.
    pub async fn finish(
        &mut self,
        out: &mut RunWriter<'_>,
        status: ItemStatus,
    ) -> Result<Vec<ServerCall>, RunError> {
        let mut server_calls = Vec::new();
        let waiting: Vec<u32> = self
            .calls
            .iter()
            .filter(|(_, c)| c.output_index.is_none())
            .map(|(i, _)| *i)
            .collect();
        for index in waiting {
            let Some(call) = self.calls.get(&index) else {
                continue;
            };
            let Some(name) = call.name.clone() else {
                return Err(ProviderError::Protocol(format!(
                    "tool call {index} never received a function name"
                ))
                .into());
            };
            if self.written_whole(&name) {
                let call_id = match call.id.clone().filter(|id| !id.is_empty()) {
                    Some(id) => id,
                    None => out.new_id("call"),
                };
                let arguments = call.buffered.clone();
                if self.server_tools.contains(&name) {
                    server_calls.push(ServerCall {
                        call_id,
                        name,
                        arguments,
                    });
                    continue;
                }
                self.close_item(out, ItemStatus::Completed).await?;
                let item = self.client_call_item(out, call_id, &name, arguments);
                out.whole_item(item).await.map_err(emit_failed)?;
                continue;
            }
            self.open_call_item(out, index).await?;
        }
        self.close_item(out, status).await?;
        Ok(server_calls)
    }
}

impl TurnMapper {
    /// The item showing a whole call of the caller's tool `name`: a custom
    /// tool call or a local shell call. Arguments that are not what the tool
    /// takes make a plain function call, so the caller sees what the model
    /// wrote.
    fn client_call_item(
        &self,
        out: &mut RunWriter<'_>,
        call_id: String,
        name: &str,
        arguments: String,
    ) -> Item {
        let parsed: Option<Map<String, Value>> = serde_json::from_str(&arguments).ok();
        match (self.shapes.get(name), parsed) {
            (Some(ClientCallShape::Custom { namespace, name }), Some(mut fields))
                if fields.get("input").is_some_and(Value::is_string) =>
            {
                let input = match fields.remove("input") {
                    Some(Value::String(input)) => input,
                    _ => String::new(),
                };
                Item::CustomToolCall(CustomToolCallItem {
                    id: out.new_id("ctc"),
                    status: ItemStatus::InProgress,
                    call_id,
                    name: name.clone(),
                    namespace: namespace.clone(),
                    input,
                })
            }
            (Some(ClientCallShape::LocalShell), Some(fields))
                if fields.get("command").is_some_and(Value::is_array) =>
            {
                let mut action = Map::new();
                action.insert("type".into(), json!("exec"));
                action.extend(fields);
                Item::LocalShellCall(LocalShellCallItem {
                    id: out.new_id("lsh"),
                    status: ItemStatus::InProgress,
                    call_id,
                    action: Value::Object(action),
                })
            }
            _ => Item::FunctionCall(FunctionCallItem {
                id: out.new_id("fc"),
                status: ItemStatus::InProgress,
                call_id,
                name: name.to_owned(),
                namespace: None,
                arguments,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spool_core::emit::{MemorySink, RunEmitter};
    use spool_core::event::Envelope;
    use spool_core::ids::{ResponseId, SequentialIds};
    use spool_core::run::{ResponsesEcho, RunHeader, Sampling};
    use std::sync::{Arc, Mutex};

    async fn emitter() -> (RunEmitter, Arc<Mutex<Vec<Envelope>>>) {
        let sink = MemorySink::default();
        let events = sink.events.clone();
        let mut e = RunEmitter::new(Box::new(sink), Arc::new(SequentialIds::default()));
        let run = RunHeader {
            id: ResponseId::parse("resp_1").unwrap(),
            created_at: 0,
            model: "m".into(),
            instructions: None,
            previous_response_id: None,
            conversation: None,
            agent: None,
            store: true,
            background: false,
            metadata: Default::default(),
            sampling: Sampling::default(),
            responses: ResponsesEcho::default(),
            chat: Default::default(),
            continues_turn: None,
        };
        e.created(run, Vec::new()).await.unwrap();
        e.started().await.unwrap();
        (e, events)
    }

    fn types(events: &Mutex<Vec<Envelope>>) -> Vec<&'static str> {
        events.lock().unwrap()[2..]
            .iter()
            .map(|e| e.event.type_name())
            .collect()
    }

    #[tokio::test]
    async fn reasoning_then_text_become_two_items() {
        let (mut e, _) = emitter().await;
        let mut w = e.writer();
        let mut m = TurnMapper::default();
        m.text(&mut w, PartKind::ReasoningText, "think".into())
            .await
            .unwrap();
        m.text(&mut w, PartKind::OutputText, "say".into())
            .await
            .unwrap();
        m.finish(&mut w, ItemStatus::Completed).await.unwrap();
        let out = w.fold().output();
        assert!(matches!(out[0], Item::Reasoning(_)));
        assert!(matches!(&out[1], Item::Message(msg) if msg.text() == "say"));
        assert_eq!(w.fold().open_items().count(), 0);
    }

    #[tokio::test]
    async fn interleaved_client_calls_are_written_one_after_another() {
        let (mut e, events) = emitter().await;
        let mut w = e.writer();
        let mut m = TurnMapper::default();
        let frag = |i: u32, id: &str, name: &str, args: &str| {
            (
                i,
                Some(id.to_owned()),
                Some(name.to_owned()),
                args.to_owned(),
            )
        };
        for (i, id, name, args) in [
            frag(0, "call_a", "f", "{\"x\":"),
            frag(1, "call_b", "g", "{\"y\":"),
            frag(0, "", "", "1}"),
            frag(1, "", "", "2}"),
        ] {
            m.tool_call(&mut w, i, id, name, args).await.unwrap();
        }
        let server = m.finish(&mut w, ItemStatus::Completed).await.unwrap();
        assert!(server.is_empty());
        let calls: Vec<(String, String)> = w
            .fold()
            .output()
            .iter()
            .map(|i| match i {
                Item::FunctionCall(c) => (c.call_id.clone(), c.arguments.clone()),
                other => panic!("not a call: {other:?}"),
            })
            .collect();
        assert_eq!(
            calls,
            [
                ("call_a".to_owned(), "{\"x\":1}".to_owned()),
                ("call_b".to_owned(), "{\"y\":2}".to_owned())
            ]
        );
        assert_eq!(
            types(&events),
            [
                "item.started",
                "arguments.delta",
                "arguments.delta",
                "item.completed",
                "item.started",
                "arguments.delta",
                "item.completed"
            ]
        );
    }

    #[tokio::test]
    async fn server_tool_calls_are_collected_with_the_models_ids_not_written() {
        let (mut e, events) = emitter().await;
        let mut w = e.writer();
        let mut m = TurnMapper::new(HashSet::from(["add".to_owned()]), BTreeMap::new());
        m.tool_call(
            &mut w,
            0,
            Some("call_1".into()),
            Some("add".into()),
            "{\"a\":".into(),
        )
        .await
        .unwrap();
        m.tool_call(&mut w, 0, None, None, "1}".into())
            .await
            .unwrap();
        let server = m.finish(&mut w, ItemStatus::Completed).await.unwrap();
        assert_eq!(
            server,
            [ServerCall {
                call_id: "call_1".into(),
                name: "add".into(),
                arguments: "{\"a\":1}".into(),
            }]
        );
        assert!(types(&events).is_empty());
    }

    #[tokio::test]
    async fn arguments_after_the_model_moved_on_are_a_protocol_error() {
        let (mut e, _) = emitter().await;
        let mut w = e.writer();
        let mut m = TurnMapper::default();
        m.tool_call(&mut w, 0, Some("c".into()), Some("f".into()), "{}".into())
            .await
            .unwrap();
        m.text(&mut w, PartKind::OutputText, "x".into())
            .await
            .unwrap();
        let late = m.tool_call(&mut w, 0, None, None, "more".into()).await;
        assert!(late.is_err());
    }

    fn shapes() -> BTreeMap<String, ClientCallShape> {
        BTreeMap::from([
            (
                "multi_agent_v1__spawn_agent".to_owned(),
                ClientCallShape::Namespaced {
                    namespace: "multi_agent_v1".into(),
                    name: "spawn_agent".into(),
                },
            ),
            (
                "apply_patch".to_owned(),
                ClientCallShape::Custom {
                    namespace: None,
                    name: "apply_patch".into(),
                },
            ),
            ("local_shell".to_owned(), ClientCallShape::LocalShell),
        ])
    }

    #[tokio::test]
    async fn calls_of_shaped_client_tools_come_back_in_their_tools_form() {
        let (mut e, _) = emitter().await;
        let mut w = e.writer();
        let mut m = TurnMapper::new(HashSet::new(), shapes());
        for (i, name, args) in [
            (0, "multi_agent_v1__spawn_agent", r#"{"message":"go"}"#),
            (1, "apply_patch", r#"{"input":"*** Begin Patch"}"#),
            (2, "local_shell", r#"{"command":["ls","-la"]}"#),
        ] {
            m.tool_call(
                &mut w,
                i,
                Some(format!("call_{i}")),
                Some(name.into()),
                args.into(),
            )
            .await
            .unwrap();
        }
        let server = m.finish(&mut w, ItemStatus::Completed).await.unwrap();
        assert!(server.is_empty());
        let out = w.fold().output();
        let Item::FunctionCall(spawn) = &out[0] else {
            panic!("{:?}", out[0])
        };
        assert_eq!(
            (spawn.name.as_str(), spawn.namespace.as_deref()),
            ("spawn_agent", Some("multi_agent_v1"))
        );
        assert_eq!(spawn.arguments, r#"{"message":"go"}"#);
        let Item::CustomToolCall(patch) = &out[1] else {
            panic!("{:?}", out[1])
        };
        assert_eq!(
            (
                patch.name.as_str(),
                patch.input.as_str(),
                patch.call_id.as_str()
            ),
            ("apply_patch", "*** Begin Patch", "call_1")
        );
        let Item::LocalShellCall(shell) = &out[2] else {
            panic!("{:?}", out[2])
        };
        assert_eq!(
            shell.action,
            json!({"type": "exec", "command": ["ls", "-la"]})
        );
        assert!(out.iter().all(|i| i.status() == ItemStatus::Completed));
        assert_eq!(w.fold().open_items().count(), 0);
    }

    #[tokio::test]
    async fn a_custom_call_without_its_input_argument_stays_a_function_call() {
        let (mut e, _) = emitter().await;
        let mut w = e.writer();
        let mut m = TurnMapper::new(HashSet::new(), shapes());
        m.tool_call(
            &mut w,
            0,
            Some("c".into()),
            Some("apply_patch".into()),
            "not json".into(),
        )
        .await
        .unwrap();
        m.finish(&mut w, ItemStatus::Completed).await.unwrap();
        let Item::FunctionCall(call) = &w.fold().output()[0] else {
            panic!()
        };
        assert_eq!(
            (call.name.as_str(), call.arguments.as_str()),
            ("apply_patch", "not json")
        );
    }
}
