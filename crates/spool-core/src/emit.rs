//! Emitting a run's events.
//!
//! [`RunEmitter`] is the only way events enter a log: it checks each event
//! against the fold, stamps it with the next `seq` and the sink's clock, and
//! hands it to an [`EventSink`] (the runtime's durable or direct log). The
//! runtime owns the emitter and the run's lifecycle (created, started, the
//! terminal event); an [`Agent`](crate::agent::Agent) gets a [`RunWriter`],
//! which can only add output. Its typed builders borrow the writer while an
//! item or part is open, so the compiler keeps a second item from starting
//! before the first is done; what the borrow cannot see (a builder dropped
//! without `done()`) the fold refuses at run time, and the runtime closes
//! such items when the run ends.

use crate::event::{Envelope, Event, RunCreated, StepKind};
use crate::fold::{OrderError, RunFold};
use crate::ids::IdSource;
use crate::item::{Item, ItemStatus, PartKind, ToolCallItem};
use crate::run::{IncompleteReason, RunError, RunHeader, SafetyViolation, Usage};
use crate::tool::{AgentStatus, ToolResult};
use async_trait::async_trait;
use std::sync::Arc;

/// Where emitted events go: the run's log.
#[async_trait]
pub trait EventSink: Send {
    /// Waits until the sink can take one more event (back-pressure).
    /// Cancel-safe: if the future is dropped, nothing was taken.
    async fn ready(&mut self) -> Result<(), SinkError>;
    /// Takes one event without waiting. Called once after each `ready`.
    fn push(&mut self, envelope: Envelope) -> Result<(), SinkError>;
    /// The time to stamp on the next event, in Unix milliseconds.
    fn now_ms(&self) -> i64;
}

/// Why the log did not take an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    #[error("the run's log is closed")]
    Closed,
    #[error("the run's log could not be stored: {0}")]
    Storage(String),
}

/// Why an event was not emitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmitError {
    #[error("event out of order: {0}")]
    Order(#[from] OrderError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("agents may emit output events only, not {0}")]
    NotOutput(&'static str),
}

/// Appends validated events to a run's log. Owned by the runtime.
pub struct RunEmitter {
    fold: RunFold,
    sink: Box<dyn EventSink>,
    /// Ids of the items and steps the run opens.
    ids: Arc<dyn IdSource>,
}

impl RunEmitter {
    /// An emitter writing to `sink`, drawing the ids of the items and
    /// steps it opens from `ids`.
    pub fn new(sink: Box<dyn EventSink>, ids: Arc<dyn IdSource>) -> Self {
        Self {
            fold: RunFold::new(),
            sink,
            ids,
        }
    }

    /// The run as of the last emitted event.
    pub fn fold(&self) -> &RunFold {
        &self.fold
    }

    /// Checks, stamps and appends one event. Cancel-safe: dropped while
    /// waiting for the sink, it has emitted nothing.
    pub async fn emit(&mut self, event: Event) -> Result<(), EmitError> {
        self.fold.check(&event)?;
        self.sink.ready().await?;
        let envelope = Envelope {
            seq: self.fold.next_seq(),
            ts_ms: self.sink.now_ms(),
            event,
        };
        self.fold.apply_checked(&envelope);
        self.sink.push(envelope)?;
        Ok(())
    }

    /// Logs the run's creation with its header and input.
    pub async fn created(&mut self, run: RunHeader, input: Vec<Item>) -> Result<(), EmitError> {
        self.emit(Event::RunCreated(Box::new(RunCreated { run, input })))
            .await
    }

    pub async fn started(&mut self) -> Result<(), EmitError> {
        self.emit(Event::RunStarted).await
    }

    /// Closes every open part and item, as `status`, and the open step, so
    /// the run can end.
    pub async fn close_open_items(&mut self, status: ItemStatus) -> Result<(), EmitError> {
        let open: Vec<_> = self.fold.open_items().collect();
        for (output_index, open_part) in open {
            if let Some(content_index) = open_part {
                self.emit(Event::PartDone {
                    output_index,
                    content_index,
                })
                .await?;
            }
            self.emit(Event::ItemCompleted {
                output_index,
                status,
            })
            .await?;
        }
        if let Some(step) = self.fold.current_step() {
            let step_id = step.id.clone();
            self.emit(Event::StepCompleted {
                step_id,
                usage: None,
                violation: None,
            })
            .await?;
        }
        Ok(())
    }

    /// Ends the run `completed`, closing anything the agent left open.
    pub async fn complete(&mut self) -> Result<(), EmitError> {
        self.close_open_items(ItemStatus::Completed).await?;
        self.emit(Event::RunCompleted).await
    }

    /// Ends the run `incomplete`; open items end incomplete too.
    pub async fn incomplete(
        &mut self,
        reason: impl Into<IncompleteReason>,
    ) -> Result<(), EmitError> {
        self.close_open_items(ItemStatus::Incomplete).await?;
        self.emit(Event::RunIncomplete {
            reason: reason.into(),
        })
        .await
    }

    pub async fn fail(&mut self, error: RunError) -> Result<(), EmitError> {
        self.emit(Event::RunFailed { error }).await
    }

    pub async fn cancel(&mut self) -> Result<(), EmitError> {
        self.emit(Event::RunCancelled).await
    }

    /// The agent-facing writer over this emitter.
    pub fn writer(&mut self) -> RunWriter<'_> {
        RunWriter { emitter: self }
    }
}

/// What an agent writes a run's output through.
///
/// The typed builders ([`RunWriter::message`], [`RunWriter::function_call`],
/// [`RunWriter::reasoning`]) cannot produce an invalid order; [`RunWriter::emit`]
/// takes raw output events for agents that interleave items (several
/// streamed tool calls at once) and checks them at run time instead.
pub struct RunWriter<'e> {
    emitter: &'e mut RunEmitter,
}

impl RunWriter<'_> {
    /// The run as of the last event.
    pub fn fold(&self) -> &RunFold {
        self.emitter.fold()
    }

    /// The output index the next item will take.
    pub fn next_output_index(&self) -> u32 {
        self.emitter.fold.output().len() as u32
    }

    /// A fresh id with the given prefix, from the run's id source.
    pub fn new_id(&self, prefix: &str) -> String {
        self.emitter.ids.new_id(prefix)
    }

    /// The run's id source, for work that makes ids away from the writer.
    pub fn ids(&self) -> Arc<dyn IdSource> {
        self.emitter.ids.clone()
    }

    /// Emits a raw output event, checked against the order rules. Lifecycle
    /// events belong to the runtime and are refused.
    pub async fn emit(&mut self, event: Event) -> Result<(), EmitError> {
        match event {
            Event::RunCreated(_) | Event::RunStarted => {
                Err(EmitError::NotOutput(event.type_name()))
            }
            e if e.is_terminal() => Err(EmitError::NotOutput(e.type_name())),
            e => self.emitter.emit(e).await,
        }
    }

    /// Opens `item` at the next output index and returns the index.
    pub async fn start_item(&mut self, item: Item) -> Result<u32, EmitError> {
        let output_index = self.next_output_index();
        self.emitter
            .emit(Event::ItemStarted { output_index, item })
            .await?;
        Ok(output_index)
    }

    /// Writes an item that is whole from the start (a tool listing, an
    /// approval request): opened and completed at once.
    pub async fn whole_item(&mut self, mut item: Item) -> Result<u32, EmitError> {
        item.set_status(ItemStatus::InProgress);
        let output_index = self.start_item(item).await?;
        self.emitter
            .emit(Event::ItemCompleted {
                output_index,
                status: ItemStatus::Completed,
            })
            .await?;
        Ok(output_index)
    }

    /// Opens a step (a model call, or a batch of tool calls) and returns
    /// its id. Steps do not overlap: the previous one must be completed.
    pub async fn start_step(&mut self, kind: StepKind) -> Result<String, EmitError> {
        let step_id = self.new_id("step");
        self.emitter
            .emit(Event::StepStarted {
                step_id: step_id.clone(),
                kind,
            })
            .await?;
        Ok(step_id)
    }

    /// Completes the open step; an inference step reports its usage.
    pub async fn complete_step(
        &mut self,
        step_id: String,
        usage: Option<Usage>,
    ) -> Result<(), EmitError> {
        self.emitter
            .emit(Event::StepCompleted {
                step_id,
                usage,
                violation: None,
            })
            .await
    }

    /// Completes the open shield step with what the shields found.
    pub async fn complete_shield_step(
        &mut self,
        step_id: String,
        violation: Option<SafetyViolation>,
    ) -> Result<(), EmitError> {
        self.emitter
            .emit(Event::StepCompleted {
                step_id,
                usage: None,
                violation,
            })
            .await
    }

    /// Logs a server-side tool call as it starts and returns its output
    /// index; [`RunWriter::finish_tool_call`] records how it ended.
    pub async fn start_tool_call(&mut self, call: ToolCallItem) -> Result<u32, EmitError> {
        self.start_item(Item::ToolCall(Box::new(call))).await
    }

    /// Records a tool call's result and completes its item.
    pub async fn finish_tool_call(
        &mut self,
        output_index: u32,
        result: ToolResult,
    ) -> Result<(), EmitError> {
        self.emitter
            .emit(Event::ToolFinished {
                output_index,
                result,
            })
            .await?;
        self.emitter
            .emit(Event::ItemCompleted {
                output_index,
                status: ItemStatus::Completed,
            })
            .await
    }

    /// Opens an assistant message.
    pub async fn message(&mut self) -> Result<MessageWriter<'_>, EmitError> {
        let output_index = self
            .start_item(Item::assistant_message(self.new_id("msg")))
            .await?;
        Ok(MessageWriter {
            emitter: self.emitter,
            output_index,
            next_content_index: 0,
        })
    }

    /// Writes a whole assistant message holding `text`.
    pub async fn message_text(&mut self, text: &str) -> Result<(), EmitError> {
        let mut message = self.message().await?;
        message.text(text).await?;
        message.done().await
    }

    /// Opens a function call for the caller to run.
    pub async fn function_call(
        &mut self,
        call_id: impl Into<String>,
        name: impl Into<String>,
    ) -> Result<FunctionCallWriter<'_>, EmitError> {
        let item = Item::function_call(self.new_id("fc"), call_id, name);
        let output_index = self.start_item(item).await?;
        Ok(FunctionCallWriter {
            emitter: self.emitter,
            output_index,
        })
    }

    /// Opens a reasoning item.
    pub async fn reasoning(&mut self) -> Result<ReasoningWriter<'_>, EmitError> {
        let output_index = self.start_item(Item::reasoning(self.new_id("rs"))).await?;
        Ok(ReasoningWriter {
            emitter: self.emitter,
            output_index,
        })
    }

    /// Records where the agent loop is.
    pub async fn status(&mut self, status: AgentStatus) -> Result<(), EmitError> {
        self.emitter.emit(Event::Status(status)).await
    }
}

/// An open assistant message.
pub struct MessageWriter<'e> {
    emitter: &'e mut RunEmitter,
    output_index: u32,
    next_content_index: u32,
}

impl MessageWriter<'_> {
    async fn part(&mut self, kind: PartKind) -> Result<PartWriter<'_>, EmitError> {
        let content_index = self.next_content_index;
        self.emitter
            .emit(Event::PartStarted {
                output_index: self.output_index,
                content_index,
                kind,
            })
            .await?;
        self.next_content_index += 1;
        Ok(PartWriter {
            emitter: self.emitter,
            output_index: self.output_index,
            content_index,
        })
    }

    /// Opens an `output_text` part to stream text into.
    pub async fn output_text(&mut self) -> Result<PartWriter<'_>, EmitError> {
        self.part(PartKind::OutputText).await
    }

    /// Opens a `refusal` part.
    pub async fn refusal(&mut self) -> Result<PartWriter<'_>, EmitError> {
        self.part(PartKind::Refusal).await
    }

    /// Writes a whole `output_text` part.
    pub async fn text(&mut self, text: &str) -> Result<(), EmitError> {
        let mut part = self.output_text().await?;
        part.delta(text).await?;
        part.done().await
    }

    /// Completes the message.
    pub async fn done(self) -> Result<(), EmitError> {
        self.emitter
            .emit(Event::ItemCompleted {
                output_index: self.output_index,
                status: ItemStatus::Completed,
            })
            .await
    }
}

/// An open content part of a message or reasoning item.
pub struct PartWriter<'e> {
    emitter: &'e mut RunEmitter,
    output_index: u32,
    content_index: u32,
}

impl PartWriter<'_> {
    /// Appends text.
    pub async fn delta(&mut self, delta: &str) -> Result<(), EmitError> {
        if delta.is_empty() {
            return Ok(());
        }
        self.emitter
            .emit(Event::PartDelta {
                output_index: self.output_index,
                content_index: self.content_index,
                delta: delta.to_owned(),
                logprobs: Vec::new(),
            })
            .await
    }

    /// Completes the part.
    pub async fn done(self) -> Result<(), EmitError> {
        self.emitter
            .emit(Event::PartDone {
                output_index: self.output_index,
                content_index: self.content_index,
            })
            .await
    }
}

/// An open function call.
pub struct FunctionCallWriter<'e> {
    emitter: &'e mut RunEmitter,
    output_index: u32,
}

impl FunctionCallWriter<'_> {
    /// Appends to the arguments (a JSON document being streamed).
    pub async fn arguments_delta(&mut self, delta: &str) -> Result<(), EmitError> {
        if delta.is_empty() {
            return Ok(());
        }
        self.emitter
            .emit(Event::ArgumentsDelta {
                output_index: self.output_index,
                delta: delta.to_owned(),
            })
            .await
    }

    /// Completes the call.
    pub async fn done(self) -> Result<(), EmitError> {
        self.emitter
            .emit(Event::ItemCompleted {
                output_index: self.output_index,
                status: ItemStatus::Completed,
            })
            .await
    }
}

/// An open reasoning item.
pub struct ReasoningWriter<'e> {
    emitter: &'e mut RunEmitter,
    output_index: u32,
}

impl ReasoningWriter<'_> {
    /// Opens the item's reasoning text part.
    pub async fn text(&mut self) -> Result<PartWriter<'_>, EmitError> {
        let content_index = self.emitter.fold.output()[self.output_index as usize]
            .content()
            .len() as u32;
        self.emitter
            .emit(Event::PartStarted {
                output_index: self.output_index,
                content_index,
                kind: PartKind::ReasoningText,
            })
            .await?;
        Ok(PartWriter {
            emitter: self.emitter,
            output_index: self.output_index,
            content_index,
        })
    }

    pub async fn done(self) -> Result<(), EmitError> {
        self.emitter
            .emit(Event::ItemCompleted {
                output_index: self.output_index,
                status: ItemStatus::Completed,
            })
            .await
    }
}

/// A sink that keeps events in memory: for tests and for tools that build a
/// log without a store.
#[derive(Debug, Default)]
pub struct MemorySink {
    pub events: std::sync::Arc<std::sync::Mutex<Vec<Envelope>>>,
    /// The clock: each event is stamped one millisecond after the previous.
    pub clock_ms: i64,
}

#[async_trait]
impl EventSink for MemorySink {
    async fn ready(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn push(&mut self, envelope: Envelope) -> Result<(), SinkError> {
        self.clock_ms += 1;
        self.events
            .lock()
            .map_err(|_| SinkError::Closed)?
            .push(envelope);
        Ok(())
    }

    fn now_ms(&self) -> i64 {
        self.clock_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::tests::header;
    use crate::status::RunStatus;

    async fn emitter() -> (RunEmitter, std::sync::Arc<std::sync::Mutex<Vec<Envelope>>>) {
        let sink = MemorySink::default();
        let events = sink.events.clone();
        let mut e = RunEmitter::new(
            Box::new(sink),
            Arc::new(crate::ids::SequentialIds::default()),
        );
        e.created(header(), Vec::new()).await.unwrap();
        e.started().await.unwrap();
        (e, events)
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        // The memory sink never waits, so one poll loop without a runtime is
        // enough to drive these futures.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    #[test]
    fn the_typed_builders_emit_a_valid_log() {
        block_on(async {
            let (mut e, events) = emitter().await;
            {
                let mut w = e.writer();
                let mut m = w.message().await.unwrap();
                let mut p = m.output_text().await.unwrap();
                p.delta("Hel").await.unwrap();
                p.delta("lo").await.unwrap();
                p.done().await.unwrap();
                m.done().await.unwrap();
                let mut f = w.function_call("c1", "f").await.unwrap();
                f.arguments_delta("{}").await.unwrap();
                f.done().await.unwrap();
            }
            e.complete().await.unwrap();
            let log = events.lock().unwrap().clone();
            let fold = RunFold::from_events(&log).unwrap();
            assert_eq!(fold.status(), Some(RunStatus::Completed));
            assert_eq!(fold.output().len(), 2);
        });
    }

    #[test]
    fn agents_cannot_emit_lifecycle_events() {
        block_on(async {
            let (mut e, _) = emitter().await;
            let mut w = e.writer();
            assert_eq!(
                w.emit(Event::RunCompleted).await,
                Err(EmitError::NotOutput("run.completed"))
            );
        });
    }

    #[test]
    fn completing_closes_what_the_agent_left_open() {
        block_on(async {
            let (mut e, events) = emitter().await;
            {
                let mut w = e.writer();
                let mut m = w.message().await.unwrap();
                let mut p = m.output_text().await.unwrap();
                p.delta("x").await.unwrap();
                // dropped without done()
            }
            e.complete().await.unwrap();
            let log = events.lock().unwrap().clone();
            let types: Vec<_> = log
                .iter()
                .rev()
                .take(3)
                .map(|e| e.event.type_name())
                .collect();
            assert_eq!(types, ["run.completed", "item.completed", "part.done"]);
        });
    }

    #[test]
    fn an_out_of_order_event_is_refused_before_it_reaches_the_sink() {
        block_on(async {
            let (mut e, events) = emitter().await;
            let before = events.lock().unwrap().len();
            let r = e
                .writer()
                .emit(Event::PartDelta {
                    output_index: 0,
                    content_index: 0,
                    delta: "x".into(),
                    logprobs: Vec::new(),
                })
                .await;
            assert!(matches!(r, Err(EmitError::Order(_))));
            assert_eq!(events.lock().unwrap().len(), before);
        });
    }
}
