//! The writer thread: owns the only writing connection and applies each
//! batch of [`WriteOp`]s in one transaction with cached statements. Ops are
//! serialized to JSON ([`prepare`], [`prepare_runs`]) before they reach the
//! thread, so it does only database work.
//!
//! A batch of many runs ([`Job::WriteRuns`]) applies each run's ops inside
//! a SAVEPOINT: an op that is refused rolls back only its run's part of the
//! batch, and the rest is committed.

use super::codec::{item_rows, to_json};
use super::error::{Error, from_sqlite};
use crate::{BatchOutcome, NewResponse, StoreError, WriteOp};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use spool_core::event::Envelope;
use spool_core::ids::ResponseId;
use std::collections::HashMap;
use std::sync::mpsc;
use tokio::sync::oneshot;

/// Work for the writer thread; each job sends its own answer.
pub(super) enum Job {
    /// All or none.
    Write(Vec<Prepared>, oneshot::Sender<Result<(), StoreError>>),
    /// Each run all or none on its own.
    WriteRuns(
        Vec<RunOps>,
        oneshot::Sender<Result<BatchOutcome, StoreError>>,
    ),
    /// Any other write: runs on the writing connection.
    Run(Box<dyn FnOnce(&mut Connection) + Send>),
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

/// A write op with everything serialized, ready for the writer thread.
pub(super) enum Prepared {
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

pub(super) fn prepare(batch: &[WriteOp]) -> Result<Vec<Prepared>, StoreError> {
    let mut out = Vec::with_capacity(batch.len() + 1);
    for op in batch {
        prepare_op(op, &mut out)?;
    }
    Ok(out)
}

/// One run's ops of a batch, serialized; or why they could not be, which
/// fails that run alone before the batch reaches the database.
pub(super) struct RunOps {
    id: ResponseId,
    ops: Result<Vec<Prepared>, StoreError>,
}

/// Serializes a batch grouped by run, in the order each run first appears;
/// each run's ops keep their order.
pub(super) fn prepare_runs(batch: &[WriteOp]) -> Vec<RunOps> {
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

pub(super) fn run_writer(mut conn: Connection, jobs: mpsc::Receiver<Job>) {
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Write(batch, reply) => {
                let _ = reply.send(write_batch(&mut conn, &batch).map_err(StoreError::from));
            }
            Job::WriteRuns(runs, reply) => {
                let _ = reply.send(write_runs(&mut conn, runs).map_err(StoreError::from));
            }
            Job::Run(job) => job(&mut conn),
        }
    }
}

fn insert_items(
    tx: &Connection,
    response_id: &str,
    kind: &str,
    items: &[(String, String)],
) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO items (response_id, kind, position, item_id, body) VALUES (?, ?, ?, ?, ?)",
    )?;
    for (position, (item_id, body)) in items.iter().enumerate() {
        insert.execute(params![response_id, kind, position as i64, item_id, body])?;
    }
    Ok(())
}

fn write_batch(conn: &mut Connection, batch: &[Prepared]) -> Result<(), Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for op in batch {
        apply(&tx, op)?;
    }
    tx.commit()?;
    Ok(())
}

/// Applies a batch of runs' ops so that each run stands or fails on its
/// own. Ops are almost never refused, so the batch is first applied as one
/// plain transaction; only if an op is refused permanently is it redone
/// with a savepoint per run ([`write_runs_isolated`]). A transient error
/// (busy, full, I/O) fails the batch as a whole so it can be tried again.
fn write_runs(conn: &mut Connection, runs: Vec<RunOps>) -> Result<BatchOutcome, Error> {
    if runs.iter().all(|r| r.ops.is_ok()) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let applied = runs.iter().try_for_each(|run| match &run.ops {
            Ok(ops) => ops.iter().try_for_each(|op| apply(&tx, op)),
            Err(_) => Ok(()),
        });
        match applied {
            Ok(()) => {
                tx.commit()?;
                return Ok(BatchOutcome::default());
            }
            Err(e) => {
                let error = from_sqlite(e);
                if error.is_transient() {
                    return Err(error.into());
                }
                // Dropping the transaction rolls it back; the batch is
                // redone below, run by run.
                drop(tx);
            }
        }
    }
    write_runs_isolated(conn, runs)
}

/// Applies each run's ops in a savepoint of one transaction. A run whose
/// op is refused permanently (a constraint, say) is rolled back to its
/// savepoint and reported; a transient error, or one after which SQLite
/// has already rolled the whole transaction back, fails the batch.
fn write_runs_isolated(conn: &mut Connection, runs: Vec<RunOps>) -> Result<BatchOutcome, Error> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcome = BatchOutcome::default();
    for RunOps { id, ops } in runs {
        let ops = match ops {
            Ok(ops) => ops,
            Err(e) => {
                outcome.failed.push((id, e));
                continue;
            }
        };
        let mut run = tx.savepoint()?;
        match ops.iter().try_for_each(|op| apply(&run, op)) {
            Ok(()) => run.commit()?,
            Err(e) => {
                let error = from_sqlite(e);
                if error.is_transient() || run.is_autocommit() {
                    return Err(error.into());
                }
                run.rollback()?;
                // Releases the savepoint, now empty.
                run.commit()?;
                outcome.failed.push((id, error));
            }
        }
    }
    tx.commit()?;
    Ok(outcome)
}

/// Applies one prepared op inside the caller's transaction.
fn apply(tx: &Connection, op: &Prepared) -> rusqlite::Result<()> {
    match op {
        Prepared::Create {
            id,
            created_at,
            status,
            background,
            previous_response_id,
            conversation_id,
            opens_conversation,
            input,
        } => {
            if let (Some(conversation), true) = (conversation_id, opens_conversation) {
                tx.prepare_cached(
                    "INSERT INTO conversations (id, created_at, metadata, active_response_id) \
                     VALUES (?, ?, '{}', ?)",
                )?
                .execute(params![conversation, created_at, id])?;
            }
            tx.prepare_cached(
                "INSERT INTO responses \
                 (id, created_at, status, background, previous_response_id, conversation_id) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![
                id,
                created_at,
                status,
                background,
                previous_response_id,
                conversation_id
            ])?;
            insert_items(tx, id, "input", input)?;
            if let Some(conversation) = conversation_id {
                append_to_conversation(tx, conversation, input)?;
            }
        }
        Prepared::Append {
            response_id,
            seq,
            ts_ms,
            event_type,
            payload,
        } => {
            tx.prepare_cached(
                "INSERT INTO events (response_id, seq, ts_ms, type, payload) VALUES (?, ?, ?, ?, ?)",
            )?
            .execute(params![response_id, seq, ts_ms, event_type, payload])?;
            if *event_type == "run.started" {
                tx.prepare_cached("UPDATE responses SET status = 'in_progress' WHERE id = ?")?
                    .execute([response_id])?;
            }
        }
        Prepared::Finish {
            response_id,
            status,
            snapshot,
            output,
        } => {
            tx.prepare_cached("UPDATE responses SET status = ?, snapshot = ? WHERE id = ?")?
                .execute(params![status, snapshot, response_id])?;
            insert_items(tx, response_id, "output", output)?;
            let conversation: Option<String> = tx
                .prepare_cached("SELECT conversation_id FROM responses WHERE id = ?")?
                .query_row([response_id], |r| r.get(0))
                .optional()?
                .flatten();
            if let Some(conversation) = conversation {
                append_to_conversation(tx, &conversation, output)?;
                tx.prepare_cached(
                    "UPDATE conversations SET active_response_id = NULL \
                     WHERE id = ? AND active_response_id = ?",
                )?
                .execute([&conversation, response_id])?;
            }
        }
    }
    Ok(())
}

/// Appends items at the end of a conversation that still exists.
pub(super) fn append_to_conversation(
    tx: &Connection,
    conversation_id: &str,
    items: &[(String, String)],
) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO conversation_items (conversation_id, position, item_id, body) \
         SELECT ?1, COALESCE((SELECT MAX(position) + 1 FROM conversation_items \
                              WHERE conversation_id = ?1), 0), ?2, ?3 \
         WHERE EXISTS (SELECT 1 FROM conversations WHERE id = ?1)",
    )?;
    for (item_id, body) in items {
        insert.execute(params![conversation_id, item_id, body])?;
    }
    Ok(())
}
