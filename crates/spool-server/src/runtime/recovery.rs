//! Ending runs that a previous process left unfinished.
//!
//! A process that is killed mid-run leaves responses `queued` or
//! `in_progress` with logs that stop short. At start-up, before serving,
//! each gets a `run.failed` terminal event appended after its last stored
//! event and its final object written, so every replay ends and every client
//! waiting on it gets an answer. A log whose terminal event was stored but
//! whose final object was not (the process died between the two) is only
//! finished.

use super::finish_op;
use super::sink::now_ms;
use spool_core::event::{Envelope, Event};
use spool_core::fold::RunFold;
use spool_core::ids::ResponseId;
use spool_core::run::RunError;
use spool_store::{Store, StoreError, WriteOp};

/// Ends every unfinished run in `store`; returns how many were ended.
pub async fn recover(store: &dyn Store) -> Result<usize, StoreError> {
    let unfinished = store.unfinished().await?;
    let mut ended = 0;
    for id in unfinished {
        if end_run(store, &id, interrupted()).await? {
            tracing::warn!(response_id = %id, "ended a run left unfinished by a previous process");
            ended += 1;
        }
    }
    // Every run is ended now, so a conversation still claimed was claimed
    // by a run that never started.
    store.release_stale_claims().await?;
    Ok(ended)
}

fn interrupted() -> RunError {
    RunError::new(
        "server_error",
        "The server stopped while this response was running; it was ended when the server restarted.",
    )
}

/// Ends one stored run that has no terminal event with `error`, after the
/// longest valid prefix of its log (a log whose writes failed may stop at a
/// gap), and writes its final object. Returns whether anything was written.
pub async fn end_run(
    store: &dyn Store,
    id: &ResponseId,
    error: RunError,
) -> Result<bool, StoreError> {
    let events = store.events(id, None).await?;
    let mut fold = RunFold::new();
    for envelope in &events {
        if let Err(e) = fold.apply(envelope) {
            tracing::error!(response_id = %id, seq = envelope.seq, error = %e, "the log is cut at an invalid event");
            break;
        }
    }
    if fold.status().is_none() {
        tracing::error!(response_id = %id, "a stored response has no run.created event; leaving it");
        return Ok(false);
    }
    let mut ops = Vec::new();
    if !fold.is_terminal() {
        let envelope = Envelope {
            seq: fold.next_seq(),
            ts_ms: now_ms(),
            event: Event::RunFailed { error },
        };
        if fold.apply(&envelope).is_err() {
            return Ok(false);
        }
        ops.push(WriteOp::Append {
            response_id: id.clone(),
            envelope,
        });
    }
    if let Some(finish) = finish_op(&fold) {
        ops.push(WriteOp::Finish(Box::new(finish)));
    }
    store.write(&ops).await?;
    Ok(true)
}
