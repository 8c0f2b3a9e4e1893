//! The handler API: how Rust code hosts its own agent logic in spool.
//!
//! An [`Agent`] is handed a [`RunContext`] (the request and the conversation
//! so far) and a [`RunWriter`] to emit output through, and says how the run
//! ended. The runtime does the rest: ids, the `created`/`in_progress`
//! lifecycle, durable logging, the terminal event, cancellation (the agent's
//! future is dropped), and serving the log in every dialect. spool's built-in
//! model agent is one implementation; `examples/` has another.

use crate::emit::RunWriter;
use crate::ids::ResponseId;
use crate::item::Item;
use crate::request::RunRequest;
use crate::run::{IncompleteReason, RunError};
use async_trait::async_trait;
use std::sync::Arc;

/// What an agent is given for one run.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub response_id: ResponseId,
    pub request: Arc<RunRequest>,
    /// Items of earlier turns (`previous_response_id` chain), oldest first:
    /// each turn's input followed by its output.
    pub history: Vec<Item>,
}

impl RunContext {
    /// The whole conversation the model should see: history, then this
    /// request's input.
    pub fn conversation(&self) -> impl Iterator<Item = &Item> {
        self.history.iter().chain(self.request.input.iter())
    }
}

/// How an agent's run ended, when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    Completed,
    /// Stopped early; `reason` becomes `incomplete_details.reason`.
    Incomplete {
        reason: IncompleteReason,
    },
}

/// Hosted agent logic.
#[async_trait]
pub trait Agent: Send + Sync + 'static {
    /// Runs one turn, emitting output through `out`. An `Err` ends the run
    /// `failed` with that error. Items left open are closed by the runtime.
    async fn run(&self, ctx: RunContext, out: &mut RunWriter<'_>) -> Result<RunOutcome, RunError>;
}
