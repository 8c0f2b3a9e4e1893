//! In-process fan-out of committed events to live subscribers.
//!
//! Each running stored run has a topic: a broadcast channel that the
//! group-commit writer publishes to *after* the batch holding the events is
//! committed, so no subscriber sees an event the log could lose. A
//! subscriber that falls more than [`TOPIC_CAPACITY`] events behind is told
//! it lagged and re-reads the log, so a slow client costs a bounded buffer,
//! never an unbounded queue or a slower run.

use spool_core::event::Envelope;
use spool_core::ids::ResponseId;
use spool_core::run::RunError;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::broadcast;

/// Events a topic buffers for its slowest subscriber before that subscriber
/// must catch up from the log.
pub const TOPIC_CAPACITY: usize = 256;

/// What a topic carries.
#[derive(Debug, Clone)]
pub enum BusMessage {
    /// A committed event.
    Event(Arc<Envelope>),
    /// The run's log can no longer be written; the run ends without a stored
    /// terminal event (restart recovery ends it in the store).
    StorageFailed(RunError),
}

/// One live run's channel.
#[derive(Debug, Clone)]
struct Topic {
    tx: broadcast::Sender<BusMessage>,
    /// Shared with the run's sink, which stops taking events once set.
    storage_failed: Arc<AtomicBool>,
}

/// The topics of the runs that are live in this process.
#[derive(Debug, Default)]
pub struct Bus {
    // A std mutex: it is held only to look a topic up, never across an await.
    topics: Mutex<HashMap<ResponseId, Topic>>,
}

impl Bus {
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
