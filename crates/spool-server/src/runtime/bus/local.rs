//! The in-process bus: one broadcast channel per run live in this process.
//!
//! Each running stored run has a topic that the group-commit writer
//! publishes to *after* the batch holding the events is committed, so no
//! subscriber sees an event the log could lose. A subscriber that falls
//! more than [`TOPIC_CAPACITY`] events behind is told it lagged and re-reads
//! the log, so a slow client costs a bounded buffer, never an unbounded
//! queue or a slower run.

use super::{Bus, BusMessage, TOPIC_CAPACITY};
use async_trait::async_trait;
use spool_core::event::Envelope;
use spool_core::ids::ResponseId;
use spool_core::run::RunError;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::broadcast;

/// One live run's channel.
#[derive(Debug, Clone)]
struct Topic {
    tx: broadcast::Sender<BusMessage>,
    /// Shared with the run's sink, which stops taking events once set.
    storage_failed: Arc<AtomicBool>,
}

/// The topics of the runs that are live in this process.
#[derive(Debug, Default)]
pub struct LocalBus {
    // A std mutex: it is held only to look a topic up, never across an await.
    topics: Mutex<HashMap<ResponseId, Topic>>,
}

impl LocalBus {
    fn topics(&self) -> MutexGuard<'_, HashMap<ResponseId, Topic>> {
        // A panic while holding this lock cannot leave the map half-updated
        // (every critical section is one map operation), so poison is ignored.
        self.topics.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens the topic of a run about to start and subscribes its creator.
    /// Returns the subscription and the flag that marks the run's log as
    /// unwritable.
    pub fn open(&self, id: &ResponseId) -> (broadcast::Receiver<BusMessage>, Arc<AtomicBool>) {
        let (tx, rx) = broadcast::channel(TOPIC_CAPACITY);
        let storage_failed = Arc::new(AtomicBool::new(false));
        let topic = Topic {
            tx,
            storage_failed: storage_failed.clone(),
        };
        self.topics().insert(id.clone(), topic);
        (rx, storage_failed)
    }

    /// Whether `id` runs in this process.
    pub fn is_live(&self, id: &ResponseId) -> bool {
        self.topics().contains_key(id)
    }

    /// Subscribes to a live run; `None` if the run is not live here.
    pub fn subscribe(&self, id: &ResponseId) -> Option<broadcast::Receiver<BusMessage>> {
        self.topics().get(id).map(|t| t.tx.subscribe())
    }

    /// Publishes committed events of one run.
    pub fn publish(&self, id: &ResponseId, events: impl IntoIterator<Item = Arc<Envelope>>) {
        let tx = self.topics().get(id).map(|t| t.tx.clone());
        if let Some(tx) = tx {
            for e in events {
                // No receivers is fine: nobody is watching right now.
                let _ = tx.send(BusMessage::Event(e));
            }
        }
    }

    /// Tells a run's subscribers that its log can no longer be written.
    pub fn storage_failed(&self, id: &ResponseId, error: RunError) {
        if let Some(topic) = self.topics().get(id) {
            topic.storage_failed.store(true, Ordering::Relaxed);
            let _ = topic.tx.send(BusMessage::StorageFailed(error));
        }
    }

    /// Closes a run's topic once its terminal event is committed and
    /// published; subscribers drain what they have and then see it closed.
    pub fn close(&self, id: &ResponseId) {
        self.topics().remove(id);
    }
}

#[async_trait]
impl Bus for LocalBus {
    fn open(&self, id: &ResponseId) -> (broadcast::Receiver<BusMessage>, Arc<AtomicBool>) {
        LocalBus::open(self, id)
    }

    fn subscribe(&self, id: &ResponseId) -> Option<broadcast::Receiver<BusMessage>> {
        LocalBus::subscribe(self, id)
    }

    fn publish(&self, id: &ResponseId, events: Vec<Arc<Envelope>>) {
        LocalBus::publish(self, id, events)
    }

    fn storage_failed(&self, id: &ResponseId, error: RunError) {
        LocalBus::storage_failed(self, id, error)
    }

    fn close(&self, id: &ResponseId) {
        LocalBus::close(self, id)
    }
}
