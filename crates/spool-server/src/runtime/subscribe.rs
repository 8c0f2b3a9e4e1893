//! Reading a run's log: from the store, then live, without gap or duplicate.
//!
//! A [`Subscription`] yields a run's envelopes in `seq` order from a cursor
//! to the terminal event. For a stored run it subscribes to the bus *first*,
//! then reads the log from the store; live events already read are skipped by
//! `seq`, and a gap (the subscriber lagged, or joined between commits) is
//! filled from the store. A `store: false` run has no log: its one client
//! reads the run's events directly.

use super::bus::BusMessage;
use spool_core::event::Envelope;
use spool_core::ids::ResponseId;
use spool_core::response::RunError;
use spool_store::{Store, StoreError};
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};

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
            if let Some(envelope) = self.buffer.pop_front() {
                self.next_seq = envelope.seq + 1;
                if envelope.event.is_terminal() {
                    self.done = true;
                    self.buffer.clear();
                }
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

    /// Puts at least one envelope in the buffer, or fails.
    async fn fill(&mut self) -> Result<(), SubscribeError> {
        match &mut self.source {
            Source::Direct(rx) => match rx.recv().await {
                Some(e) => {
                    self.buffer.push_back(e);
                    Ok(())
                }
                // The run dropped its sink without a terminal event: it was
                // aborted (the process is stopping).
                None => Err(SubscribeError::RunAborted(RunError::new(
                    "server_error",
                    "The run stopped without ending.",
                ))),
            },
            Source::Stored {
                id,
                store,
                live,
                behind,
            } => loop {
                if *behind {
                    let after = self.next_seq.checked_sub(1);
                    let events = store.events(id, after).await?;
                    *behind = false;
                    if !events.is_empty() {
                        self.buffer.extend(events.into_iter().map(Arc::new));
                        return Ok(());
                    }
                }
                let Some(rx) = live else {
                    // Not live here and nothing more in the log: the run was
                    // cut off without a stored end (its log failed).
                    return Err(SubscribeError::RunAborted(RunError::new(
                        "storage_error",
                        "The response's log ends without a terminal event; it will be ended when the server restarts.",
                    )));
                };
                match rx.recv().await {
                    Ok(BusMessage::Event(e)) if e.seq < self.next_seq => {}
                    Ok(BusMessage::Event(e)) if e.seq == self.next_seq => {
                        self.buffer.push_back(e);
                        return Ok(());
                    }
                    // A gap: events were committed before we subscribed,
                    // or we lagged. Either way the store has them.
                    Ok(BusMessage::Event(_)) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        *behind = true;
                    }
                    Ok(BusMessage::StorageFailed(error)) => {
                        return Err(SubscribeError::RunAborted(error));
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        *live = None;
                        *behind = true;
                    }
                }
            },
        }
    }
}
