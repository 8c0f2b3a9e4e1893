//! The group-commit writer: the only task that writes the log.
//!
//! Runs hand it [`WriteOp`]s through a bounded channel (the bound is their
//! back-pressure). It takes everything waiting, up to [`MAX_BATCH`] ops,
//! writes it in one transaction, and only then publishes the batch's events
//! to the [`Bus`]. While a commit is in flight new ops queue up, so under
//! load batches grow on their own and an event waits at most one commit,
//! with no timer and no per-event transaction.

use super::bus::Bus;
use spool_core::event::Envelope;
use spool_core::ids::ResponseId;
use spool_core::run::RunError;
use spool_store::{Finish, Store, StoreError, WriteOp};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Most ops in one transaction: bounds commit latency and memory.
pub const MAX_BATCH: usize = 4096;
/// Ops that may wait for the writer before runs are made to wait.
pub const QUEUE_CAPACITY: usize = 8192;
/// Attempts at a batch before its runs are failed (SQLite may be busy).
const ATTEMPTS: u32 = 3;

/// A message to the writer.
#[derive(Debug)]
pub enum WriterMessage {
    Op(WriteOp),
    /// Acknowledged once every op sent before it is committed.
    Flush(oneshot::Sender<Result<(), String>>),
    /// The run whose log failed has ended; stop dropping its ops.
    Release(ResponseId),
}

/// A handle to the writer task.
#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::Sender<WriterMessage>,
}

/// The writer has stopped.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the log writer has stopped")]
pub struct WriterClosed;

impl Writer {
    /// Starts the writer task; it ends when every handle is dropped and the
    /// queue is drained.
    pub fn spawn(store: Arc<dyn Store>, bus: Arc<Bus>) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let task = tokio::spawn(run(store, bus, rx));
        (Self { tx }, task)
    }

    pub fn sender(&self) -> &mpsc::Sender<WriterMessage> {
        &self.tx
    }

    pub async fn send(&self, op: WriteOp) -> Result<(), WriterClosed> {
        self.tx
            .send(WriterMessage::Op(op))
            .await
            .map_err(|_| WriterClosed)
    }

    /// Tells the writer a run whose log failed has ended.
    pub async fn release(&self, id: ResponseId) {
        let _ = self.tx.send(WriterMessage::Release(id)).await;
    }

    /// Waits until everything sent so far is committed.
    pub async fn flush(&self) -> Result<(), String> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(WriterMessage::Flush(ack))
            .await
            .map_err(|_| WriterClosed.to_string())?;
        done.await.map_err(|_| WriterClosed.to_string())?
    }
}

async fn run(store: Arc<dyn Store>, bus: Arc<Bus>, mut rx: mpsc::Receiver<WriterMessage>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut acks = Vec::new();
    // Runs whose log could not be written: their later ops are dropped, so
    // a log never has a gap (the run is ended after its last stored event).
    let mut failed: HashSet<ResponseId> = HashSet::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                WriterMessage::Op(op) if failed.is_empty() || !failed.contains(op_id(&op)) => {
                    batch.push(op)
                }
                WriterMessage::Op(_) => {}
                WriterMessage::Flush(ack) => acks.push(ack),
                WriterMessage::Release(id) => {
                    failed.remove(&id);
                }
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        let result = write_with_retries(store.as_ref(), &batch).await;
        match &result {
            Ok(()) => publish(&bus, std::mem::take(&mut batch)),
            Err(e) => {
                tracing::error!(error = %e, ops = batch.len(), "a log batch could not be stored");
                let error = RunError::new(
                    "storage_error",
                    "An internal error occurred while storing the response. \
                     Subsequent retrieval is not guaranteed. Please retry the request.",
                );
                for id in batch.drain(..).map(op_response_id) {
                    if failed.insert(id.clone()) {
                        bus.storage_failed(&id, error.clone());
                    }
                }
            }
        }
        for ack in acks.drain(..) {
            let _ = ack.send(result.as_ref().map(drop).map_err(ToString::to_string));
        }
    }
}

async fn write_with_retries(store: &dyn Store, batch: &[WriteOp]) -> Result<(), StoreError> {
    let mut attempt = 1;
    loop {
        match store.write(batch).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "retrying a log batch");
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

fn op_id(op: &WriteOp) -> &ResponseId {
    match op {
        WriteOp::Create(c) => &c.response.id,
        WriteOp::Append { response_id, .. } => response_id,
        WriteOp::Finish(f) => &f.response_id,
    }
}

fn op_response_id(op: WriteOp) -> ResponseId {
    match op {
        WriteOp::Create(c) => c.response.id,
        WriteOp::Append { response_id, .. } => response_id,
        WriteOp::Finish(f) => f.response_id,
    }
}

/// Publishes a committed batch, one bus lookup per run and in log order;
/// a finished run's topic is closed after its last event.
fn publish(bus: &Bus, batch: Vec<WriteOp>) {
    let mut run: Option<(ResponseId, Vec<Arc<Envelope>>)> = None;
    let flush = |run: &mut Option<(ResponseId, Vec<Arc<Envelope>>)>| {
        if let Some((id, events)) = run.take() {
            bus.publish(&id, events);
        }
    };
    for op in batch {
        let (id, envelope) = match op {
            WriteOp::Create(c) => (c.response.id, c.first_event),
            WriteOp::Append {
                response_id,
                envelope,
            } => (response_id, envelope),
            WriteOp::Finish(f) => {
                let Finish {
                    response_id,
                    terminal,
                    ..
                } = *f;
                match (&mut run, terminal) {
                    (Some((current, events)), Some(t)) if *current == response_id => {
                        events.push(Arc::new(t))
                    }
                    (_, terminal) => {
                        flush(&mut run);
                        if let Some(t) = terminal {
                            run = Some((response_id.clone(), vec![Arc::new(t)]));
                        }
                    }
                }
                flush(&mut run);
                bus.close(&response_id);
                continue;
            }
        };
        match &mut run {
            Some((current, events)) if *current == id => events.push(Arc::new(envelope)),
            _ => {
                flush(&mut run);
                run = Some((id, vec![Arc::new(envelope)]));
            }
        }
    }
    flush(&mut run);
}
