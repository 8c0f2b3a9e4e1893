//! The log and its records: batched writes, responses, events (read in
//! pages), `previous_response_id` chains (one recursive query), input and
//! turn items, deletion and unfinished runs.

use super::error::Error;
use super::paging::{ItemList, page_items};
use super::writer;
use super::{PostgresStore, neutral};
use crate::codec::{corrupt, parse_id, parse_item, parse_status};
use crate::prepared::{prepare, prepare_runs};
use crate::{
    BatchOutcome, ChainLink, ItemPage, ItemPageQuery, ListPage, LogStore, Order, PageError,
    ResponseRecord, StoreError, WriteOp,
};
use async_trait::async_trait;
use spool_core::event::{Envelope, Event};
use spool_core::ids::ResponseId;
use spool_core::item::Item;

/// Events read per query when a whole log is asked for.
const EVENT_PAGE: usize = 2048;

const INPUT_ITEMS: ItemList = ItemList {
    table: "items",
    key: "response_id",
    filter: "AND kind = 'input'",
};

impl PostgresStore {
    async fn read_events(
        &self,
        id: &ResponseId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Envelope>, Error> {
        let from = after.map_or(0, |a| a as i64 + 1);
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT seq, ts_ms, payload FROM events WHERE response_id = $1 AND seq >= $2 \
                 ORDER BY seq LIMIT $3",
            )
            .await?;
        let rows = client
            .query(&statement, &[&id.as_str(), &from, &(limit as i64)])
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let seq: i64 = row.try_get(0)?;
            let event: Event = serde_json::from_str(row.try_get::<_, &str>(2)?)
                .map_err(|e| corrupt(format!("bad event {id}/{seq}: {e}")))?;
            out.push(Envelope {
                seq: seq as u64,
                ts_ms: row.try_get(1)?,
                event,
            });
        }
        Ok(out)
    }
}

#[async_trait]
impl LogStore for PostgresStore {
    async fn write(&self, batch: &[WriteOp]) -> Result<(), StoreError> {
        let prepared = prepare(batch)?;
        let mut client = self.client().await?;
        Ok(writer::write(
            &mut client,
            &prepared,
            &self.inner.instance,
            &self.inner.channels,
        )
        .await?)
    }

    async fn write_runs(&self, batch: &[WriteOp]) -> Result<BatchOutcome, StoreError> {
        let runs = prepare_runs(batch);
        let mut client = self.client().await?;
        Ok(writer::write_runs(
            &mut client,
            runs,
            &self.inner.instance,
            &self.inner.channels,
        )
        .await?)
    }

    async fn response(&self, id: &ResponseId) -> Result<Option<ResponseRecord>, StoreError> {
        neutral(async {
            let client = self.client().await?;
            let statement = client
                .prepare_cached(
                    "SELECT id, created_at, status, background, previous_response_id, snapshot \
                     FROM responses WHERE id = $1",
                )
                .await?;
            let Some(row) = client.query_opt(&statement, &[&id.as_str()]).await? else {
                return Ok(None);
            };
            let previous: Option<&str> = row.try_get(4)?;
            Ok(Some(ResponseRecord {
                id: parse_id(row.try_get(0)?)?,
                created_at: row.try_get(1)?,
                status: parse_status(row.try_get(2)?)?,
                background: row.try_get(3)?,
                previous_response_id: previous.map(parse_id).transpose()?,
                snapshot: row.try_get(5)?,
            }))
        })
        .await
    }

    async fn events(
        &self,
        id: &ResponseId,
        after: Option<u64>,
    ) -> Result<Vec<Envelope>, StoreError> {
        let mut out: Vec<Envelope> = Vec::new();
        let mut cursor = after;
        loop {
            let page = self.read_events(id, cursor, EVENT_PAGE).await?;
            let full = page.len() == EVENT_PAGE;
            cursor = page.last().map(|e| e.seq).or(cursor);
            out.extend(page);
            if !full {
                return Ok(out);
            }
        }
    }

    async fn events_page(
        &self,
        id: &ResponseId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Envelope>, StoreError> {
        Ok(self.read_events(id, after, limit).await?)
    }

    async fn response_chain(
        &self,
        id: &ResponseId,
        max: usize,
    ) -> Result<Vec<ChainLink>, StoreError> {
        neutral(async {
            let client = self.client().await?;
            let statement = client
                .prepare_cached(
                    "WITH RECURSIVE chain (id, status, previous_response_id, depth) AS ( \
                     SELECT id, status, previous_response_id, 1 FROM responses WHERE id = $1 \
                   UNION ALL \
                     SELECT r.id, r.status, r.previous_response_id, c.depth + 1 \
                     FROM chain c JOIN responses r ON r.id = c.previous_response_id \
                     WHERE c.depth < $2) \
                 SELECT id, status FROM chain ORDER BY depth",
                )
                .await?;
            let rows = client
                .query(&statement, &[&id.as_str(), &(max as i32)])
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(ChainLink {
                        id: parse_id(r.try_get(0)?)?,
                        status: parse_status(r.try_get(1)?)?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn input_items(
        &self,
        id: &ResponseId,
        query: &ItemPageQuery,
    ) -> Result<ItemPage, PageError> {
        let client = self.client().await.map_err(StoreError::from)?;
        page_items(&client, &INPUT_ITEMS, id.as_str(), query).await
    }

    async fn turn_items(&self, id: &ResponseId) -> Result<Vec<Item>, StoreError> {
        neutral(async {
            let client = self.client().await?;
            let statement = client
                .prepare_cached(
                    "SELECT body FROM items WHERE response_id = $1 \
                     ORDER BY CASE kind WHEN 'input' THEN 0 ELSE 1 END, position",
                )
                .await?;
            let rows = client.query(&statement, &[&id.as_str()]).await?;
            rows.iter()
                .map(|r| Ok(parse_item(r.try_get(0)?)?))
                .collect()
        })
        .await
    }

    async fn delete(&self, id: &ResponseId) -> Result<bool, StoreError> {
        neutral(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let id = id.as_str();
            let deleted = tx
                .execute("DELETE FROM responses WHERE id = $1", &[&id])
                .await?;
            tx.execute("DELETE FROM items WHERE response_id = $1", &[&id])
                .await?;
            tx.execute("DELETE FROM events WHERE response_id = $1", &[&id])
                .await?;
            tx.commit().await?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn list_responses(
        &self,
        after: Option<&ResponseId>,
        limit: u32,
        model: Option<&str>,
        order: Order,
    ) -> Result<ListPage<ResponseId>, PageError> {
        let client = self
            .client()
            .await
            .map_err(|e| PageError::Store(e.into()))?;
        let after_ord = match after {
            None => None,
            Some(after) => Some(
                client
                    .query_opt(
                        "SELECT ord FROM responses WHERE id = $1",
                        &[&after.as_str()],
                    )
                    .await
                    .map_err(|e| PageError::Store(Error::from(e).into()))?
                    .ok_or_else(|| PageError::UnknownCursor {
                        param: "after",
                        id: after.as_str().to_owned(),
                    })?
                    .get::<_, i64>(0),
            ),
        };
        // The model is the run header's, in the log's first event
        // (`response` in the header of older logs).
        let (compare, direction) = match order {
            Order::Asc => (">", "ASC"),
            Order::Desc => ("<", "DESC"),
        };
        let sql = format!(
            "SELECT r.id FROM responses r WHERE ($1::int8 IS NULL OR r.ord {compare} $1) \
             AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM events e \
             WHERE e.response_id = r.id AND e.seq = 0 AND COALESCE(\
             e.payload::jsonb -> 'run' ->> 'model', \
             e.payload::jsonb -> 'response' ->> 'model') = $2)) \
             ORDER BY r.ord {direction} LIMIT $3"
        );
        let rows = client
            .query(&sql, &[&after_ord, &model, &(i64::from(limit) + 1)])
            .await
            .map_err(|e| PageError::Store(Error::from(e).into()))?;
        let ids = rows
            .iter()
            .map(|r| parse_id(r.get::<_, &str>(0)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(ListPage::from_rows(ids, Some(limit)))
    }

    async fn unfinished(&self) -> Result<Vec<ResponseId>, StoreError> {
        neutral(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT id FROM responses WHERE status IN ('queued', 'in_progress') ORDER BY id",
                    &[],
                )
                .await?;
            rows.iter().map(|r| Ok(parse_id(r.try_get(0)?)?)).collect()
        })
        .await
    }
}
