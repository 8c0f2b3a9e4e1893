//! The log and its records: batched writes (handed to the writer thread),
//! responses (one, or a listing), events, input and turn items, deletion
//! and unfinished runs.

use super::SqliteStore;
use super::error::Error;
use super::paging::{finish_page, page_items};
use super::writer::Job;
use crate::codec::{corrupt, parse_id, parse_item, parse_status};
use crate::prepared::{prepare, prepare_runs};
use crate::{
    BatchOutcome, ChainLink, ItemPage, ItemPageQuery, ListPage, LogStore, Order, PageError,
    ResponseRecord, StoreError, WriteOp,
};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use spool_core::event::{Envelope, Event};
use spool_core::ids::ResponseId;
use spool_core::item::Item;
use tokio::sync::oneshot;

fn delete_response(conn: &mut Connection, id: &str) -> Result<bool, Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let deleted = tx.execute("DELETE FROM responses WHERE id = ?", [id])?;
    tx.execute("DELETE FROM items WHERE response_id = ?", [id])?;
    tx.execute("DELETE FROM events WHERE response_id = ?", [id])?;
    tx.commit()?;
    Ok(deleted > 0)
}

#[async_trait]
impl LogStore for SqliteStore {
    async fn write(&self, batch: &[WriteOp]) -> Result<(), StoreError> {
        let prepared = prepare(batch)?;
        let (reply, answer) = oneshot::channel();
        self.send_job(Job::Write(prepared, reply))?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn write_runs(&self, batch: &[WriteOp]) -> Result<BatchOutcome, StoreError> {
        let runs = prepare_runs(batch);
        let (reply, answer) = oneshot::channel();
        self.send_job(Job::WriteRuns(runs, reply))?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn response(&self, id: &ResponseId) -> Result<Option<ResponseRecord>, StoreError> {
        let id = id.as_str().to_owned();
        self.read(move |conn| {
            let row = conn
                .prepare_cached(
                    "SELECT id, created_at, status, background, previous_response_id, snapshot \
                     FROM responses WHERE id = ?",
                )?
                .query_row([&id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, bool>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<String>>(5)?,
                    ))
                })
                .optional()?;
            let Some((id, created_at, status, background, previous, snapshot)) = row else {
                return Ok(None);
            };
            Ok(Some(ResponseRecord {
                id: parse_id(&id)?,
                created_at,
                status: parse_status(&status)?,
                background,
                previous_response_id: previous.as_deref().map(parse_id).transpose()?,
                snapshot,
            }))
        })
        .await
    }

    async fn events(
        &self,
        id: &ResponseId,
        after: Option<u64>,
    ) -> Result<Vec<Envelope>, StoreError> {
        self.events_page(id, after, usize::MAX).await
    }

    async fn events_page(
        &self,
        id: &ResponseId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Envelope>, StoreError> {
        let id = id.clone();
        let from = after.map_or(0, |a| a as i64 + 1);
        // SQLite takes a negative LIMIT as none.
        let limit = i64::try_from(limit).unwrap_or(-1);
        self.read(move |conn| {
            let mut query = conn.prepare_cached(
                "SELECT seq, ts_ms, payload FROM events WHERE response_id = ? AND seq >= ? \
                 ORDER BY seq LIMIT ?",
            )?;
            let mut rows = query.query(params![id.as_str(), from, limit])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let seq: i64 = row.get(0)?;
                let payload = row
                    .get_ref(2)?
                    .as_str()
                    .map_err(|e| corrupt(e.to_string()))?;
                let event: Event = serde_json::from_str(payload)
                    .map_err(|e| corrupt(format!("bad event {id}/{seq}: {e}")))?;
                out.push(Envelope {
                    seq: seq as u64,
                    ts_ms: row.get(1)?,
                    event,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn response_chain(
        &self,
        id: &ResponseId,
        max: usize,
    ) -> Result<Vec<ChainLink>, StoreError> {
        let id = id.as_str().to_owned();
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(
                "WITH RECURSIVE chain (id, status, previous_response_id, depth) AS ( \
                     SELECT id, status, previous_response_id, 1 FROM responses WHERE id = ?1 \
                   UNION ALL \
                     SELECT r.id, r.status, r.previous_response_id, c.depth + 1 \
                     FROM chain c JOIN responses r ON r.id = c.previous_response_id \
                     WHERE c.depth < ?2) \
                 SELECT id, status FROM chain ORDER BY depth",
            )?;
            let rows = statement
                .query_map(params![id, max], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows
                .iter()
                .map(|(id, status)| {
                    Ok(ChainLink {
                        id: parse_id(id)?,
                        status: parse_status(status)?,
                    })
                })
                .collect::<Result<_, StoreError>>()?)
        })
        .await
    }

    async fn input_items(
        &self,
        id: &ResponseId,
        query: &ItemPageQuery,
    ) -> Result<ItemPage, PageError> {
        let id = id.as_str().to_owned();
        let query = query.clone();
        self.read(move |conn| {
            Ok(page_items(
                conn,
                "items",
                "response_id",
                "AND kind = 'input'",
                &id,
                &query,
            ))
        })
        .await?
    }

    async fn turn_items(&self, id: &ResponseId) -> Result<Vec<Item>, StoreError> {
        let id = id.as_str().to_owned();
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT body FROM items WHERE response_id = ? \
                 ORDER BY CASE kind WHEN 'input' THEN 0 ELSE 1 END, position",
            )?;
            let bodies = statement
                .query_map([&id], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(bodies
                .iter()
                .map(|b| parse_item(b))
                .collect::<Result<_, StoreError>>()?)
        })
        .await
    }

    async fn delete(&self, id: &ResponseId) -> Result<bool, StoreError> {
        let id = id.as_str().to_owned();
        self.on_writer(move |conn| delete_response(conn, &id)).await
    }

    async fn list_responses(
        &self,
        after: Option<&ResponseId>,
        limit: u32,
        model: Option<&str>,
        order: Order,
    ) -> Result<ListPage<ResponseId>, PageError> {
        let after = after.map(|a| a.as_str().to_owned());
        let cursor = after.clone();
        let model = model.map(str::to_owned);
        let rows = self
            .read(move |conn| {
                let after_rowid = match &cursor {
                    Some(response) => match conn
                        .prepare_cached("SELECT rowid FROM responses WHERE id = ?")?
                        .query_row([response], |r| r.get::<_, i64>(0))
                        .optional()?
                    {
                        Some(rowid) => Some(rowid),
                        None => return Ok(None),
                    },
                    None => None,
                };
                // The model is the run header's, in the log's first event
                // (`response` in the header of older logs).
                let sql = match order {
                    Order::Asc => {
                        "SELECT r.id FROM responses r WHERE (?1 IS NULL OR r.rowid > ?1) \
                         AND (?2 IS NULL OR EXISTS (SELECT 1 FROM events e \
                         WHERE e.response_id = r.id AND e.seq = 0 AND COALESCE(\
                         json_extract(e.payload, '$.run.model'), \
                         json_extract(e.payload, '$.response.model')) = ?2)) \
                         ORDER BY r.rowid ASC LIMIT ?3"
                    }
                    Order::Desc => {
                        "SELECT r.id FROM responses r WHERE (?1 IS NULL OR r.rowid < ?1) \
                         AND (?2 IS NULL OR EXISTS (SELECT 1 FROM events e \
                         WHERE e.response_id = r.id AND e.seq = 0 AND COALESCE(\
                         json_extract(e.payload, '$.run.model'), \
                         json_extract(e.payload, '$.response.model')) = ?2)) \
                         ORDER BY r.rowid DESC LIMIT ?3"
                    }
                };
                let rows = conn
                    .prepare_cached(sql)?
                    .query_map(params![after_rowid, model, i64::from(limit) + 1], |r| {
                        r.get::<_, String>(0)
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Some(rows))
            })
            .await?;
        let (rows, has_more) = finish_page(rows, after, limit)?;
        let data = rows
            .iter()
            .map(|id| parse_id(id))
            .collect::<Result<_, StoreError>>()?;
        Ok(ListPage { data, has_more })
    }

    async fn unfinished(&self) -> Result<Vec<ResponseId>, StoreError> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT id FROM responses WHERE status IN ('queued', 'in_progress') ORDER BY id",
            )?;
            let ids = statement
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ids
                .iter()
                .map(|s| parse_id(s))
                .collect::<Result<_, StoreError>>()?)
        })
        .await
    }
}
