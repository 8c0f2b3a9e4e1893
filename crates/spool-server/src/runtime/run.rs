//! One run's task and its owner: the drive loop around the agent, the
//! run's end, and the guard that ends the run on every path.
//!
//! A [`RunOwner`] is created when a run is admitted and moves into the
//! run's task. When the task finishes normally the owner is marked ended
//! and its drop only closes the run. When anything panics or returns early
//! (the agent's cleanup, the drive loop, the final write), the owner's drop
//! spawns the run's end: a terminal event after the last stored event, the
//! conversation released, then the run closed. Closing (the bus topic, the
//! active set, the `done` signal for a waiting cancel) sits in the drop of
//! [`RunClose`], so no path, not even a cancelled end task, skips it.

use super::Runtime;
use super::claim::ClaimGuard;
use super::recovery;
use futures::FutureExt;
use spool_core::agent::{Agent, RunContext, RunOutcome};
use spool_core::emit::RunEmitter;
use spool_core::event::Envelope;
use spool_core::fold::RunFold;
use spool_core::ids::ResponseId;
use spool_core::projection::responses;
use spool_core::run::{ErrorCode, RunError, RunHeader};
use spool_store::{Finish, WriteOp};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio_util::sync::CancellationToken;

/// The first wait before ending a run whose log failed is tried again;
/// doubled after each failure up to [`END_BACKOFF_MAX`].
const END_BACKOFF_FIRST: Duration = Duration::from_millis(100);
/// The longest wait between tries: how late a run may be ended after the
/// store takes writes again.
const END_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// What a stored run shares with its durable sink.
pub(super) struct StoredLog {
    /// Set when the writer could not store the run's log.
    pub(super) failed: Arc<AtomicBool>,
    /// The terminal event, held back by the sink to be written with the
    /// run's final object.
    pub(super) terminal: Arc<Mutex<Option<Envelope>>>,
}

/// Everything the run's task needs besides its owner.
pub(super) struct RunParts {
    pub(super) emitter: RunEmitter,
    pub(super) header: RunHeader,
    pub(super) ctx: RunContext,
    pub(super) agent: Arc<dyn Agent>,
    pub(super) cancel: CancellationToken,
    /// `None` for a `store: false` run.
    pub(super) log: Option<StoredLog>,
}

/// Takes a run out of this process once it is over, however it got there:
/// closes its bus topic (subscribers drain, then read the rest from the
/// store), removes it from the active set, and answers a waiting cancel.
struct RunClose {
    runtime: Arc<Runtime>,
    id: ResponseId,
    done: watch::Sender<bool>,
    /// The run's place among those executing, given back when it closes.
    _slot: OwnedSemaphorePermit,
}

impl Drop for RunClose {
    fn drop(&mut self) {
        // Normally closed by the writer once the end is committed; closed
        // here too so no subscriber waits on a run that is gone.
        self.runtime.bus.close(&self.id);
        self.runtime.active().remove(&self.id);
        let _ = self.done.send(true);
    }
}

/// The one owner of a run from its admission to its end.
pub(super) struct RunOwner {
    runtime: Arc<Runtime>,
    id: ResponseId,
    /// Whether the run keeps a durable log that must end with a stored
    /// terminal event.
    stored: bool,
    claim: Option<ClaimGuard>,
    /// Taken by the drop, which closes the run.
    close: Option<RunClose>,
    /// The run's end was stored, or given up on and left to recovery.
    end_written: bool,
    /// The task reached its end normally.
    ended: bool,
}

impl RunOwner {
    pub(super) fn new(
        runtime: Arc<Runtime>,
        id: ResponseId,
        stored: bool,
        claim: Option<ClaimGuard>,
        done: watch::Sender<bool>,
        slot: OwnedSemaphorePermit,
    ) -> Self {
        Self {
            runtime: runtime.clone(),
            id: id.clone(),
            stored,
            claim,
            close: Some(RunClose {
                runtime,
                id,
                done,
                _slot: slot,
            }),
            end_written: false,
            ended: false,
        }
    }

    /// The run's task: drives the agent to one terminal event, stores the
    /// run's end, and releases its conversation.
    pub(super) async fn run(mut self, parts: RunParts) {
        let RunParts {
            mut emitter,
            header,
            ctx,
            agent,
            cancel,
            log,
        } = parts;
        let runtime = self.runtime.clone();
        runtime
            .drive(&mut emitter, header, ctx, agent, cancel)
            .await;
        if let Some(log) = log {
            let finish = finish_op(emitter.fold()).map(|mut finish| {
                finish.terminal = log
                    .terminal
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                finish
            });
            drop(emitter);
            let stored = match finish {
                Some(finish) => runtime.finish(finish).await,
                None => false,
            };
            if !stored || log.failed.load(Ordering::Relaxed) {
                runtime.end_unfinished(&self.id, storage_error()).await;
            }
        }
        self.end_written = true;
        if let Some(claim) = self.claim.take() {
            claim.release().await;
        }
        self.ended = true;
    }
}

impl Drop for RunOwner {
    fn drop(&mut self) {
        let Some(close) = self.close.take() else {
            return;
        };
        if self.ended {
            return; // `close` drops here and closes the run.
        }
        tracing::error!(response_id = %self.id, "the run stopped without ending; ending it");
        let write_end = self.stored && !self.end_written;
        let claim = self.claim.take();
        if tokio::runtime::Handle::try_current().is_err() {
            // No runtime to end it on (the process is going away): close it
            // here; recovery at the next start ends the stored run.
            return;
        }
        self.runtime.tracker.spawn(async move {
            if write_end {
                close
                    .runtime
                    .end_unfinished(
                        &close.id,
                        RunError::new("server_error", "An internal server error occurred."),
                    )
                    .await;
            }
            if let Some(claim) = claim {
                claim.release().await;
            }
            drop(close);
        });
    }
}

fn storage_error() -> RunError {
    RunError::new(
        "storage_error",
        "An internal error occurred while storing the response. \
         Subsequent retrieval is not guaranteed. Please retry the request.",
    )
}

impl Runtime {
    /// Runs the lifecycle around the agent and emits the terminal event.
    async fn drive(
        &self,
        emitter: &mut RunEmitter,
        header: RunHeader,
        ctx: RunContext,
        agent: Arc<dyn Agent>,
        cancel: CancellationToken,
    ) {
        let id = ctx.response_id.clone();
        let input = ctx.request.input.clone();
        if let Err(e) = emitter.created(header, input).await {
            tracing::error!(response_id = %id, error = %e, "could not record run.created");
            return;
        }
        enum End {
            Agent(Result<RunOutcome, RunError>),
            Cancelled,
            Shutdown,
            DeadlinePassed,
        }
        let deadline = self.limits.deadline;
        let end = match emitter.started().await {
            Err(e) => End::Agent(Err(RunError::new("server_error", e.to_string()))),
            Ok(()) => {
                let mut writer = emitter.writer();
                let run = AssertUnwindSafe(agent.run(ctx, &mut writer)).catch_unwind();
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => End::Cancelled,
                    () = self.shutdown.cancelled() => End::Shutdown,
                    // Whatever the agent waits on (an upstream streaming
                    // forever, a tool that never returns), the run ends.
                    () = tokio::time::sleep(deadline) => End::DeadlinePassed,
                    result = run => End::Agent(result.unwrap_or_else(|_| {
                        tracing::error!(response_id = %id, "the agent panicked");
                        Err(RunError::new("server_error", "An internal server error occurred."))
                    })),
                }
            }
        };
        let ended = match end {
            End::Agent(Ok(RunOutcome::Completed)) => emitter.complete().await,
            End::Agent(Ok(RunOutcome::Incomplete { reason })) => emitter.incomplete(reason).await,
            End::Agent(Err(error)) => emitter.fail(error).await,
            End::Cancelled => emitter.cancel().await,
            End::Shutdown => {
                emitter
                    .fail(RunError::new(
                        "server_shutdown",
                        "The server shut down while this response was running.",
                    ))
                    .await
            }
            End::DeadlinePassed => {
                tracing::warn!(response_id = %id, secs = deadline.as_secs(), "a run passed its deadline");
                emitter
                    .fail(RunError::new(
                        ErrorCode::RunDeadlineExceeded,
                        format!(
                            "The response ran longer than this server's run deadline of {} seconds (SPOOL_RUN_DEADLINE_SECS).",
                            deadline.as_secs()
                        ),
                    ))
                    .await
            }
        };
        if let Err(e) = ended {
            tracing::warn!(response_id = %id, error = %e, "could not record the run's end normally");
            if !emitter.fold().is_terminal() {
                let _ = emitter
                    .fail(RunError::new(
                        "server_error",
                        "An internal server error occurred.",
                    ))
                    .await;
            }
        }
    }

    /// Stores a stored run's final object and output with its terminal
    /// event, and waits for the commit. False if it could not be stored.
    async fn finish(&self, op: Finish) -> bool {
        let id = op.response_id.clone();
        if self
            .writer
            .send(WriteOp::Finish(Box::new(op)))
            .await
            .is_err()
        {
            tracing::error!(response_id = %id, "the log writer stopped before the run ended");
            return false;
        }
        // Only this run's own writes decide: a run that shared a batch with
        // one whose writes failed is not told its end failed.
        match self.writer.flush_run(&id).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(response_id = %id, error = %e, "the run's end could not be stored");
                false
            }
        }
    }

    /// Ends a stored run that has no stored end (its log failed, or its
    /// task stopped early): after its last stored event, directly in the
    /// store. A store that fails is tried again, with backoff, until it
    /// takes the end, so a run (and its conversation) is ended as soon as
    /// writes succeed again, without a restart. Only a shutdown stops the
    /// tries; recovery at the next start ends the run then.
    async fn end_unfinished(&self, id: &ResponseId, error: RunError) {
        // What the run queued is committed (or dropped, if its log failed)
        // first, so the end goes after the run's last stored event.
        let _ = self.writer.flush_run(id).await;
        let mut backoff = END_BACKOFF_FIRST;
        let mut waiting = None;
        loop {
            match recovery::end_run(self.store.as_ref(), id, error.clone()).await {
                Ok(ended) => {
                    if ended != recovery::Ended::AlreadyEnded {
                        // Something was written.
                        self.store_health.wrote();
                    }
                    if ended == recovery::Ended::Logged {
                        tracing::warn!(response_id = %id, code = %error.code, "ended a run that had no stored end");
                    }
                    break;
                }
                Err(e) => {
                    self.store_health.failed(&e);
                    waiting.get_or_insert_with(|| self.store_health.end_waiting());
                    tracing::error!(
                        response_id = %id, error = %e, retry_in_ms = backoff.as_millis() as u64,
                        "cannot end a run; trying again"
                    );
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = self.shutdown.cancelled() => {
                            tracing::error!(response_id = %id, "stopping: the run is ended at the next start");
                            break;
                        }
                    }
                    backoff = (backoff * 2).min(END_BACKOFF_MAX);
                }
            }
        }
        self.writer.release(id.clone()).await;
    }
}

/// The `Finish` op of a fold that has ended.
pub(crate) fn finish_op(fold: &RunFold) -> Option<Finish> {
    let object = responses::object(fold)?;
    if !object.status.is_terminal() {
        return None;
    }
    Some(Finish {
        response_id: object.id.clone(),
        terminal: None,
        status: object.status,
        snapshot: serde_json::to_string(&object).ok()?,
        output: object.output.into_owned(),
    })
}
