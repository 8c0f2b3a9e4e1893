//! A SQLite store with faults a test can switch on: failing writes,
//! failing log reads, and a response read held until released.

use async_trait::async_trait;
use spool_core::event::Envelope;
use spool_core::ids::{ConversationId, ResponseId};
use spool_core::item::Item;
use spool_store::{
    AgentStore, ApiAgentRecord, ApiAgentStore, ApiSessionRecord, ConversationAccess,
    ConversationRecord, ConversationStore, ItemPage, ItemPageQuery, ListPage, LogStore,
    NewConversation, PageError, ResponseRecord, SqliteStore, StoreError, WriteOp,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use tokio::sync::Notify;

/// SQLite with faults a test switches on.
pub struct FaultyStore {
    inner: SqliteStore,
    /// Writes fail while set.
    pub failing: AtomicBool,
    /// This many next reads of a log fail.
    pub failing_log_reads: AtomicU32,
    /// While set, reads of a response wait for [`FaultyStore::release`].
    hold_responses: AtomicBool,
    held: Notify,
    released: Notify,
}

impl FaultyStore {
    pub async fn open(db: &std::path::Path) -> Arc<Self> {
        Arc::new(Self {
            inner: SqliteStore::open(&format!("sqlite://{}", db.display()))
                .await
                .unwrap(),
            failing: AtomicBool::new(false),
            failing_log_reads: AtomicU32::new(0),
            hold_responses: AtomicBool::new(false),
            held: Notify::new(),
            released: Notify::new(),
        })
    }

    /// Makes the next read of a response wait until released.
    pub fn hold_next_response_read(&self) {
        self.hold_responses.store(true, Ordering::SeqCst);
    }

    /// Waits until a read of a response is held.
    pub async fn response_read_held(&self) {
        self.held.notified().await;
    }

    /// Lets the held read go on.
    pub fn release(&self) {
        self.released.notify_one();
    }
}

#[async_trait]
impl LogStore for FaultyStore {
    async fn write(&self, batch: &[WriteOp]) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Corrupt("injected write failure".into()));
        }
        self.inner.write(batch).await
    }
    async fn response(&self, id: &ResponseId) -> Result<Option<ResponseRecord>, StoreError> {
        if self.hold_responses.swap(false, Ordering::SeqCst) {
            self.held.notify_one();
            self.released.notified().await;
        }
        self.inner.response(id).await
    }
    async fn events(
        &self,
        id: &ResponseId,
        after: Option<u64>,
    ) -> Result<Vec<Envelope>, StoreError> {
        let fail = self
            .failing_log_reads
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            // What a busy database answers: it may pass.
            return Err(StoreError::Backend {
                message: "database is locked (injected read failure)".into(),
                transient: true,
            });
        }
        self.inner.events(id, after).await
    }
    async fn input_items(&self, id: &ResponseId, q: &ItemPageQuery) -> Result<ItemPage, PageError> {
        self.inner.input_items(id, q).await
    }
    async fn turn_items(&self, id: &ResponseId) -> Result<Vec<Item>, StoreError> {
        self.inner.turn_items(id).await
    }
    async fn delete(&self, id: &ResponseId) -> Result<bool, StoreError> {
        self.inner.delete(id).await
    }
    async fn unfinished(&self) -> Result<Vec<ResponseId>, StoreError> {
        self.inner.unfinished().await
    }
    async fn list_responses(
        &self,
        after: Option<&ResponseId>,
        limit: u32,
        model: Option<&str>,
        order: spool_store::Order,
    ) -> Result<ListPage<ResponseId>, PageError> {
        self.inner.list_responses(after, limit, model, order).await
    }
}

#[async_trait]
impl AgentStore for FaultyStore {
    async fn put_agent(
        &self,
        a: &spool_core::agent_config::AgentDefinition,
    ) -> Result<(), StoreError> {
        self.inner.put_agent(a).await
    }
    async fn agent(
        &self,
        name: &str,
    ) -> Result<Option<spool_core::agent_config::AgentDefinition>, StoreError> {
        self.inner.agent(name).await
    }
    async fn retain_agents(&self, names: &[String]) -> Result<(), StoreError> {
        self.inner.retain_agents(names).await
    }
}

#[async_trait]
impl ApiAgentStore for FaultyStore {
    async fn create_api_agent(&self, a: &ApiAgentRecord) -> Result<(), StoreError> {
        self.inner.create_api_agent(a).await
    }
    async fn api_agent(&self, id: &str) -> Result<Option<ApiAgentRecord>, StoreError> {
        self.inner.api_agent(id).await
    }
    async fn list_api_agents(
        &self,
        start: u32,
        limit: Option<u32>,
    ) -> Result<ListPage<ApiAgentRecord>, StoreError> {
        self.inner.list_api_agents(start, limit).await
    }
    async fn delete_api_agent(&self, id: &str) -> Result<ConversationAccess, StoreError> {
        self.inner.delete_api_agent(id).await
    }
    async fn create_api_session(&self, s: &ApiSessionRecord) -> Result<(), StoreError> {
        self.inner.create_api_session(s).await
    }
    async fn api_session(
        &self,
        agent: &str,
        id: &ConversationId,
    ) -> Result<Option<ApiSessionRecord>, StoreError> {
        self.inner.api_session(agent, id).await
    }
    async fn list_api_sessions(
        &self,
        agent: &str,
        start: u32,
        limit: Option<u32>,
    ) -> Result<ListPage<ApiSessionRecord>, StoreError> {
        self.inner.list_api_sessions(agent, start, limit).await
    }
    async fn delete_api_session(
        &self,
        agent: &str,
        id: &ConversationId,
    ) -> Result<ConversationAccess, StoreError> {
        self.inner.delete_api_session(agent, id).await
    }
}

#[async_trait]
impl ConversationStore for FaultyStore {
    async fn create_conversation(&self, c: &NewConversation) -> Result<(), StoreError> {
        self.inner.create_conversation(c).await
    }
    async fn conversation(
        &self,
        id: &ConversationId,
    ) -> Result<Option<ConversationRecord>, StoreError> {
        self.inner.conversation(id).await
    }
    async fn update_conversation(
        &self,
        id: &ConversationId,
        m: &BTreeMap<String, String>,
    ) -> Result<bool, StoreError> {
        self.inner.update_conversation(id, m).await
    }
    async fn delete_conversation(&self, id: &ConversationId) -> Result<bool, StoreError> {
        self.inner.delete_conversation(id).await
    }
    async fn append_conversation_items(
        &self,
        id: &ConversationId,
        items: &[Item],
    ) -> Result<ConversationAccess, StoreError> {
        self.inner.append_conversation_items(id, items).await
    }
    async fn conversation_items(
        &self,
        id: &ConversationId,
        q: &ItemPageQuery,
    ) -> Result<ItemPage, PageError> {
        self.inner.conversation_items(id, q).await
    }
    async fn conversation_item(
        &self,
        id: &ConversationId,
        item: &str,
    ) -> Result<Option<Item>, StoreError> {
        self.inner.conversation_item(id, item).await
    }
    async fn delete_conversation_item(
        &self,
        id: &ConversationId,
        item: &str,
    ) -> Result<bool, StoreError> {
        self.inner.delete_conversation_item(id, item).await
    }
    async fn conversation_history(&self, id: &ConversationId) -> Result<Vec<Item>, StoreError> {
        self.inner.conversation_history(id).await
    }
    async fn claim_conversation(
        &self,
        id: &ConversationId,
        r: &ResponseId,
        new: &[String],
    ) -> Result<ConversationAccess, StoreError> {
        self.inner.claim_conversation(id, r, new).await
    }
    async fn release_conversation(
        &self,
        id: &ConversationId,
        r: &ResponseId,
    ) -> Result<(), StoreError> {
        self.inner.release_conversation(id, r).await
    }
    async fn release_stale_claims(&self) -> Result<(), StoreError> {
        self.inner.release_stale_claims().await
    }
    async fn list_conversations(
        &self,
        after: Option<&ConversationId>,
        limit: u32,
    ) -> Result<ListPage<ConversationRecord>, PageError> {
        self.inner.list_conversations(after, limit).await
    }
    async fn conversation_responses(
        &self,
        id: &ConversationId,
        after: Option<&ResponseId>,
        limit: u32,
    ) -> Result<ListPage<ResponseId>, PageError> {
        self.inner.conversation_responses(id, after, limit).await
    }
}
