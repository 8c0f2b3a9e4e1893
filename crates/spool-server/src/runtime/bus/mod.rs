//! Fan-out of committed events to live subscribers: the [`Bus`] trait and
//! its implementations.
//!
//! - [`LocalBus`] (`local.rs`): one broadcast channel per run live in this
//!   process; the only bus of a single instance.
//! - [`PostgresBus`] (`postgres.rs`): the local bus for runs executing
//!   here, plus topics fed from PostgreSQL `LISTEN/NOTIFY` wake-ups for
//!   runs executing on other instances, and cancel requests between
//!   instances.
//!
//! Callers only see the trait: a subscription is a broadcast receiver of
//! [`BusMessage`]s, and a [`Subscription`](super::subscribe::Subscription)
//! turns it, with the log in the store, into a gap-free, duplicate-free
//! stream. A broker (NATS, say) would be one more implementation.

mod local;
mod postgres;

pub use local::LocalBus;
pub use postgres::PostgresBus;

use async_trait::async_trait;
use spool_core::event::Envelope;
use spool_core::ids::ResponseId;
use spool_core::run::RunError;
use spool_store::StoreError;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tokio::sync::{broadcast, mpsc};

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
    /// Events may have been committed that this topic did not carry (the
    /// wake-ups were lost, say): read the log.
    Reread,
}

/// Live fan-out of committed events, and the way a cancel reaches the
/// instance executing a run.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Opens the topic of a run about to start here and subscribes its
    /// creator. Returns the subscription and the flag that marks the run's
    /// log as unwritable.
    fn open(&self, id: &ResponseId) -> (broadcast::Receiver<BusMessage>, Arc<AtomicBool>);

    /// Subscribes to a run's live events; `None` if this bus cannot carry
    /// them (the run is not live where this bus reaches).
    fn subscribe(&self, id: &ResponseId) -> Option<broadcast::Receiver<BusMessage>>;

    /// Publishes committed events of a run executing here.
    fn publish(&self, id: &ResponseId, events: Vec<Arc<Envelope>>);

    /// Tells a run's subscribers that its log can no longer be written.
    fn storage_failed(&self, id: &ResponseId, error: RunError);

    /// Closes a run's topic once its terminal event is committed and
    /// published; subscribers drain what they have and then see it closed.
    fn close(&self, id: &ResponseId);

    /// Asks whichever instance executes `id` to cancel it. `false` when
    /// this bus reaches no other instance.
    async fn request_cancel(&self, _id: &ResponseId) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// The cancel requests other instances send for runs executing here;
    /// `Some` once, for the runtime to serve.
    fn cancel_requests(&self) -> Option<mpsc::Receiver<ResponseId>> {
        None
    }
}
