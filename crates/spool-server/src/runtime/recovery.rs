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
use spool_core::response::RunError;
use spool_store::{Store, StoreError, WriteOp};

/// Ends every unfinished run in `store`; returns how many were ended.
pub async fn recover(store: &dyn Store) -> Result<usize, StoreError> {
    let unfinished = store.unfinished().await?;
    let mut ended = 0;
    for id in unfinished {
        let events = store.events(&id, None).await?;
        let mut fold = match RunFold::from_events(&events) {
            Ok(fold) => fold,
            Err(e) => {
                tracing::error!(response_id = %id, error = %e, "skipping a corrupt log at recovery");
                continue;
            }
        };
        let mut ops = Vec::new();
        if !fold.is_terminal() {
            let envelope = Envelope {
                seq: fold.next_seq(),
                ts_ms: now_ms(),
                event: Event::RunFailed {
                    error: RunError::new(
                        "server_error",
                        "The server stopped while this response was running; it was ended when the server restarted.",
                    ),
                },
            };
            if let Err(e) = fold.apply(&envelope) {
                tracing::error!(response_id = %id, error = %e, "cannot end a log at recovery");
                continue;
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
        tracing::warn!(response_id = %id, "ended a run left unfinished by a previous process");
        ended += 1;
    }
    Ok(ended)
}
