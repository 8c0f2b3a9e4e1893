//! The bus of instances sharing a PostgreSQL database.
//!
//! Runs executing here are served by the [`LocalBus`] as in a single
//! instance. A subscriber to a run executing elsewhere gets a *remote
//! topic*: a broadcast channel this instance feeds from the wake-ups the
//! store's transactions `NOTIFY` after they commit (`{run, first, last}`).
//! One dispatcher task hears them, reads the new events from the table
//! once per wake-up, and broadcasts them to that run's subscribers here.
//!
//! No gap and no duplicate at the hand-off: a subscriber's topic exists
//! before its subscription reads the log, so an event is either in that
//! read or announced after it; duplicates are skipped by `seq`, and a
//! wake-up that may have been missed (the listener reconnected, a range
//! larger than one page) sends [`BusMessage::Reread`], which makes every
//! subscriber read the log.

use super::{Bus, BusMessage, LocalBus, TOPIC_CAPACITY};
use crate::runtime::subscribe::LOG_PAGE;
use async_trait::async_trait;
use spool_core::event::Envelope;
use spool_core::ids::ResponseId;
use spool_core::run::RunError;
use spool_store::postgres::{Notice, Notices};
use spool_store::{LogStore, PostgresStore, StoreError};
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::{CancellationToken, DropGuard};

/// How often topics nobody listens to any more are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// Cancel requests waiting for the runtime before more are dropped (a
/// dropped one is asked again by its client's retry).
const CANCEL_CAPACITY: usize = 1024;

/// Remote topics, by run.
type RemoteTopics = Mutex<HashMap<ResponseId, broadcast::Sender<BusMessage>>>;

/// The bus of an instance that shares its PostgreSQL database with others.
pub struct PostgresBus {
    local: Arc<LocalBus>,
    store: PostgresStore,
    remote: Arc<RemoteTopics>,
    cancels: Mutex<Option<mpsc::Receiver<ResponseId>>>,
    /// Stops the dispatcher when the bus is dropped.
    _stop: DropGuard,
}

fn lock(
    topics: &RemoteTopics,
) -> MutexGuard<'_, HashMap<ResponseId, broadcast::Sender<BusMessage>>> {
    // Every critical section is one map operation; poison is benign.
    topics.lock().unwrap_or_else(PoisonError::into_inner)
}

impl PostgresBus {
    /// Starts listening to the deployment's wake-ups and cancel requests.
    pub fn start(store: PostgresStore) -> Self {
        let local = Arc::new(LocalBus::default());
        let remote: Arc<RemoteTopics> = Arc::default();
        let (cancel_tx, cancel_rx) = mpsc::channel(CANCEL_CAPACITY);
        let stop = CancellationToken::new();
        tokio::spawn(dispatch(
            store.listen(),
            store.clone(),
            local.clone(),
            remote.clone(),
            cancel_tx,
            stop.clone(),
        ));
        Self {
            local,
            store,
            remote,
            cancels: Mutex::new(Some(cancel_rx)),
            _stop: stop.drop_guard(),
        }
    }
}

/// Hears every notice of the deployment and serves it: events to the
/// remote topics here, cancel requests to the runtime.
async fn dispatch(
    mut notices: Notices,
    store: PostgresStore,
    local: Arc<LocalBus>,
    remote: Arc<RemoteTopics>,
    cancels: mpsc::Sender<ResponseId>,
    stop: CancellationToken,
) {
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    loop {
        let notice = tokio::select! {
            () = stop.cancelled() => return,
            _ = sweep.tick() => {
                lock(&remote).retain(|_, tx| tx.receiver_count() > 0);
                continue;
            }
            notice = notices.recv() => match notice {
                Some(notice) => notice,
                None => return,
            },
        };
        match notice {
            Notice::Listening => {
                // Whatever was announced while the listener was down was
                // not heard: every subscriber reads the log.
                for tx in lock(&remote).values() {
                    let _ = tx.send(BusMessage::Reread);
                }
            }
            Notice::Cancel(id) => {
                if cancels.try_send(id).is_err() {
                    tracing::warn!("too many cancel requests waiting; one was dropped");
                }
            }
            Notice::Committed { run, first, last } => {
                // A run executing here is published by its own writer.
                if local.is_live(&run) {
                    continue;
                }
                let Some(tx) = lock(&remote).get(&run).cloned() else {
                    continue;
                };
                if tx.receiver_count() == 0 {
                    lock(&remote).remove(&run);
                    continue;
                }
                let count = last.saturating_sub(first) as usize + 1;
                if count > LOG_PAGE {
                    let _ = tx.send(BusMessage::Reread);
                    continue;
                }
                match store.events_page(&run, first.checked_sub(1), count).await {
                    Ok(events) => {
                        let ended = events.iter().any(|e| e.event.is_terminal());
                        for envelope in events {
                            let _ = tx.send(BusMessage::Event(Arc::new(envelope)));
                        }
                        if ended {
                            // Subscribers drain, see the topic closed, and
                            // read anything left from the log.
                            lock(&remote).remove(&run);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(response_id = %run, error = %e, "cannot read announced events; subscribers re-read the log");
                        let _ = tx.send(BusMessage::Reread);
                    }
                }
            }
        }
    }
}

#[async_trait]
impl Bus for PostgresBus {
    fn open(&self, id: &ResponseId) -> (broadcast::Receiver<BusMessage>, Arc<AtomicBool>) {
        self.local.open(id)
    }

    /// Always a topic: the run's own if it executes here, else one fed by
    /// the wake-ups of whichever instance executes it.
    fn subscribe(&self, id: &ResponseId) -> Option<broadcast::Receiver<BusMessage>> {
        if let Some(rx) = self.local.subscribe(id) {
            return Some(rx);
        }
        let mut remote = lock(&self.remote);
        let tx = remote
            .entry(id.clone())
            .or_insert_with(|| broadcast::channel(TOPIC_CAPACITY).0);
        Some(tx.subscribe())
    }

    fn publish(&self, id: &ResponseId, events: Vec<Arc<Envelope>>) {
        self.local.publish(id, events)
    }

    fn storage_failed(&self, id: &ResponseId, error: RunError) {
        self.local.storage_failed(id, error)
    }

    fn close(&self, id: &ResponseId) {
        self.local.close(id)
    }

    async fn request_cancel(&self, id: &ResponseId) -> Result<bool, StoreError> {
        self.store.notify_cancel(id).await?;
        Ok(true)
    }

    fn cancel_requests(&self) -> Option<mpsc::Receiver<ResponseId>> {
        self.cancels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}
