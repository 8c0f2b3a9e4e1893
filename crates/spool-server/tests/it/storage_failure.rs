//! A log that cannot be written: the run still ends, its clients get a
//! terminal event, and once the store works again the stored run is failed
//! with `storage_error` after its last stored event, with no gap.

use crate::helpers::{config, events_of, parse_sse, spawn_with_store, temp_db};
use crate::upstream::{Upstream, slow_script};
use async_trait::async_trait;
use serde_json::json;
use spool_core::event::Envelope;
use spool_core::ids::{ConversationId, ResponseId};
use spool_core::item::Item;
use spool_store::{
    AgentStore, ConversationAccess, ConversationRecord, ConversationStore, ItemPage, ItemPageQuery,
    LogStore, NewConversation, PageError, ResponseRecord, SqliteStore, StoreError, WriteOp,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// SQLite whose writes fail while `failing` is set.
struct FlakyStore {
    inner: SqliteStore,
    failing: AtomicBool,
}

#[async_trait]
impl LogStore for FlakyStore {
    async fn write(&self, batch: &[WriteOp]) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Corrupt("injected write failure".into()));
        }
        self.inner.write(batch).await
    }
    async fn response(&self, id: &ResponseId) -> Result<Option<ResponseRecord>, StoreError> {
        self.inner.response(id).await
    }
    async fn events(
        &self,
        id: &ResponseId,
        after: Option<u64>,
    ) -> Result<Vec<Envelope>, StoreError> {
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
}

#[async_trait]
impl AgentStore for FlakyStore {
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
impl ConversationStore for FlakyStore {
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
}

#[tokio::test]
async fn a_run_whose_log_fails_ends_for_its_clients_and_in_the_store() {
    let db = temp_db();
    let store = Arc::new(FlakyStore {
        inner: SqliteStore::open(&format!("sqlite://{}", db.display()))
            .await
            .unwrap(),
        failing: AtomicBool::new(false),
    });
    let upstream = Upstream::start().await;
    upstream.push(slow_script(40, Duration::from_millis(50)));
    let app = spawn_with_store(
        config(&db, Some(&upstream.base_url)),
        upstream,
        store.clone(),
    )
    .await;

    let live = app
        .open(&json!({"model": "up", "input": "x", "stream": true, "background": true}))
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    store.failing.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    store.failing.store(false, Ordering::SeqCst);

    // The live client is told, and its stream ends.
    let text = tokio::time::timeout(Duration::from_secs(10), live.text())
        .await
        .expect("the live stream ends")
        .unwrap();
    let live = events_of(parse_sse(&text));
    let last = live.last().unwrap().json();
    assert_eq!(last["type"], "response.failed");
    assert_eq!(last["response"]["error"]["code"], "storage_error");
    let id = last["response"]["id"].as_str().unwrap().to_owned();

    // The stored run is ended after its last stored event, with no gap.
    let stored = app.wait_terminal(&id).await;
    assert_eq!(stored["status"], "failed");
    assert_eq!(stored["error"]["code"], "storage_error");
    let replay = events_of(app.replay(&id, None).await);
    for (i, f) in replay.iter().enumerate() {
        assert_eq!(f.json()["sequence_number"], i as u64);
    }
    assert_eq!(replay.last().unwrap().json()["response"], stored);

    // The server goes on serving.
    let (status, body) = app
        .post("/v1/responses", &json!({"model": "up", "input": "x"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "completed");
}
