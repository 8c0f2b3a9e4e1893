//! The OpenAI Responses API stream as a projection of the canonical log.
//!
//! Each canonical event becomes zero, one or two Responses events (a finished
//! text part, for instance, is both `response.output_text.done` and
//! `response.content_part.done`), numbered by a dense `sequence_number` that
//! this projection assigns. A cancelled run ends with `response.failed`
//! carrying `status: "cancelled"`: the Responses event union has no
//! cancelled event.

mod object;

pub use object::{ResponseObject, added_item, object, wire_item, wire_items};

use super::ProjectionError;
use crate::event::{Envelope, Event};
use crate::fold::{OrderError, RunFold};
use crate::item::{ContentPart, Item, McpCallItem, PartKind};
use serde::Serialize;
use serde_json::Value;

/// One Responses API stream event, serialized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireEvent {
    pub sequence_number: u64,
    /// The event's `type`, also its SSE `event:` name.
    pub event_type: &'static str,
    /// The event as one line of JSON, `type` and `sequence_number` included.
    pub json: String,
}

/// Projects a canonical log into Responses API stream events.
#[derive(Debug, Clone, Default)]
pub struct ResponsesProjection {
    fold: RunFold,
    next_sequence_number: u64,
    cursor: WireCursor,
}

/// How far the output items are on the wire. At most one item is open
/// there: `next_done..next_added` is empty or that one item.
#[derive(Debug, Clone, Copy, Default)]
struct WireCursor {
    /// Items below this index have been added.
    next_added: u32,
    /// Items below this index are done.
    next_done: u32,
}

// === wire frames ===

#[derive(Serialize)]
struct LifecycleFrame<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    sequence_number: u64,
    response: ResponseObject<'a>,
}

#[derive(Serialize)]
struct ItemFrame<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    sequence_number: u64,
    output_index: u32,
    item: &'a Item,
}

#[derive(Serialize)]
struct PartFrame<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    sequence_number: u64,
    item_id: &'a str,
    output_index: u32,
    content_index: u32,
    part: &'a ContentPart,
}

#[derive(Serialize)]
struct DeltaFrame<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    sequence_number: u64,
    item_id: &'a str,
    output_index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_index: Option<u32>,
    delta: &'a str,
    /// Output text only: the delta's token log probabilities (often none).
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<&'a [Value]>,
}

#[derive(Serialize)]
struct TextDoneFrame<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    sequence_number: u64,
    item_id: &'a str,
    output_index: u32,
    content_index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<&'a str>,
    /// Output text only: every token's log probabilities (often none).
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<&'a [Value]>,
}

/// `response.mcp_call.*` and `response.mcp_list_tools.*` progress events.
#[derive(Serialize)]
struct ProgressFrame<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    sequence_number: u64,
    item_id: &'a str,
    output_index: u32,
}

#[derive(Serialize)]
struct McpArgumentsDoneFrame<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    sequence_number: u64,
    item_id: &'a str,
    output_index: u32,
    arguments: &'a str,
}

#[derive(Serialize)]
struct ArgumentsDoneFrame<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    sequence_number: u64,
    item_id: &'a str,
    output_index: u32,
    name: &'a str,
    arguments: &'a str,
}

impl ResponsesProjection {
    pub fn new() -> Self {
        Self::default()
    }

    /// The fold behind the projection: the response as of the last event.
    pub fn fold(&self) -> &RunFold {
        &self.fold
    }

    /// Folds `envelope` in and hands each resulting wire event to `out`.
    pub fn apply(
        &mut self,
        envelope: &Envelope,
        out: impl FnMut(WireEvent),
    ) -> Result<(), ProjectionError> {
        // The content parts a failure cuts off, read before the fold closes
        // them.
        let interrupted_parts: Vec<(u32, u32)> =
            if matches!(envelope.event, Event::RunFailed { .. }) {
                self.fold
                    .open_items()
                    .filter_map(|(item, part)| Some((item, part?)))
                    .collect()
            } else {
                Vec::new()
            };
        self.fold.apply(envelope)?;
        let mut o = Out {
            next: &mut self.next_sequence_number,
            out,
        };
        let fold = &self.fold;
        let cursor = &mut self.cursor;
        match &envelope.event {
            Event::RunCreated(created) => {
                lifecycle(fold, &mut o, "response.created")?;
                if created.run.background {
                    lifecycle(fold, &mut o, "response.queued")?;
                }
            }
            Event::RunStarted => lifecycle(fold, &mut o, "response.in_progress")?,
            Event::ItemStarted { output_index, .. } => {
                // Items go on the wire one after another. A tool call that
                // started beside an earlier one waits until that one is done.
                if *output_index == cursor.next_added && cursor.next_added == cursor.next_done {
                    cursor.next_added += 1;
                    added(fold, &mut o, *output_index)?;
                }
            }
            Event::ItemUpdated { output_index, .. } => {
                // Legacy: an MCP call's result arrived: its arguments are
                // final and the call ran.
                if let Item::McpCall(call) = &fold.output()[*output_index as usize] {
                    mcp_call_running(&mut o, call, *output_index)?;
                }
            }
            Event::PartStarted {
                output_index,
                content_index,
                ..
            } => {
                let it = &fold.output()[*output_index as usize];
                let ty = "response.content_part.added";
                o.emit(ty, |sequence_number| PartFrame {
                    ty,
                    sequence_number,
                    item_id: it.id(),
                    output_index: *output_index,
                    content_index: *content_index,
                    part: &it.content()[*content_index as usize],
                })?;
            }
            Event::PartDelta {
                output_index,
                content_index,
                delta,
                logprobs,
            } => {
                let it = &fold.output()[*output_index as usize];
                let kind = part_kind(it, *content_index);
                let ty = match kind {
                    PartKind::OutputText => "response.output_text.delta",
                    PartKind::Refusal => "response.refusal.delta",
                    PartKind::ReasoningText => "response.reasoning_text.delta",
                };
                o.emit(ty, |sequence_number| DeltaFrame {
                    ty,
                    sequence_number,
                    item_id: it.id(),
                    output_index: *output_index,
                    content_index: Some(*content_index),
                    delta,
                    logprobs: (kind == PartKind::OutputText).then_some(logprobs.as_slice()),
                })?;
            }
            Event::PartDone {
                output_index,
                content_index,
            } => part_done(fold, &mut o, *output_index, *content_index)?,
            Event::ArgumentsDelta {
                output_index,
                delta,
            } => {
                let it = &fold.output()[*output_index as usize];
                let ty = match it {
                    Item::McpCall(_) => "response.mcp_call_arguments.delta",
                    _ => "response.function_call_arguments.delta",
                };
                o.emit(ty, |sequence_number| DeltaFrame {
                    ty,
                    sequence_number,
                    item_id: it.id(),
                    output_index: *output_index,
                    content_index: None,
                    delta,
                    logprobs: None,
                })?;
            }
            Event::ItemCompleted { output_index, .. } => {
                if *output_index == cursor.next_done && cursor.next_done < cursor.next_added {
                    cursor.next_done += 1;
                    done(fold, &mut o, *output_index)?;
                    // Tool calls that started beside this one, in order, as
                    // far as they have got.
                    while cursor.next_added == cursor.next_done
                        && (cursor.next_added as usize) < fold.output().len()
                    {
                        let next = cursor.next_added;
                        cursor.next_added += 1;
                        added(fold, &mut o, next)?;
                        if fold.is_open(next) {
                            break;
                        }
                        cursor.next_done += 1;
                        done(fold, &mut o, next)?;
                    }
                }
            }
            Event::StepStarted { .. }
            | Event::StepCompleted { .. }
            | Event::ToolFinished { .. }
            | Event::Usage { .. }
            | Event::Status(_)
            | Event::ToolExecuted { .. } => {}
            Event::RunCompleted => lifecycle(fold, &mut o, "response.completed")?,
            Event::RunIncomplete { .. } => lifecycle(fold, &mut o, "response.incomplete")?,
            Event::RunFailed { .. } => {
                close_interrupted(fold, &mut o, cursor, &interrupted_parts)?;
                lifecycle(fold, &mut o, "response.failed")?
            }
            // A cancelled response shows no output: nothing to end.
            Event::RunCancelled => lifecycle(fold, &mut o, "response.failed")?,
        }
        Ok(())
    }
}

/// Before the `response.failed` of a failure: every item not yet done on
/// the wire is ended there, as the terminal response shows it
/// (`incomplete` if the failure cut it off), its open content part first,
/// so a client that follows the item lifecycle sees each item end, and the
/// done items are the response's output. (A cancelled response shows no
/// output, so a cancellation ends none.)
fn close_interrupted<F: FnMut(WireEvent)>(
    fold: &RunFold,
    o: &mut Out<'_, F>,
    cursor: &mut WireCursor,
    interrupted_parts: &[(u32, u32)],
) -> Result<(), ProjectionError> {
    while (cursor.next_done as usize) < fold.output().len() {
        let index = cursor.next_done;
        if cursor.next_added == index {
            cursor.next_added += 1;
            added(fold, o, index)?;
        }
        for &(_, part) in interrupted_parts.iter().filter(|(item, _)| *item == index) {
            part_done(fold, o, index, part)?;
        }
        cursor.next_done += 1;
        done(fold, o, index)?;
    }
    Ok(())
}

/// `response.*_text.done` (or `refusal.done`) and `response.content_part.done`
/// for a content part that ended, as it is now.
fn part_done<F: FnMut(WireEvent)>(
    fold: &RunFold,
    o: &mut Out<'_, F>,
    output_index: u32,
    content_index: u32,
) -> Result<(), ProjectionError> {
    let it = &fold.output()[output_index as usize];
    let part = &it.content()[content_index as usize];
    let text = part.text().unwrap_or_default();
    let kind = part_kind(it, content_index);
    let (ty, text, refusal) = match kind {
        PartKind::OutputText => ("response.output_text.done", Some(text), None),
        PartKind::Refusal => ("response.refusal.done", None, Some(text)),
        PartKind::ReasoningText => ("response.reasoning_text.done", Some(text), None),
    };
    o.emit(ty, |sequence_number| TextDoneFrame {
        ty,
        sequence_number,
        item_id: it.id(),
        output_index,
        content_index,
        text,
        refusal,
        logprobs: match part {
            ContentPart::OutputText { logprobs, .. } => Some(logprobs.as_slice()),
            _ => None,
        },
    })?;
    let ty = "response.content_part.done";
    o.emit(ty, |sequence_number| PartFrame {
        ty,
        sequence_number,
        item_id: it.id(),
        output_index,
        content_index,
        part,
    })?;
    Ok(())
}

/// A `response.*` lifecycle event carrying the whole response object.
fn lifecycle<F: FnMut(WireEvent)>(
    fold: &RunFold,
    o: &mut Out<'_, F>,
    ty: &'static str,
) -> Result<(), ProjectionError> {
    let response = object(fold).ok_or(OrderError::NotCreatedFirst)?;
    o.emit(ty, |sequence_number| LifecycleFrame {
        ty,
        sequence_number,
        response,
    })
}

/// The events that put item `output_index` on the wire.
fn added<F: FnMut(WireEvent)>(
    fold: &RunFold,
    o: &mut Out<'_, F>,
    output_index: u32,
) -> Result<(), ProjectionError> {
    let logged = &fold.output()[output_index as usize];
    let it = added_item(logged);
    let ty = "response.output_item.added";
    o.emit(ty, |sequence_number| ItemFrame {
        ty,
        sequence_number,
        output_index,
        item: &it,
    })?;
    match logged {
        Item::McpListTools(_) => {
            let ty = "response.mcp_list_tools.in_progress";
            o.emit(ty, |sequence_number| ProgressFrame {
                ty,
                sequence_number,
                item_id: it.id(),
                output_index,
            })?;
        }
        Item::ToolCall(call) => {
            // A tool call is logged with its arguments, as it starts: they
            // stream in one delta, and the call is running.
            if !call.arguments.is_empty() {
                let ty = "response.mcp_call_arguments.delta";
                o.emit(ty, |sequence_number| DeltaFrame {
                    ty,
                    sequence_number,
                    item_id: &call.id,
                    output_index,
                    content_index: None,
                    delta: &call.arguments,
                    logprobs: None,
                })?;
            }
            if let Item::McpCall(wire) = &*wire_item(logged) {
                mcp_call_running(o, wire, output_index)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// `response.mcp_call_arguments.done` then `response.mcp_call.in_progress`.
fn mcp_call_running<F: FnMut(WireEvent)>(
    o: &mut Out<'_, F>,
    call: &McpCallItem,
    output_index: u32,
) -> Result<(), ProjectionError> {
    let ty = "response.mcp_call_arguments.done";
    o.emit(ty, |sequence_number| McpArgumentsDoneFrame {
        ty,
        sequence_number,
        item_id: &call.id,
        output_index,
        arguments: &call.arguments,
    })?;
    let ty = "response.mcp_call.in_progress";
    o.emit(ty, |sequence_number| ProgressFrame {
        ty,
        sequence_number,
        item_id: &call.id,
        output_index,
    })
}

/// The events that close item `output_index` on the wire.
fn done<F: FnMut(WireEvent)>(
    fold: &RunFold,
    o: &mut Out<'_, F>,
    output_index: u32,
) -> Result<(), ProjectionError> {
    let wire = wire_item(&fold.output()[output_index as usize]);
    let it: &Item = &wire;
    let progress = match it {
        // A call a failure or cancellation cut off did not complete either.
        Item::McpCall(call)
            if call.error.is_some() || call.status == crate::item::ItemStatus::Incomplete =>
        {
            Some("response.mcp_call.failed")
        }
        Item::McpCall(_) => Some("response.mcp_call.completed"),
        Item::McpListTools(list) if list.error.is_some() => Some("response.mcp_list_tools.failed"),
        Item::McpListTools(_) => Some("response.mcp_list_tools.completed"),
        _ => None,
    };
    if let Some(ty) = progress {
        o.emit(ty, |sequence_number| ProgressFrame {
            ty,
            sequence_number,
            item_id: it.id(),
            output_index,
        })?;
    }
    if let Item::FunctionCall(call) = it {
        let ty = "response.function_call_arguments.done";
        o.emit(ty, |sequence_number| ArgumentsDoneFrame {
            ty,
            sequence_number,
            item_id: &call.id,
            output_index,
            name: &call.name,
            arguments: &call.arguments,
        })?;
    }
    let ty = "response.output_item.done";
    o.emit(ty, |sequence_number| ItemFrame {
        ty,
        sequence_number,
        output_index,
        item: it,
    })
}

/// Numbers and serializes wire events as a projection step produces them.
struct Out<'s, F> {
    next: &'s mut u64,
    out: F,
}

impl<F: FnMut(WireEvent)> Out<'_, F> {
    fn emit<T: Serialize>(
        &mut self,
        event_type: &'static str,
        frame: impl FnOnce(u64) -> T,
    ) -> Result<(), ProjectionError> {
        let sequence_number = *self.next;
        let json = serde_json::to_string(&frame(sequence_number))?;
        (self.out)(WireEvent {
            sequence_number,
            event_type,
            json,
        });
        *self.next += 1;
        Ok(())
    }
}

fn part_kind(item: &Item, content_index: u32) -> PartKind {
    item.content()
        .get(content_index as usize)
        .and_then(ContentPart::kind)
        .unwrap_or(PartKind::OutputText)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::{created_with, log};
    use crate::item::ItemStatus;
    use crate::run::tests::header;
    use serde_json::Value;

    fn project(log: &[Envelope]) -> Vec<WireEvent> {
        let mut p = ResponsesProjection::new();
        let mut out = Vec::new();
        for e in log {
            p.apply(e, |w| out.push(w)).unwrap();
        }
        out
    }

    fn tool_then_text_log() -> Vec<Envelope> {
        log(vec![
            created_with(header()),
            Event::RunStarted,
            Event::ItemStarted {
                output_index: 0,
                item: Item::assistant_message("msg_1".into()),
            },
            Event::PartStarted {
                output_index: 0,
                content_index: 0,
                kind: PartKind::OutputText,
            },
            Event::PartDelta {
                output_index: 0,
                content_index: 0,
                delta: "Hi".into(),
                logprobs: Vec::new(),
            },
            Event::PartDone {
                output_index: 0,
                content_index: 0,
            },
            Event::ItemCompleted {
                output_index: 0,
                status: ItemStatus::Completed,
            },
            Event::ItemStarted {
                output_index: 1,
                item: Item::function_call("fc_1".into(), "call_1", "get_weather"),
            },
            Event::ArgumentsDelta {
                output_index: 1,
                delta: "{\"city\":".into(),
            },
            Event::ArgumentsDelta {
                output_index: 1,
                delta: "\"Paris\"}".into(),
            },
            Event::ItemCompleted {
                output_index: 1,
                status: ItemStatus::Completed,
            },
            Event::RunCompleted,
        ])
    }

    #[test]
    fn a_run_projects_to_the_responses_event_order_with_dense_sequence_numbers() {
        let wire = project(&tool_then_text_log());
        let types: Vec<_> = wire.iter().map(|w| w.event_type).collect();
        assert_eq!(
            types,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        for (i, w) in wire.iter().enumerate() {
            let v: Value = serde_json::from_str(&w.json).unwrap();
            assert_eq!(w.sequence_number, i as u64);
            assert_eq!(v["sequence_number"], i as u64);
            assert_eq!(v["type"], w.event_type);
        }
        let done: Value = serde_json::from_str(&wire[11].json).unwrap();
        assert_eq!(done["arguments"], "{\"city\":\"Paris\"}");
        assert_eq!(done["name"], "get_weather");
        let completed: Value = serde_json::from_str(&wire[13].json).unwrap();
        assert_eq!(
            completed["response"]["output"][0]["content"][0]["text"],
            "Hi"
        );
        assert_eq!(completed["response"]["output"][1]["call_id"], "call_1");
    }

    #[test]
    fn text_deltas_carry_ids_and_indexes() {
        let wire = project(&tool_then_text_log());
        let added: Value = serde_json::from_str(&wire[2].json).unwrap();
        let delta: Value = serde_json::from_str(&wire[4].json).unwrap();
        assert_eq!(delta["item_id"], added["item"]["id"]);
        assert_eq!(delta["output_index"], 0);
        assert_eq!(delta["content_index"], 0);
        assert_eq!(delta["delta"], "Hi");
        assert_eq!(delta["logprobs"], serde_json::json!([]));
    }

    #[test]
    fn a_cancelled_run_ends_with_response_failed_carrying_status_cancelled() {
        let mut log = tool_then_text_log();
        log.truncate(5);
        log.push(Envelope {
            seq: 5,
            ts_ms: 0,
            event: Event::RunCancelled,
        });
        let wire = project(&log);
        let last = wire.last().unwrap();
        assert_eq!(last.event_type, "response.failed");
        let v: Value = serde_json::from_str(&last.json).unwrap();
        assert_eq!(v["response"]["status"], "cancelled");
    }

    /// The output items `response.output_item.done` showed, which must be
    /// the terminal response's output.
    fn done_items_match_the_terminal_output(wire: &[WireEvent]) -> Value {
        let done: Vec<Value> = wire
            .iter()
            .filter(|w| w.event_type == "response.output_item.done")
            .map(|w| serde_json::from_str::<Value>(&w.json).unwrap()["item"].clone())
            .collect();
        let terminal: Value = serde_json::from_str(&wire.last().unwrap().json).unwrap();
        assert_eq!(Value::Array(done), terminal["response"]["output"]);
        terminal
    }

    #[test]
    fn a_failure_ends_on_the_wire_the_item_it_cut_off_before_response_failed() {
        let mut log = tool_then_text_log();
        log.truncate(5);
        log.push(Envelope {
            seq: 5,
            ts_ms: 0,
            event: Event::RunFailed {
                error: crate::run::RunError::new("upstream_disconnected", "gone"),
            },
        });
        let wire = project(&log);
        let tail: Vec<_> = wire.iter().skip(5).map(|w| w.event_type).collect();
        assert_eq!(
            tail,
            [
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.failed",
            ]
        );
        let failed = done_items_match_the_terminal_output(&wire);
        assert_eq!(failed["response"]["output"][0]["status"], "incomplete");
        assert_eq!(failed["response"]["output"][0]["content"][0]["text"], "Hi");
    }

    #[test]
    fn a_failure_ends_a_waiting_tool_call_on_the_wire_too() {
        use crate::item::ToolCallItem;
        use crate::tool::ToolResult;
        let call = |id: &str| {
            Item::ToolCall(Box::new(ToolCallItem {
                id: id.into(),
                status: ItemStatus::InProgress,
                call_id: format!("call_{id}"),
                name: "add".into(),
                server: Some("calc".into()),
                arguments: "{}".into(),
                approval_request_id: None,
                result: None,
            }))
        };
        let log = log(vec![
            created_with(header()),
            Event::RunStarted,
            Event::ItemStarted {
                output_index: 0,
                item: call("a"),
            },
            Event::ItemStarted {
                output_index: 1,
                item: call("b"),
            },
            // b ends, but waits behind a, which the failure cuts off.
            Event::ToolFinished {
                output_index: 1,
                result: ToolResult {
                    success: true,
                    output: Some("2".into()),
                    error: None,
                    runtime_ms: 1,
                },
            },
            Event::ItemCompleted {
                output_index: 1,
                status: ItemStatus::Completed,
            },
            Event::RunFailed {
                error: crate::run::RunError::new("upstream_disconnected", "gone"),
            },
        ]);
        let wire = project(&log);
        let shown: Vec<(&str, Value)> = wire
            .iter()
            .map(|w| {
                let v: Value = serde_json::from_str(&w.json).unwrap();
                (w.event_type, v["output_index"].clone())
            })
            .filter(|(ty, _)| {
                ty.starts_with("response.output_item") || ty.starts_with("response.mcp_call.")
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("response.output_item.added", 0.into()),
                ("response.mcp_call.in_progress", 0.into()),
                ("response.mcp_call.failed", 0.into()),
                ("response.output_item.done", 0.into()),
                ("response.output_item.added", 1.into()),
                ("response.mcp_call.in_progress", 1.into()),
                ("response.mcp_call.completed", 1.into()),
                ("response.output_item.done", 1.into()),
            ]
        );
        let failed = done_items_match_the_terminal_output(&wire);
        assert_eq!(failed["response"]["output"][0]["status"], "incomplete");
    }

    #[test]
    fn a_legacy_mcp_call_projects_to_the_responses_mcp_events() {
        use crate::item::McpCallItem;
        let call = |output: Option<&str>| {
            Item::McpCall(Box::new(McpCallItem {
                id: "mcp_1".into(),
                status: ItemStatus::InProgress,
                server_label: "calc".into(),
                name: "add".into(),
                arguments: if output.is_some() {
                    "{}".into()
                } else {
                    String::new()
                },
                output: output.map(str::to_owned),
                error: None,
                approval_request_id: None,
            }))
        };
        let log = log(vec![
            created_with(header()),
            Event::RunStarted,
            Event::ItemStarted {
                output_index: 0,
                item: call(None),
            },
            Event::ArgumentsDelta {
                output_index: 0,
                delta: "{}".into(),
            },
            Event::ItemUpdated {
                output_index: 0,
                item: call(Some("5")),
            },
            Event::ItemCompleted {
                output_index: 0,
                status: ItemStatus::Completed,
            },
            Event::RunCompleted,
        ]);
        let wire = project(&log);
        let types: Vec<_> = wire.iter().map(|w| w.event_type).collect();
        assert_eq!(
            types,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.mcp_call_arguments.delta",
                "response.mcp_call_arguments.done",
                "response.mcp_call.in_progress",
                "response.mcp_call.completed",
                "response.output_item.done",
                "response.completed",
            ]
        );
        let done: Value = serde_json::from_str(&wire[7].json).unwrap();
        assert_eq!(done["item"]["output"], "5");
        assert_eq!(done["item"]["status"], "completed");
    }

    #[test]
    fn a_background_run_announces_it_is_queued() {
        let mut h = header();
        h.background = true;
        let log = log(vec![created_with(h), Event::RunStarted]);
        let types: Vec<_> = project(&log).iter().map(|w| w.event_type).collect();
        assert_eq!(
            types,
            [
                "response.created",
                "response.queued",
                "response.in_progress"
            ]
        );
    }

    #[test]
    fn tool_calls_running_side_by_side_go_on_the_wire_one_after_another() {
        use crate::item::ToolCallItem;
        use crate::tool::ToolResult;
        let call = |id: &str, args: &str| {
            Item::ToolCall(Box::new(ToolCallItem {
                id: id.into(),
                status: ItemStatus::InProgress,
                call_id: format!("call_{id}"),
                name: "add".into(),
                server: Some("calc".into()),
                arguments: args.into(),
                approval_request_id: None,
                result: None,
            }))
        };
        let finished = |output_index: u32, output: &str| Event::ToolFinished {
            output_index,
            result: ToolResult {
                success: true,
                output: Some(output.into()),
                error: None,
                runtime_ms: 1,
            },
        };
        let completed = |output_index: u32| Event::ItemCompleted {
            output_index,
            status: ItemStatus::Completed,
        };
        let log = log(vec![
            created_with(header()),
            Event::RunStarted,
            Event::ItemStarted {
                output_index: 0,
                item: call("a", "{\"x\":1}"),
            },
            Event::ItemStarted {
                output_index: 1,
                item: call("b", "{\"x\":2}"),
            },
            // b ends first, but is shown after a.
            finished(1, "2"),
            completed(1),
            finished(0, "1"),
            completed(0),
            Event::RunCompleted,
        ]);
        let wire = project(&log);
        let shown: Vec<(String, Value)> = wire
            .iter()
            .map(|w| {
                let v: Value = serde_json::from_str(&w.json).unwrap();
                (w.event_type.to_owned(), v["output_index"].clone())
            })
            .collect();
        let expected = [
            ("response.created", Value::Null),
            ("response.in_progress", Value::Null),
            ("response.output_item.added", 0.into()),
            ("response.mcp_call_arguments.delta", 0.into()),
            ("response.mcp_call_arguments.done", 0.into()),
            ("response.mcp_call.in_progress", 0.into()),
            ("response.mcp_call.completed", 0.into()),
            ("response.output_item.done", 0.into()),
            ("response.output_item.added", 1.into()),
            ("response.mcp_call_arguments.delta", 1.into()),
            ("response.mcp_call_arguments.done", 1.into()),
            ("response.mcp_call.in_progress", 1.into()),
            ("response.mcp_call.completed", 1.into()),
            ("response.output_item.done", 1.into()),
            ("response.completed", Value::Null),
        ];
        let expected: Vec<(String, Value)> = expected
            .into_iter()
            .map(|(t, i)| (t.to_owned(), i))
            .collect();
        assert_eq!(shown, expected);
        let added: Value = serde_json::from_str(&wire[2].json).unwrap();
        assert_eq!(added["item"]["type"], "mcp_call");
        assert_eq!(added["item"]["arguments"], "");
        let done: Value = serde_json::from_str(&wire[13].json).unwrap();
        assert_eq!(done["item"]["output"], "2");
        assert_eq!(done["item"]["server_label"], "calc");
    }
}
