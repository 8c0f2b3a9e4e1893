//! The group-commit writer: the only task that writes the log.
//!
//! Runs hand it [`WriteOp`]s through a bounded channel (the bound is their
//! back-pressure). It takes everything waiting, up to [`MAX_BATCH`] ops,
//! writes it in one transaction, and only then publishes the batch's events
//! to the [`Bus`]. While a commit is in flight new ops queue up, so under
//! load batches grow on their own and an event waits at most one commit,
//! with no timer and no per-event transaction.
//!
//! A batch holds many runs, and each run fares on its own
//! ([`Store::write_runs`]): a run whose op is refused is failed alone
//! (its subscribers are told, its later ops are refused until the runtime
//! releases it) while the other runs' events are committed and published.
//! If the batch as a whole cannot be committed, every run in it is failed.

use super::bus::Bus;
use super::store_health::StoreHealth;
use spool_core::event::Envelope;
use spool_core::ids::ResponseId;
use spool_core::run::RunError;
use spool_store::{BatchOutcome, Finish, Store, StoreError, WriteOp};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Most ops in one transaction: bounds commit latency and memory.
pub const MAX_BATCH: usize = 4096;
/// Ops that may wait for the writer before runs are made to wait.
pub const QUEUE_CAPACITY: usize = 8192;
/// Attempts at a batch that failed transiently (the database busy, say)
/// before its runs are failed.
const ATTEMPTS: u32 = 3;

/// A message to the writer.
#[derive(Debug)]
pub enum WriterMessage {
    Op(WriteOp),
    /// Acknowledged once every op sent before it has been tried: `Ok` if
    /// every op of the batch it joined was committed and none was refused.
    Flush(oneshot::Sender<Result<(), String>>),
    /// Acknowledged once every op sent before it has been tried: `Ok` if
    /// every op of this run that was sent before it is committed; `Err` if
    /// one was not (failed or refused), until the run is released.
    FlushRun(ResponseId, oneshot::Sender<Result<(), String>>),
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
    pub fn spawn(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        health: Arc<StoreHealth>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let task = tokio::spawn(run(store, bus, health, rx));
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

    /// Waits until everything sent so far has been tried; `Ok` if nothing
    /// tried with it failed. For one run's writes, [`flush_run`] is exact.
    ///
    /// [`flush_run`]: Self::flush_run
    pub async fn flush(&self) -> Result<(), String> {
        self.ask(WriterMessage::Flush).await
    }

    /// Waits until everything sent so far has been tried; `Ok` only if every
    /// op of run `id` sent so far is committed, whatever befell other runs.
    pub async fn flush_run(&self, id: &ResponseId) -> Result<(), String> {
        let id = id.clone();
        self.ask(|ack| WriterMessage::FlushRun(id, ack)).await
    }

    async fn ask(
        &self,
        message: impl FnOnce(oneshot::Sender<Result<(), String>>) -> WriterMessage,
    ) -> Result<(), String> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(message(ack))
            .await
            .map_err(|_| WriterClosed.to_string())?;
        done.await.map_err(|_| WriterClosed.to_string())?
    }
}

/// The error a run's subscribers see when its log cannot be written.
fn storage_error() -> RunError {
    RunError::new(
        "storage_error",
        "An internal error occurred while storing the response. \
         Subsequent retrieval is not guaranteed. Please retry the request.",
    )
}

async fn run(
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    health: Arc<StoreHealth>,
    mut rx: mpsc::Receiver<WriterMessage>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut acks = Vec::new();
    let mut run_acks = Vec::new();
    // Runs whose log could not be written, with why: their later ops are
    // refused (not written, and reported to any flush), so a log never has
    // a gap; the runtime ends the run after its last stored event and then
    // releases it.
    let mut failed: HashMap<ResponseId, String> = HashMap::new();
    while let Some(first) = rx.recv().await {
        // Ops refused while this batch was gathered: a flush that joins it
        // must not report them written.
        let mut refused = 0usize;
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                WriterMessage::Op(op) if failed.is_empty() || !failed.contains_key(op_id(&op)) => {
                    batch.push(op)
                }
                WriterMessage::Op(_) => refused += 1,
                WriterMessage::Flush(ack) => acks.push(ack),
                WriterMessage::FlushRun(id, ack) => run_acks.push((id, ack)),
                WriterMessage::Release(id) => {
                    failed.remove(&id);
                }
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if refused > 0 {
            tracing::warn!(ops = refused, "refused ops of runs whose log failed");
        }
        let newly_failed = if batch.is_empty() {
            HashSet::new()
        } else {
            let outcome = write_with_retries(store.as_ref(), &batch).await;
            record_health(&health, &batch, &outcome);
            settle(
                bus.as_ref(),
                std::mem::take(&mut batch),
                outcome,
                &mut failed,
            )
        };
        for ack in acks.drain(..) {
            let result = if newly_failed.is_empty() && refused == 0 {
                Ok(())
            } else {
                Err(format!(
                    "{} run(s) could not be stored, {refused} op(s) refused",
                    newly_failed.len()
                ))
            };
            let _ = ack.send(result);
        }
        for (id, ack) in run_acks.drain(..) {
            let _ = ack.send(match failed.get(&id) {
                None => Ok(()),
                Some(why) => Err(why.clone()),
            });
        }
    }
}

/// Publishes what a batch committed and fails the runs it did not: their
/// subscribers are told, and they join `failed`. Returns the runs failed by
/// this batch.
fn settle(
    bus: &dyn Bus,
    batch: Vec<WriteOp>,
    outcome: Result<BatchOutcome, StoreError>,
    failed: &mut HashMap<ResponseId, String>,
) -> HashSet<ResponseId> {
    let mut fail = |id: &ResponseId, why: String, newly: &mut HashSet<ResponseId>| {
        if !failed.contains_key(id) {
            bus.storage_failed(id, storage_error());
            failed.insert(id.clone(), why);
        }
        newly.insert(id.clone());
    };
    let mut newly = HashSet::new();
    match outcome {
        Ok(outcome) if outcome.failed.is_empty() => publish(bus, batch),
        Ok(outcome) => {
            for (id, e) in &outcome.failed {
                tracing::error!(response_id = %id, error = %e, "a run's log could not be stored");
                fail(id, e.to_string(), &mut newly);
            }
            publish(
                bus,
                batch
                    .into_iter()
                    .filter(|op| outcome.failure(op_id(op)).is_none()),
            );
        }
        Err(e) => {
            tracing::error!(error = %e, ops = batch.len(), "a log batch could not be stored");
            for op in &batch {
                fail(op_id(op), e.to_string(), &mut newly);
            }
        }
    }
    newly
}

/// Records whether the store took the batch: it did if any run's ops
/// were committed; one run's op refused says nothing about the store.
fn record_health(
    health: &StoreHealth,
    batch: &[WriteOp],
    outcome: &Result<BatchOutcome, StoreError>,
) {
    match outcome {
        Err(e) => health.failed(e),
        Ok(outcome) if outcome.failed.is_empty() => health.wrote(),
        Ok(outcome) => {
            let committed = batch.iter().any(|op| outcome.failure(op_id(op)).is_none());
            match (committed, outcome.failed.first()) {
                (false, Some((_, e))) => health.failed(e),
                _ => health.wrote(),
            }
        }
    }
}

/// Writes a batch, trying again while it fails transiently.
async fn write_with_retries(
    store: &dyn Store,
    batch: &[WriteOp],
) -> Result<BatchOutcome, StoreError> {
    let mut attempt = 1;
    loop {
        match store.write_runs(batch).await {
            Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "retrying a log batch");
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

fn op_id(op: &WriteOp) -> &ResponseId {
    op.response_id()
}

/// Publishes a committed batch, one bus lookup per run and in log order;
/// a finished run's topic is closed after its last event.
fn publish(bus: &dyn Bus, batch: impl IntoIterator<Item = WriteOp>) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::bus::{BusMessage, LocalBus};
    use spool_core::event::Event;
    use spool_core::status::RunStatus;
    use spool_store::{Create, NewResponse, SqliteStore};
    use std::sync::atomic::Ordering;
    use tokio::sync::broadcast;

    async fn sqlite() -> Arc<dyn Store> {
        let dir = std::env::temp_dir().join(spool_core::ids::IdSource::new_id(
            &crate::runtime::ids::Uuid7Ids,
            "writer-test",
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Arc::new(
            SqliteStore::open(&format!("sqlite://{}", dir.join("t.db").display()))
                .await
                .unwrap(),
        )
    }

    fn create(id: &ResponseId) -> WriteOp {
        let body: spool_core::request::CreateResponseBody =
            serde_json::from_str(r#"{"model":"m","input":"x"}"#).unwrap();
        let header = spool_core::request::RunRequest::parse(body, &crate::runtime::ids::Uuid7Ids)
            .unwrap()
            .header(id.clone(), 1);
        WriteOp::Create(Box::new(Create {
            response: NewResponse {
                id: id.clone(),
                created_at: 1,
                status: RunStatus::InProgress,
                background: false,
                previous_response_id: None,
                conversation: None,
                opens_conversation: false,
                input: vec![],
            },
            first_event: Envelope {
                seq: 0,
                ts_ms: 1,
                event: Event::RunCreated(Box::new(spool_core::event::RunCreated {
                    run: header,
                    input: Vec::new(),
                })),
            },
        }))
    }

    fn started(id: &ResponseId, seq: u64) -> WriteOp {
        WriteOp::Append {
            response_id: id.clone(),
            envelope: Envelope {
                seq,
                ts_ms: 1,
                event: Event::RunStarted,
            },
        }
    }

    fn seqs(rx: &mut broadcast::Receiver<BusMessage>) -> Vec<u64> {
        std::iter::from_fn(|| rx.try_recv().ok())
            .filter_map(|m| match m {
                BusMessage::Event(e) => Some(e.seq),
                BusMessage::StorageFailed(_) | BusMessage::Reread => None,
            })
            .collect()
    }

    // Current-thread runtime: the writer task runs only when the test
    // awaits a flush, so every op sent before it lands in one batch.
    #[tokio::test]
    async fn a_refused_op_fails_only_its_run_and_the_others_are_stored_and_acknowledged() {
        let store = sqlite().await;
        let bus = Arc::new(LocalBus::default());
        let (writer, _task) = Writer::spawn(store.clone(), bus.clone(), Default::default());
        let (good, bad) = (
            ResponseId::generate(&crate::runtime::ids::Uuid7Ids),
            ResponseId::generate(&crate::runtime::ids::Uuid7Ids),
        );
        let (mut good_rx, good_failed) = bus.open(&good);
        let (mut bad_rx, bad_failed) = bus.open(&bad);
        writer.send(create(&bad)).await.unwrap();
        writer.flush_run(&bad).await.unwrap();

        writer.send(create(&good)).await.unwrap();
        // seq 0 is stored already: the log refuses it.
        writer.send(started(&bad, 0)).await.unwrap();
        writer.send(started(&good, 1)).await.unwrap();
        assert_eq!(writer.flush_run(&good).await, Ok(()));
        assert!(writer.flush_run(&bad).await.is_err());

        assert_eq!(store.events(&good, None).await.unwrap().len(), 2);
        assert_eq!(seqs(&mut good_rx), [0, 1]);
        assert!(!good_failed.load(Ordering::Relaxed));
        assert!(bad_failed.load(Ordering::Relaxed));
        let told: Vec<_> = std::iter::from_fn(|| bad_rx.try_recv().ok()).collect();
        assert!(
            matches!(told.last(), Some(BusMessage::StorageFailed(e)) if e.code == "storage_error"),
            "{told:?}"
        );
    }

    #[tokio::test]
    async fn a_failed_runs_later_ops_are_refused_not_acknowledged_until_it_is_released() {
        let store = sqlite().await;
        let bus = Arc::new(LocalBus::default());
        let (writer, _task) = Writer::spawn(store.clone(), bus.clone(), Default::default());
        let (bad, other) = (
            ResponseId::generate(&crate::runtime::ids::Uuid7Ids),
            ResponseId::generate(&crate::runtime::ids::Uuid7Ids),
        );
        let _topic = bus.open(&bad);
        writer.send(create(&bad)).await.unwrap();
        writer.send(create(&other)).await.unwrap();
        writer.flush().await.unwrap();
        writer.send(started(&bad, 0)).await.unwrap();
        assert!(writer.flush_run(&bad).await.is_err());

        // A valid op, but after the failure: it would leave a gap.
        writer.send(started(&bad, 2)).await.unwrap();
        assert!(
            writer.flush().await.is_err(),
            "a refused op was acknowledged"
        );
        assert!(writer.flush_run(&bad).await.is_err());
        assert_eq!(writer.flush_run(&other).await, Ok(()));
        assert_eq!(store.events(&bad, None).await.unwrap().len(), 1);

        writer.release(bad.clone()).await;
        writer.send(started(&bad, 1)).await.unwrap();
        assert_eq!(writer.flush_run(&bad).await, Ok(()));
        assert_eq!(store.events(&bad, None).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_batch_that_cannot_be_committed_fails_every_run_in_it() {
        let bus = LocalBus::default();
        let (a, b) = (
            ResponseId::generate(&crate::runtime::ids::Uuid7Ids),
            ResponseId::generate(&crate::runtime::ids::Uuid7Ids),
        );
        let (_a_rx, a_failed) = bus.open(&a);
        let (_b_rx, b_failed) = bus.open(&b);
        let mut failed = HashMap::new();
        let newly = settle(
            &bus,
            vec![create(&a), create(&b)],
            Err(StoreError::Backend {
                message: "disk I/O error".into(),
                transient: true,
            }),
            &mut failed,
        );
        assert_eq!(newly, HashSet::from([a.clone(), b.clone()]));
        assert!(failed.contains_key(&a) && failed.contains_key(&b));
        assert!(a_failed.load(Ordering::Relaxed) && b_failed.load(Ordering::Relaxed));
    }
}
