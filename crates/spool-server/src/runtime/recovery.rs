//! Ending runs that a previous process left unfinished.
//!
//! A process that is killed mid-run leaves responses `queued` or
//! `in_progress` with logs that stop short. At start-up, before serving,
//! each gets a `run.failed` terminal event appended after its last stored
//! event and its final object written, so every replay ends and every client
//! waiting on it gets an answer. A log whose terminal event was stored but
//! whose final object was not (the process died between the two) is only
//! finished.
//!
//! With a store shared by several instances ([`ExecutionLeases`]), only the
//! runs whose executor's lease has run out are ended (`server_error`,
//! naming the lost executor): an unfinished run of a live instance is that
//! instance's.
//!
//! Recovery never stops the server from starting: a run whose log cannot
//! be read, or has no `run.created`, is quarantined (ended `failed` without
//! a log event, its conversation released) and logged, and a run that
//! cannot be ended at all is logged and left for the next start.

use super::finish_op;
use super::sink::now_ms;
use spool_core::event::{Envelope, Event};
use spool_core::fold::RunFold;
use spool_core::ids::ResponseId;
use spool_core::run::RunError;
use spool_core::status::RunStatus;
use spool_store::{ExecutionLeases, Finish, Store, StoreError, WriteOp};

/// What recovery did at start-up.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    /// Runs ended with a terminal event after their last stored event.
    pub ended: usize,
    /// Runs whose log could not be read or had no `run.created`: ended
    /// `failed` in the store without a log event.
    pub quarantined: usize,
    /// Runs that could not be ended (the store failed); tried again at
    /// the next start.
    pub left: usize,
}

/// How one run was ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// A terminal event was appended (or was stored already) and the
    /// final object written.
    Logged,
    /// The log could not be used; the response was ended without it.
    Quarantined,
    /// Nothing to do: the response has ended already, or is gone.
    AlreadyEnded,
}

/// Ends every unfinished run in `store` (with `leases`, every run lost
/// with an instance whose lease ran out). Per-run failures are logged and
/// counted, never returned: the server starts whatever the old logs hold.
pub async fn recover(store: &dyn Store, leases: Option<&dyn ExecutionLeases>) -> Recovered {
    let mut recovered = Recovered::default();
    let unfinished = match leases {
        None => store
            .unfinished()
            .await
            .map(|ids| ids.into_iter().map(|id| (id, interrupted())).collect()),
        Some(leases) => leases.take_over_orphans().await.map(|orphans| {
            orphans
                .into_iter()
                .map(|o| (o.id, super::leases::lost_executor(&o.executor)))
                .collect::<Vec<_>>()
        }),
    };
    let unfinished = match unfinished {
        Ok(runs) => runs,
        Err(e) => {
            tracing::error!(error = %e, "cannot list unfinished runs; they are ended at the next start");
            return recovered;
        }
    };
    for (id, error) in unfinished {
        match end_run(store, &id, error).await {
            Ok(Ended::Logged) => {
                tracing::warn!(response_id = %id, "ended a run left unfinished by a previous process");
                recovered.ended += 1;
            }
            Ok(Ended::Quarantined) => recovered.quarantined += 1,
            Ok(Ended::AlreadyEnded) => {}
            Err(e) => {
                tracing::error!(response_id = %id, error = %e, "cannot end a run left unfinished; trying again at the next start");
                recovered.left += 1;
            }
        }
    }
    // Every run that could be ended is ended now, so a conversation still
    // claimed by an ended (or missing) response was claimed by a run that
    // never started.
    if let Err(e) = store.release_stale_claims().await {
        tracing::error!(error = %e, "cannot release conversations claimed by runs that never started");
    }
    recovered
}

fn interrupted() -> RunError {
    RunError::new(
        "server_error",
        "The server stopped while this response was running; it was ended when the server restarted.",
    )
}

/// Ends one stored run that has no terminal event with `error`: a
/// `run.failed` after its last stored event (a log whose writes failed may
/// stop at a gap or an invalid event; the object is the fold of its longest
/// valid prefix), and its final object. A log that cannot be read, or has
/// no `run.created`, is quarantined.
pub async fn end_run(
    store: &dyn Store,
    id: &ResponseId,
    error: RunError,
) -> Result<Ended, StoreError> {
    // A run whose end was stored meanwhile (its own task got that far) is
    // left as it is: its final object is written once.
    match store.response(id).await? {
        Some(record) if !record.status.is_terminal() => {}
        _ => return Ok(Ended::AlreadyEnded),
    }
    let events = match store.events(id, None).await {
        Ok(events) => events,
        Err(StoreError::Corrupt(reason)) => {
            tracing::error!(response_id = %id, %reason, "the stored log cannot be read; quarantining the response");
            return quarantine(store, id).await;
        }
        Err(e) => return Err(e),
    };
    let mut fold = RunFold::new();
    for envelope in &events {
        if let Err(e) = fold.apply(envelope) {
            tracing::error!(response_id = %id, seq = envelope.seq, error = %e, "the log is cut at an invalid event");
            break;
        }
    }
    if fold.status().is_none() {
        tracing::error!(response_id = %id, "the stored log has no run.created; quarantining the response");
        return quarantine(store, id).await;
    }
    let mut ops = Vec::new();
    if !fold.is_terminal() {
        let terminal = Event::RunFailed { error };
        let in_fold = Envelope {
            seq: fold.next_seq(),
            ts_ms: now_ms(),
            event: terminal,
        };
        if let Err(e) = fold.apply(&in_fold) {
            tracing::error!(response_id = %id, error = %e, "the log cannot take a terminal event; quarantining the response");
            return quarantine(store, id).await;
        }
        // Stored after the last stored event, even one past the cut: the
        // log's sequence stays dense and nothing stored is overwritten.
        let seq = events.last().map_or(0, |e| e.seq + 1).max(in_fold.seq);
        ops.push(WriteOp::Append {
            response_id: id.clone(),
            envelope: Envelope { seq, ..in_fold },
        });
    }
    if let Some(finish) = finish_op(&fold) {
        ops.push(WriteOp::Finish(Box::new(finish)));
    }
    store.write(&ops).await?;
    Ok(Ended::Logged)
}

/// Ends a response whose log cannot be used: `failed`, with a minimal
/// final object that says so, its conversation released. Its log is kept
/// as it is, for whoever investigates.
async fn quarantine(store: &dyn Store, id: &ResponseId) -> Result<Ended, StoreError> {
    let Some(record) = store.response(id).await? else {
        return Ok(Ended::AlreadyEnded);
    };
    let snapshot = serde_json::json!({
        "id": id,
        "object": "response",
        "created_at": record.created_at,
        "status": RunStatus::Failed,
        "background": record.background,
        "error": RunError::new(
            "server_error",
            "The stored log of this response could not be read; it was ended when the server restarted.",
        ),
        "incomplete_details": null,
        "output": [],
        "previous_response_id": record.previous_response_id,
    });
    store
        .write(&[WriteOp::Finish(Box::new(Finish {
            response_id: id.clone(),
            terminal: None,
            status: RunStatus::Failed,
            snapshot: snapshot.to_string(),
            output: Vec::new(),
        }))])
        .await?;
    Ok(Ended::Quarantined)
}
