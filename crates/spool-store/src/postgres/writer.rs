//! Applying a batch of write ops in one transaction, in a fixed handful of
//! multi-row statements whatever the batch holds: every new response row
//! in one `INSERT … SELECT FROM unnest(…)`, every event in one, every item
//! in one, the runs that started in one `UPDATE`, and one `pg_notify` per
//! run with new events. Only conversations (their position counters and
//! claims) and run ends take a statement each.
//!
//! A batch of many runs ([`write_runs`]) is first applied as one plain
//! transaction; only if an op is refused permanently is it redone with a
//! savepoint per run, so one run's bad op fails that run alone.

use super::error::Error;
use super::notify::Channels;
use crate::BatchOutcome;
use crate::prepared::{Prepared, RunOps};
use deadpool_postgres::Transaction;
use std::collections::BTreeMap;

/// Applies `ops` inside `tx`, in their order as far as it matters: a
/// response's row exists before its status changes, a run's start before
/// its end, a conversation before the items appended to it.
pub(super) async fn apply(
    tx: &Transaction<'_>,
    ops: &[&Prepared],
    instance: &str,
    channels: &Channels,
) -> Result<(), Error> {
    let mut responses = ResponseRows::default();
    let mut events = EventRows::default();
    let mut items = ItemRows::default();
    let mut started: Vec<&str> = Vec::new();
    // Per run: the first and last position appended, for the notification.
    let mut appended: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for op in ops {
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
                    let statement = tx
                        .prepare_cached(
                            "INSERT INTO conversations \
                             (id, created_at, metadata, active_response_id, claimed_by) \
                             VALUES ($1, $2, '{}', $3, $4)",
                        )
                        .await?;
                    tx.execute(&statement, &[conversation, created_at, id, &instance])
                        .await?;
                }
                responses.push(
                    id,
                    *created_at,
                    status,
                    *background,
                    previous_response_id,
                    conversation_id,
                );
                items.push(id, "input", input);
            }
            Prepared::Append {
                response_id,
                seq,
                ts_ms,
                event_type,
                payload,
            } => {
                events.push(response_id, *seq, *ts_ms, event_type, payload);
                appended
                    .entry(response_id)
                    .and_modify(|(first, last)| {
                        *first = (*first).min(*seq);
                        *last = (*last).max(*seq);
                    })
                    .or_insert((*seq, *seq));
                if *event_type == "run.started" {
                    started.push(response_id);
                }
            }
            Prepared::Finish { .. } => {}
        }
    }
    responses.insert(tx, instance).await?;
    // Input goes into its conversation as the response is created.
    for op in ops {
        if let Prepared::Create {
            conversation_id: Some(conversation),
            input,
            ..
        } = op
        {
            append_to_conversation(tx, conversation, input).await?;
        }
    }
    events.insert(tx).await?;
    if !started.is_empty() {
        let statement = tx
            .prepare_cached("UPDATE responses SET status = 'in_progress' WHERE id = ANY($1)")
            .await?;
        tx.execute(&statement, &[&started]).await?;
    }
    for op in ops {
        if let Prepared::Finish {
            response_id,
            status,
            snapshot,
            output,
        } = op
        {
            finish(tx, response_id, status, snapshot, output).await?;
            items.push(response_id, "output", output);
        }
    }
    items.insert(tx).await?;
    if !appended.is_empty() {
        let (runs, (firsts, lasts)): (Vec<&str>, (Vec<i64>, Vec<i64>)) =
            appended.into_iter().unzip();
        let statement = tx
            .prepare_cached(
                "SELECT pg_notify($1, run || ' ' || first || ' ' || last) \
                 FROM unnest($2::text[], $3::int8[], $4::int8[]) AS t(run, first, last)",
            )
            .await?;
        tx.execute(&statement, &[&channels.events, &runs, &firsts, &lasts])
            .await?;
    }
    Ok(())
}

/// Records a run's end: its status and final object, its output appended
/// to its conversation, and the conversation released.
async fn finish(
    tx: &Transaction<'_>,
    response_id: &str,
    status: &str,
    snapshot: &str,
    output: &[(String, String)],
) -> Result<(), Error> {
    let statement = tx
        .prepare_cached(
            "UPDATE responses SET status = $1, snapshot = $2 WHERE id = $3 \
             RETURNING conversation_id",
        )
        .await?;
    let row = tx
        .query_opt(&statement, &[&status, &snapshot, &response_id])
        .await?;
    if let Some(conversation) = row.and_then(|r| r.get::<_, Option<String>>(0)) {
        append_to_conversation(tx, &conversation, output).await?;
        let release = tx
            .prepare_cached(
                "UPDATE conversations SET active_response_id = NULL, claimed_by = NULL \
                 WHERE id = $1 AND active_response_id = $2",
            )
            .await?;
        tx.execute(&release, &[&conversation, &response_id]).await?;
    }
    Ok(())
}

/// Appends items at the end of a conversation that still exists, at
/// positions taken from its counter under its row's lock: concurrent
/// appenders on any instance queue on the lock and get distinct, dense
/// positions.
pub(super) async fn append_to_conversation<C: deadpool_postgres::GenericClient>(
    client: &C,
    conversation_id: &str,
    items: &[(String, String)],
) -> Result<(), Error> {
    if items.is_empty() {
        return Ok(());
    }
    let (ids, bodies): (Vec<&str>, Vec<&str>) = items
        .iter()
        .map(|(id, body)| (id.as_str(), body.as_str()))
        .unzip();
    let statement = client
        .prepare_cached(
            "WITH slot AS ( \
                 UPDATE conversations SET next_position = next_position + $2 \
                 WHERE id = $1 RETURNING next_position - $2 AS base) \
             INSERT INTO conversation_items (conversation_id, position, item_id, body) \
             SELECT $1, slot.base + t.n - 1, t.item_id, t.body \
             FROM slot, unnest($3::text[], $4::text[]) WITH ORDINALITY AS t(item_id, body, n)",
        )
        .await?;
    client
        .execute(
            &statement,
            &[&conversation_id, &(items.len() as i64), &ids, &bodies],
        )
        .await?;
    Ok(())
}

/// New response rows, as columns.
#[derive(Default)]
struct ResponseRows<'a> {
    ids: Vec<&'a str>,
    created_at: Vec<i64>,
    statuses: Vec<&'a str>,
    background: Vec<bool>,
    previous: Vec<Option<&'a str>>,
    conversations: Vec<Option<&'a str>>,
}

impl<'a> ResponseRows<'a> {
    fn push(
        &mut self,
        id: &'a str,
        created_at: i64,
        status: &'a str,
        background: bool,
        previous: &'a Option<String>,
        conversation: &'a Option<String>,
    ) {
        self.ids.push(id);
        self.created_at.push(created_at);
        self.statuses.push(status);
        self.background.push(background);
        self.previous.push(previous.as_deref());
        self.conversations.push(conversation.as_deref());
    }

    async fn insert(&self, tx: &Transaction<'_>, instance: &str) -> Result<(), Error> {
        if self.ids.is_empty() {
            return Ok(());
        }
        let statement = tx
            .prepare_cached(
                "INSERT INTO responses (id, created_at, status, background, \
                   previous_response_id, conversation_id, executor) \
                 SELECT t.*, $7 FROM unnest($1::text[], $2::int8[], $3::text[], $4::bool[], \
                   $5::text[], $6::text[]) AS t",
            )
            .await?;
        tx.execute(
            &statement,
            &[
                &self.ids,
                &self.created_at,
                &self.statuses,
                &self.background,
                &self.previous,
                &self.conversations,
                &instance,
            ],
        )
        .await?;
        Ok(())
    }
}

/// New log rows, as columns.
#[derive(Default)]
struct EventRows<'a> {
    runs: Vec<&'a str>,
    seqs: Vec<i64>,
    ts_ms: Vec<i64>,
    types: Vec<&'a str>,
    payloads: Vec<&'a str>,
}

impl<'a> EventRows<'a> {
    fn push(&mut self, run: &'a str, seq: i64, ts_ms: i64, kind: &'a str, payload: &'a str) {
        self.runs.push(run);
        self.seqs.push(seq);
        self.ts_ms.push(ts_ms);
        self.types.push(kind);
        self.payloads.push(payload);
    }

    async fn insert(&self, tx: &Transaction<'_>) -> Result<(), Error> {
        if self.runs.is_empty() {
            return Ok(());
        }
        let statement = tx
            .prepare_cached(
                "INSERT INTO events (response_id, seq, ts_ms, type, payload) \
                 SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::text[], $5::text[])",
            )
            .await?;
        tx.execute(
            &statement,
            &[
                &self.runs,
                &self.seqs,
                &self.ts_ms,
                &self.types,
                &self.payloads,
            ],
        )
        .await?;
        Ok(())
    }
}

/// New item rows (a response's input or output), as columns.
#[derive(Default)]
struct ItemRows<'a> {
    runs: Vec<&'a str>,
    kinds: Vec<&'static str>,
    positions: Vec<i64>,
    ids: Vec<&'a str>,
    bodies: Vec<&'a str>,
}

impl<'a> ItemRows<'a> {
    fn push(&mut self, run: &'a str, kind: &'static str, items: &'a [(String, String)]) {
        for (position, (id, body)) in items.iter().enumerate() {
            self.runs.push(run);
            self.kinds.push(kind);
            self.positions.push(position as i64);
            self.ids.push(id);
            self.bodies.push(body);
        }
    }

    async fn insert(&self, tx: &Transaction<'_>) -> Result<(), Error> {
        if self.runs.is_empty() {
            return Ok(());
        }
        let statement = tx
            .prepare_cached(
                "INSERT INTO items (response_id, kind, position, item_id, body) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[])",
            )
            .await?;
        tx.execute(
            &statement,
            &[
                &self.runs,
                &self.kinds,
                &self.positions,
                &self.ids,
                &self.bodies,
            ],
        )
        .await?;
        Ok(())
    }
}

/// Applies a batch of runs' ops so that each run stands or fails on its
/// own (see the module's doc). A transient error fails the batch as a
/// whole so it can be tried again.
pub(super) async fn write_runs(
    client: &mut deadpool_postgres::Object,
    runs: Vec<RunOps>,
    instance: &str,
    channels: &Channels,
) -> Result<BatchOutcome, Error> {
    if runs.iter().all(|r| r.ops.is_ok()) {
        let ops: Vec<&Prepared> = runs
            .iter()
            .filter_map(|r| r.ops.as_ref().ok())
            .flatten()
            .collect();
        let tx = client.transaction().await?;
        match apply(&tx, &ops, instance, channels).await {
            Ok(()) => {
                tx.commit().await?;
                return Ok(BatchOutcome::default());
            }
            Err(Error(e)) if e.is_transient() => return Err(e.into()),
            Err(_) => {
                tx.rollback().await?;
            }
        }
    }
    write_runs_isolated(client, runs, instance, channels).await
}

/// Applies each run's ops in a savepoint of one transaction; a run whose
/// op is refused permanently is rolled back to its savepoint and reported.
async fn write_runs_isolated(
    client: &mut deadpool_postgres::Object,
    runs: Vec<RunOps>,
    instance: &str,
    channels: &Channels,
) -> Result<BatchOutcome, Error> {
    let mut tx = client.transaction().await?;
    let mut outcome = BatchOutcome::default();
    for RunOps { id, ops } in runs {
        let ops = match ops {
            Ok(ops) => ops,
            Err(e) => {
                outcome.failed.push((id, e));
                continue;
            }
        };
        let run = tx.savepoint("run").await?;
        let ops: Vec<&Prepared> = ops.iter().collect();
        match apply(&run, &ops, instance, channels).await {
            Ok(()) => run.commit().await?,
            Err(Error(e)) if e.is_transient() => return Err(e.into()),
            Err(Error(e)) => {
                run.rollback().await?;
                outcome.failed.push((id, e));
            }
        }
    }
    tx.commit().await?;
    Ok(outcome)
}

/// Applies a batch all or none.
pub(super) async fn write(
    client: &mut deadpool_postgres::Object,
    ops: &[Prepared],
    instance: &str,
    channels: &Channels,
) -> Result<(), Error> {
    let tx = client.transaction().await?;
    let ops: Vec<&Prepared> = ops.iter().collect();
    apply(&tx, &ops, instance, channels).await?;
    tx.commit().await?;
    Ok(())
}
