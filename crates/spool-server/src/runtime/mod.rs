//! The run manager: starts runs, tracks the live ones, cancels and recovers.
//!
//! # Layout
//! - [`writer`]: the group-commit writer, the only writer of the log.
//! - [`bus`]: fan-out of committed events to live subscribers.
//! - [`sink`]: the durable and the direct log a run writes to.
//! - [`subscribe`]: reading a run's log from the store and then live.
//! - [`recovery`]: ending runs a previous process left unfinished.
//!
//! # One run
//! [`Runtime::start`] validates everything that can fail (model, previous
//! response) before anything is written, then spawns the run's task: it
//! emits `run.created` (written with the response row and its input) and
//! `run.started`, runs the agent until it returns, is cancelled or the
//! server shuts down, emits exactly one terminal event, writes the final
//! response object, and waits for the commit before it reports the run done.

pub mod bus;
pub mod recovery;
pub mod sink;
pub mod subscribe;
pub mod writer;

use bus::Bus;
use futures::FutureExt;
use sink::{DIRECT_CAPACITY, DirectSink, DurableSink};
use spool_core::agent::{Agent, RunContext, RunOutcome};
use spool_core::emit::{EventSink, RunEmitter};
use spool_core::fold::RunFold;
use spool_core::ids::{ConversationId, ResponseId};
use spool_core::item::Item;
use spool_core::projection::responses;
use spool_core::request::RunRequest;
use spool_core::run::RunError;
use spool_core::status::RunStatus;
use spool_core::tool::McpTransport;
use spool_provider::mcp::{McpClients, url_allowed};
use spool_provider::{ModelAgent, ModelRouter, ModelUnavailable};
use spool_store::{ConversationAccess, Finish, NewResponse, Store, StoreError, WriteOp};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use subscribe::{SubscribeError, Subscription};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use writer::Writer;

/// Longest a cancel request waits for the run to record its end.
const CANCEL_WAIT: Duration = Duration::from_secs(10);
/// Attempts at ending a run whose log failed.
const END_ATTEMPTS: u32 = 5;
/// Longest `previous_response_id` chain followed, against cycles and abuse.
const MAX_CHAIN: usize = 10_000;

/// Why a run could not start. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    ModelUnavailable(#[from] ModelUnavailable),
    #[error("Previous response with id '{0}' not found.")]
    PreviousNotFound(ResponseId),
    #[error(
        "Previous response with id '{0}' is still in progress; wait for it to end before continuing from it."
    )]
    PreviousInProgress(ResponseId),
    #[error("Conversation with id '{0}' not found.")]
    ConversationNotFound(ConversationId),
    #[error(
        "Conversation '{0}' already has a response in progress ({1}); wait for it to end, or cancel it."
    )]
    ConversationBusy(ConversationId, ResponseId),
    #[error("An item with id '{1}' is already in conversation '{0}'.")]
    DuplicateItem(ConversationId, String),
    #[error(
        "MCP server '{label}' at {url} is not allowed: this server reaches only the MCP URLs its operator allows (SPOOL_MCP_ALLOWED_URLS)."
    )]
    McpNotAllowed { label: String, url: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the server is shutting down")]
    ShuttingDown,
}

/// Why a cancel was refused.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("Response with id '{0}' not found.")]
    NotFound(ResponseId),
    #[error("Only responses created with background=true can be cancelled.")]
    NotBackground,
    #[error("Cannot cancel a {0} response.")]
    AlreadyEnded(RunStatus),
    #[error("the run did not record its end within {} seconds", CANCEL_WAIT.as_secs())]
    NotStopped,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a delete was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    #[error("Response with id '{0}' not found.")]
    NotFound(ResponseId),
    #[error("Cannot delete an in-flight response; cancel it or wait for it to end.")]
    InFlight,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Releases a conversation claimed for a response unless disarmed: a
/// request dropped mid-claim, or a run that never starts, leaves nothing
/// locked.
struct ClaimGuard {
    store: Arc<dyn Store>,
    conversation: ConversationId,
    response: ResponseId,
    armed: bool,
}

impl ClaimGuard {
    fn new(store: Arc<dyn Store>, conversation: ConversationId, response: ResponseId) -> Self {
        Self {
            store,
            conversation,
            response,
            armed: true,
        }
    }

    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if self.armed
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let (store, conversation, response) = (
                self.store.clone(),
                self.conversation.clone(),
                self.response.clone(),
            );
            handle.spawn(async move {
                let _ = store.release_conversation(&conversation, &response).await;
            });
        }
    }
}

/// A run that is executing in this process.
struct ActiveRun {
    cancel: CancellationToken,
    background: bool,
    /// Becomes true once the run's end is committed.
    done: watch::Receiver<bool>,
}

/// A started run, as its creator sees it.
pub struct StartedRun {
    pub id: ResponseId,
    pub background: bool,
    /// The run's events from the first.
    pub events: Subscription,
}

/// Runtime settings.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Longest a run may wait for its log to be stored at its end.
    pub finish_timeout: Duration,
}

/// Agents hosted by name: a request whose `model` names one runs it
/// instead of the built-in model agent.
#[derive(Clone, Default)]
pub struct Agents {
    by_name: HashMap<String, Arc<dyn Agent>>,
}

impl Agents {
    /// Hosts `agent` under `name`.
    pub fn with(mut self, name: impl Into<String>, agent: Arc<dyn Agent>) -> Self {
        self.by_name.insert(name.into(), agent);
        self
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Agent>> {
        self.by_name.get(name).cloned()
    }
}

/// What runs may reach over MCP.
pub struct McpAccess {
    pub clients: Arc<McpClients>,
    /// URL prefixes a request's MCP servers must start with.
    pub allowed_urls: Vec<String>,
}

/// The run manager. Cheap to share behind an `Arc`.
pub struct Runtime {
    mcp: McpAccess,
    store: Arc<dyn Store>,
    writer: Writer,
    bus: Arc<Bus>,
    models: ModelRouter,
    agents: Agents,
    active: Mutex<HashMap<ResponseId, ActiveRun>>,
    tracker: TaskTracker,
    /// Cancelled when the server stops: runs end `failed` with
    /// `server_shutdown` instead of being cut off mid-log.
    shutdown: CancellationToken,
}

impl Runtime {
    pub fn new(
        store: Arc<dyn Store>,
        models: ModelRouter,
        agents: Agents,
        mcp: McpAccess,
    ) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        let bus = Arc::new(Bus::default());
        let (writer, writer_task) = Writer::spawn(store.clone(), bus.clone());
        let runtime = Arc::new(Self {
            store,
            writer,
            bus,
            models,
            agents,
            mcp,
            active: Mutex::new(HashMap::new()),
            tracker: TaskTracker::new(),
            shutdown: CancellationToken::new(),
        });
        (runtime, writer_task)
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn active(&self) -> MutexGuard<'_, HashMap<ResponseId, ActiveRun>> {
        // Each critical section is a single map operation; poison is benign.
        self.active.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a run is executing in this process.
    pub fn is_running(&self, id: &ResponseId) -> bool {
        self.active().contains_key(id)
    }

    /// Starts a run for `request`: of the hosted agent its `model` names,
    /// else of the built-in model agent with the model's provider.
    pub async fn start(self: &Arc<Self>, request: RunRequest) -> Result<StartedRun, StartError> {
        // Checked before anything is written or any server is contacted,
        // so a request cannot make spool call arbitrary hosts.
        for spec in request.mcp_servers.iter().filter(|s| !s.trusted) {
            if let McpTransport::Http { url, .. } = &spec.transport
                && !url_allowed(url, &self.mcp.allowed_urls)
            {
                return Err(StartError::McpNotAllowed {
                    label: spec.server_label.clone(),
                    url: url.clone(),
                });
            }
        }
        let agent = match self.agents.get(&request.model) {
            Some(agent) => agent,
            None => Arc::new(
                ModelAgent::new(self.models.resolve(&request.model)?)
                    .with_mcp(self.mcp.clients.clone()),
            ),
        };
        self.start_agent(request, agent).await
    }

    /// Starts a run of `agent` for `request`.
    async fn start_agent(
        self: &Arc<Self>,
        request: RunRequest,
        agent: Arc<dyn Agent>,
    ) -> Result<StartedRun, StartError> {
        if self.shutdown.is_cancelled() {
            return Err(StartError::ShuttingDown);
        }
        let id = ResponseId::generate();
        // Armed before the claim is asked for: if this request is dropped
        // while waiting, whatever was claimed is released.
        let mut claim = request
            .conversation
            .clone()
            .map(|conversation| ClaimGuard::new(self.store.clone(), conversation, id.clone()));
        let history = match (&request.previous_response_id, &request.conversation) {
            (Some(prev), _) => self.history(prev).await?,
            (None, Some(conversation)) => {
                let input_ids: Vec<String> =
                    request.input.iter().map(|i| i.id().to_owned()).collect();
                match self.claim_conversation(conversation, &id, &input_ids).await {
                    Ok(items) => items,
                    Err(e) => {
                        if let Some(guard) = &mut claim
                            && !matches!(e, StartError::Store(_))
                        {
                            // Refused: nothing was claimed.
                            guard.disarm();
                        }
                        return Err(e);
                    }
                }
            }
            (None, None) => Vec::new(),
        };
        let created_at = sink::now_ms().div_euclid(1000);
        let header = request.header(id.clone(), created_at);
        let modes = request.modes;
        let mut storage_failed = None;
        let terminal = Arc::new(Mutex::new(None));
        let (sink, events): (Box<dyn EventSink>, Subscription) = if modes.store {
            let (live, failed) = self.bus.open(&id);
            storage_failed = Some(failed.clone());
            let create = NewResponse {
                id: id.clone(),
                created_at,
                status: if modes.background {
                    RunStatus::Queued
                } else {
                    RunStatus::InProgress
                },
                background: modes.background,
                previous_response_id: request.previous_response_id.clone(),
                conversation: request.conversation.clone(),
                input: request.input.clone(),
            };
            let sink = DurableSink::new(
                create,
                self.writer.sender().clone(),
                failed,
                terminal.clone(),
            );
            let events = Subscription::creator(id.clone(), self.store.clone(), live);
            (Box::new(sink), events)
        } else {
            let (tx, rx) = mpsc::channel(DIRECT_CAPACITY);
            (Box::new(DirectSink::new(tx)), Subscription::direct(rx))
        };
        let cancel = CancellationToken::new();
        let (done_tx, done_rx) = watch::channel(false);
        self.active().insert(
            id.clone(),
            ActiveRun {
                cancel: cancel.clone(),
                background: modes.background,
                done: done_rx,
            },
        );
        let ctx = RunContext {
            response_id: id.clone(),
            request: Arc::new(request),
            history,
        };
        let runtime = self.clone();
        let run_id = id.clone();
        self.tracker.spawn(async move {
            let mut emitter = RunEmitter::new(sink);
            runtime
                .drive(&mut emitter, header, ctx, agent, cancel)
                .await;
            if let Some(storage_failed) = storage_failed {
                let finish = finish_op(emitter.fold()).map(|mut finish| {
                    finish.terminal = terminal.lock().unwrap_or_else(PoisonError::into_inner).take();
                    finish
                });
                drop(emitter);
                let stored = match finish {
                    Some(finish) => runtime.finish(finish).await,
                    None => false,
                };
                if !stored || storage_failed.load(Ordering::Relaxed) {
                    runtime.end_failed_log(&run_id).await;
                }
                // Normally closed by the writer after the end is committed;
                // closed here too so no subscriber waits on a run that is gone.
                runtime.bus.close(&run_id);
            }
            if let Some(mut claim) = claim {
                // The run's end released its claim with its final items;
                // this covers a run that never got that far.
                claim.disarm();
                if let Err(e) = runtime.store.release_conversation(&claim.conversation, &run_id).await {
                    tracing::error!(response_id = %run_id, error = %e, "cannot release the conversation");
                }
            }
            runtime.active().remove(&run_id);
            let _ = done_tx.send(true);
        });
        Ok(StartedRun {
            id,
            background: modes.background,
            events,
        })
    }

    /// Runs the lifecycle around the agent and emits the terminal event.
    async fn drive(
        &self,
        emitter: &mut RunEmitter,
        header: spool_core::run::RunHeader,
        ctx: RunContext,
        agent: Arc<dyn Agent>,
        cancel: CancellationToken,
    ) {
        let id = ctx.response_id.clone();
        let input = ctx.request.input.clone();
        if let Err(e) = emitter.created(header, input).await {
            tracing::error!(response_id = %id, error = %e, "could not record run.created");
            return;
        }
        enum End {
            Agent(Result<RunOutcome, RunError>),
            Cancelled,
            Shutdown,
        }
        let end = match emitter.started().await {
            Err(e) => End::Agent(Err(RunError::new("server_error", e.to_string()))),
            Ok(()) => {
                let mut writer = emitter.writer();
                let run = AssertUnwindSafe(agent.run(ctx, &mut writer)).catch_unwind();
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => End::Cancelled,
                    () = self.shutdown.cancelled() => End::Shutdown,
                    result = run => End::Agent(result.unwrap_or_else(|_| {
                        tracing::error!(response_id = %id, "the agent panicked");
                        Err(RunError::new("server_error", "An internal server error occurred."))
                    })),
                }
            }
        };
        let ended = match end {
            End::Agent(Ok(RunOutcome::Completed)) => emitter.complete().await,
            End::Agent(Ok(RunOutcome::Incomplete { reason })) => emitter.incomplete(reason).await,
            End::Agent(Err(error)) => emitter.fail(error).await,
            End::Cancelled => emitter.cancel().await,
            End::Shutdown => {
                emitter
                    .fail(RunError::new(
                        "server_shutdown",
                        "The server shut down while this response was running.",
                    ))
                    .await
            }
        };
        if let Err(e) = ended {
            tracing::warn!(response_id = %id, error = %e, "could not record the run's end normally");
            if !emitter.fold().is_terminal() {
                let _ = emitter
                    .fail(RunError::new(
                        "server_error",
                        "An internal server error occurred.",
                    ))
                    .await;
            }
        }
    }

    /// Stores a stored run's final object and output with its terminal
    /// event, and waits for the commit. False if it could not be stored.
    async fn finish(&self, op: Finish) -> bool {
        let id = op.response_id.clone();
        if self
            .writer
            .send(WriteOp::Finish(Box::new(op)))
            .await
            .is_err()
        {
            tracing::error!(response_id = %id, "the log writer stopped before the run ended");
            return false;
        }
        match self.writer.flush().await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(response_id = %id, error = %e, "the run's end could not be stored");
                false
            }
        }
    }

    /// Ends a stored run whose log could not be written: after its last
    /// stored event, directly in the store. If the store is still failing,
    /// recovery at the next start ends it.
    async fn end_failed_log(&self, id: &ResponseId) {
        let error = RunError::new(
            "storage_error",
            "An internal error occurred while storing the response. \
             Subsequent retrieval is not guaranteed. Please retry the request.",
        );
        // A failing store often recovers quickly (a busy or full disk being
        // cleared); try for a few seconds before leaving it to recovery.
        for attempt in 1..=END_ATTEMPTS {
            match recovery::end_run(self.store.as_ref(), id, error.clone()).await {
                Ok(ended) => {
                    if ended {
                        tracing::warn!(response_id = %id, "ended a run whose log failed");
                    }
                    break;
                }
                Err(e) if attempt == END_ATTEMPTS => tracing::error!(
                    response_id = %id, error = %e,
                    "cannot end a run whose log failed; it is ended at the next start"
                ),
                Err(_) => tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await,
            }
        }
        self.writer.release(id.clone()).await;
    }

    /// Claims a conversation for the response `id` and returns its items,
    /// the history the run continues from. Only one response runs on a
    /// conversation at a time, so turns never interleave their items.
    async fn claim_conversation(
        &self,
        conversation: &ConversationId,
        id: &ResponseId,
        input_ids: &[String],
    ) -> Result<Vec<Item>, StartError> {
        match self
            .store
            .claim_conversation(conversation, id, input_ids)
            .await?
        {
            ConversationAccess::Done => {}
            ConversationAccess::NotFound => {
                return Err(StartError::ConversationNotFound(conversation.clone()));
            }
            ConversationAccess::Busy(other) => {
                return Err(StartError::ConversationBusy(conversation.clone(), other));
            }
            ConversationAccess::Duplicate(item) => {
                return Err(StartError::DuplicateItem(conversation.clone(), item));
            }
        }
        match self.store.conversation_history(conversation).await {
            Ok(items) => Ok(items),
            Err(e) => {
                let _ = self.store.release_conversation(conversation, id).await;
                Err(e.into())
            }
        }
    }

    /// The items of a `previous_response_id` chain, oldest turn first.
    async fn history(&self, prev: &ResponseId) -> Result<Vec<Item>, StartError> {
        let mut chain = Vec::new();
        let mut cursor = Some(prev.clone());
        while let Some(id) = cursor.take() {
            let Some(record) = self.store.response(&id).await? else {
                if chain.is_empty() {
                    return Err(StartError::PreviousNotFound(id));
                }
                // An older turn was deleted: the chain starts after it.
                break;
            };
            if !record.status.is_terminal() {
                return Err(StartError::PreviousInProgress(id));
            }
            chain.push(id);
            if chain.len() < MAX_CHAIN {
                cursor = record.previous_response_id;
            }
        }
        let mut items = Vec::new();
        for id in chain.iter().rev() {
            items.extend(self.store.turn_items(id).await?);
        }
        Ok(items)
    }

    /// Cancels a background run and returns its final object (JSON).
    pub async fn cancel(&self, id: &ResponseId) -> Result<String, CancelError> {
        let record = self
            .store
            .response(id)
            .await?
            .ok_or_else(|| CancelError::NotFound(id.clone()))?;
        if !record.background {
            return Err(CancelError::NotBackground);
        }
        if !record.status.is_terminal() {
            let done = {
                let active = self.active();
                active.get(id).map(|run| {
                    run.cancel.cancel();
                    run.done.clone()
                })
            };
            if let Some(mut done) = done {
                tokio::time::timeout(CANCEL_WAIT, done.wait_for(|d| *d))
                    .await
                    .map_err(|_| CancelError::NotStopped)?
                    .ok();
            }
        }
        let record = self
            .store
            .response(id)
            .await?
            .ok_or_else(|| CancelError::NotFound(id.clone()))?;
        match (record.status, record.snapshot) {
            (RunStatus::Cancelled, Some(snapshot)) => Ok(snapshot),
            (status, _) if status.is_terminal() => Err(CancelError::AlreadyEnded(status)),
            _ => Err(CancelError::NotStopped),
        }
    }

    /// Cancels a foreground run whose client went away.
    pub fn cancel_foreground(&self, id: &ResponseId) {
        if let Some(run) = self.active().get(id)
            && !run.background
        {
            run.cancel.cancel();
        }
    }

    /// Deletes a response that is not running.
    pub async fn delete(&self, id: &ResponseId) -> Result<(), DeleteError> {
        if self.is_running(id) {
            return Err(DeleteError::InFlight);
        }
        let record = self
            .store
            .response(id)
            .await?
            .ok_or_else(|| DeleteError::NotFound(id.clone()))?;
        if !record.status.is_terminal() {
            return Err(DeleteError::InFlight);
        }
        if self.store.delete(id).await? {
            Ok(())
        } else {
            Err(DeleteError::NotFound(id.clone()))
        }
    }

    /// A stored run's log from the start: live if it runs here.
    pub fn subscribe(&self, id: &ResponseId) -> Subscription {
        let live = self.bus.subscribe(id);
        Subscription::stored(id.clone(), self.store.clone(), live)
    }

    /// Ends every live run (`failed`, `server_shutdown`) and waits for their
    /// ends to be stored.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        if let Err(e) = self.writer.flush().await {
            tracing::error!(error = %e, "the log could not be flushed at shutdown");
        }
    }

    /// Waits until a stored run's current state is available as JSON: its
    /// final object if it ended, else the fold of its log so far.
    pub async fn snapshot(&self, id: &ResponseId) -> Result<Option<String>, SubscribeError> {
        let Some(record) = self.store.response(id).await? else {
            return Ok(None);
        };
        if let Some(snapshot) = record.snapshot {
            return Ok(Some(snapshot));
        }
        let events = self.store.events(id, None).await?;
        let fold = RunFold::from_events(&events)
            .map_err(|e| SubscribeError::Store(StoreError::Corrupt(format!("log of {id}: {e}"))))?;
        Ok(responses::object(&fold).and_then(|o| serde_json::to_string(&o).ok()))
    }
}

/// The `Finish` op of a fold that has ended.
pub(crate) fn finish_op(fold: &RunFold) -> Option<Finish> {
    let object = responses::object(fold)?;
    if !object.status.is_terminal() {
        return None;
    }
    Some(Finish {
        response_id: object.id.clone(),
        terminal: None,
        status: object.status,
        snapshot: serde_json::to_string(&object).ok()?,
        output: object.output.into_owned(),
    })
}
