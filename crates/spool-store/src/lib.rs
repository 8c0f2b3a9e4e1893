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

pub mod sqlite;

use async_trait::async_trait;
use spool_core::agent_config::AgentDefinition;
use spool_core::event::Envelope;
use spool_core::ids::{ConversationId, ResponseId};
use spool_core::item::Item;
use spool_core::status::RunStatus;
use std::collections::BTreeMap;

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

/// Everything spool keeps durably. Implement the three parts; this follows.
pub trait Store: LogStore + ConversationStore + AgentStore {}

impl<T: LogStore + ConversationStore + AgentStore + ?Sized> Store for T {}
