//! The run of a request whose input ends in a `compaction_trigger`: the
//! conversation so far becomes one sealed `compaction` item.
//!
//! Codex CLI compacts this way ("responses_compaction_v2"): an ordinary
//! streaming `POST /v1/responses` whose output is exactly one `compaction`
//! item, which the client then sends back in place of the history it
//! stands for. It is the streamed twin of `POST /v1/responses/compact`:
//! the same summary call through the model's provider, the same seal.

use super::{Runtime, SummarizeError};
use async_trait::async_trait;
use spool_core::agent::{Agent, RunContext, RunOutcome};
use spool_core::emit::RunWriter;
use spool_core::event::StepKind;
use spool_core::item::{CompactionItem, Item};
use spool_core::run::RunError;
use std::sync::Arc;

/// Summarizes the run's conversation and writes it as a `compaction` item.
pub(super) struct CompactionAgent {
    runtime: Arc<Runtime>,
}

impl CompactionAgent {
    pub(super) fn new(runtime: Arc<Runtime>) -> Self {
        Self { runtime }
    }
}

#[async_trait]
impl Agent for CompactionAgent {
    async fn run(&self, ctx: RunContext, out: &mut RunWriter<'_>) -> Result<RunOutcome, RunError> {
        let logged = |e| {
            RunError::new(
                "server_error",
                format!("the run's log refused an event: {e}"),
            )
        };
        let step = out.start_step(StepKind::Inference).await.map_err(logged)?;
        let conversation: Vec<Item> = ctx.conversation().cloned().collect();
        let (summary, usage) = self
            .runtime
            .summarize(
                &ctx.request.model,
                ctx.request.instructions.as_deref(),
                conversation,
            )
            .await
            .map_err(|e| match e {
                SummarizeError::ModelUnavailable(e) => {
                    RunError::new("model_not_found", e.to_string())
                }
                SummarizeError::Provider(e) => e.into(),
                SummarizeError::Empty => RunError::new("upstream_error", e.to_string()),
            })?;
        let encrypted_content = self.runtime.compaction().seal(&summary).map_err(|e| {
            RunError::new("server_error", format!("sealing the summary failed: {e}"))
        })?;
        let item = Item::Compaction(CompactionItem {
            id: out.new_id("cmp"),
            encrypted_content,
            summary: None,
        });
        out.whole_item(item).await.map_err(logged)?;
        out.complete_step(step, Some(usage)).await.map_err(logged)?;
        Ok(RunOutcome::Completed)
    }
}
