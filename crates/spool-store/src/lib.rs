//! Durable storage for spool.
//!
//! [`Store`] is everything the runtime needs from a database, in three
//! parts: [`LogStore`] (the batched write path the group-commit writer
//! feeds with [`WriteOp`]s, and the reads that serve responses, items and
//! logs), [`ConversationStore`] and [`AgentStore`]. [`sqlite::SqliteStore`]
//! is the embedded default; the traits are shaped so a PostgreSQL store can
//! follow without changing callers: no driver types leak through them, and
//! failures are [`StoreError`]s that say what a caller can do (retry a
//! transient one) rather than which driver raised them. What every backend
//! must do is checked by the contract suite in `tests/contract.rs`.

mod codec;
pub mod postgres;
mod prepared;
pub mod sqlite;

use async_trait::async_trait;
use spool_core::agent_config::AgentDefinition;
use spool_core::event::Envelope;
use spool_core::ids::{ConversationId, ResponseId};
use spool_core::item::Item;
use spool_core::status::RunStatus;
use std::collections::BTreeMap;

pub use postgres::PostgresStore;
pub use sqlite::{Durability, SqliteStore};

/// A storage failure, in terms any backend can report: callers decide on
/// retries and responses from these variants, never from a driver's codes.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend refused or failed an operation. `transient` failures
    /// (busy, locked, out of space or I/O) may succeed if tried again;
    /// the others (a violated constraint, a bad statement) will not.
    #[error("storage backend error: {message}")]
    Backend { message: String, transient: bool },
    /// The database cannot be reached or opened.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The store's worker (thread, pool or connection) has stopped.
    #[error("the database's worker thread has stopped")]
    Closed,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("invalid database URL '{url}': {reason}")]
    Url { url: String, reason: String },
}

impl StoreError {
    /// Whether trying the same operation again may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Backend { transient, .. } => *transient,
            Self::Unavailable(_) => true,
            Self::Closed | Self::Corrupt(_) | Self::Url { .. } => false,
        }
    }
}

/// A new response and its input, written before its first event.
#[derive(Debug, Clone)]
pub struct NewResponse {
    pub id: ResponseId,
    pub created_at: i64,
    pub status: RunStatus,
    pub background: bool,
    pub previous_response_id: Option<ResponseId>,
    /// The conversation the input is appended to (and, when the run ends,
    /// the output); the caller has claimed it for this response, unless
    /// the response opens it.
    pub conversation: Option<ConversationId>,
    /// The conversation is new (an id the server just made): it is created
    /// with the response, empty and claimed by it, in the same write.
    pub opens_conversation: bool,
    pub input: Vec<Item>,
}

/// One write in a batch. A batch is applied in order in one transaction.
/// Each op belongs to one run ([`WriteOp::response_id`]).
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Creates a response with its input and its first event, together, so
    /// a stored response always has a log that starts with `run.created`.
    Create(Box<Create>),
    /// Appends one event to a response's log.
    Append {
        response_id: ResponseId,
        envelope: Envelope,
    },
    /// Records the end of a run: its status, final object and output.
    Finish(Box<Finish>),
}

impl WriteOp {
    /// The run (response) the op writes to.
    pub fn response_id(&self) -> &ResponseId {
        match self {
            Self::Create(c) => &c.response.id,
            Self::Append { response_id, .. } => response_id,
            Self::Finish(f) => &f.response_id,
        }
    }
}

/// What [`LogStore::write_runs`] did with each run of a batch.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Runs none of whose ops in the batch were written, each with why.
    /// Every other run's ops were committed.
    pub failed: Vec<(ResponseId, StoreError)>,
}

impl BatchOutcome {
    /// Why `id`'s ops were not written, if they were not.
    pub fn failure(&self, id: &ResponseId) -> Option<&StoreError> {
        self.failed.iter().find(|(f, _)| f == id).map(|(_, e)| e)
    }
}

#[derive(Debug, Clone)]
pub struct Create {
    pub response: NewResponse,
    /// The log's first event, `run.created`.
    pub first_event: Envelope,
}

#[derive(Debug, Clone)]
pub struct Finish {
    pub response_id: ResponseId,
    /// The run's terminal event, written in the same transaction, so a
    /// client that sees the run end also sees its output stored (and its
    /// conversation updated and released).
    pub terminal: Option<Envelope>,
    pub status: RunStatus,
    /// The final response object, serialized.
    pub snapshot: String,
    pub output: Vec<Item>,
}

/// What is stored about a response besides its log and items.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseRecord {
    pub id: ResponseId,
    pub created_at: i64,
    pub status: RunStatus,
    pub background: bool,
    pub previous_response_id: Option<ResponseId>,
    /// The final response object, once the run has ended.
    pub snapshot: Option<String>,
}

/// One response of a `previous_response_id` chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLink {
    pub id: ResponseId,
    pub status: RunStatus,
}

/// Ascending or descending item order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

/// A page request over a response's input items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemPageQuery {
    pub limit: u32,
    pub order: Order,
    /// Return items after this item id, in `order`.
    pub after: Option<String>,
    /// Return items before this item id, in `order`.
    pub before: Option<String>,
}

/// One page of items.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemPage {
    pub items: Vec<Item>,
    pub has_more: bool,
}

/// Why an item page could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("no item '{id}' in this response")]
    UnknownCursor {
        /// `after` or `before`.
        param: &'static str,
        id: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new conversation and its first items.
#[derive(Debug, Clone)]
pub struct NewConversation {
    pub id: ConversationId,
    pub created_at: i64,
    pub metadata: BTreeMap<String, String>,
    pub items: Vec<Item>,
}

/// A stored conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationRecord {
    pub id: ConversationId,
    pub created_at: i64,
    pub metadata: BTreeMap<String, String>,
    /// The response running on it, if any.
    pub active_response: Option<ResponseId>,
}

/// One page of a listing, with whether more follow it.
#[derive(Debug, Clone, PartialEq)]
pub struct ListPage<T> {
    pub data: Vec<T>,
    pub has_more: bool,
}

impl<T> ListPage<T> {
    /// A page of `rows` read with one more than `limit` asked for (to
    /// tell whether more follow); all of them when `limit` is `None`.
    pub(crate) fn from_rows(mut rows: Vec<T>, limit: Option<u32>) -> Self {
        let has_more = limit.is_some_and(|l| rows.len() > l as usize);
        if let Some(l) = limit {
            rows.truncate(l as usize);
        }
        Self {
            data: rows,
            has_more,
        }
    }
}

/// The answer to a write that needs the conversation to be idle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConversationAccess {
    Done,
    NotFound,
    /// A response is running on the conversation.
    Busy(ResponseId),
    /// An item with this id is already in the conversation.
    Duplicate(String),
}

/// Conversations: item lists that responses continue from and append to.
#[async_trait]
pub trait ConversationStore: Send + Sync + 'static {
    async fn create_conversation(&self, conversation: &NewConversation) -> Result<(), StoreError>;

    async fn conversation(
        &self,
        id: &ConversationId,
    ) -> Result<Option<ConversationRecord>, StoreError>;

    /// Replaces the metadata. False if there is no such conversation.
    async fn update_conversation(
        &self,
        id: &ConversationId,
        metadata: &BTreeMap<String, String>,
    ) -> Result<bool, StoreError>;

    /// Deletes the conversation and its item list. False if it did not exist.
    async fn delete_conversation(&self, id: &ConversationId) -> Result<bool, StoreError>;

    /// Appends items, unless a response is running on the conversation.
    async fn append_conversation_items(
        &self,
        id: &ConversationId,
        items: &[Item],
    ) -> Result<ConversationAccess, StoreError>;

    async fn conversation_items(
        &self,
        id: &ConversationId,
        query: &ItemPageQuery,
    ) -> Result<ItemPage, PageError>;

    async fn conversation_item(
        &self,
        id: &ConversationId,
        item_id: &str,
    ) -> Result<Option<Item>, StoreError>;

    /// False if there was no such item.
    async fn delete_conversation_item(
        &self,
        id: &ConversationId,
        item_id: &str,
    ) -> Result<bool, StoreError>;

    /// Every item, oldest first: what the next turn's model sees.
    async fn conversation_history(&self, id: &ConversationId) -> Result<Vec<Item>, StoreError>;

    /// Marks `response` as running on the conversation, unless another is
    /// or one of `new_items` (the input it will append) is already in it.
    async fn claim_conversation(
        &self,
        id: &ConversationId,
        response: &ResponseId,
        new_items: &[String],
    ) -> Result<ConversationAccess, StoreError>;

    /// Clears `response`'s claim, if it still holds it. (A finished run's
    /// claim is cleared with its `Finish`; this is for runs that never got
    /// that far.)
    async fn release_conversation(
        &self,
        id: &ConversationId,
        response: &ResponseId,
    ) -> Result<(), StoreError>;

    /// Clears claims held by responses that are not running, e.g. after a
    /// crash between a claim and the response's creation.
    async fn release_stale_claims(&self) -> Result<(), StoreError>;

    /// Conversations, newest first: at most `limit` of them created
    /// before `after` (from the newest without it).
    async fn list_conversations(
        &self,
        after: Option<&ConversationId>,
        limit: u32,
    ) -> Result<ListPage<ConversationRecord>, PageError>;

    /// The responses run on a conversation, oldest first: at most `limit`
    /// of them created after `after` (from the first without it).
    async fn conversation_responses(
        &self,
        id: &ConversationId,
        after: Option<&ResponseId>,
        limit: u32,
    ) -> Result<ListPage<ResponseId>, PageError>;
}

/// The log of runs: batched writes and the reads that serve responses,
/// events and items.
#[async_trait]
pub trait LogStore: Send + Sync + 'static {
    /// Applies a batch of writes in order, in one transaction: all or none.
    async fn write(&self, batch: &[WriteOp]) -> Result<(), StoreError>;

    /// Applies a batch that holds ops of many runs in one transaction, each
    /// run's ops all or none on their own: a run one of whose ops is refused
    /// (a constraint, a value that cannot be stored) has none of its ops in
    /// this batch written and is named in the outcome, and the other runs'
    /// ops are committed. Each run's ops are applied in batch order.
    ///
    /// `Err` means the batch as a whole was not committed (the commit
    /// failed, or a transient error such as a busy database hit one of its
    /// ops): nothing of it was written, and if the error
    /// [is transient](StoreError::is_transient) the same batch may be tried
    /// again.
    ///
    /// The default applies the batch with [`write`](Self::write), all or
    /// none, so one bad op fails every run in it; a backend that can
    /// isolate runs (savepoints, per-run validation) should override it.
    async fn write_runs(&self, batch: &[WriteOp]) -> Result<BatchOutcome, StoreError> {
        self.write(batch).await.map(|()| BatchOutcome::default())
    }

    async fn response(&self, id: &ResponseId) -> Result<Option<ResponseRecord>, StoreError>;

    /// A response's log from `after + 1` (or from 0) to its current end.
    async fn events(
        &self,
        id: &ResponseId,
        after: Option<u64>,
    ) -> Result<Vec<Envelope>, StoreError>;

    /// At most `limit` events of a response's log from `after + 1` (or from
    /// 0): a long log is read in bounded pages, never all at once.
    ///
    /// The default reads the rest of the log with [`events`](Self::events)
    /// and keeps the first page; backends override it with a bounded read.
    async fn events_page(
        &self,
        id: &ResponseId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Envelope>, StoreError> {
        let mut events = self.events(id, after).await?;
        events.truncate(limit);
        Ok(events)
    }

    /// The `previous_response_id` chain from `id` back: `id`'s record
    /// first, then the response it continued, and so on, for at most `max`
    /// responses; it stops early at a response that no longer exists.
    ///
    /// The default follows the chain one read at a time; backends override
    /// it with one recursive query.
    async fn response_chain(
        &self,
        id: &ResponseId,
        max: usize,
    ) -> Result<Vec<ChainLink>, StoreError> {
        let mut chain = Vec::new();
        let mut cursor = Some(id.clone());
        while let Some(id) = cursor.take() {
            let Some(record) = self.response(&id).await? else {
                break;
            };
            chain.push(ChainLink {
                id: record.id,
                status: record.status,
            });
            if chain.len() < max {
                cursor = record.previous_response_id;
            }
        }
        Ok(chain)
    }

    /// One page of a response's input items.
    async fn input_items(
        &self,
        id: &ResponseId,
        query: &ItemPageQuery,
    ) -> Result<ItemPage, PageError>;

    /// A response's input then output items, in order: what a later
    /// response that names it as `previous_response_id` continues from.
    async fn turn_items(&self, id: &ResponseId) -> Result<Vec<Item>, StoreError>;

    /// Deletes a response, its items and its log. False if it did not exist.
    async fn delete(&self, id: &ResponseId) -> Result<bool, StoreError>;

    /// Stored responses in the order they were created (`Order::Desc`:
    /// newest first), after the response `after` in that order, only those
    /// of `model` when given.
    async fn list_responses(
        &self,
        after: Option<&ResponseId>,
        limit: u32,
        model: Option<&str>,
        order: Order,
    ) -> Result<ListPage<ResponseId>, PageError>;

    /// Responses whose runs have not ended.
    async fn unfinished(&self) -> Result<Vec<ResponseId>, StoreError>;
}

/// Named agents, as the config file (and later an API) defines them.
#[async_trait]
pub trait AgentStore: Send + Sync + 'static {
    /// Creates or replaces a named agent.
    async fn put_agent(&self, agent: &AgentDefinition) -> Result<(), StoreError>;

    async fn agent(&self, name: &str) -> Result<Option<AgentDefinition>, StoreError>;

    /// Deletes every agent not named in `names`.
    async fn retain_agents(&self, names: &[String]) -> Result<(), StoreError>;
}

/// A run whose executing instance's lease ran out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    pub id: ResponseId,
    /// The instance it was lost with.
    pub executor: String,
}

/// Execution leases, for a store that several instances share: each
/// instance holds a lease it renews while it lives, and the runs it creates
/// name it as their executor. A run whose executor's lease ran out was lost
/// with it and is taken over, by one instance, to be ended.
#[async_trait]
pub trait ExecutionLeases: Send + Sync + 'static {
    /// This instance's id: the executor recorded on the runs it creates.
    fn instance_id(&self) -> &str;

    /// Extends this instance's lease to `ttl` from now, by the database's
    /// clock (so instances' clocks need not agree).
    async fn renew_lease(&self, ttl: std::time::Duration) -> Result<(), StoreError>;

    /// Makes this instance the executor of every unfinished run whose
    /// executor's lease has expired, and returns them with the instance
    /// they were lost with. Concurrent callers never take the same run.
    async fn take_over_orphans(&self) -> Result<Vec<Orphan>, StoreError>;

    /// The unfinished runs this instance is the executor of: those it
    /// executes, and those it took over but has not ended yet.
    async fn own_unfinished(&self) -> Result<Vec<ResponseId>, StoreError>;

    /// Gives the lease up at a clean stop (nothing of this instance is
    /// left running).
    async fn retire(&self) -> Result<(), StoreError>;
}

/// Everything spool keeps durably. Implement the three parts; this follows.
/// An agent created through the llama-stack Agents API.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiAgentRecord {
    pub id: String,
    /// The agent config as the caller sent it, JSON.
    pub config: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// A session of an API agent: a conversation its turns run on.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiSessionRecord {
    pub id: ConversationId,
    pub agent_id: String,
    pub name: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// Agents created through the llama-stack Agents API and their sessions.
/// They are kept apart from the named agents of [`AgentStore`], which the
/// config file owns (and prunes at every start).
#[async_trait]
pub trait ApiAgentStore: Send + Sync + 'static {
    async fn create_api_agent(&self, agent: &ApiAgentRecord) -> Result<(), StoreError>;

    async fn api_agent(&self, id: &str) -> Result<Option<ApiAgentRecord>, StoreError>;

    /// Agents in the order they were created, from `start_index`; all of
    /// them when `limit` is `None`.
    async fn list_api_agents(
        &self,
        start_index: u32,
        limit: Option<u32>,
    ) -> Result<ListPage<ApiAgentRecord>, StoreError>;

    /// Deletes the agent, its sessions, their conversations and every run
    /// on them, in one transaction: `Done`, `NotFound` if there is no such
    /// agent, or `Busy` (nothing deleted) while a turn runs on a session.
    async fn delete_api_agent(&self, id: &str) -> Result<ConversationAccess, StoreError>;

    /// Records a session of `session.agent_id` on a conversation that
    /// exists.
    async fn create_api_session(&self, session: &ApiSessionRecord) -> Result<(), StoreError>;

    async fn api_session(
        &self,
        agent_id: &str,
        id: &ConversationId,
    ) -> Result<Option<ApiSessionRecord>, StoreError>;

    /// An agent's sessions in the order they were created.
    async fn list_api_sessions(
        &self,
        agent_id: &str,
        start_index: u32,
        limit: Option<u32>,
    ) -> Result<ListPage<ApiSessionRecord>, StoreError>;

    /// Deletes the session, its conversation and every run on it, in one
    /// transaction: `Done`, `NotFound` if the agent has no such session,
    /// or `Busy` (nothing deleted) while a turn runs on it.
    async fn delete_api_session(
        &self,
        agent_id: &str,
        id: &ConversationId,
    ) -> Result<ConversationAccess, StoreError>;
}

pub trait Store: LogStore + ConversationStore + AgentStore + ApiAgentStore {}

impl<T: LogStore + ConversationStore + AgentStore + ApiAgentStore + ?Sized> Store for T {}
