//! The embedded SQLite store.
//!
//! WAL mode with `synchronous=NORMAL`: a commit survives a killed process
//! (only power loss can take the last commits), readers never block the
//! writer, and each batch from the group-commit writer costs one fsync-free
//! commit. Events are inserted with multi-row statements, so a batch of
//! hundreds of events is a handful of statements.

use crate::{
    Finish, ItemPage, ItemPageQuery, NewResponse, Order, PageError, ResponseRecord, Store,
    StoreError, WriteOp,
};
use async_trait::async_trait;
use spool_core::event::{Envelope, Event};
use spool_core::ids::ResponseId;
use spool_core::item::Item;
use spool_core::status::RunStatus;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, Transaction};
use std::str::FromStr;
use std::time::Duration;

/// Rows per multi-row INSERT; 5 binds a row stays far below SQLite's limit.
const ROWS_PER_INSERT: usize = 200;

/// The SQLite implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// One connection for every write: SQLite has one writer at a time, and
    /// a dedicated connection means a commit never waits for a reader's.
    writer: SqlitePool,
    /// Connections for reads, which WAL lets run beside the writer.
    readers: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url`, e.g.
    /// `sqlite://./spool.db`, and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Url {
                url: url.to_owned(),
                reason: e.to_string(),
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            // Runs append to many places of the log's B-tree at once; a
            // larger page cache keeps those pages hot (the default is 2 MiB).
            .pragma("cache_size", "-65536");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        Ok(Self { writer, readers })
    }
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(corrupt)
}

async fn insert_items(
    tx: &mut Transaction<'_, Sqlite>,
    response_id: &str,
    kind: &str,
    items: &[Item],
) -> Result<(), StoreError> {
    let bodies = items.iter().map(to_json).collect::<Result<Vec<_>, _>>()?;
    for (chunk_no, chunk) in items.chunks(ROWS_PER_INSERT).enumerate() {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO items (response_id, kind, position, item_id, body) ");
        qb.push_values(chunk.iter().enumerate(), |mut b, (i, item)| {
            let position = chunk_no * ROWS_PER_INSERT + i;
            b.push_bind(response_id)
                .push_bind(kind)
                .push_bind(position as i64)
                .push_bind(item.id())
                .push_bind(bodies[position].as_str());
        });
        qb.build().execute(&mut **tx).await?;
    }
    Ok(())
}

async fn insert_events(
    tx: &mut Transaction<'_, Sqlite>,
    events: &[(&ResponseId, &Envelope)],
) -> Result<(), StoreError> {
    let payloads = events
        .iter()
        .map(|(_, e)| to_json(&e.event))
        .collect::<Result<Vec<_>, _>>()?;
    for (chunk, payloads) in events
        .chunks(ROWS_PER_INSERT)
        .zip(payloads.chunks(ROWS_PER_INSERT))
    {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO events (response_id, seq, ts_ms, type, payload) ");
        qb.push_values(chunk.iter().zip(payloads), |mut b, ((id, e), payload)| {
            b.push_bind(id.as_str())
                .push_bind(e.seq as i64)
                .push_bind(e.ts_ms)
                .push_bind(e.event.type_name())
                .push_bind(payload.as_str());
        });
        qb.build().execute(&mut **tx).await?;
    }
    Ok(())
}

async fn create(tx: &mut Transaction<'_, Sqlite>, r: &NewResponse) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO responses (id, created_at, status, background, previous_response_id) \
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(r.id.as_str())
    .bind(r.created_at)
    .bind(r.status.as_str())
    .bind(r.background)
    .bind(r.previous_response_id.as_ref().map(ResponseId::as_str))
    .execute(&mut **tx)
    .await?;
    insert_items(tx, r.id.as_str(), "input", &r.input).await
}

async fn finish(tx: &mut Transaction<'_, Sqlite>, f: &Finish) -> Result<(), StoreError> {
    sqlx::query("UPDATE responses SET status = ?, snapshot = ? WHERE id = ?")
        .bind(f.status.as_str())
        .bind(f.snapshot.as_str())
        .bind(f.response_id.as_str())
        .execute(&mut **tx)
        .await?;
    insert_items(tx, f.response_id.as_str(), "output", &f.output).await
}

async fn set_status(
    tx: &mut Transaction<'_, Sqlite>,
    id: &ResponseId,
    status: RunStatus,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE responses SET status = ? WHERE id = ?")
        .bind(status.as_str())
        .bind(id.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn parse_status(s: &str) -> Result<RunStatus, StoreError> {
    RunStatus::parse(s).ok_or_else(|| corrupt(format!("unknown status '{s}'")))
}

fn parse_id(s: &str) -> Result<ResponseId, StoreError> {
    ResponseId::parse(s).map_err(|e| corrupt(format!("bad response id '{s}': {e}")))
}

fn parse_item(body: &str) -> Result<Item, StoreError> {
    serde_json::from_str(body).map_err(|e| corrupt(format!("bad item: {e}")))
}

#[async_trait]
impl Store for SqliteStore {
    async fn write(&self, batch: &[WriteOp]) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        // Consecutive appends are gathered into multi-row inserts; creates
        // and finishes keep their place in the order.
        let mut pending: Vec<(&ResponseId, &Envelope)> = Vec::new();
        for op in batch {
            match op {
                WriteOp::Append {
                    response_id,
                    envelope,
                } => {
                    pending.push((response_id, envelope));
                    if matches!(envelope.event, Event::RunStarted) {
                        insert_events(&mut tx, &pending).await?;
                        pending.clear();
                        set_status(&mut tx, response_id, RunStatus::InProgress).await?;
                    }
                }
                WriteOp::Create(c) => {
                    insert_events(&mut tx, &pending).await?;
                    pending.clear();
                    create(&mut tx, &c.response).await?;
                    pending.push((&c.response.id, &c.first_event));
                }
                WriteOp::Finish(f) => {
                    insert_events(&mut tx, &pending).await?;
                    pending.clear();
                    finish(&mut tx, f).await?;
                }
            }
        }
        insert_events(&mut tx, &pending).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn response(&self, id: &ResponseId) -> Result<Option<ResponseRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, created_at, status, background, previous_response_id, snapshot \
             FROM responses WHERE id = ?",
        )
        .bind(id.as_str())
        .fetch_optional(&self.readers)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let previous: Option<String> = row.try_get("previous_response_id")?;
        Ok(Some(ResponseRecord {
            id: parse_id(row.try_get("id")?)?,
            created_at: row.try_get("created_at")?,
            status: parse_status(row.try_get("status")?)?,
            background: row.try_get("background")?,
            previous_response_id: previous.as_deref().map(parse_id).transpose()?,
            snapshot: row.try_get("snapshot")?,
        }))
    }

    async fn events(
        &self,
        id: &ResponseId,
        after: Option<u64>,
    ) -> Result<Vec<Envelope>, StoreError> {
        let from = after.map_or(0, |a| a as i64 + 1);
        let rows = sqlx::query(
            "SELECT seq, ts_ms, payload FROM events WHERE response_id = ? AND seq >= ? ORDER BY seq",
        )
        .bind(id.as_str())
        .bind(from)
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|row| {
                let payload: &str = row.try_get("payload")?;
                let seq: i64 = row.try_get("seq")?;
                Ok(Envelope {
                    seq: seq as u64,
                    ts_ms: row.try_get("ts_ms")?,
                    event: serde_json::from_str(payload)
                        .map_err(|e| corrupt(format!("bad event {id}/{seq}: {e}")))?,
                })
            })
            .collect()
    }

    async fn input_items(
        &self,
        id: &ResponseId,
        query: &ItemPageQuery,
    ) -> Result<ItemPage, PageError> {
        let position_of = |item_id: &str, param: &'static str| {
            let item_id = item_id.to_owned();
            async move {
                sqlx::query_scalar::<_, i64>(
                    "SELECT position FROM items WHERE response_id = ? AND kind = 'input' AND item_id = ?",
                )
                .bind(id.as_str())
                .bind(&item_id)
                .fetch_optional(&self.readers)
                .await
                .map_err(StoreError::from)?
                .ok_or(PageError::UnknownCursor { param, id: item_id })
            }
        };
        // `after` and `before` are in the requested order, so in position
        // terms they swap when the order is descending.
        let (mut lo, mut hi) = (i64::MIN, i64::MAX);
        if let Some(after) = &query.after {
            let p = position_of(after, "after").await?;
            match query.order {
                Order::Asc => lo = p,
                Order::Desc => hi = p,
            }
        }
        if let Some(before) = &query.before {
            let p = position_of(before, "before").await?;
            match query.order {
                Order::Asc => hi = p,
                Order::Desc => lo = p,
            }
        }
        let sql = match query.order {
            Order::Asc => {
                "SELECT body FROM items WHERE response_id = ? AND kind = 'input' \
                 AND position > ? AND position < ? ORDER BY position ASC LIMIT ?"
            }
            Order::Desc => {
                "SELECT body FROM items WHERE response_id = ? AND kind = 'input' \
                 AND position > ? AND position < ? ORDER BY position DESC LIMIT ?"
            }
        };
        let bodies: Vec<String> = sqlx::query_scalar(sql)
            .bind(id.as_str())
            .bind(lo)
            .bind(hi)
            .bind(i64::from(query.limit) + 1)
            .fetch_all(&self.readers)
            .await
            .map_err(StoreError::from)?;
        let has_more = bodies.len() > query.limit as usize;
        let items = bodies
            .iter()
            .take(query.limit as usize)
            .map(|b| parse_item(b))
            .collect::<Result<_, _>>()?;
        Ok(ItemPage { items, has_more })
    }

    async fn turn_items(&self, id: &ResponseId) -> Result<Vec<Item>, StoreError> {
        let bodies: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM items WHERE response_id = ? \
             ORDER BY CASE kind WHEN 'input' THEN 0 ELSE 1 END, position",
        )
        .bind(id.as_str())
        .fetch_all(&self.readers)
        .await?;
        bodies.iter().map(|b| parse_item(b)).collect()
    }

    async fn delete(&self, id: &ResponseId) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        let deleted = sqlx::query("DELETE FROM responses WHERE id = ?")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM items WHERE response_id = ?")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM events WHERE response_id = ?")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted > 0)
    }

    async fn unfinished(&self) -> Result<Vec<ResponseId>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM responses WHERE status IN ('queued', 'in_progress') ORDER BY id",
        )
        .fetch_all(&self.readers)
        .await?;
        ids.iter().map(|s| parse_id(s)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Create, ItemPageQuery};
    use spool_core::item::{ContentPart, ItemStatus, MessageItem, Role};
    use spool_core::response::RunError;

    async fn store() -> SqliteStore {
        let dir = std::env::temp_dir().join(spool_core::ids::new_id("store-test"));
        std::fs::create_dir_all(&dir).unwrap();
        SqliteStore::open(&format!("sqlite://{}", dir.join("t.db").display()))
            .await
            .unwrap()
    }

    fn message(text: &str) -> Item {
        Item::Message(MessageItem {
            id: spool_core::ids::new_id("msg"),
            status: ItemStatus::Completed,
            role: Role::User,
            content: vec![ContentPart::InputText { text: text.into() }],
        })
    }

    fn header(id: &ResponseId) -> spool_core::response::ResponseHeader {
        let body: spool_core::request::CreateResponseBody =
            serde_json::from_str(r#"{"model":"m","input":"x"}"#).unwrap();
        spool_core::request::RunRequest::parse(body)
            .unwrap()
            .header(id.clone(), 1)
    }

    fn create(id: &ResponseId, input: Vec<Item>) -> WriteOp {
        WriteOp::Create(Box::new(Create {
            response: NewResponse {
                id: id.clone(),
                created_at: 1,
                status: RunStatus::InProgress,
                background: false,
                previous_response_id: None,
                input,
            },
            first_event: Envelope {
                seq: 0,
                ts_ms: 1,
                event: Event::RunCreated {
                    response: Box::new(header(id)),
                },
            },
        }))
    }

    fn append(id: &ResponseId, seq: u64, event: Event) -> WriteOp {
        WriteOp::Append {
            response_id: id.clone(),
            envelope: Envelope {
                seq,
                ts_ms: seq as i64,
                event,
            },
        }
    }

    #[tokio::test]
    async fn a_batch_is_written_in_order_and_read_back_from_a_cursor() {
        let s = store().await;
        let id = ResponseId::generate();
        let mut batch = vec![
            create(&id, vec![message("a")]),
            append(&id, 1, Event::RunStarted),
        ];
        // More rows than one multi-row insert holds.
        for seq in 2..500 {
            batch.push(append(
                &id,
                seq,
                Event::Usage {
                    usage: Default::default(),
                },
            ));
        }
        s.write(&batch).await.unwrap();
        let all = s.events(&id, None).await.unwrap();
        assert_eq!(all.len(), 500);
        assert!(all.iter().enumerate().all(|(i, e)| e.seq == i as u64));
        let tail = s.events(&id, Some(497)).await.unwrap();
        assert_eq!(tail.iter().map(|e| e.seq).collect::<Vec<_>>(), [498, 499]);
        assert_eq!(s.unfinished().await.unwrap(), std::slice::from_ref(&id));
        let record = s.response(&id).await.unwrap().unwrap();
        assert_eq!(record.status, RunStatus::InProgress);
        assert_eq!(record.snapshot, None);
    }

    #[tokio::test]
    async fn a_failed_batch_writes_nothing() {
        let s = store().await;
        let id = ResponseId::generate();
        s.write(&[create(&id, vec![])]).await.unwrap();
        // seq 0 exists already: the primary key refuses the whole batch.
        let batch = [
            append(&id, 1, Event::RunStarted),
            append(&id, 0, Event::RunStarted),
        ];
        assert!(s.write(&batch).await.is_err());
        assert_eq!(s.events(&id, None).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn finishing_stores_the_snapshot_and_output_for_continuations() {
        let s = store().await;
        let id = ResponseId::generate();
        let input = vec![message("q")];
        let output = vec![message("a")];
        s.write(&[
            create(&id, input.clone()),
            append(
                &id,
                1,
                Event::RunFailed {
                    error: RunError::new("x", "y"),
                },
            ),
            WriteOp::Finish(Box::new(Finish {
                response_id: id.clone(),
                status: RunStatus::Failed,
                snapshot: "{}".into(),
                output: output.clone(),
            })),
        ])
        .await
        .unwrap();
        let record = s.response(&id).await.unwrap().unwrap();
        assert_eq!(record.status, RunStatus::Failed);
        assert_eq!(record.snapshot.as_deref(), Some("{}"));
        assert!(s.unfinished().await.unwrap().is_empty());
        let turn = s.turn_items(&id).await.unwrap();
        assert_eq!(turn, [input, output].concat());
    }

    #[tokio::test]
    async fn input_items_page_both_ways_and_reject_unknown_cursors() {
        let s = store().await;
        let id = ResponseId::generate();
        let items: Vec<Item> = (0..5).map(|i| message(&i.to_string())).collect();
        s.write(&[create(&id, items.clone())]).await.unwrap();
        let q = |order, after: Option<&Item>, before: Option<&Item>| ItemPageQuery {
            limit: 2,
            order,
            after: after.map(|i| i.id().to_owned()),
            before: before.map(|i| i.id().to_owned()),
        };
        let page = s
            .input_items(&id, &q(Order::Desc, None, None))
            .await
            .unwrap();
        assert_eq!(page.items, [items[4].clone(), items[3].clone()]);
        assert!(page.has_more);
        let page = s
            .input_items(&id, &q(Order::Desc, Some(&items[3]), None))
            .await
            .unwrap();
        assert_eq!(page.items, [items[2].clone(), items[1].clone()]);
        let page = s
            .input_items(&id, &q(Order::Asc, Some(&items[2]), None))
            .await
            .unwrap();
        assert_eq!(page.items, [items[3].clone(), items[4].clone()]);
        assert!(!page.has_more);
        let page = s
            .input_items(&id, &q(Order::Asc, None, Some(&items[1])))
            .await
            .unwrap();
        assert_eq!(page.items, [items[0].clone()]);
        let unknown = ItemPageQuery {
            after: Some("msg_nope".into()),
            ..q(Order::Asc, None, None)
        };
        assert!(matches!(
            s.input_items(&id, &unknown).await,
            Err(PageError::UnknownCursor { param: "after", .. })
        ));
    }

    #[tokio::test]
    async fn delete_removes_the_response_its_items_and_its_log() {
        let s = store().await;
        let id = ResponseId::generate();
        s.write(&[create(&id, vec![message("a")])]).await.unwrap();
        assert!(s.delete(&id).await.unwrap());
        assert!(s.response(&id).await.unwrap().is_none());
        assert!(s.events(&id, None).await.unwrap().is_empty());
        assert!(s.turn_items(&id).await.unwrap().is_empty());
        assert!(!s.delete(&id).await.unwrap());
    }
}
