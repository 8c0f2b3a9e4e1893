//! The llama-stack Agents API turn stream (seed 004) as a projection of
//! the log, and the `Turn` objects its routes return.
//!
//! Every frame is `{"event":{"payload":{…}}}`, data only (no SSE event
//! name, no `[DONE]`). A run shows as:
//!
//! - `turn_start` when the run begins a turn;
//! - per inference step `step_start`, `step_progress` text deltas and
//!   tool-call deltas (`parse_status` started → in_progress → succeeded, or
//!   failed when the arguments are not a JSON object), then
//!   `step_complete` with the model's message (`model_response`). The
//!   server-side calls an answer asked for are logged after its step
//!   (`status: tool_call_detected`), so a completed inference step is held
//!   until the next event and shows them too;
//! - per shield step (a check of the input before the model is called, or
//!   of the answer after) `step_start` with its `touchpoint` and
//!   `step_complete` with the violation, if any; a violation ends the turn
//!   with its message as the answer;
//! - per tool-execution step `step_start`, a `step_progress` with each
//!   call (`in_progress`, the whole call) as it starts, `step_complete`
//!   with `tool_calls` and `tool_responses`;
//! - the end: `turn_complete` with the [`Turn`], or `turn_awaiting_input`
//!   when the model called the caller's tools (its `output_message` has
//!   `stop_reason: end_of_message` and the calls); a failed run is one
//!   `{"error":{"message":…}}` frame; a cancelled run ends the stream.
//!
//! A turn may take several runs: a turn waiting for client tools is
//! resumed by a run whose header names the turn (`continues_turn`) and
//! whose input is the tool results. That run's projection is built with
//! [`LlamaStackProjection::continuing`] from the turn as its earlier runs
//! left it ([`TurnState`]), so its first frame closes the waiting
//! tool-execution step with the caller's responses and its `turn_complete`
//! shows the whole turn. [`session_turns`] folds a session's runs into its
//! turns, the same way.
//!
//! Logs written before runs had steps show no steps: their turn ends with
//! the run's answer as its output message.

use super::{Frame, Projection, ProjectionError};
use crate::event::{Envelope, Event, StepKind};
use crate::fold::RunFold;
use crate::item::{ContentPart, Item, ItemStatus, Role};
use crate::run::{IncompleteReason, SafetyViolation};
use crate::tool::AgentStatus;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Projects a run's log into the llama-stack turn stream.
#[derive(Debug, Clone, Default)]
pub struct LlamaStackProjection {
    fold: RunFold,
    next_index: u64,
    turn: TurnState,
    /// The step open in this run.
    open: Option<OpenStep>,
    /// A completed inference step, held until the next event in case that
    /// event names the server-side calls its answer made.
    held: Option<(OpenStep, i64)>,
    /// The last model message of this turn, and whether it called the
    /// caller's tools.
    last_response: Option<CompletionMessage>,
    client_calls: Vec<ToolCall>,
    /// The inference step whose answer called the caller's tools.
    client_call_step: Option<String>,
    /// What a shield's violation tells the user: the turn's answer.
    violation_message: Option<String>,
    /// Whether this run has had a model call yet (a shield step before
    /// one checks the input, after one the answer).
    inferred: bool,
}

/// A turn as far as its runs have gone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TurnState {
    pub turn_id: String,
    pub session_id: String,
    started_at_ms: i64,
    completed_at_ms: Option<i64>,
    input_messages: Vec<Value>,
    steps: Vec<Step>,
    output_message: Option<CompletionMessage>,
    /// The client tools' step, open while the turn waits for their results.
    awaiting: Option<AwaitingStep>,
    outcome: TurnOutcome,
}

/// Where a turn stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TurnOutcome {
    #[default]
    Running,
    /// The model called the caller's tools; a resume continues the turn.
    AwaitingInput,
    Completed,
    Failed(String),
    Cancelled,
}

/// The tool-execution step of the caller's tools, open while the turn waits.
#[derive(Debug, Clone, PartialEq)]
struct AwaitingStep {
    step_id: String,
    started_at_ms: i64,
    tool_calls: Vec<ToolCall>,
}

impl TurnState {
    pub fn outcome(&self) -> &TurnOutcome {
        &self.outcome
    }

    /// The calls the turn waits for the caller to answer, if it waits.
    pub fn awaited_calls(&self) -> Option<&[ToolCall]> {
        self.awaiting.as_ref().map(|a| a.tool_calls.as_slice())
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    pub fn step(&self, step_id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.step_id() == step_id)
    }

    /// The `Turn` object: the steps so far and the last model message.
    pub fn turn(&self) -> Turn {
        Turn {
            turn_id: self.turn_id.clone(),
            session_id: self.session_id.clone(),
            input_messages: self.input_messages.clone(),
            steps: self.steps.clone(),
            output_message: self
                .output_message
                .clone()
                .unwrap_or_else(|| CompletionMessage::text(String::new(), StopReason::EndOfTurn)),
            output_attachments: Vec::new(),
            started_at: iso8601(self.started_at_ms),
            completed_at: self.completed_at_ms.map(iso8601),
        }
    }
}

/// A step open in the run being projected.
#[derive(Debug, Clone)]
struct OpenStep {
    id: String,
    kind: StepKind,
    started_ms: i64,
    text: String,
    tool_calls: Vec<ToolCall>,
    tool_responses: Vec<ToolResponse>,
    out_of_tokens: bool,
}

impl LlamaStackProjection {
    /// The projection of a run that begins a turn.
    pub fn new() -> Self {
        Self::default()
    }

    /// The projection of a run that resumes `turn`, as its earlier runs
    /// left it.
    pub fn continuing(turn: TurnState) -> Self {
        Self {
            turn,
            ..Self::default()
        }
    }

    /// The turn as far as this run has gone.
    pub fn turn(&self) -> &TurnState {
        &self.turn
    }

    fn emit(
        &mut self,
        payload: &Payload<'_>,
        out: &mut dyn FnMut(Frame),
    ) -> Result<(), ProjectionError> {
        let data = serde_json::to_string(&Chunk {
            event: ChunkEvent { payload },
        })?;
        self.push(data, out);
        Ok(())
    }

    fn push(&mut self, data: String, out: &mut dyn FnMut(Frame)) {
        out(Frame {
            index: self.next_index,
            event: None,
            data,
        });
        self.next_index += 1;
    }

    fn progress(
        &mut self,
        step_type: StepType,
        step_id: &str,
        delta: Delta<'_>,
        out: &mut dyn FnMut(Frame),
    ) -> Result<(), ProjectionError> {
        self.emit(
            &Payload::StepProgress {
                step_type,
                step_id,
                delta,
            },
            out,
        )
    }

    /// Shows the held inference step as complete, with `server_calls`.
    fn release_held(
        &mut self,
        server_calls: Vec<ToolCall>,
        out: &mut dyn FnMut(Frame),
    ) -> Result<(), ProjectionError> {
        let Some((mut step, completed_ms)) = self.held.take() else {
            return Ok(());
        };
        for call in &server_calls {
            self.progress(
                StepType::Inference,
                &step.id,
                Delta::ToolCall {
                    tool_call: DeltaCall::Call(call),
                    parse_status: ParseStatus::Succeeded,
                },
                out,
            )?;
        }
        step.tool_calls.extend(server_calls);
        let stop_reason = if step.out_of_tokens {
            StopReason::OutOfTokens
        } else if step.tool_calls.is_empty() {
            StopReason::EndOfTurn
        } else {
            StopReason::EndOfMessage
        };
        let model_response = CompletionMessage {
            role: "assistant".into(),
            content: step.text,
            stop_reason,
            tool_calls: step.tool_calls,
        };
        let details = Step::Inference(InferenceStep {
            turn_id: self.turn.turn_id.clone(),
            step_id: step.id.clone(),
            started_at: Some(iso8601(step.started_ms)),
            completed_at: Some(iso8601(completed_ms)),
            model_response: model_response.clone(),
        });
        self.emit(
            &Payload::StepComplete {
                step_type: StepType::Inference,
                step_id: &step.id,
                step_details: &details,
            },
            out,
        )?;
        self.turn.steps.push(details);
        self.last_response = Some(model_response);
        Ok(())
    }

    /// The model's answer in a log written before runs had steps (older
    /// builds): the run's assistant text and its calls of the caller's
    /// tools.
    fn message_without_steps(&mut self) -> CompletionMessage {
        let mut message = CompletionMessage::text(String::new(), StopReason::EndOfTurn);
        for item in self.fold.output() {
            match item {
                Item::Message(m) if m.role == Role::Assistant => {
                    message.content.push_str(&m.text())
                }
                Item::FunctionCall(f) => {
                    let call = ToolCall::new(f.call_id.clone(), f.name.clone(), &f.arguments);
                    message.tool_calls.push(call.clone());
                    self.client_calls.push(call);
                }
                _ => {}
            }
        }
        message
    }

    /// The run created: a new turn, or the resume of a waiting one, whose
    /// client-tool step the caller's results close.
    fn created(
        &mut self,
        envelope: &Envelope,
        input: &[Item],
        out: &mut dyn FnMut(Frame),
    ) -> Result<(), ProjectionError> {
        let Some(header) = self.fold.header() else {
            return Ok(());
        };
        let resumes = header.continues_turn.is_some() && self.turn.awaiting.is_some();
        if !resumes {
            self.turn = TurnState {
                turn_id: header.id.as_str().to_owned(),
                session_id: header
                    .conversation
                    .as_ref()
                    .map(|c| c.as_str().to_owned())
                    .unwrap_or_default(),
                started_at_ms: envelope.ts_ms,
                input_messages: input.iter().filter_map(input_message).collect(),
                ..TurnState::default()
            };
            return Ok(());
        }
        let Some(waiting) = self.turn.awaiting.take() else {
            return Ok(());
        };
        let tool_responses = input
            .iter()
            .filter_map(|item| match item {
                Item::FunctionCallOutput(o) => Some(ToolResponse {
                    call_id: o.call_id.clone(),
                    tool_name: waiting
                        .tool_calls
                        .iter()
                        .find(|c| c.call_id == o.call_id)
                        .map(|c| c.tool_name.clone())
                        .unwrap_or_default(),
                    content: o.output_text(),
                    metadata: Map::new(),
                }),
                _ => None,
            })
            .collect();
        let details = Step::ToolExecution(ToolExecutionStep {
            turn_id: self.turn.turn_id.clone(),
            step_id: waiting.step_id.clone(),
            started_at: Some(iso8601(waiting.started_at_ms)),
            completed_at: Some(iso8601(envelope.ts_ms)),
            tool_calls: waiting.tool_calls,
            tool_responses,
        });
        self.emit(
            &Payload::StepComplete {
                step_type: StepType::ToolExecution,
                step_id: &waiting.step_id,
                step_details: &details,
            },
            out,
        )?;
        self.turn.steps.push(details);
        self.turn.outcome = TurnOutcome::Running;
        self.turn.completed_at_ms = None;
        Ok(())
    }

    /// The run ended: the turn completes, or waits for the caller's tools.
    fn finish(
        &mut self,
        envelope: &Envelope,
        incomplete: Option<&IncompleteReason>,
        out: &mut dyn FnMut(Frame),
    ) -> Result<(), ProjectionError> {
        let mut message = match self.violation_message.take() {
            // A shield stopped the turn: its message is the answer.
            Some(text) => CompletionMessage::text(text, StopReason::EndOfTurn),
            None => self
                .last_response
                .take()
                .unwrap_or_else(|| self.message_without_steps()),
        };
        self.turn.completed_at_ms = Some(envelope.ts_ms);
        let awaiting = incomplete.is_none() && !self.client_calls.is_empty();
        if awaiting {
            message.stop_reason = StopReason::EndOfMessage;
            let step = self.client_call_step.take().unwrap_or_default();
            self.turn.awaiting = Some(AwaitingStep {
                step_id: format!("{step}-client-tools"),
                started_at_ms: envelope.ts_ms,
                tool_calls: self.client_calls.clone(),
            });
            self.turn.outcome = TurnOutcome::AwaitingInput;
        } else {
            // At the iteration limit the turn ends (`end_of_turn`, so the
            // client does not resume); at the token limit it says so.
            message.stop_reason = match incomplete {
                Some(IncompleteReason::MaxOutputTokens) => StopReason::OutOfTokens,
                Some(_) => StopReason::EndOfTurn,
                None => message.stop_reason,
            };
            if message.stop_reason == StopReason::EndOfMessage {
                message.stop_reason = StopReason::EndOfTurn;
            }
            self.turn.outcome = TurnOutcome::Completed;
        }
        self.turn.output_message = Some(message);
        let turn = self.turn.turn();
        let payload = if awaiting {
            Payload::TurnAwaitingInput { turn }
        } else {
            Payload::TurnComplete { turn }
        };
        self.emit(&payload, out)
    }
}

impl Projection for LlamaStackProjection {
    fn fold(&self) -> &RunFold {
        &self.fold
    }

    fn apply(
        &mut self,
        envelope: &Envelope,
        out: &mut dyn FnMut(Frame),
    ) -> Result<(), ProjectionError> {
        self.fold.apply(envelope)?;
        if let Event::Status(AgentStatus::ToolCallDetected { details }) = &envelope.event {
            let calls = details
                .tools
                .iter()
                .map(|c| {
                    ToolCall::new(
                        c.call_id.clone().unwrap_or_default(),
                        c.name.clone(),
                        &c.arguments,
                    )
                })
                .collect();
            return self.release_held(calls, out);
        }
        self.release_held(Vec::new(), out)?;
        match &envelope.event {
            Event::RunCreated(created) => self.created(envelope, &created.input, out)?,
            Event::RunStarted => {
                if self
                    .fold
                    .header()
                    .is_some_and(|h| h.continues_turn.is_none())
                {
                    let turn_id = self.turn.turn_id.clone();
                    self.emit(&Payload::TurnStart { turn_id: &turn_id }, out)?;
                }
            }
            Event::StepStarted { step_id, kind } => {
                let mut metadata = Map::new();
                if *kind == StepKind::ShieldCall {
                    let touchpoint = if self.inferred {
                        "agent-output"
                    } else {
                        "user-input"
                    };
                    metadata.insert("touchpoint".into(), Value::String(touchpoint.into()));
                }
                self.inferred |= *kind == StepKind::Inference;
                self.open = Some(OpenStep {
                    id: step_id.clone(),
                    kind: *kind,
                    started_ms: envelope.ts_ms,
                    text: String::new(),
                    tool_calls: Vec::new(),
                    tool_responses: Vec::new(),
                    out_of_tokens: false,
                });
                self.emit(
                    &Payload::StepStart {
                        step_type: StepType::from(*kind),
                        step_id,
                        metadata,
                    },
                    out,
                )?;
            }
            Event::PartDelta {
                output_index,
                delta,
                ..
            } => {
                let is_answer = matches!(
                    self.fold.output().get(*output_index as usize),
                    Some(Item::Message(m)) if m.role == Role::Assistant
                );
                if is_answer && let Some(step) = &mut self.open {
                    step.text.push_str(delta);
                    let id = step.id.clone();
                    self.progress(StepType::Inference, &id, Delta::Text { text: delta }, out)?;
                }
            }
            Event::ItemStarted { item, .. } => match item {
                Item::FunctionCall(_) => {
                    if let Some(id) = self.open.as_ref().map(|s| s.id.clone()) {
                        self.progress(
                            StepType::Inference,
                            &id,
                            Delta::ToolCall {
                                tool_call: DeltaCall::Text(""),
                                parse_status: ParseStatus::Started,
                            },
                            out,
                        )?;
                    }
                }
                Item::ToolCall(call) => {
                    let call =
                        ToolCall::new(call.call_id.clone(), call.name.clone(), &call.arguments);
                    if let Some(step) = &mut self.open {
                        step.tool_calls.push(call.clone());
                        let id = step.id.clone();
                        self.progress(
                            StepType::ToolExecution,
                            &id,
                            Delta::ToolCall {
                                tool_call: DeltaCall::Call(&call),
                                parse_status: ParseStatus::InProgress,
                            },
                            out,
                        )?;
                    }
                }
                _ => {}
            },
            Event::ArgumentsDelta { delta, .. } => {
                if let Some(id) = self.open.as_ref().map(|s| s.id.clone()) {
                    self.progress(
                        StepType::Inference,
                        &id,
                        Delta::ToolCall {
                            tool_call: DeltaCall::Text(delta),
                            parse_status: ParseStatus::InProgress,
                        },
                        out,
                    )?;
                }
            }
            Event::ToolFinished {
                output_index,
                result,
            } => {
                if let (Some(Item::ToolCall(call)), Some(step)) = (
                    self.fold.output().get(*output_index as usize),
                    &mut self.open,
                ) {
                    step.tool_responses.push(ToolResponse {
                        call_id: call.call_id.clone(),
                        tool_name: call.name.clone(),
                        content: result.model_output(),
                        metadata: Map::new(),
                    });
                }
            }
            Event::ItemCompleted {
                output_index,
                status,
            } => {
                let item = self.fold.output().get(*output_index as usize).cloned();
                match item {
                    Some(Item::FunctionCall(f)) => {
                        let Some(step_id) = self.open.as_ref().map(|s| s.id.clone()) else {
                            return Ok(());
                        };
                        match serde_json::from_str::<Value>(&f.arguments) {
                            Ok(Value::Object(_)) => {
                                let call =
                                    ToolCall::new(f.call_id.clone(), f.name.clone(), &f.arguments);
                                self.progress(
                                    StepType::Inference,
                                    &step_id,
                                    Delta::ToolCall {
                                        tool_call: DeltaCall::Call(&call),
                                        parse_status: ParseStatus::Succeeded,
                                    },
                                    out,
                                )?;
                                if let Some(step) = &mut self.open {
                                    step.tool_calls.push(call.clone());
                                }
                                self.client_calls.push(call);
                                self.client_call_step = Some(step_id);
                            }
                            _ => self.progress(
                                StepType::Inference,
                                &step_id,
                                Delta::ToolCall {
                                    tool_call: DeltaCall::Text(&f.arguments),
                                    parse_status: ParseStatus::Failed,
                                },
                                out,
                            )?,
                        }
                    }
                    Some(Item::Message(m)) if m.role == Role::Assistant => {
                        if *status == ItemStatus::Incomplete
                            && let Some(step) = &mut self.open
                        {
                            step.out_of_tokens = true;
                        }
                    }
                    _ => {}
                }
            }
            Event::StepCompleted {
                step_id, violation, ..
            } => {
                let Some(step) = self.open.take() else {
                    return Ok(());
                };
                match step.kind {
                    StepKind::Inference => self.held = Some((step, envelope.ts_ms)),
                    StepKind::ShieldCall => {
                        let details = Step::ShieldCall(ShieldCallStep {
                            turn_id: self.turn.turn_id.clone(),
                            step_id: step.id.clone(),
                            started_at: Some(iso8601(step.started_ms)),
                            completed_at: Some(iso8601(envelope.ts_ms)),
                            violation: violation.clone(),
                        });
                        self.emit(
                            &Payload::StepComplete {
                                step_type: StepType::ShieldCall,
                                step_id,
                                step_details: &details,
                            },
                            out,
                        )?;
                        self.turn.steps.push(details);
                        if let Some(violation) = violation {
                            self.violation_message = Some(
                                violation
                                    .user_message
                                    .clone()
                                    .unwrap_or_else(|| VIOLATION_MESSAGE.to_owned()),
                            );
                        }
                    }
                    StepKind::ToolExecution => {
                        let details = Step::ToolExecution(ToolExecutionStep {
                            turn_id: self.turn.turn_id.clone(),
                            step_id: step.id.clone(),
                            started_at: Some(iso8601(step.started_ms)),
                            completed_at: Some(iso8601(envelope.ts_ms)),
                            tool_calls: step.tool_calls,
                            tool_responses: step.tool_responses,
                        });
                        self.emit(
                            &Payload::StepComplete {
                                step_type: StepType::ToolExecution,
                                step_id,
                                step_details: &details,
                            },
                            out,
                        )?;
                        self.turn.steps.push(details);
                    }
                }
            }
            Event::RunCompleted => self.finish(envelope, None, out)?,
            Event::RunIncomplete { reason } => self.finish(envelope, Some(reason), out)?,
            Event::RunFailed { error } => {
                self.turn.completed_at_ms = Some(envelope.ts_ms);
                self.turn.outcome = TurnOutcome::Failed(error.message.clone());
                let data = serde_json::to_string(&serde_json::json!({
                    "error": {"message": error.message}
                }))?;
                self.push(data, out);
            }
            Event::RunCancelled => {
                self.turn.completed_at_ms = Some(envelope.ts_ms);
                self.turn.outcome = TurnOutcome::Cancelled;
            }
            // Part boundaries, agent statuses and usage have no frames of
            // their own; the legacy forms carry nothing this stream shows.
            Event::PartStarted { .. }
            | Event::PartDone { .. }
            | Event::Status(_)
            | Event::Usage { .. }
            | Event::ItemUpdated { .. }
            | Event::ToolExecuted { .. } => {}
        }
        Ok(())
    }
}

/// A session's turns from its runs' logs, in order: a run that continues a
/// waiting turn (`continues_turn`) joins it, any other run begins one.
pub fn session_turns<'a>(
    runs: impl IntoIterator<Item = &'a [Envelope]>,
) -> Result<Vec<TurnState>, ProjectionError> {
    let mut turns: Vec<TurnState> = Vec::new();
    for log in runs {
        let continues = log.first().and_then(|e| match &e.event {
            Event::RunCreated(c) => c.run.continues_turn.clone(),
            _ => None,
        });
        let mut projection = match continues {
            Some(turn_id) if turns.last().is_some_and(|t| t.turn_id == turn_id.as_str()) => {
                let prior = turns.pop().unwrap_or_default();
                LlamaStackProjection::continuing(prior)
            }
            _ => LlamaStackProjection::new(),
        };
        for envelope in log {
            projection.apply(envelope, &mut |_| {})?;
        }
        turns.push(projection.turn);
    }
    Ok(turns)
}

/// An input item as a llama-stack input message: a user message or a tool
/// response; other items are not messages of a turn.
fn input_message(item: &Item) -> Option<Value> {
    match item {
        Item::Message(m) if m.role == Role::User => {
            let parts: Vec<Value> = m
                .content
                .iter()
                .filter_map(|part| match part {
                    ContentPart::InputText { text } => {
                        Some(serde_json::json!({"type": "text", "text": text}))
                    }
                    ContentPart::InputImage { image_url, .. } => image_url.as_ref().map(
                        |uri| serde_json::json!({"type": "image", "image": {"url": {"uri": uri}}}),
                    ),
                    _ => None,
                })
                .collect();
            let content = match parts.as_slice() {
                [only] if only["type"] == "text" => only["text"].clone(),
                _ => Value::Array(parts),
            };
            Some(serde_json::json!({"role": "user", "content": content}))
        }
        Item::FunctionCallOutput(o) => Some(serde_json::json!({
            "role": "tool",
            "call_id": o.call_id,
            "content": o.output_text(),
        })),
        _ => None,
    }
}

/// Unix milliseconds as an ISO 8601 UTC time, as llama-stack's datetimes
/// serialize (`2026-01-01T00:00:00.000000Z`).
pub fn iso8601(ms: i64) -> String {
    let t = crate::clock::UtcTime::from_unix_ms(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        t.millis * 1000
    )
}

/// `ToolCall`: a call the model made, with its arguments as an object and
/// as the JSON text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub call_id: String,
    pub tool_name: String,
    /// The arguments as an object, or the raw text if they are not one.
    pub arguments: Value,
    pub arguments_json: String,
}

impl ToolCall {
    fn new(call_id: String, tool_name: String, arguments: &str) -> Self {
        let parsed = match serde_json::from_str::<Value>(arguments) {
            Ok(object @ Value::Object(_)) => object,
            _ if arguments.trim().is_empty() => Value::Object(Map::new()),
            _ => Value::String(arguments.to_owned()),
        };
        Self {
            call_id,
            tool_name,
            arguments: parsed,
            arguments_json: arguments.to_owned(),
        }
    }
}

/// `ToolResponse`: one tool's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResponse {
    pub call_id: String,
    pub tool_name: String,
    pub content: String,
    pub metadata: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndOfTurn,
    EndOfMessage,
    OutOfTokens,
}

/// `CompletionMessage`: what the model answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionMessage {
    pub role: String,
    pub content: String,
    pub stop_reason: StopReason,
    pub tool_calls: Vec<ToolCall>,
}

impl CompletionMessage {
    fn text(content: String, stop_reason: StopReason) -> Self {
        Self {
            role: "assistant".into(),
            content,
            stop_reason,
            tool_calls: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferenceStep {
    pub turn_id: String,
    pub step_id: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub model_response: CompletionMessage,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolExecutionStep {
    pub turn_id: String,
    pub step_id: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    pub tool_responses: Vec<ToolResponse>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShieldCallStep {
    pub turn_id: String,
    pub step_id: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub violation: Option<SafetyViolation>,
}

/// What a violation without a message of its own tells the user.
pub const VIOLATION_MESSAGE: &str = "I can't answer that: a safety shield flagged it.";

/// A step of a turn, told apart by `step_type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step_type", rename_all = "snake_case")]
pub enum Step {
    Inference(InferenceStep),
    ToolExecution(ToolExecutionStep),
    ShieldCall(ShieldCallStep),
}

impl Step {
    pub fn step_id(&self) -> &str {
        match self {
            Step::Inference(s) => &s.step_id,
            Step::ToolExecution(s) => &s.step_id,
            Step::ShieldCall(s) => &s.step_id,
        }
    }
}

/// `Turn`: one exchange of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub turn_id: String,
    pub session_id: String,
    pub input_messages: Vec<Value>,
    pub steps: Vec<Step>,
    pub output_message: CompletionMessage,
    pub output_attachments: Vec<Value>,
    pub started_at: String,
    pub completed_at: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
enum StepType {
    Inference,
    ToolExecution,
    ShieldCall,
}

impl From<StepKind> for StepType {
    fn from(kind: StepKind) -> Self {
        match kind {
            StepKind::Inference => StepType::Inference,
            StepKind::ToolExecution => StepType::ToolExecution,
            StepKind::ShieldCall => StepType::ShieldCall,
        }
    }
}

#[derive(Serialize)]
struct Chunk<'a> {
    event: ChunkEvent<'a>,
}

#[derive(Serialize)]
struct ChunkEvent<'a> {
    payload: &'a Payload<'a>,
}

#[derive(Serialize)]
#[serde(tag = "event_type", rename_all = "snake_case")]
enum Payload<'a> {
    TurnStart {
        turn_id: &'a str,
    },
    StepStart {
        step_type: StepType,
        step_id: &'a str,
        metadata: Map<String, Value>,
    },
    StepProgress {
        step_type: StepType,
        step_id: &'a str,
        delta: Delta<'a>,
    },
    StepComplete {
        step_type: StepType,
        step_id: &'a str,
        step_details: &'a Step,
    },
    TurnComplete {
        turn: Turn,
    },
    TurnAwaitingInput {
        turn: Turn,
    },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Delta<'a> {
    Text {
        text: &'a str,
    },
    ToolCall {
        tool_call: DeltaCall<'a>,
        parse_status: ParseStatus,
    },
}

#[derive(Serialize)]
#[serde(untagged)]
enum DeltaCall<'a> {
    Text(&'a str),
    Call(&'a ToolCall),
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
enum ParseStatus {
    Started,
    InProgress,
    Succeeded,
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_iso8601_utc_with_microseconds() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(iso8601(1_767_225_600_007), "2026-01-01T00:00:00.007000Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000000Z");
    }

    #[test]
    fn arguments_that_are_not_an_object_stay_text() {
        let call = ToolCall::new("c".into(), "f".into(), "[1]");
        assert_eq!(call.arguments, Value::String("[1]".into()));
        let call = ToolCall::new("c".into(), "f".into(), r#"{"a":1}"#);
        assert_eq!(call.arguments["a"], 1);
    }
}
