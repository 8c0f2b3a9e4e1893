//! The two logs a run can write to.
//!
//! A stored run (`store: true`) writes through [`DurableSink`] to the
//! group-commit writer; its clients read from the store and the bus. A
//! `store: false` run writes through [`DirectSink`] straight to its one
//! client: nothing is kept, so nothing can be retrieved later.

use super::writer::WriterMessage;
use async_trait::async_trait;
use spool_core::emit::{EventSink, SinkError};
use spool_core::event::{Envelope, Event};
use spool_core::ids::ResponseId;
use spool_store::{Create, NewResponse, WriteOp};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// Events a `store: false` run may be ahead of its client.
pub const DIRECT_CAPACITY: usize = 256;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Holds a slot in `tx` for the next event, unless one is held already:
/// waiting here is the run's back-pressure, and a dropped wait takes nothing.
async fn reserve<T>(
    tx: &mpsc::Sender<T>,
    permit: &mut Option<mpsc::OwnedPermit<T>>,
) -> Result<(), SinkError> {
    if permit.is_none() {
        *permit = Some(
            tx.clone()
                .reserve_owned()
                .await
                .map_err(|_| SinkError::Closed)?,
        );
    }
    Ok(())
}

/// Appends a stored run's events to the durable log.
pub struct DurableSink {
    response_id: ResponseId,
    writer: mpsc::Sender<WriterMessage>,
    permit: Option<mpsc::OwnedPermit<WriterMessage>>,
    /// The response row, written together with the first event.
    create: Option<NewResponse>,
    /// Set by the runtime when the writer could not store this run's log.
    storage_failed: Arc<AtomicBool>,
    /// The run's terminal event, held back for the runtime to write with
    /// the run's final object in one transaction.
    terminal: Arc<Mutex<Option<Envelope>>>,
}

impl DurableSink {
    pub fn new(
        create: NewResponse,
        writer: mpsc::Sender<WriterMessage>,
        storage_failed: Arc<AtomicBool>,
        terminal: Arc<Mutex<Option<Envelope>>>,
    ) -> Self {
        Self {
            response_id: create.id.clone(),
            writer,
            permit: None,
            create: Some(create),
            storage_failed,
            terminal,
        }
    }
}

#[async_trait]
impl EventSink for DurableSink {
    async fn ready(&mut self) -> Result<(), SinkError> {
        if self.storage_failed.load(Ordering::Relaxed) {
            return Err(SinkError::Storage("the log could not be written".into()));
        }
        reserve(&self.writer, &mut self.permit).await
    }

    fn push(&mut self, envelope: Envelope) -> Result<(), SinkError> {
        let permit = self.permit.take().ok_or(SinkError::Closed)?;
        if envelope.event.is_terminal() {
            *self.terminal.lock().unwrap_or_else(PoisonError::into_inner) = Some(envelope);
            return Ok(());
        }
        let op = match (self.create.take(), &envelope.event) {
            (Some(response), Event::RunCreated { .. }) => WriteOp::Create(Box::new(Create {
                response,
                first_event: envelope,
            })),
            (create, _) => {
                self.create = create;
                WriteOp::Append {
                    response_id: self.response_id.clone(),
                    envelope,
                }
            }
        };
        permit.send(WriterMessage::Op(op));
        Ok(())
    }

    fn now_ms(&self) -> i64 {
        now_ms()
    }
}

/// Hands a `store: false` run's events straight to its client.
pub struct DirectSink {
    tx: mpsc::Sender<Arc<Envelope>>,
    permit: Option<mpsc::OwnedPermit<Arc<Envelope>>>,
}

impl DirectSink {
    pub fn new(tx: mpsc::Sender<Arc<Envelope>>) -> Self {
        Self { tx, permit: None }
    }
}

#[async_trait]
impl EventSink for DirectSink {
    async fn ready(&mut self) -> Result<(), SinkError> {
        reserve(&self.tx, &mut self.permit).await
    }

    fn push(&mut self, envelope: Envelope) -> Result<(), SinkError> {
        let permit = self.permit.take().ok_or(SinkError::Closed)?;
        permit.send(Arc::new(envelope));
        Ok(())
    }

    fn now_ms(&self) -> i64 {
        now_ms()
    }
}
