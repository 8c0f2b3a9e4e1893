//! Pure projections of a run's canonical log into wire dialects.
//!
//! A projection is a fold: it is fed the log's envelopes in order and yields
//! zero or more [`Frame`]s for each. Live streaming and replay run the same
//! projection over the same log, so a replayed stream is byte-identical to
//! the live one, and a cursor (`starting_after`, `Last-Event-ID`) is applied
//! by projecting from the start and skipping the frames the client already
//! has: every frame carries its dense position in its dialect's stream.
//!
//! Each dialect is one module implementing [`Projection`]; the HTTP layer
//! only frames what they yield.

pub mod agent_session;
pub mod chat;
pub mod codex;
pub mod llama_stack;
pub mod responses;
pub mod roboto;
pub mod wxo;

pub use agent_session::AgentSessionProjection;
pub use chat::ChatProjection;
pub use codex::CodexProjection;
pub use llama_stack::LlamaStackProjection;
pub use responses::{ResponsesProjection, WireEvent};
pub use wxo::WxoProjection;

use crate::event::Envelope;
use crate::fold::{OrderError, RunFold};

/// One frame of a dialect's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The frame's position in its dialect's projection of the log: 0, 1,
    /// 2, … without gaps. An SSE `id:` line carries it and `Last-Event-ID`
    /// names it.
    pub index: u64,
    /// The SSE `event:` name, for dialects that send one.
    pub event: Option<&'static str>,
    /// The payload: one line of JSON for most dialects.
    pub data: String,
}

/// The dialects a run's log can be read in, by the name clients use
/// (`GET /v1/runs/{id}/events?dialect=NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// The OpenAI Responses API stream.
    Responses,
    /// Codex thread events, as `codex exec --json` prints them.
    Codex,
    /// OpenAI Chat Completions chunks with seed 001's agent status chunks.
    Chat,
    /// The watsonx Orchestrate external-agent stream.
    Wxo,
    /// roboto's agent-session events (seed 003).
    AgentSession,
    /// The llama-stack Agents API turn stream (seed 004).
    LlamaStack,
}

impl Dialect {
    /// Every dialect, in the order they are documented.
    pub const ALL: &'static [Dialect] = &[
        Dialect::Responses,
        Dialect::Chat,
        Dialect::Wxo,
        Dialect::Codex,
        Dialect::AgentSession,
        Dialect::LlamaStack,
    ];

    /// The dialect a client names, if spool speaks it.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|d| d.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Responses => "responses",
            Dialect::Codex => "codex",
            Dialect::Chat => "chat",
            Dialect::Wxo => "wxo",
            Dialect::AgentSession => "agent_session",
            Dialect::LlamaStack => "llama_stack",
        }
    }

    /// Whether a `data: [DONE]` frame follows the stream's end when the
    /// server is configured to send one: only the Responses stream takes
    /// it (the chat dialects project their own; Codex and llama-stack
    /// clients have none).
    pub fn takes_done_marker(self) -> bool {
        self == Dialect::Responses
    }

    /// A fresh projection of a log into this dialect. (A llama-stack run
    /// that resumes a turn needs the turn's earlier runs:
    /// [`LlamaStackProjection::continuing`].)
    pub fn projection(self) -> Box<dyn Projection> {
        match self {
            Dialect::Responses => Box::new(ResponsesProjection::new()),
            Dialect::Codex => Box::new(CodexProjection::new()),
            Dialect::Chat => Box::new(ChatProjection::new()),
            Dialect::Wxo => Box::new(WxoProjection::new()),
            Dialect::AgentSession => Box::new(AgentSessionProjection::new()),
            Dialect::LlamaStack => Box::new(LlamaStackProjection::new()),
        }
    }
}

/// A wire dialect: a pure fold of canonical envelopes into frames.
pub trait Projection: Send {
    /// Folds `envelope` in and hands each resulting frame to `out`.
    fn apply(
        &mut self,
        envelope: &Envelope,
        out: &mut dyn FnMut(Frame),
    ) -> Result<(), ProjectionError>;

    /// The run as of the last event folded in.
    fn fold(&self) -> &RunFold;
}

/// Why a log could not be projected.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("the log is out of order: {0}")]
    Order(#[from] OrderError),
    #[error("an event could not be serialized: {0}")]
    Serialize(#[from] serde_json::Error),
}

impl Projection for ResponsesProjection {
    fn apply(
        &mut self,
        envelope: &Envelope,
        out: &mut dyn FnMut(Frame),
    ) -> Result<(), ProjectionError> {
        ResponsesProjection::apply(self, envelope, |wire| {
            out(Frame {
                index: wire.sequence_number,
                event: Some(wire.event_type),
                data: wire.json,
            })
        })
    }

    fn fold(&self) -> &RunFold {
        ResponsesProjection::fold(self)
    }
}
