//! The embedded SQLite store.
//!
//! One thread owns the only writing connection and applies each batch in
//! one transaction with cached prepared statements; reads run on a small
//! pool of reader connections on tokio's blocking threads. WAL mode with
//! `synchronous=NORMAL`: a commit survives a killed process (only power loss
//! can take the last commits), readers never block the writer, and a batch
//! costs one commit, not one per event. Events and items are serialized to
//! JSON before they reach the writer thread, so it does only database work.

use crate::{
    ConversationAccess, ConversationRecord, ConversationStore, ItemPage, ItemPageQuery,
    NewConversation, NewResponse, Order, PageError, ResponseRecord, Store, StoreError, WriteOp,
};
use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use spool_core::agent_config::AgentDefinition;
use spool_core::event::{Envelope, Event};
use spool_core::ids::{ConversationId, ResponseId};
use spool_core::item::Item;
use spool_core::status::RunStatus;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;
use tokio::sync::oneshot;

/// Schema migrations, applied in order; `PRAGMA user_version` counts them.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_init.sql"),
    include_str!("../migrations/sqlite/0002_conversations.sql"),
    include_str!("../migrations/sqlite/0003_agents.sql"),
];
/// How often the checkpointer copies the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// WAL frames (pages) past which the checkpointer truncates the WAL:
/// 262,144 pages of 4 KiB, 1 GiB. Truncating stalls writes for a moment, so
/// it is kept for writes that never pause long enough for passive
/// checkpoints to catch up.
const MAX_WAL_FRAMES: i64 = 262_144;
/// Reader connections kept open between reads.
const MAX_IDLE_READERS: usize = 8;
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The SQLite implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    /// Jobs for the writer thread, which owns the only writing connection.
    jobs: Mutex<mpsc::Sender<Job>>,
    /// Idle reader connections.
    readers: Mutex<Vec<Connection>>,
}

/// Work for the writer thread; each job sends its own answer.
enum Job {
    Write(Vec<Prepared>, oneshot::Sender<Result<(), StoreError>>),
    /// Any other write: runs on the writing connection.
    Run(Box<dyn FnOnce(&mut Connection) + Send>),
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

/// A write op with everything serialized, ready for the writer thread.
enum Prepared {
    Create {
        id: String,
        created_at: i64,
        status: &'static str,
        background: bool,
        previous_response_id: Option<String>,
        conversation_id: Option<String>,
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

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(corrupt)
}

fn item_rows(items: &[Item]) -> Result<Vec<(String, String)>, StoreError> {
    items
        .iter()
        .map(|i| Ok((i.id().to_owned(), to_json(i)?)))
        .collect()
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

fn prepare(batch: &[WriteOp]) -> Result<Vec<Prepared>, StoreError> {
    let mut out = Vec::with_capacity(batch.len() + 1);
    for op in batch {
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
    }
    Ok(out)
}

/// Parses `sqlite://PATH` or `sqlite:PATH` into a file path.
fn database_path(url: &str) -> Result<PathBuf, StoreError> {
    let bad = |reason: &str| StoreError::Url {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| bad("expected sqlite://PATH"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Err(bad(
            "the log must be a file: give a path, e.g. sqlite://./spool.db",
        ));
    }
    Ok(PathBuf::from(path))
}

/// What a connection is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Writer,
    /// Copies the WAL into the database file: needs write access, writes no rows.
    Checkpointer,
    Reader,
}

fn open_connection(path: &PathBuf, role: Role) -> Result<Connection, StoreError> {
    let flags = match role {
        Role::Writer => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        Role::Checkpointer => OpenFlags::SQLITE_OPEN_READ_WRITE,
        Role::Reader => OpenFlags::SQLITE_OPEN_READ_ONLY,
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if role == Role::Writer {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Runs append to many places of the log's B-tree at once; a larger
        // page cache keeps those pages hot (the default is 2 MiB).
        conn.pragma_update(None, "cache_size", -65536)?;
        // Checkpoints copy the WAL into the database file; done by the
        // commit that crosses the threshold, they stall the writer (and
        // so every client's next event) for milliseconds. The checkpointer
        // thread does them beside it instead.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // The WAL file is reused from its start after each full
        // checkpoint; this bounds what it keeps on disk between bursts.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    }
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

// === the writer thread ===

fn run_writer(mut conn: Connection, jobs: mpsc::Receiver<Job>) {
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Write(batch, reply) => {
                let _ = reply.send(write_batch(&mut conn, &batch).map_err(StoreError::from));
            }
            Job::Run(job) => job(&mut conn),
        }
    }
}

/// Copies the WAL into the database file now and then, without blocking the
/// writer (a passive checkpoint copies what no reader still needs), until
/// the writer thread ends.
fn run_checkpoints(conn: Connection, stop: mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        // (busy, frames in the WAL, frames copied)
        let checkpoint = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        });
        match checkpoint {
            // The WAL rewinds only when a write starts with every frame
            // copied; under writes that never pause (or readers that pin old
            // frames) it keeps growing, so past a bound it is truncated,
            // briefly waiting for readers and the writer.
            Ok((_, frames, _)) if frames > MAX_WAL_FRAMES => {
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "truncating the WAL failed");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "a WAL checkpoint failed"),
        }
    }
}

fn insert_items(
    tx: &rusqlite::Transaction<'_>,
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

fn write_batch(conn: &mut Connection, batch: &[Prepared]) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut insert_event = tx.prepare_cached(
            "INSERT INTO events (response_id, seq, ts_ms, type, payload) VALUES (?, ?, ?, ?, ?)",
        )?;
        for op in batch {
            match op {
                Prepared::Create {
                    id,
                    created_at,
                    status,
                    background,
                    previous_response_id,
                    conversation_id,
                    input,
                } => {
                    tx.prepare_cached(
                        "INSERT INTO responses \
                         (id, created_at, status, background, previous_response_id, conversation_id) \
                         VALUES (?, ?, ?, ?, ?, ?)",
                    )?
                    .execute(params![id, created_at, status, background, previous_response_id, conversation_id])?;
                    insert_items(&tx, id, "input", input)?;
                    if let Some(conversation) = conversation_id {
                        append_to_conversation(&tx, conversation, input)?;
                    }
                }
                Prepared::Append {
                    response_id,
                    seq,
                    ts_ms,
                    event_type,
                    payload,
                } => {
                    insert_event.execute(params![response_id, seq, ts_ms, event_type, payload])?;
                    if *event_type == "run.started" {
                        tx.prepare_cached(
                            "UPDATE responses SET status = 'in_progress' WHERE id = ?",
                        )?
                        .execute([response_id])?;
                    }
                }
                Prepared::Finish {
                    response_id,
                    status,
                    snapshot,
                    output,
                } => {
                    tx.prepare_cached(
                        "UPDATE responses SET status = ?, snapshot = ? WHERE id = ?",
                    )?
                    .execute(params![status, snapshot, response_id])?;
                    insert_items(&tx, response_id, "output", output)?;
                    let conversation: Option<String> = tx
                        .prepare_cached("SELECT conversation_id FROM responses WHERE id = ?")?
                        .query_row([response_id], |r| r.get(0))
                        .optional()?
                        .flatten();
                    if let Some(conversation) = conversation {
                        append_to_conversation(&tx, &conversation, output)?;
                        tx.prepare_cached(
                            "UPDATE conversations SET active_response_id = NULL \
                             WHERE id = ? AND active_response_id = ?",
                        )?
                        .execute([&conversation, response_id])?;
                    }
                }
            }
        }
    }
    tx.commit()
}

/// Appends items at the end of a conversation that still exists.
fn append_to_conversation(
    tx: &rusqlite::Transaction<'_>,
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

fn delete_response(conn: &mut Connection, id: &str) -> rusqlite::Result<bool> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let deleted = tx.execute("DELETE FROM responses WHERE id = ?", [id])?;
    tx.execute("DELETE FROM items WHERE response_id = ?", [id])?;
    tx.execute("DELETE FROM events WHERE response_id = ?", [id])?;
    tx.commit()?;
    Ok(deleted > 0)
}

// === reads ===

fn parse_status(s: &str) -> Result<RunStatus, StoreError> {
    RunStatus::parse(s).ok_or_else(|| corrupt(format!("unknown status '{s}'")))
}

fn parse_id(s: &str) -> Result<ResponseId, StoreError> {
    ResponseId::parse(s).map_err(|e| corrupt(format!("bad response id '{s}': {e}")))
}

fn parse_item(body: &str) -> Result<Item, StoreError> {
    serde_json::from_str(body).map_err(|e| corrupt(format!("bad item: {e}")))
}

/// One page of an ordered item list: `table` rows whose `key` column is
/// `id` (and that pass `filter`), ordered by `position`. `after` and
/// `before` are item ids in the requested order.
fn page_items(
    conn: &Connection,
    table: &str,
    key: &str,
    filter: &str,
    id: &str,
    query: &ItemPageQuery,
) -> Result<ItemPage, PageError> {
    let position_of = |item_id: &str, param: &'static str| -> Result<i64, PageError> {
        let sql = format!(
            "SELECT position FROM {table} WHERE {key} = ? {filter} AND item_id = ? ORDER BY position LIMIT 1"
        );
        conn.prepare_cached(&sql)
            .and_then(|mut q| {
                q.query_row([id, item_id], |r| r.get::<_, i64>(0))
                    .optional()
            })
            .map_err(StoreError::from)?
            .ok_or_else(|| PageError::UnknownCursor {
                param,
                id: item_id.to_owned(),
            })
    };
    // In position terms `after` and `before` swap when the order is descending.
    let (mut lo, mut hi) = (i64::MIN, i64::MAX);
    if let Some(after) = &query.after {
        let p = position_of(after, "after")?;
        match query.order {
            Order::Asc => lo = p,
            Order::Desc => hi = p,
        }
    }
    if let Some(before) = &query.before {
        let p = position_of(before, "before")?;
        match query.order {
            Order::Asc => hi = p,
            Order::Desc => lo = p,
        }
    }
    let direction = match query.order {
        Order::Asc => "ASC",
        Order::Desc => "DESC",
    };
    let sql = format!(
        "SELECT body FROM {table} WHERE {key} = ? {filter} AND position > ? AND position < ? \
         ORDER BY position {direction} LIMIT ?"
    );
    let bodies = conn
        .prepare_cached(&sql)
        .and_then(|mut q| {
            q.query_map(params![id, lo, hi, i64::from(query.limit) + 1], |r| {
                r.get::<_, String>(0)
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(StoreError::from)?;
    let has_more = bodies.len() > query.limit as usize;
    let items = bodies
        .iter()
        .take(query.limit as usize)
        .map(|b| parse_item(b))
        .collect::<Result<_, _>>()?;
    Ok(ItemPage { items, has_more })
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url`, e.g.
    /// `sqlite://./spool.db`, and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let path = database_path(url)?;
        let opened = path.clone();
        let writer = tokio::task::spawn_blocking(move || {
            let mut conn = open_connection(&opened, Role::Writer)?;
            migrate(&mut conn)?;
            Ok::<_, StoreError>(conn)
        })
        .await
        .map_err(|_| StoreError::Closed)??;
        let (jobs, receiver) = mpsc::channel();
        let (stop_checkpoints, stopped) = mpsc::channel::<()>();
        let checkpointer = open_connection(&path, Role::Checkpointer)?;
        std::thread::Builder::new()
            .name("spool-sqlite-writer".into())
            .spawn(move || {
                run_writer(writer, receiver);
                drop(stop_checkpoints);
            })
            .map_err(|e| corrupt(format!("cannot start the writer thread: {e}")))?;
        std::thread::Builder::new()
            .name("spool-sqlite-checkpoint".into())
            .spawn(move || run_checkpoints(checkpointer, stopped))
            .map_err(|e| corrupt(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                jobs: Mutex::new(jobs),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    fn send_job(&self, job: Job) -> Result<(), StoreError> {
        self.inner
            .jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(job)
            .map_err(|_| StoreError::Closed)
    }

    /// Runs `write` on the writing connection, on the writer thread.
    async fn on_writer<T: Send + 'static>(
        &self,
        write: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send_job(Job::Run(Box::new(move |conn| {
            let _ = reply.send(write(conn));
        })))?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `read` on a reader connection on a blocking thread.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let idle = inner
                .readers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let conn = match idle {
                Some(conn) => conn,
                None => open_connection(&inner.path, Role::Reader)?,
            };
            let result = read(&conn);
            let mut idle = inner.readers.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn write(&self, batch: &[WriteOp]) -> Result<(), StoreError> {
        let prepared = prepare(batch)?;
        let (reply, answer) = oneshot::channel();
        self.send_job(Job::Write(prepared, reply))?;
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
        let id = id.clone();
        let from = after.map_or(0, |a| a as i64 + 1);
        self.read(move |conn| {
            let mut query = conn.prepare_cached(
                "SELECT seq, ts_ms, payload FROM events WHERE response_id = ? AND seq >= ? ORDER BY seq",
            )?;
            let mut rows = query.query(params![id.as_str(), from])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let seq: i64 = row.get(0)?;
                let payload = row.get_ref(2)?.as_str().map_err(|e| corrupt(e.to_string()))?;
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
            bodies.iter().map(|b| parse_item(b)).collect()
        })
        .await
    }

    async fn delete(&self, id: &ResponseId) -> Result<bool, StoreError> {
        let id = id.as_str().to_owned();
        self.on_writer(move |conn| Ok(delete_response(conn, &id)?))
            .await
    }

    async fn put_agent(&self, agent: &AgentDefinition) -> Result<(), StoreError> {
        let name = agent.name.clone();
        let definition = to_json(agent)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.on_writer(move |conn| {
            conn.execute(
                "INSERT INTO agents (name, definition, updated_at) VALUES (?, ?, ?) \
                 ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, \
                 updated_at = excluded.updated_at",
                params![name, definition, now],
            )?;
            Ok(())
        })
        .await
    }

    async fn agent(&self, name: &str) -> Result<Option<AgentDefinition>, StoreError> {
        let name = name.to_owned();
        self.read(move |conn| {
            let definition: Option<String> = conn
                .prepare_cached("SELECT definition FROM agents WHERE name = ?")?
                .query_row([&name], |r| r.get(0))
                .optional()?;
            definition
                .map(|d| {
                    serde_json::from_str(&d)
                        .map_err(|e| corrupt(format!("bad agent '{name}': {e}")))
                })
                .transpose()
        })
        .await
    }

    async fn retain_agents(&self, names: &[String]) -> Result<(), StoreError> {
        let names = names.to_vec();
        self.on_writer(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let stored: Vec<String> = tx
                .prepare("SELECT name FROM agents")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for name in stored.iter().filter(|n| !names.contains(n)) {
                tx.execute("DELETE FROM agents WHERE name = ?", [name])?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn unfinished(&self) -> Result<Vec<ResponseId>, StoreError> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT id FROM responses WHERE status IN ('queued', 'in_progress') ORDER BY id",
            )?;
            let ids = statement
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            ids.iter().map(|s| parse_id(s)).collect()
        })
        .await
    }
}

/// The first of `item_ids` already in the conversation, if any.
fn existing_item(
    tx: &rusqlite::Transaction<'_>,
    conversation_id: &str,
    item_ids: &[String],
) -> rusqlite::Result<Option<String>> {
    let mut exists = tx.prepare_cached(
        "SELECT 1 FROM conversation_items WHERE conversation_id = ? AND item_id = ? LIMIT 1",
    )?;
    for item_id in item_ids {
        if exists.exists([conversation_id, item_id])? {
            return Ok(Some(item_id.clone()));
        }
    }
    Ok(None)
}

fn conversation_access(active: Option<String>) -> Result<ConversationAccess, StoreError> {
    match active {
        Some(id) => Ok(ConversationAccess::Busy(parse_id(&id)?)),
        None => Ok(ConversationAccess::Done),
    }
}

#[async_trait]
impl ConversationStore for SqliteStore {
    async fn create_conversation(&self, c: &NewConversation) -> Result<(), StoreError> {
        let id = c.id.as_str().to_owned();
        let created_at = c.created_at;
        let metadata = to_json(&c.metadata)?;
        let items = item_rows(&c.items)?;
        self.on_writer(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO conversations (id, created_at, metadata) VALUES (?, ?, ?)",
                params![id, created_at, metadata],
            )?;
            append_to_conversation(&tx, &id, &items)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn conversation(
        &self,
        id: &ConversationId,
    ) -> Result<Option<ConversationRecord>, StoreError> {
        let id = id.as_str().to_owned();
        self.read(move |conn| {
            let row = conn
                .prepare_cached(
                    "SELECT id, created_at, metadata, active_response_id FROM conversations WHERE id = ?",
                )?
                .query_row([&id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                })
                .optional()?;
            let Some((id, created_at, metadata, active)) = row else {
                return Ok(None);
            };
            Ok(Some(ConversationRecord {
                id: ConversationId::parse(&id).map_err(corrupt)?,
                created_at,
                metadata: serde_json::from_str(&metadata).map_err(corrupt)?,
                active_response: active.as_deref().map(parse_id).transpose()?,
            }))
        })
        .await
    }

    async fn update_conversation(
        &self,
        id: &ConversationId,
        metadata: &BTreeMap<String, String>,
    ) -> Result<bool, StoreError> {
        let id = id.as_str().to_owned();
        let metadata = to_json(metadata)?;
        self.on_writer(move |conn| {
            Ok(conn.execute(
                "UPDATE conversations SET metadata = ? WHERE id = ?",
                [&metadata, &id],
            )? > 0)
        })
        .await
    }

    async fn delete_conversation(&self, id: &ConversationId) -> Result<bool, StoreError> {
        let id = id.as_str().to_owned();
        self.on_writer(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let deleted = tx.execute("DELETE FROM conversations WHERE id = ?", [&id])?;
            tx.execute(
                "DELETE FROM conversation_items WHERE conversation_id = ?",
                [&id],
            )?;
            tx.commit()?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn append_conversation_items(
        &self,
        id: &ConversationId,
        items: &[Item],
    ) -> Result<ConversationAccess, StoreError> {
        let id = id.as_str().to_owned();
        let items = item_rows(items)?;
        self.on_writer(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let active: Option<Option<String>> = tx
                .query_row(
                    "SELECT active_response_id FROM conversations WHERE id = ?",
                    [&id],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(active) = active else {
                return Ok(ConversationAccess::NotFound);
            };
            if active.is_some() {
                return conversation_access(active);
            }
            let ids: Vec<String> = items.iter().map(|(item_id, _)| item_id.clone()).collect();
            if let Some(duplicate) = existing_item(&tx, &id, &ids)? {
                return Ok(ConversationAccess::Duplicate(duplicate));
            }
            append_to_conversation(&tx, &id, &items)?;
            tx.commit()?;
            Ok(ConversationAccess::Done)
        })
        .await
    }

    async fn conversation_items(
        &self,
        id: &ConversationId,
        query: &ItemPageQuery,
    ) -> Result<ItemPage, PageError> {
        let id = id.as_str().to_owned();
        let query = query.clone();
        self.read(move |conn| {
            Ok(page_items(
                conn,
                "conversation_items",
                "conversation_id",
                "",
                &id,
                &query,
            ))
        })
        .await?
    }

    async fn conversation_item(
        &self,
        id: &ConversationId,
        item_id: &str,
    ) -> Result<Option<Item>, StoreError> {
        let (id, item_id) = (id.as_str().to_owned(), item_id.to_owned());
        self.read(move |conn| {
            let body: Option<String> = conn
                .prepare_cached(
                    "SELECT body FROM conversation_items WHERE conversation_id = ? AND item_id = ? \
                     ORDER BY position LIMIT 1",
                )?
                .query_row([&id, &item_id], |r| r.get(0))
                .optional()?;
            body.as_deref().map(parse_item).transpose()
        })
        .await
    }

    async fn delete_conversation_item(
        &self,
        id: &ConversationId,
        item_id: &str,
    ) -> Result<bool, StoreError> {
        let (id, item_id) = (id.as_str().to_owned(), item_id.to_owned());
        self.on_writer(move |conn| {
            Ok(conn.execute(
                "DELETE FROM conversation_items WHERE conversation_id = ? AND item_id = ?",
                [&id, &item_id],
            )? > 0)
        })
        .await
    }

    async fn conversation_history(&self, id: &ConversationId) -> Result<Vec<Item>, StoreError> {
        let id = id.as_str().to_owned();
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT body FROM conversation_items WHERE conversation_id = ? ORDER BY position",
            )?;
            let bodies = statement
                .query_map([&id], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            bodies.iter().map(|b| parse_item(b)).collect()
        })
        .await
    }

    async fn claim_conversation(
        &self,
        id: &ConversationId,
        response: &ResponseId,
        new_items: &[String],
    ) -> Result<ConversationAccess, StoreError> {
        let (id, response) = (id.as_str().to_owned(), response.as_str().to_owned());
        let new_items = new_items.to_vec();
        self.on_writer(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let active: Option<Option<String>> = tx
                .query_row(
                    "SELECT active_response_id FROM conversations WHERE id = ?",
                    [&id],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(active) = active else {
                return Ok(ConversationAccess::NotFound);
            };
            if active.is_some() {
                return conversation_access(active);
            }
            if let Some(duplicate) = existing_item(&tx, &id, &new_items)? {
                return Ok(ConversationAccess::Duplicate(duplicate));
            }
            tx.execute(
                "UPDATE conversations SET active_response_id = ? WHERE id = ?",
                [&response, &id],
            )?;
            tx.commit()?;
            Ok(ConversationAccess::Done)
        })
        .await
    }

    async fn release_conversation(
        &self,
        id: &ConversationId,
        response: &ResponseId,
    ) -> Result<(), StoreError> {
        let (id, response) = (id.as_str().to_owned(), response.as_str().to_owned());
        self.on_writer(move |conn| {
            conn.execute(
                "UPDATE conversations SET active_response_id = NULL WHERE id = ? AND active_response_id = ?",
                [&id, &response],
            )?;
            Ok(())
        })
        .await
    }

    async fn release_stale_claims(&self) -> Result<(), StoreError> {
        self.on_writer(|conn| {
            conn.execute(
                "UPDATE conversations SET active_response_id = NULL \
                 WHERE active_response_id IS NOT NULL AND active_response_id NOT IN \
                   (SELECT id FROM responses WHERE status IN ('queued', 'in_progress'))",
                [],
            )?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Create, Finish, ItemPageQuery};
    use spool_core::item::{ContentPart, ItemStatus, MessageItem, Role};
    use spool_core::run::RunError;

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

    fn header(id: &ResponseId) -> spool_core::run::RunHeader {
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
                conversation: None,
                input,
            },
            first_event: Envelope {
                seq: 0,
                ts_ms: 1,
                event: Event::RunCreated(Box::new(spool_core::event::RunCreated {
                    run: header(id),
                    input: Vec::new(),
                })),
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
    async fn the_wal_is_checkpointed_into_the_database_file() {
        let dir = std::env::temp_dir().join(spool_core::ids::new_id("store-test"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.db");
        let s = SqliteStore::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let id = ResponseId::generate();
        let mut batch = vec![create(&id, vec![message("a")])];
        for seq in 1..2000 {
            batch.push(append(
                &id,
                seq,
                Event::Usage {
                    usage: Default::default(),
                },
            ));
        }
        s.write(&batch).await.unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        tokio::time::sleep(CHECKPOINT_EVERY * 3).await;
        let after = std::fs::metadata(&path).unwrap().len();
        assert!(
            after > before,
            "the database file did not grow: {before} -> {after}"
        );
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
                terminal: None,
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
