//! Write ops made ready for a database, in every backend: each op's
//! values serialized to the text the tables hold, and a batch grouped by
//! run so a backend can apply (or refuse) each run's ops on their own.
//! Serialization happens before a batch reaches the database, so the
//! database work is only database work.

use crate::codec::{item_rows, to_json};
use crate::{NewResponse, StoreError, WriteOp};
use spool_core::event::Envelope;
use spool_core::ids::ResponseId;
use std::collections::HashMap;

/// A write op with everything serialized, ready for a database.
pub(crate) enum Prepared {
    Create {
        id: String,
        created_at: i64,
        status: &'static str,
        background: bool,
        previous_response_id: Option<String>,
        conversation_id: Option<String>,
        /// Create the conversation first, claimed by this response.
        opens_conversation: bool,
        input: Vec<(String, String)>,
    },
    Append {
        response_id: String,
        seq: i64,
        ts_ms: i64,
        event_type: &'static str,
        payload: String,
    },
    Finish {
        response_id: String,
        status: &'static str,
        snapshot: String,
        output: Vec<(String, String)>,
    },
}

fn append(response_id: &ResponseId, envelope: &Envelope) -> Result<Prepared, StoreError> {
    Ok(Prepared::Append {
        response_id: response_id.as_str().to_owned(),
        seq: envelope.seq as i64,
        ts_ms: envelope.ts_ms,
        event_type: envelope.event.type_name(),
        payload: to_json(&envelope.event)?,
    })
}

/// Serializes one op, appending its rows to `out`.
fn prepare_op(op: &WriteOp, out: &mut Vec<Prepared>) -> Result<(), StoreError> {
    match op {
        WriteOp::Create(c) => {
            let r: &NewResponse = &c.response;
            out.push(Prepared::Create {
                id: r.id.as_str().to_owned(),
                created_at: r.created_at,
                status: r.status.as_str(),
                background: r.background,
                previous_response_id: r
                    .previous_response_id
                    .as_ref()
                    .map(|p| p.as_str().to_owned()),
                conversation_id: r.conversation.as_ref().map(|c| c.as_str().to_owned()),
                opens_conversation: r.opens_conversation,
                input: item_rows(&r.input)?,
            });
            out.push(append(&r.id, &c.first_event)?);
        }
        WriteOp::Append {
            response_id,
            envelope,
        } => out.push(append(response_id, envelope)?),
        WriteOp::Finish(f) => {
            if let Some(terminal) = &f.terminal {
                out.push(append(&f.response_id, terminal)?);
            }
            out.push(Prepared::Finish {
                response_id: f.response_id.as_str().to_owned(),
                status: f.status.as_str(),
                snapshot: f.snapshot.clone(),
                output: item_rows(&f.output)?,
            })
        }
    }
    Ok(())
}

pub(crate) fn prepare(batch: &[WriteOp]) -> Result<Vec<Prepared>, StoreError> {
    let mut out = Vec::with_capacity(batch.len() + 1);
    for op in batch {
        prepare_op(op, &mut out)?;
    }
    Ok(out)
}

/// One run's ops of a batch, serialized; or why they could not be, which
/// fails that run alone before the batch reaches the database.
pub(crate) struct RunOps {
    pub(crate) id: ResponseId,
    pub(crate) ops: Result<Vec<Prepared>, StoreError>,
}

/// Serializes a batch grouped by run, in the order each run first appears;
/// each run's ops keep their order.
pub(crate) fn prepare_runs(batch: &[WriteOp]) -> Vec<RunOps> {
    let mut runs: Vec<RunOps> = Vec::new();
    // Under load a batch interleaves the ops of many runs (64 clients, 4,096
    // ops): find each op's run by its id, not by a scan of the runs so far.
    let mut index: HashMap<&ResponseId, usize> = HashMap::new();
    for op in batch {
        let id = op.response_id();
        let at = *index.entry(id).or_insert_with(|| {
            runs.push(RunOps {
                id: id.clone(),
                ops: Ok(Vec::new()),
            });
            runs.len() - 1
        });
        let run = &mut runs[at];
        if let Ok(ops) = &mut run.ops
            && let Err(e) = prepare_op(op, ops)
        {
            run.ops = Err(e);
        }
    }
    runs
}
