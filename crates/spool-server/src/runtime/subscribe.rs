//! Reading a run's log: from the store, then live, without gap or duplicate.
//!
//! A [`Subscription`] yields a run's envelopes in `seq` order from a cursor
//! to the terminal event. For a stored run it subscribes to the bus *first*,
//! then reads the log from the store; live events already read are skipped by
//! `seq`, and a gap (the subscriber lagged, or joined between commits) is
//! filled from the store. A `store: false` run has no log: its one client
//! reads the run's events directly.
//!
//! A read of the log that fails for a reason that may pass (the database is
//! busy, an I/O error) is retried a few times with backoff: the run is
//! still going, and its client should not be told it failed.

use super::bus::BusMessage;
use spool_core::event::Envelope;
use spool_core::ids::ResponseId;
use spool_core::run::RunError;
use spool_store::{Store, StoreError};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// Reads of the log tried before a subscription gives up.
const READ_ATTEMPTS: u32 = 5;
/// Events read from the log at a time: a long log (a replay, a subscriber
/// far behind) is read page by page as the client takes it, never whole.
pub const LOG_PAGE: usize = 1024;
/// Wait before the first retry of a read; doubled for each next one.
const READ_BACKOFF: Duration = Duration::from_millis(50);

/// Why a subscription ended before the run's terminal event.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The run can no longer write its log; it ends with this error.
    #[error("{}", .0.message)]
    RunAborted(RunError),
}

/// A run's log from a cursor to its end.
pub struct Subscription {
    source: Source,
    /// Envelopes read but not yet handed out.
    buffer: VecDeque<Arc<Envelope>>,
    /// The seq of the next envelope to hand out.
    next_seq: u64,
    done: bool,
}

enum Source {
    Stored {
        id: ResponseId,
        store: Arc<dyn Store>,
        /// `None` once the run is no longer live in this process.
        live: Option<broadcast::Receiver<BusMessage>>,
        /// Whether the store must be read before the next live event.
        behind: bool,
    },
    Direct(mpsc::Receiver<Arc<Envelope>>),
}

impl Subscription {
    /// Reads a stored run's log from the start. `live` must have been
    /// subscribed before this call (or be `None` if the run is not live).
    pub fn stored(
        id: ResponseId,
        store: Arc<dyn Store>,
        live: Option<broadcast::Receiver<BusMessage>>,
    ) -> Self {
        Self {
            source: Source::Stored {
                id,
                store,
                live,
                behind: true,
            },
            buffer: VecDeque::new(),
            next_seq: 0,
            done: false,
        }
    }

    /// Reads a run's log as its creator: subscribed to the bus before the
    /// first event was written, so there is nothing to read from the store
    /// unless the subscriber falls behind.
    pub fn creator(
        id: ResponseId,
        store: Arc<dyn Store>,
        live: broadcast::Receiver<BusMessage>,
    ) -> Self {
        let mut subscription = Self::stored(id, store, Some(live));
        if let Source::Stored { behind, .. } = &mut subscription.source {
            *behind = false;
        }
        subscription
    }

    /// Reads a `store: false` run's events as it emits them.
    pub fn direct(rx: mpsc::Receiver<Arc<Envelope>>) -> Self {
        Self {
            source: Source::Direct(rx),
            buffer: VecDeque::new(),
            next_seq: 0,
            done: false,
        }
    }

    /// The next envelope, or `None` after the terminal event.
    pub async fn next(&mut self) -> Option<Result<Arc<Envelope>, SubscribeError>> {
        loop {
            if let Some(envelope) = self.pop() {
                return Some(Ok(envelope));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.fill().await {
                self.done = true;
                return Some(Err(e));
            }
        }
    }

    /// Waits until the first envelope is here (it is still handed out by
    /// [`Subscription::next`]). A creator calls it before answering: a run
    /// whose creation could not be stored is an error answer then, not a
    /// stream that begins and has nothing to say.
    pub async fn wait_first(&mut self) -> Result<(), SubscribeError> {
        if !self.buffer.is_empty() || self.done {
            return Ok(());
        }
        self.fill().await.inspect_err(|_| self.done = true)
    }

    /// The next envelope if one is already here, without waiting; lets a
    /// reader batch what arrived together into one write.
    pub fn next_ready(&mut self) -> Option<Result<Arc<Envelope>, SubscribeError>> {
        loop {
            if let Some(envelope) = self.pop() {
                return Some(Ok(envelope));
            }
            if self.done {
                return None;
            }
            let next_seq = self.next_seq;
            let received = match &mut self.source {
                Source::Direct(rx) => match rx.try_recv() {
                    Ok(e) => {
                        self.buffer.push_back(e);
                        continue;
                    }
                    // Waiting (or a closed channel) is for `next` to handle.
                    Err(_) => return None,
                },
                Source::Stored { live, behind, .. } => {
                    let Some(rx) = live else { return None };
                    if *behind {
                        return None;
                    }
                    match rx.try_recv() {
                        Ok(message) => Ok(message),
                        Err(broadcast::error::TryRecvError::Empty) => return None,
                        Err(broadcast::error::TryRecvError::Lagged(n)) => {
                            Err(broadcast::error::RecvError::Lagged(n))
                        }
                        Err(broadcast::error::TryRecvError::Closed) => {
                            Err(broadcast::error::RecvError::Closed)
                        }
                    }
                }
            };
            match self.take_live(received, next_seq) {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }

    fn pop(&mut self) -> Option<Arc<Envelope>> {
        let envelope = self.buffer.pop_front()?;
        self.next_seq = envelope.seq + 1;
        if envelope.event.is_terminal() {
            self.done = true;
            self.buffer.clear();
        }
        Some(envelope)
    }

    /// Handles one message from the bus. `Ok(true)` when an envelope was
    /// buffered or an old one skipped, `Ok(false)` when the store must be
    /// read first.
    fn take_live(
        &mut self,
        received: Result<BusMessage, broadcast::error::RecvError>,
        next_seq: u64,
    ) -> Result<bool, SubscribeError> {
        let Source::Stored { live, behind, .. } = &mut self.source else {
            return Ok(false);
        };
        match received {
            Ok(BusMessage::Event(e)) if e.seq < next_seq => Ok(true),
            Ok(BusMessage::Event(e)) if e.seq == next_seq => {
                self.buffer.push_back(e);
                Ok(true)
            }
            // A gap: events were committed before we subscribed, or we
            // lagged. Either way the store has them.
            Ok(BusMessage::Event(_)) | Err(broadcast::error::RecvError::Lagged(_)) => {
                *behind = true;
                Ok(false)
            }
            Ok(BusMessage::StorageFailed(error)) => Err(SubscribeError::RunAborted(error)),
            Ok(BusMessage::Reread) => {
                *behind = true;
                Ok(false)
            }
            Err(broadcast::error::RecvError::Closed) => {
                *live = None;
                *behind = true;
                Ok(false)
            }
        }
    }

    /// Puts at least one envelope in the buffer, or fails.
    async fn fill(&mut self) -> Result<(), SubscribeError> {
        loop {
            let next_seq = self.next_seq;
            let received = match &mut self.source {
                Source::Direct(rx) => {
                    return match rx.recv().await {
                        Some(e) => {
                            self.buffer.push_back(e);
                            Ok(())
                        }
                        // The run dropped its sink without a terminal event:
                        // it was aborted (the process is stopping).
                        None => Err(SubscribeError::RunAborted(RunError::new(
                            "server_error",
                            "The run stopped without ending.",
                        ))),
                    };
                }
                Source::Stored {
                    id,
                    store,
                    live,
                    behind,
                } => {
                    if *behind {
                        let events = read_log(store.as_ref(), id, next_seq.checked_sub(1)).await?;
                        // A full page may have more after it: read on once
                        // the client has taken this one.
                        *behind = events.len() == LOG_PAGE;
                        if !events.is_empty() {
                            self.buffer.extend(events.into_iter().map(Arc::new));
                            return Ok(());
                        }
                    }
                    let Some(rx) = live else {
                        // Not live here and nothing more in the log: the run
                        // was cut off without a stored end (its log failed).
                        return Err(SubscribeError::RunAborted(RunError::new(
                            "storage_error",
                            "The response's log ends without a terminal event; it will be ended when the server restarts.",
                        )));
                    };
                    rx.recv().await
                }
            };
            if self.take_live(received, next_seq)? && !self.buffer.is_empty() {
                return Ok(());
            }
        }
    }
}

/// A page of a run's log after `after`, retrying errors that may pass. A corrupt
/// log or a stopped database is final.
async fn read_log(
    store: &dyn Store,
    id: &ResponseId,
    after: Option<u64>,
) -> Result<Vec<Envelope>, StoreError> {
    let mut backoff = READ_BACKOFF;
    let mut attempt = 1;
    loop {
        match store.events_page(id, after, LOG_PAGE).await {
            Err(e) if e.is_transient() && attempt < READ_ATTEMPTS => {
                tracing::warn!(response_id = %id, error = %e, attempt, "retrying a read of the log");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::bus::LocalBus as Bus;
    use async_trait::async_trait;
    use spool_core::event::Event;
    use spool_core::item::Item;
    use spool_store::{ItemPage, ItemPageQuery, PageError, ResponseRecord, WriteOp};
    use std::sync::Mutex;

    /// A store holding one run's log in memory.
    #[derive(Default)]
    struct MemoryLog(Mutex<Vec<Envelope>>);

    impl MemoryLog {
        fn push(&self, envelope: Envelope) {
            self.0.lock().unwrap().push(envelope);
        }
    }

    #[async_trait]
    impl spool_store::ConversationStore for MemoryLog {
        async fn create_conversation(
            &self,
            _: &spool_store::NewConversation,
        ) -> Result<(), StoreError> {
            Ok(())
        }
        async fn conversation(
            &self,
            _: &spool_core::ids::ConversationId,
        ) -> Result<Option<spool_store::ConversationRecord>, StoreError> {
            Ok(None)
        }
        async fn update_conversation(
            &self,
            _: &spool_core::ids::ConversationId,
            _: &std::collections::BTreeMap<String, String>,
        ) -> Result<bool, StoreError> {
            Ok(false)
        }
        async fn delete_conversation(
            &self,
            _: &spool_core::ids::ConversationId,
        ) -> Result<bool, StoreError> {
            Ok(false)
        }
        async fn append_conversation_items(
            &self,
            _: &spool_core::ids::ConversationId,
            _: &[Item],
        ) -> Result<spool_store::ConversationAccess, StoreError> {
            Ok(spool_store::ConversationAccess::NotFound)
        }
        async fn conversation_items(
            &self,
            _: &spool_core::ids::ConversationId,
            _: &ItemPageQuery,
        ) -> Result<ItemPage, PageError> {
            Ok(ItemPage {
                items: vec![],
                has_more: false,
            })
        }
        async fn conversation_item(
            &self,
            _: &spool_core::ids::ConversationId,
            _: &str,
        ) -> Result<Option<Item>, StoreError> {
            Ok(None)
        }
        async fn delete_conversation_item(
            &self,
            _: &spool_core::ids::ConversationId,
            _: &str,
        ) -> Result<bool, StoreError> {
            Ok(false)
        }
        async fn conversation_history(
            &self,
            _: &spool_core::ids::ConversationId,
        ) -> Result<Vec<Item>, StoreError> {
            Ok(vec![])
        }
        async fn claim_conversation(
            &self,
            _: &spool_core::ids::ConversationId,
            _: &ResponseId,
            _: &[String],
        ) -> Result<spool_store::ConversationAccess, StoreError> {
            Ok(spool_store::ConversationAccess::NotFound)
        }
        async fn list_conversations(
            &self,
            _: Option<&spool_core::ids::ConversationId>,
            _: u32,
        ) -> Result<spool_store::ListPage<spool_store::ConversationRecord>, PageError> {
            Ok(spool_store::ListPage {
                data: vec![],
                has_more: false,
            })
        }
        async fn conversation_responses(
            &self,
            _: &spool_core::ids::ConversationId,
            _: Option<&ResponseId>,
            _: u32,
        ) -> Result<spool_store::ListPage<ResponseId>, PageError> {
            Ok(spool_store::ListPage {
                data: vec![],
                has_more: false,
            })
        }
        async fn release_conversation(
            &self,
            _: &spool_core::ids::ConversationId,
            _: &ResponseId,
        ) -> Result<(), StoreError> {
            Ok(())
        }
        async fn release_stale_claims(&self) -> Result<(), StoreError> {
            Ok(())
        }
    }

    #[async_trait]
    impl spool_store::LogStore for MemoryLog {
        async fn write(&self, _: &[WriteOp]) -> Result<(), StoreError> {
            Ok(())
        }
        async fn response(&self, _: &ResponseId) -> Result<Option<ResponseRecord>, StoreError> {
            Ok(None)
        }
        async fn events(
            &self,
            _: &ResponseId,
            after: Option<u64>,
        ) -> Result<Vec<Envelope>, StoreError> {
            let from = after.map_or(0, |a| a + 1);
            Ok(self
                .0
                .lock()
                .unwrap()
                .iter()
                .filter(|e| e.seq >= from)
                .cloned()
                .collect())
        }
        async fn input_items(
            &self,
            _: &ResponseId,
            _: &ItemPageQuery,
        ) -> Result<ItemPage, PageError> {
            Ok(ItemPage {
                items: vec![],
                has_more: false,
            })
        }
        async fn turn_items(&self, _: &ResponseId) -> Result<Vec<Item>, StoreError> {
            Ok(vec![])
        }
        async fn delete(&self, _: &ResponseId) -> Result<bool, StoreError> {
            Ok(false)
        }
        async fn unfinished(&self) -> Result<Vec<ResponseId>, StoreError> {
            Ok(vec![])
        }
        async fn list_responses(
            &self,
            _: Option<&ResponseId>,
            _: u32,
            _: Option<&str>,
            _: spool_store::Order,
        ) -> Result<spool_store::ListPage<ResponseId>, spool_store::PageError> {
            Ok(spool_store::ListPage {
                data: Vec::new(),
                has_more: false,
            })
        }
    }

    #[async_trait]
    impl spool_store::AgentStore for MemoryLog {
        async fn put_agent(
            &self,
            _: &spool_core::agent_config::AgentDefinition,
        ) -> Result<(), StoreError> {
            Ok(())
        }
        async fn agent(
            &self,
            _: &str,
        ) -> Result<Option<spool_core::agent_config::AgentDefinition>, StoreError> {
            Ok(None)
        }
        async fn retain_agents(&self, _: &[String]) -> Result<(), StoreError> {
            Ok(())
        }
    }

    #[async_trait]
    impl spool_store::ApiAgentStore for MemoryLog {
        async fn create_api_agent(
            &self,
            _: &spool_store::ApiAgentRecord,
        ) -> Result<(), StoreError> {
            Ok(())
        }
        async fn api_agent(
            &self,
            _: &str,
        ) -> Result<Option<spool_store::ApiAgentRecord>, StoreError> {
            Ok(None)
        }
        async fn list_api_agents(
            &self,
            _: u32,
            _: Option<u32>,
        ) -> Result<spool_store::ListPage<spool_store::ApiAgentRecord>, StoreError> {
            Ok(spool_store::ListPage {
                data: Vec::new(),
                has_more: false,
            })
        }
        async fn delete_api_agent(
            &self,
            _: &str,
        ) -> Result<spool_store::ConversationAccess, StoreError> {
            Ok(spool_store::ConversationAccess::NotFound)
        }
        async fn create_api_session(
            &self,
            _: &spool_store::ApiSessionRecord,
        ) -> Result<(), StoreError> {
            Ok(())
        }
        async fn api_session(
            &self,
            _: &str,
            _: &spool_core::ids::ConversationId,
        ) -> Result<Option<spool_store::ApiSessionRecord>, StoreError> {
            Ok(None)
        }
        async fn list_api_sessions(
            &self,
            _: &str,
            _: u32,
            _: Option<u32>,
        ) -> Result<spool_store::ListPage<spool_store::ApiSessionRecord>, StoreError> {
            Ok(spool_store::ListPage {
                data: Vec::new(),
                has_more: false,
            })
        }
        async fn delete_api_session(
            &self,
            _: &str,
            _: &spool_core::ids::ConversationId,
        ) -> Result<spool_store::ConversationAccess, StoreError> {
            Ok(spool_store::ConversationAccess::NotFound)
        }
    }

    fn envelope(seq: u64, last: u64) -> Envelope {
        let event = if seq == last {
            Event::RunCompleted
        } else {
            Event::RunStarted
        };
        Envelope {
            seq,
            ts_ms: 0,
            event,
        }
    }

    /// Commits `seqs` the way the writer does: store first, then the bus.
    fn commit(log: &MemoryLog, bus: &Bus, id: &ResponseId, seqs: std::ops::Range<u64>, last: u64) {
        let events: Vec<_> = seqs.map(|s| envelope(s, last)).collect();
        for e in &events {
            log.push(e.clone());
        }
        bus.publish(id, events.into_iter().map(Arc::new));
    }

    async fn drain(sub: &mut Subscription) -> Result<Vec<u64>, SubscribeError> {
        let mut seqs = Vec::new();
        while let Some(next) = sub.next().await {
            seqs.push(next?.seq);
        }
        Ok(seqs)
    }

    fn setup() -> (Arc<MemoryLog>, Bus, ResponseId) {
        (
            Arc::new(MemoryLog::default()),
            Bus::default(),
            ResponseId::generate(&crate::runtime::ids::Uuid7Ids),
        )
    }

    #[tokio::test]
    async fn a_subscriber_that_lags_catches_up_from_the_store() {
        let (log, bus, id) = setup();
        let (rx, _) = bus.open(&id);
        let mut sub = Subscription::stored(id.clone(), log.clone(), Some(rx));
        commit(&log, &bus, &id, 0..5, 599);
        // Read the log so far (from the store), then fall far behind live:
        // more events than the topic holds arrive before the next read.
        let mut seqs = Vec::new();
        for _ in 0..5 {
            seqs.push(sub.next().await.unwrap().unwrap().seq);
        }
        commit(&log, &bus, &id, 5..600, 599);
        seqs.extend(drain(&mut sub).await.unwrap());
        assert_eq!(seqs, (0..600).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_subscriber_that_joins_between_commits_has_no_gap_and_no_duplicate() {
        let (log, bus, id) = setup();
        let _creator = bus.open(&id);
        commit(&log, &bus, &id, 0..10, 19);
        let mut sub = Subscription::stored(id.clone(), log.clone(), bus.subscribe(&id));
        let first = sub.next().await.unwrap().unwrap();
        assert_eq!(first.seq, 0);
        commit(&log, &bus, &id, 10..20, 19);
        let mut seqs = vec![first.seq];
        seqs.extend(drain(&mut sub).await.unwrap());
        assert_eq!(seqs, (0..20).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_run_that_goes_away_without_a_terminal_event_ends_the_subscription() {
        let (log, bus, id) = setup();
        let (rx, _) = bus.open(&id);
        let mut sub = Subscription::stored(id.clone(), log.clone(), Some(rx));
        commit(&log, &bus, &id, 0..5, 100);
        bus.close(&id);
        let mut seqs = Vec::new();
        let error = loop {
            match sub.next().await {
                Some(Ok(e)) => seqs.push(e.seq),
                Some(Err(e)) => break e,
                None => panic!("ended without an error"),
            }
        };
        assert_eq!(seqs, [0, 1, 2, 3, 4]);
        assert!(matches!(error, SubscribeError::RunAborted(e) if e.code == "storage_error"));
        assert!(sub.next().await.is_none());
    }

    #[tokio::test]
    async fn a_storage_failure_reaches_live_subscribers() {
        let (log, bus, id) = setup();
        let (rx, failed) = bus.open(&id);
        let mut sub = Subscription::stored(id.clone(), log.clone(), Some(rx));
        commit(&log, &bus, &id, 0..2, 100);
        bus.storage_failed(&id, RunError::new("storage_error", "disk full"));
        assert!(failed.load(std::sync::atomic::Ordering::Relaxed));
        assert_eq!(sub.next().await.unwrap().unwrap().seq, 0);
        assert_eq!(sub.next().await.unwrap().unwrap().seq, 1);
        let error = sub.next().await.unwrap().unwrap_err();
        assert!(matches!(error, SubscribeError::RunAborted(e) if e.message == "disk full"));
    }

    #[tokio::test]
    async fn next_ready_hands_out_what_is_here_without_waiting() {
        let (log, bus, id) = setup();
        let (rx, _) = bus.open(&id);
        let mut sub = Subscription::stored(id.clone(), log.clone(), Some(rx));
        commit(&log, &bus, &id, 0..3, 10);
        assert_eq!(sub.next().await.unwrap().unwrap().seq, 0);
        assert_eq!(sub.next_ready().unwrap().unwrap().seq, 1);
        assert_eq!(sub.next_ready().unwrap().unwrap().seq, 2);
        assert!(sub.next_ready().is_none(), "nothing more is here yet");
        commit(&log, &bus, &id, 3..11, 10);
        let rest: Vec<u64> = std::iter::from_fn(|| sub.next_ready())
            .map(|e| e.unwrap().seq)
            .collect();
        assert_eq!(rest, (3..11).collect::<Vec<_>>());
        assert!(sub.next().await.is_none(), "the terminal event ends it");
    }
}
