//! Folding a run's log into its current state, with order validation.
//!
//! [`RunFold`] is the one place that knows which event may follow which:
//! [`RunFold::apply`] rejects an event that breaks the protocol's order
//! (a delta for a part that is not open, an item after the terminal event,
//! a gap in `seq`, …) and otherwise folds it into the snapshot. The writer
//! that appends events, every projection and every replay use the same fold,
//! so a log that was accepted once replays to the same state every time.

use crate::event::{Envelope, Event, StepKind};
use crate::item::{ContentPart, Item, ItemStatus, PartKind};
use crate::run::{IncompleteReason, RunError, RunHeader, Usage};
use crate::status::{RunStatus, TransitionError};

/// An event that may not follow the events before it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("expected seq {expected}, got {got}")]
    SeqGap { expected: u64, got: u64 },
    #[error("the first event of a run must be run.created")]
    NotCreatedFirst,
    #[error("run.created may only be the first event")]
    CreatedTwice,
    #[error("no event may follow the terminal event")]
    AfterTerminal,
    #[error("{0}")]
    Transition(#[from] TransitionError),
    #[error("output items may only be emitted while the run is in progress")]
    NotInProgress,
    #[error("item.started must use output_index {expected}, got {got}")]
    ItemIndex { expected: u32, got: u32 },
    #[error("a started item must be in progress and empty")]
    ItemNotFresh,
    #[error("no open item at output_index {0}")]
    ItemNotOpen(u32),
    #[error("part.started must use content_index {expected}, got {got}")]
    PartIndex { expected: u32, got: u32 },
    #[error("item {output_index} cannot hold a {kind:?} part")]
    PartKindMismatch { output_index: u32, kind: PartKind },
    #[error("item {0} already has an open content part")]
    PartAlreadyOpen(u32),
    #[error("no open content part {content_index} in item {output_index}")]
    PartNotOpen {
        output_index: u32,
        content_index: u32,
    },
    #[error("item {0} is not a function or MCP call")]
    NotFunctionCall(u32),
    #[error("item {0} is not a server-side tool call still running")]
    NotRunningToolCall(u32),
    #[error("tool call {0} cannot complete before it finished")]
    ToolNotFinished(u32),
    #[error("step {0} is still open; complete it first")]
    StepStillOpen(String),
    #[error("no open step '{0}'")]
    StepNotOpen(String),
    #[error("step '{0}' is not a shield step; only a shield step reports a violation")]
    ViolationOutsideShieldStep(String),
    #[error("item {0} still has an open content part")]
    PartStillOpen(u32),
    #[error("an item must complete as completed or incomplete")]
    ItemStillInProgress,
    #[error("item {0} is still open; complete it first")]
    ItemStillOpen(u32),
}

/// Bookkeeping beside each output item that the item itself does not show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ItemTrack {
    open: bool,
    /// The content index of the item's open part, if one is open.
    open_part: Option<u32>,
}

/// One step of a run, as its events describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    pub id: String,
    pub kind: StepKind,
    pub open: bool,
    /// Tokens an inference step used.
    pub usage: Option<Usage>,
    /// The output indexes of the items the step wrote: `start..end`.
    pub output_start: u32,
    pub output_end: u32,
}

/// The state a run's events fold into.
#[derive(Debug, Clone, Default)]
pub struct RunFold {
    header: Option<Box<RunHeader>>,
    input: Vec<Item>,
    status: Option<RunStatus>,
    output: Vec<Item>,
    tracks: Vec<ItemTrack>,
    steps: Vec<StepRecord>,
    usage: Option<Usage>,
    error: Option<RunError>,
    incomplete: Option<IncompleteReason>,
    completed_at: Option<i64>,
    next_seq: u64,
}

impl RunFold {
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds a whole log, stopping at the first out-of-order event.
    pub fn from_events<'a>(
        events: impl IntoIterator<Item = &'a Envelope>,
    ) -> Result<Self, OrderError> {
        let mut fold = Self::new();
        for e in events {
            fold.apply(e)?;
        }
        Ok(fold)
    }

    /// Checks `envelope` against the events before it and folds it in.
    /// On error nothing changes.
    pub fn apply(&mut self, envelope: &Envelope) -> Result<(), OrderError> {
        if envelope.seq != self.next_seq {
            return Err(OrderError::SeqGap {
                expected: self.next_seq,
                got: envelope.seq,
            });
        }
        self.check(&envelope.event)?;
        self.fold(envelope);
        self.next_seq += 1;
        Ok(())
    }

    /// Folds an event that [`RunFold::check`] has just accepted, at the next
    /// seq. The emitter checks before it waits for its sink and folds after,
    /// with nothing in between that could change the fold, so checking
    /// twice per event would be wasted work.
    pub(crate) fn apply_checked(&mut self, envelope: &Envelope) {
        debug_assert_eq!(envelope.seq, self.next_seq);
        debug_assert!(self.check(&envelope.event).is_ok());
        self.fold(envelope);
        self.next_seq += 1;
    }

    /// Whether `event` may come next, without folding it.
    pub fn check(&self, event: &Event) -> Result<(), OrderError> {
        let Some(status) = self.status else {
            return match event {
                Event::RunCreated(_) => Ok(()),
                _ => Err(OrderError::NotCreatedFirst),
            };
        };
        if status.is_terminal() {
            return Err(OrderError::AfterTerminal);
        }
        let item_events_allowed = || {
            if status == RunStatus::InProgress {
                Ok(())
            } else {
                Err(OrderError::NotInProgress)
            }
        };
        match event {
            Event::RunCreated(_) => Err(OrderError::CreatedTwice),
            Event::RunStarted => status
                .transition(RunStatus::InProgress)
                .map(drop)
                .map_err(Into::into),
            Event::ItemStarted { output_index, item } => {
                item_events_allowed()?;
                // Items are written one after another, except server-side
                // tool calls, which run concurrently: each is logged as it
                // starts. (The Responses projection still shows them one
                // after another.)
                let is_tool_call = |i: &Item| matches!(i, Item::ToolCall(_));
                if let Some(open) = self.first_open_item() {
                    let beside_tool_calls = is_tool_call(item)
                        && self
                            .open_items()
                            .all(|(i, _)| is_tool_call(&self.output[i as usize]));
                    if !beside_tool_calls {
                        return Err(OrderError::ItemStillOpen(open));
                    }
                }
                let expected = self.output.len() as u32;
                if *output_index != expected {
                    return Err(OrderError::ItemIndex {
                        expected,
                        got: *output_index,
                    });
                }
                let fresh = !item.has_lifecycle() || item.status() == ItemStatus::InProgress;
                if !fresh || !item.content().is_empty() {
                    return Err(OrderError::ItemNotFresh);
                }
                Ok(())
            }
            Event::PartStarted {
                output_index,
                content_index,
                kind,
            } => {
                item_events_allowed()?;
                let (item, track) = self.open_item(*output_index)?;
                let fits = matches!(
                    (item, kind),
                    (Item::Message(_), PartKind::OutputText | PartKind::Refusal)
                        | (Item::Reasoning(_), PartKind::ReasoningText)
                );
                if !fits {
                    return Err(OrderError::PartKindMismatch {
                        output_index: *output_index,
                        kind: *kind,
                    });
                }
                if track.open_part.is_some() {
                    return Err(OrderError::PartAlreadyOpen(*output_index));
                }
                let expected = item.content().len() as u32;
                if *content_index != expected {
                    return Err(OrderError::PartIndex {
                        expected,
                        got: *content_index,
                    });
                }
                Ok(())
            }
            Event::PartDelta {
                output_index,
                content_index,
                ..
            }
            | Event::PartDone {
                output_index,
                content_index,
            } => {
                item_events_allowed()?;
                let (_, track) = self.open_item(*output_index)?;
                if track.open_part != Some(*content_index) {
                    return Err(OrderError::PartNotOpen {
                        output_index: *output_index,
                        content_index: *content_index,
                    });
                }
                Ok(())
            }
            Event::ArgumentsDelta { output_index, .. } => {
                item_events_allowed()?;
                match self.open_item(*output_index)? {
                    (Item::FunctionCall(_) | Item::McpCall(_), _) => Ok(()),
                    _ => Err(OrderError::NotFunctionCall(*output_index)),
                }
            }
            Event::ToolFinished { output_index, .. } => {
                item_events_allowed()?;
                match self.open_item(*output_index)? {
                    (Item::ToolCall(call), _) if call.result.is_none() => Ok(()),
                    _ => Err(OrderError::NotRunningToolCall(*output_index)),
                }
            }
            Event::ItemUpdated { output_index, item } => {
                item_events_allowed()?;
                let (open, track) = self.open_item(*output_index)?;
                let same = open.id() == item.id()
                    && std::mem::discriminant(open) == std::mem::discriminant(item);
                if !same || item.status() != ItemStatus::InProgress || track.open_part.is_some() {
                    return Err(OrderError::ItemNotFresh);
                }
                Ok(())
            }
            Event::ItemCompleted {
                output_index,
                status: item_status,
            } => {
                item_events_allowed()?;
                let (item, track) = self.open_item(*output_index)?;
                if track.open_part.is_some() {
                    return Err(OrderError::PartStillOpen(*output_index));
                }
                if *item_status == ItemStatus::InProgress {
                    return Err(OrderError::ItemStillInProgress);
                }
                if let Item::ToolCall(call) = item
                    && call.result.is_none()
                    && *item_status == ItemStatus::Completed
                {
                    return Err(OrderError::ToolNotFinished(*output_index));
                }
                Ok(())
            }
            Event::StepStarted { .. } => {
                item_events_allowed()?;
                match self.open_step() {
                    Some(open) => Err(OrderError::StepStillOpen(open.id.clone())),
                    None => Ok(()),
                }
            }
            Event::StepCompleted {
                step_id, violation, ..
            } => {
                item_events_allowed()?;
                match self.open_step() {
                    Some(open) if open.id == *step_id => {
                        if violation.is_some() && open.kind != StepKind::ShieldCall {
                            return Err(OrderError::ViolationOutsideShieldStep(step_id.clone()));
                        }
                        Ok(())
                    }
                    _ => Err(OrderError::StepNotOpen(step_id.clone())),
                }
            }
            Event::Usage { .. } | Event::Status(_) | Event::ToolExecuted { .. } => Ok(()),
            Event::RunCompleted | Event::RunIncomplete { .. } => {
                let to = if matches!(event, Event::RunCompleted) {
                    RunStatus::Completed
                } else {
                    RunStatus::Incomplete
                };
                status.transition(to)?;
                if let Some(index) = self.first_open_item() {
                    return Err(OrderError::ItemStillOpen(index));
                }
                match self.open_step() {
                    Some(open) => Err(OrderError::StepStillOpen(open.id.clone())),
                    None => Ok(()),
                }
            }
            // A failure or cancellation may cut a run off anywhere; open
            // items are marked incomplete by the fold.
            Event::RunFailed { .. } => status
                .transition(RunStatus::Failed)
                .map(drop)
                .map_err(Into::into),
            Event::RunCancelled => status
                .transition(RunStatus::Cancelled)
                .map(drop)
                .map_err(Into::into),
        }
    }

    fn open_item(&self, output_index: u32) -> Result<(&Item, ItemTrack), OrderError> {
        let i = output_index as usize;
        match (self.output.get(i), self.tracks.get(i)) {
            (Some(item), Some(track)) if track.open => Ok((item, *track)),
            _ => Err(OrderError::ItemNotOpen(output_index)),
        }
    }

    fn fold(&mut self, envelope: &Envelope) {
        match &envelope.event {
            Event::RunCreated(created) => {
                self.status = Some(if created.run.background {
                    RunStatus::Queued
                } else {
                    RunStatus::InProgress
                });
                self.header = Some(Box::new(created.run.clone()));
                self.input.clone_from(&created.input);
            }
            Event::StepStarted { step_id, kind } => {
                let at = self.output.len() as u32;
                self.steps.push(StepRecord {
                    id: step_id.clone(),
                    kind: *kind,
                    open: true,
                    usage: None,
                    output_start: at,
                    output_end: at,
                });
            }
            Event::StepCompleted { usage, .. } => {
                let at = self.output.len() as u32;
                if let Some(step) = self.steps.last_mut() {
                    step.open = false;
                    step.usage = *usage;
                    step.output_end = at;
                }
                if let Some(usage) = usage {
                    self.usage.get_or_insert_with(Usage::default).add(usage);
                }
            }
            Event::ToolFinished {
                output_index,
                result,
            } => {
                if let Item::ToolCall(call) = &mut self.output[*output_index as usize] {
                    call.result = Some(result.clone());
                }
            }
            Event::RunStarted => self.status = Some(RunStatus::InProgress),
            Event::ItemStarted { item, .. } => {
                self.output.push(item.clone());
                self.tracks.push(ItemTrack {
                    open: true,
                    open_part: None,
                });
            }
            Event::PartStarted {
                output_index,
                content_index,
                kind,
            } => {
                let i = *output_index as usize;
                if let Some(content) = self.output[i].content_mut() {
                    content.push(kind.empty_part());
                }
                self.tracks[i].open_part = Some(*content_index);
            }
            Event::PartDelta {
                output_index,
                content_index,
                delta,
                logprobs,
            } => {
                let i = *output_index as usize;
                if let Some(part) = self.output[i]
                    .content_mut()
                    .and_then(|c| c.get_mut(*content_index as usize))
                {
                    part.push_text(delta);
                    if let ContentPart::OutputText { logprobs: kept, .. } = part {
                        kept.extend(logprobs.iter().cloned());
                    }
                }
            }
            Event::PartDone { output_index, .. } => {
                self.tracks[*output_index as usize].open_part = None;
            }
            Event::ArgumentsDelta {
                output_index,
                delta,
            } => match &mut self.output[*output_index as usize] {
                Item::FunctionCall(call) => call.arguments.push_str(delta),
                Item::McpCall(call) => call.arguments.push_str(delta),
                _ => {}
            },
            Event::ItemUpdated { output_index, item } => {
                self.output[*output_index as usize] = item.clone();
            }
            Event::ItemCompleted {
                output_index,
                status,
            } => {
                let i = *output_index as usize;
                self.output[i].set_status(*status);
                self.tracks[i].open = false;
            }
            Event::Usage { usage } => self.usage.get_or_insert_with(Usage::default).add(usage),
            // Recorded for the dialects that show them; the fold has no
            // place for either.
            Event::Status(_) | Event::ToolExecuted { .. } => {}
            Event::RunCompleted => {
                self.status = Some(RunStatus::Completed);
                self.completed_at = Some(envelope.ts_ms.div_euclid(1000));
                self.usage.get_or_insert_with(Usage::default);
            }
            Event::RunIncomplete { reason } => {
                self.status = Some(RunStatus::Incomplete);
                self.incomplete = Some(reason.clone());
                self.usage.get_or_insert_with(Usage::default);
            }
            Event::RunFailed { error } => {
                self.status = Some(RunStatus::Failed);
                self.error = Some(error.clone());
                self.cut_off_open_items();
            }
            Event::RunCancelled => {
                self.status = Some(RunStatus::Cancelled);
                self.cut_off_open_items();
            }
        }
    }

    /// Marks items and the step that a failure or cancellation interrupted
    /// as incomplete.
    fn cut_off_open_items(&mut self) {
        for (item, track) in self.output.iter_mut().zip(&mut self.tracks) {
            if track.open {
                item.set_status(ItemStatus::Incomplete);
                track.open = false;
                track.open_part = None;
            }
        }
        let at = self.output.len() as u32;
        if let Some(step) = self.steps.last_mut().filter(|s| s.open) {
            step.open = false;
            step.output_end = at;
        }
    }

    fn open_step(&self) -> Option<&StepRecord> {
        self.steps.last().filter(|s| s.open)
    }

    fn first_open_item(&self) -> Option<u32> {
        self.tracks.iter().position(|t| t.open).map(|i| i as u32)
    }

    // === accessors ===

    /// The seq the next event must carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The run's status; `None` before `run.created`.
    pub fn status(&self) -> Option<RunStatus> {
        self.status
    }

    pub fn is_terminal(&self) -> bool {
        self.status.is_some_and(RunStatus::is_terminal)
    }

    /// Every output item, including ones still open.
    pub fn output(&self) -> &[Item] {
        &self.output
    }

    /// The open items, in output order, each with its open content part.
    pub fn open_items(&self) -> impl Iterator<Item = (u32, Option<u32>)> + '_ {
        self.tracks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.open)
            .map(|(i, t)| (i as u32, t.open_part))
    }

    /// The fixed header; `None` before `run.created`.
    pub fn header(&self) -> Option<&RunHeader> {
        self.header.as_deref()
    }

    /// The run's input, as `run.created` logged it.
    pub fn input(&self) -> &[Item] {
        &self.input
    }

    /// Every step so far, in order.
    pub fn steps(&self) -> &[StepRecord] {
        &self.steps
    }

    /// The step still open, if one is.
    pub fn current_step(&self) -> Option<&StepRecord> {
        self.open_step()
    }

    /// The tokens the run's model calls used so far; `None` before any
    /// call reported usage, unless the run completed.
    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }

    /// Why the run failed, once it has.
    pub fn error(&self) -> Option<&RunError> {
        self.error.as_ref()
    }

    /// Why the run stopped early, once it has.
    pub fn incomplete_reason(&self) -> Option<&IncompleteReason> {
        self.incomplete.as_ref()
    }

    /// When the run completed, in Unix seconds.
    pub fn completed_at(&self) -> Option<i64> {
        self.completed_at
    }

    /// Whether the item at `output_index` is still open.
    pub fn is_open(&self, output_index: u32) -> bool {
        self.tracks
            .get(output_index as usize)
            .is_some_and(|t| t.open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::{created_with, log};
    use crate::item::ToolCallItem;
    use crate::projection::responses::object;
    use crate::run::tests::header;
    use crate::tool::ToolResult;

    fn created() -> Event {
        created_with(header())
    }

    fn text_run(text: &[&str]) -> Vec<Event> {
        let mut events = vec![
            created(),
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
        ];
        for t in text {
            events.push(Event::PartDelta {
                output_index: 0,
                content_index: 0,
                delta: (*t).into(),
                logprobs: Vec::new(),
            });
        }
        events.extend([
            Event::PartDone {
                output_index: 0,
                content_index: 0,
            },
            Event::ItemCompleted {
                output_index: 0,
                status: ItemStatus::Completed,
            },
            Event::RunCompleted,
        ]);
        events
    }

    #[test]
    fn a_text_run_folds_into_a_completed_response_with_its_text() {
        let fold = RunFold::from_events(&log(text_run(&["Hel", "lo"]))).unwrap();
        assert_eq!(fold.status(), Some(RunStatus::Completed));
        let Item::Message(m) = &fold.output()[0] else {
            panic!("not a message")
        };
        assert_eq!(m.text(), "Hello");
        assert_eq!(m.status, ItemStatus::Completed);
        let obj = serde_json::to_value(object(&fold).unwrap()).unwrap();
        assert_eq!(obj["completed_at"], 1_700_000_000);
        assert!(obj["usage"].is_object());
    }

    #[test]
    fn the_first_event_must_be_run_created() {
        let mut fold = RunFold::new();
        let e = Envelope {
            seq: 0,
            ts_ms: 0,
            event: Event::RunStarted,
        };
        assert_eq!(fold.apply(&e), Err(OrderError::NotCreatedFirst));
    }

    #[test]
    fn a_gap_in_seq_is_rejected() {
        let mut fold = RunFold::new();
        let e = Envelope {
            seq: 1,
            ts_ms: 0,
            event: created(),
        };
        assert_eq!(
            fold.apply(&e),
            Err(OrderError::SeqGap {
                expected: 0,
                got: 1
            })
        );
    }

    #[test]
    fn nothing_follows_the_terminal_event() {
        let mut events = text_run(&["a"]);
        events.push(Event::RunStarted);
        assert_eq!(
            RunFold::from_events(&log(events)).unwrap_err(),
            OrderError::AfterTerminal
        );
    }

    #[test]
    fn a_delta_for_a_part_that_is_not_open_is_rejected() {
        let events = vec![
            created(),
            Event::RunStarted,
            Event::ItemStarted {
                output_index: 0,
                item: Item::assistant_message("msg_1".into()),
            },
            Event::PartDelta {
                output_index: 0,
                content_index: 0,
                delta: "x".into(),
                logprobs: Vec::new(),
            },
        ];
        assert!(matches!(
            RunFold::from_events(&log(events)),
            Err(OrderError::PartNotOpen { .. })
        ));
    }

    #[test]
    fn a_run_cannot_complete_with_an_open_item() {
        let events = vec![
            created(),
            Event::RunStarted,
            Event::ItemStarted {
                output_index: 0,
                item: Item::function_call("fc_1".into(), "c1", "f"),
            },
            Event::RunCompleted,
        ];
        assert_eq!(
            RunFold::from_events(&log(events)).unwrap_err(),
            OrderError::ItemStillOpen(0)
        );
    }

    #[test]
    fn an_item_cannot_start_while_another_is_open() {
        let events = vec![
            created(),
            Event::RunStarted,
            Event::ItemStarted {
                output_index: 0,
                item: Item::function_call("fc_1".into(), "c1", "f"),
            },
            Event::ItemStarted {
                output_index: 1,
                item: Item::function_call("fc_2".into(), "c2", "g"),
            },
        ];
        assert_eq!(
            RunFold::from_events(&log(events)).unwrap_err(),
            OrderError::ItemStillOpen(0)
        );
    }

    #[test]
    fn items_must_take_the_next_output_index() {
        let events = vec![
            created(),
            Event::RunStarted,
            Event::ItemStarted {
                output_index: 1,
                item: Item::assistant_message("msg_1".into()),
            },
        ];
        assert_eq!(
            RunFold::from_events(&log(events)).unwrap_err(),
            OrderError::ItemIndex {
                expected: 0,
                got: 1
            }
        );
    }

    #[test]
    fn a_function_call_cannot_hold_text_parts() {
        let events = vec![
            created(),
            Event::RunStarted,
            Event::ItemStarted {
                output_index: 0,
                item: Item::function_call("fc_1".into(), "c1", "f"),
            },
            Event::PartStarted {
                output_index: 0,
                content_index: 0,
                kind: PartKind::OutputText,
            },
        ];
        assert!(matches!(
            RunFold::from_events(&log(events)),
            Err(OrderError::PartKindMismatch { .. })
        ));
    }

    #[test]
    fn a_failure_cuts_off_open_items_and_keeps_the_error() {
        let mut events = text_run(&["partial"]);
        events.truncate(5);
        events.push(Event::RunFailed {
            error: RunError::new("upstream_error", "boom"),
        });
        let fold = RunFold::from_events(&log(events)).unwrap();
        assert_eq!(fold.status(), Some(RunStatus::Failed));
        assert_eq!(fold.output()[0].status(), ItemStatus::Incomplete);
        assert_eq!(fold.open_items().count(), 0);
        let obj = serde_json::to_value(object(&fold).unwrap()).unwrap();
        assert_eq!(obj["error"]["code"], "upstream_error");
        assert_eq!(obj["completed_at"], serde_json::Value::Null);
    }

    #[test]
    fn a_cancelled_response_shows_no_output() {
        let mut events = text_run(&["partial"]);
        events.truncate(5);
        events.push(Event::RunCancelled);
        let fold = RunFold::from_events(&log(events)).unwrap();
        let obj = serde_json::to_value(object(&fold).unwrap()).unwrap();
        assert_eq!(obj["status"], "cancelled");
        assert_eq!(obj["output"], serde_json::json!([]));
    }

    #[test]
    fn a_background_run_starts_queued_and_may_be_cancelled_before_it_starts() {
        let mut h = header();
        h.background = true;
        let events = vec![created_with(h), Event::RunCancelled];
        let mut fold = RunFold::new();
        fold.apply(&log(events.clone())[0]).unwrap();
        assert_eq!(fold.status(), Some(RunStatus::Queued));
        fold.apply(&log(events)[1]).unwrap();
        assert_eq!(fold.status(), Some(RunStatus::Cancelled));
    }

    #[test]
    fn a_rejected_event_changes_nothing() {
        let mut fold = RunFold::from_events(&log(text_run(&["a"])[..3].to_vec())).unwrap();
        let before = fold.next_seq();
        let bad = Envelope {
            seq: before,
            ts_ms: 0,
            event: Event::RunCompleted,
        };
        assert!(fold.apply(&bad).is_err());
        assert_eq!(fold.next_seq(), before);
        assert_eq!(fold.open_items().count(), 1);
    }

    fn tool_call(id: &str) -> Item {
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
    }

    fn finished(output_index: u32) -> Event {
        Event::ToolFinished {
            output_index,
            result: ToolResult {
                success: true,
                output: Some("3".into()),
                error: None,
                runtime_ms: 2,
            },
        }
    }

    fn completed(output_index: u32) -> Event {
        Event::ItemCompleted {
            output_index,
            status: ItemStatus::Completed,
        }
    }

    #[test]
    fn tool_calls_run_beside_each_other_and_finish_in_any_order() {
        let events = vec![
            created(),
            Event::RunStarted,
            Event::StepStarted {
                step_id: "step_1".into(),
                kind: StepKind::ToolExecution,
            },
            Event::ItemStarted {
                output_index: 0,
                item: tool_call("a"),
            },
            Event::ItemStarted {
                output_index: 1,
                item: tool_call("b"),
            },
            finished(1),
            completed(1),
            finished(0),
            completed(0),
            Event::StepCompleted {
                step_id: "step_1".into(),
                usage: None,
                violation: None,
            },
            Event::RunCompleted,
        ];
        let fold = RunFold::from_events(&log(events)).unwrap();
        assert_eq!(fold.status(), Some(RunStatus::Completed));
        let Item::ToolCall(call) = &fold.output()[0] else {
            panic!("not a tool call")
        };
        assert_eq!(call.result.as_ref().unwrap().output.as_deref(), Some("3"));
        let step = &fold.steps()[0];
        assert_eq!(
            (step.output_start, step.output_end, step.open),
            (0, 2, false)
        );
    }

    #[test]
    fn no_other_item_starts_beside_a_tool_call_and_no_call_completes_unfinished() {
        let mut fold = RunFold::from_events(&log(vec![
            created(),
            Event::RunStarted,
            Event::ItemStarted {
                output_index: 0,
                item: tool_call("a"),
            },
        ]))
        .unwrap();
        let message = Event::ItemStarted {
            output_index: 1,
            item: Item::assistant_message("msg_1".into()),
        };
        assert_eq!(fold.check(&message), Err(OrderError::ItemStillOpen(0)));
        assert_eq!(
            fold.check(&completed(0)),
            Err(OrderError::ToolNotFinished(0))
        );
        fold.apply(&Envelope {
            seq: 3,
            ts_ms: 0,
            event: finished(0),
        })
        .unwrap();
        assert_eq!(
            fold.check(&finished(0)),
            Err(OrderError::NotRunningToolCall(0))
        );
    }

    #[test]
    fn steps_do_not_overlap_and_carry_their_usage() {
        let usage = Usage {
            input_tokens: 3,
            output_tokens: 2,
            total_tokens: 5,
            ..Usage::default()
        };
        let mut events = vec![
            created(),
            Event::RunStarted,
            Event::StepStarted {
                step_id: "step_1".into(),
                kind: StepKind::Inference,
            },
        ];
        let fold = RunFold::from_events(&log(events.clone())).unwrap();
        assert_eq!(
            fold.check(&Event::StepStarted {
                step_id: "step_2".into(),
                kind: StepKind::Inference,
            }),
            Err(OrderError::StepStillOpen("step_1".into()))
        );
        assert_eq!(
            fold.check(&Event::RunCompleted),
            Err(OrderError::StepStillOpen("step_1".into()))
        );
        events.push(Event::StepCompleted {
            step_id: "step_1".into(),
            usage: Some(usage),
            violation: None,
        });
        events.push(Event::RunCompleted);
        let fold = RunFold::from_events(&log(events)).unwrap();
        assert_eq!(fold.usage(), Some(&usage));
        assert_eq!(fold.steps()[0].usage, Some(usage));
    }

    #[test]
    fn only_a_shield_step_reports_a_violation() {
        let violation = crate::run::SafetyViolation {
            violation_level: crate::run::ViolationLevel::Error,
            user_message: Some("no".into()),
            metadata: Default::default(),
        };
        let completed = |step: &str| Event::StepCompleted {
            step_id: step.into(),
            usage: None,
            violation: Some(violation.clone()),
        };
        let mut events = vec![
            created(),
            Event::RunStarted,
            Event::StepStarted {
                step_id: "step_1".into(),
                kind: StepKind::Inference,
            },
        ];
        let fold = RunFold::from_events(&log(events.clone())).unwrap();
        assert_eq!(
            fold.check(&completed("step_1")),
            Err(OrderError::ViolationOutsideShieldStep("step_1".into()))
        );
        events[2] = Event::StepStarted {
            step_id: "step_1".into(),
            kind: StepKind::ShieldCall,
        };
        events.push(completed("step_1"));
        events.push(Event::RunCompleted);
        assert!(RunFold::from_events(&log(events)).is_ok());
    }
}
