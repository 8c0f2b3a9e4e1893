//! The writer thread: owns the only writing connection and applies each
//! batch of [`WriteOp`](crate::WriteOp)s in one transaction with cached
//! statements. Ops are serialized (`crate::prepared`) before they reach the
//! thread, so it does only database work.
//!
//! A batch of many runs ([`Job::WriteRuns`]) applies each run's ops inside
//! a SAVEPOINT: an op that is refused rolls back only its run's part of the
//! batch, and the rest is committed.

use super::error::{Error, from_sqlite};
use crate::prepared::{Prepared, RunOps};
use crate::{BatchOutcome, StoreError};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
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
