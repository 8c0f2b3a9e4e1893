//! The run manager: starts runs, tracks the live ones, cancels and recovers.
//!
//! # Layout
//! - this file: the manager: admitting runs, the active set, cancel,
//!   delete, shutdown.
//! - `run`: one run's task, its owner (whose drop ends the run on every
//!   path) and the drive loop around the agent.
//! - `claim`: a conversation claimed by one response.
//! - `compact`: the run of a `compaction_trigger` request.
//! - `errors`: why a start, cancel or delete is refused.
//! - [`writer`]: the group-commit writer, the only writer of the log.
//! - [`bus`]: fan-out of committed events to live subscribers, here and,
//!   on PostgreSQL, across instances (with cancel requests between them).
//! - `leases`: with a shared store, this instance's lease, renewed while
//!   it lives, and the end of runs lost with an instance that died.
//! - [`sink`]: the durable and the direct log a run writes to.
//! - [`subscribe`]: reading a run's log from the store and then live.
//! - [`recovery`]: ending runs a previous process left unfinished.
//! - [`store_health`]: whether the store takes writes, for `/readyz`.
//! - [`ids`]: the ids the server hands out.
//!
//! # One run
//! [`Runtime::start`] validates everything that can fail (model, previous
//! response) before anything is written, then spawns the run's task: it
//! emits `run.created` (written with the response row and its input) and
//! `run.started`, runs the agent until it returns, is cancelled or the
//! server shuts down, emits exactly one terminal event, writes the final
//! response object, and waits for the commit before it reports the run done.

pub mod bus;
mod claim;
mod compact;
mod errors;
pub mod ids;
mod leases;
pub mod recovery;
mod run;
pub mod sink;
pub mod store_health;
pub mod subscribe;
pub mod writer;

pub use errors::{CancelError, DeleteError, StartError};
pub(crate) use run::finish_op;

use crate::compaction::CompactionSeal;
use bus::{Bus, LocalBus};
use claim::ClaimGuard;
use errors::CANCEL_WAIT;
use futures::StreamExt;
use ids::Uuid7Ids;
use run::{RunOwner, RunParts, StoredLog};
use sink::{DIRECT_CAPACITY, DirectSink, DurableSink};
use spool_core::agent::{Agent, RunContext};
use spool_core::emit::{EventSink, RunEmitter};
use spool_core::fold::RunFold;
use spool_core::ids::{ConversationId, IdSource, ResponseId};
use spool_core::item::{ContentPart, Item, ItemStatus, MessageItem, Role, unanswerable_output};
use spool_core::projection::responses;
use spool_core::request::RunRequest;
use spool_core::request::{TextFormat, ToolChoice};
use spool_core::run::Usage;
use spool_core::status::RunStatus;
use spool_core::tool::McpTransport;
use spool_provider::mcp::{McpClients, url_allowed};
use spool_provider::{ModelAgent, ModelRouter};
use spool_provider::{ModelDelta, ModelRequest};
use spool_store::{ConversationAccess, ExecutionLeases, NewResponse, Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use store_health::StoreHealth;
use subscribe::{SubscribeError, Subscription};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use writer::Writer;

/// Longest `previous_response_id` chain followed, against cycles and abuse.
const MAX_CHAIN: usize = 10_000;
/// How often a cancel of a run executing elsewhere checks for its end.
const END_POLL: Duration = Duration::from_millis(20);

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

/// What the run manager bounds, so no request and no upstream can hold
/// more than its share of the server.
#[derive(Debug, Clone)]
pub struct RunLimits {
    /// Longest a run may last; past it the run fails
    /// (`run_deadline_exceeded`), whatever its agent or upstream is doing.
    pub deadline: Duration,
    /// Most runs executing at once; more are refused (429).
    pub max_concurrent_runs: usize,
    /// Most input items one request may carry.
    pub max_input_items: usize,
    /// Most tools one request may offer (functions and MCP servers).
    pub max_tools: usize,
    /// Longest model name, in bytes.
    pub max_model_name_bytes: usize,
}

impl Default for RunLimits {
    fn default() -> Self {
        use crate::config::*;
        Self {
            deadline: Duration::from_secs(DEFAULT_RUN_DEADLINE_SECS),
            max_concurrent_runs: DEFAULT_MAX_CONCURRENT_RUNS,
            max_input_items: DEFAULT_MAX_INPUT_ITEMS,
            max_tools: DEFAULT_MAX_TOOLS,
            max_model_name_bytes: DEFAULT_MAX_MODEL_NAME_BYTES,
        }
    }
}

impl RunLimits {
    /// Refuses a request over a limit before anything is done for it.
    fn check(&self, request: &RunRequest) -> Result<(), StartError> {
        let model_len = request.model.len();
        if model_len > self.max_model_name_bytes {
            return Err(StartError::OverLimit {
                param: "model",
                code: "string_above_max_length",
                message: format!(
                    "Invalid 'model': string too long. Expected a string with maximum length {}, but got a string with length {model_len} instead.",
                    self.max_model_name_bytes
                ),
            });
        }
        let items = request.input.len();
        if items > self.max_input_items {
            return Err(StartError::OverLimit {
                param: "input",
                code: "array_above_max_length",
                message: format!(
                    "Invalid 'input': array too long. Expected an array with maximum length {}, but got an array with length {items} instead.",
                    self.max_input_items
                ),
            });
        }
        let tools = request.tools.len() + request.mcp_servers.len();
        if tools > self.max_tools {
            return Err(StartError::OverLimit {
                param: "tools",
                code: "array_above_max_length",
                message: format!(
                    "Invalid 'tools': array too long. Expected an array with maximum length {}, but got an array with length {tools} instead.",
                    self.max_tools
                ),
            });
        }
        Ok(())
    }
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

/// How this instance shares its store with other instances.
pub struct Deployment {
    /// The live fan-out: in-process, or across the instances of a
    /// PostgreSQL deployment.
    pub bus: Arc<dyn Bus>,
    /// With a shared store: this instance's execution leases.
    pub leases: Option<LeaseSettings>,
    /// How long a stopping instance lets its runs finish before it ends the
    /// rest (`server_shutdown`).
    pub drain_grace: Duration,
}

impl Deployment {
    /// One instance alone on its store.
    pub fn single() -> Self {
        Self {
            bus: Arc::new(LocalBus::default()),
            leases: None,
            drain_grace: Duration::ZERO,
        }
    }
}

/// Execution leases of an instance sharing its store.
#[derive(Clone)]
pub struct LeaseSettings {
    pub leases: Arc<dyn ExecutionLeases>,
    /// How long a lease lasts unrenewed: an instance that dies is noticed
    /// this long after its last renewal (renewed every third of it).
    pub ttl: Duration,
}

/// The run manager. Cheap to share behind an `Arc`.
pub struct Runtime {
    mcp: McpAccess,
    store: Arc<dyn Store>,
    writer: Writer,
    bus: Arc<dyn Bus>,
    leases: Option<LeaseSettings>,
    drain_grace: Duration,
    models: ModelRouter,
    agents: Agents,
    active: Mutex<HashMap<ResponseId, ActiveRun>>,
    tracker: TaskTracker,
    /// Cancelled when the server begins to stop: no new run is admitted,
    /// and the readiness route answers 503.
    draining: CancellationToken,
    /// Cancelled when the drain's grace period is over: runs still going
    /// end `failed` with `server_shutdown` instead of being cut off mid-log.
    shutdown: CancellationToken,
    /// Cancelled once every run of this instance has ended: the lease
    /// keeper stops and the lease is given up.
    stopped: CancellationToken,
    /// Where the ids of runs, items and conversations come from.
    ids: Arc<dyn IdSource>,
    /// Seals and opens the summaries of compacted conversations.
    compaction: Arc<CompactionSeal>,
    limits: RunLimits,
    /// One permit per executing run, up to `limits.max_concurrent_runs`.
    run_slots: Arc<Semaphore>,
    /// Whether the store took the latest write.
    store_health: Arc<StoreHealth>,
}

impl Runtime {
    pub fn new(
        store: Arc<dyn Store>,
        deployment: Deployment,
        models: ModelRouter,
        agents: Agents,
        mcp: McpAccess,
        compaction: Arc<CompactionSeal>,
        limits: RunLimits,
    ) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        let Deployment {
            bus,
            leases,
            drain_grace,
        } = deployment;
        let run_slots = Arc::new(Semaphore::new(limits.max_concurrent_runs));
        let store_health = Arc::new(StoreHealth::default());
        let (writer, writer_task) = Writer::spawn(store.clone(), bus.clone(), store_health.clone());
        let runtime = Arc::new(Self {
            store,
            writer,
            bus,
            leases,
            drain_grace,
            models,
            agents,
            mcp,
            active: Mutex::new(HashMap::new()),
            tracker: TaskTracker::new(),
            draining: CancellationToken::new(),
            shutdown: CancellationToken::new(),
            stopped: CancellationToken::new(),
            ids: Arc::new(Uuid7Ids),
            compaction,
            limits,
            run_slots,
            store_health,
        });
        if let Some(requests) = runtime.bus.cancel_requests() {
            tokio::spawn(serve_cancel_requests(Arc::downgrade(&runtime), requests));
        }
        if let Some(settings) = runtime.leases.clone() {
            tokio::spawn(leases::keep(Arc::downgrade(&runtime), settings));
        }
        (runtime, writer_task)
    }

    /// Whether this instance has begun to stop (and takes no new runs).
    pub fn is_draining(&self) -> bool {
        self.draining.is_cancelled()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The MCP client sessions runs use (for listing a server's tools).
    pub fn mcp_clients(&self) -> &McpClients {
        &self.mcp.clients
    }

    /// `Ok` while the store takes writes; why the latest write failed else.
    pub fn store_writable(&self) -> Result<(), String> {
        self.store_health.status()
    }

    /// The source of fresh ids, for whatever a request creates.
    pub fn ids(&self) -> &dyn IdSource {
        self.ids.as_ref()
    }

    /// The seal of compaction summaries.
    pub fn compaction(&self) -> &CompactionSeal {
        &self.compaction
    }

    /// Opens the summaries of the `compaction` items the model is to see.
    /// One in `input` that this server did not seal is refused; one in the
    /// stored history that no longer opens (the key changed) is left out.
    pub fn open_compactions(
        &self,
        history: &mut [Item],
        input: &mut [Item],
    ) -> Result<(), StartError> {
        for item in history.iter_mut() {
            if let Item::Compaction(c) = item {
                match self.compaction.open(&c.encrypted_content) {
                    Ok(summary) => c.summary = Some(summary),
                    Err(e) => {
                        tracing::warn!(item = %c.id, error = %e, "a stored compaction no longer opens; left out");
                    }
                }
            }
        }
        for (index, item) in input.iter_mut().enumerate() {
            if let Item::Compaction(c) = item {
                let summary = self
                    .compaction
                    .open(&c.encrypted_content)
                    .map_err(|_| StartError::SealedContentInvalid { index })?;
                c.summary = Some(summary);
            }
        }
        Ok(())
    }

    /// Asks `model` for a summary of `items` (a conversation whose
    /// assistant followed `instructions`): one model call through its
    /// provider, without tools. Returns the summary and the call's usage.
    pub async fn summarize(
        &self,
        model: &str,
        instructions: Option<&str>,
        mut items: Vec<Item>,
    ) -> Result<(String, Usage), SummarizeError> {
        let provider = self.models.resolve(model)?;
        let mut prompt = SUMMARY_INSTRUCTIONS.to_owned();
        if let Some(instructions) = instructions {
            prompt.push_str("\n\nThe assistant's own instructions were:\n");
            prompt.push_str(instructions);
        }
        items.push(Item::Message(MessageItem {
            id: self.ids.new_id("msg"),
            status: ItemStatus::Completed,
            role: Role::User,
            content: vec![ContentPart::InputText {
                text: "Summarize the conversation above now.".to_owned(),
            }],
            phase: None,
        }));
        let request = ModelRequest {
            model: model.to_owned(),
            instructions: Some(prompt),
            items,
            tools: Vec::new(),
            tool_choice: ToolChoice::None,
            parallel_tool_calls: false,
            temperature: None,
            top_p: None,
            presence_penalty: None,
            frequency_penalty: None,
            max_output_tokens: None,
            text_format: TextFormat::Text,
            reasoning_effort: None,
            upstream_hints: Default::default(),
            logprobs: None,
            stop: Vec::new(),
        };
        let mut stream = provider.stream(request).await?;
        let mut summary = String::new();
        let mut usage = Usage::default();
        while let Some(delta) = stream.next().await {
            match delta? {
                ModelDelta::Text(text) => summary.push_str(&text),
                ModelDelta::Usage(u) => usage.add(&u),
                _ => {}
            }
        }
        if summary.trim().is_empty() {
            return Err(SummarizeError::Empty);
        }
        Ok((summary, usage))
    }

    /// The id source, shared (for an emitter outside a run).
    pub fn ids_arc(&self) -> Arc<dyn IdSource> {
        self.ids.clone()
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
        self.start_with_history(request, None).await
    }

    /// Like [`Runtime::start`], but with the history the run continues from
    /// given (`Some`) rather than looked up from `previous_response_id`:
    /// a WebSocket connection's cache holds chains that were never stored.
    pub async fn start_with_history(
        self: &Arc<Self>,
        request: RunRequest,
        known_history: Option<Vec<Item>>,
    ) -> Result<StartedRun, StartError> {
        self.limits.check(&request)?;
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
        let agent: Arc<dyn Agent> = match self.agents.get(&request.model) {
            _ if request.compaction_trigger => {
                // The model must exist before anything is written.
                self.models.resolve(&request.model)?;
                Arc::new(compact::CompactionAgent::new(self.clone()))
            }
            Some(agent) => agent,
            None => Arc::new(
                ModelAgent::new(self.models.resolve(&request.model)?)
                    .with_mcp(self.mcp.clients.clone()),
            ),
        };
        self.start_agent(request, agent, known_history).await
    }

    /// Starts a run of `agent` for `request`, continuing `known_history`
    /// if given, else the history `request` names.
    async fn start_agent(
        self: &Arc<Self>,
        mut request: RunRequest,
        agent: Arc<dyn Agent>,
        known_history: Option<Vec<Item>>,
    ) -> Result<StartedRun, StartError> {
        // Counted by the tracker from here on: a shutdown that begins while
        // this run is being admitted waits until it is refused or running
        // (and then ends it `server_shutdown`), so no run slips past it.
        let (admission, slot) = self.admit()?;
        let id = ResponseId::generate(self.ids());
        // Armed before the claim is asked for: if this request is dropped
        // while waiting, whatever was claimed is released.
        // A conversation the run opens is created with it, already claimed.
        let opens = request.opens_conversation;
        let mut claim = request
            .conversation
            .clone()
            .filter(|_| !opens)
            .map(|conversation| ClaimGuard::new(self.store.clone(), conversation, id.clone()));
        let mut history = match (&request.previous_response_id, &request.conversation) {
            (Some(_), _) if known_history.is_some() => known_history.unwrap_or_default(),
            (Some(prev), _) => self.history(prev).await?,
            (None, Some(_)) if opens => Vec::new(),
            (None, Some(conversation)) => {
                // A reference bears the id of the item it stands for.
                let input_ids: Vec<String> = request
                    .input
                    .iter()
                    .filter(|i| !matches!(i, Item::ItemReference(_)))
                    .map(|i| i.id().to_owned())
                    .collect();
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
        check_references(&history, &request.input)?;
        if let Some((index, call_id)) = unanswerable_output(&history, &request.input) {
            return Err(StartError::UnansweredCall {
                index,
                call_id: call_id.to_owned(),
            });
        }
        self.open_compactions(&mut history, &mut request.input)?;
        // Nothing is written yet: a run that a shutdown begun meanwhile
        // would end at once is refused instead.
        if self.draining.is_cancelled() {
            return Err(StartError::ShuttingDown);
        }
        let created_at = sink::now_ms().div_euclid(1000);
        let header = request.header(id.clone(), created_at);
        let modes = request.modes;
        let (sink, events, log): (Box<dyn EventSink>, Subscription, Option<StoredLog>) =
            if modes.store {
                let (live, failed) = self.bus.open(&id);
                let terminal = Arc::new(Mutex::new(None));
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
                    opens_conversation: opens,
                    input: request.input.clone(),
                };
                let sink = DurableSink::new(
                    create,
                    self.writer.sender().clone(),
                    failed.clone(),
                    terminal.clone(),
                );
                let events = Subscription::creator(id.clone(), self.store.clone(), live);
                (Box::new(sink), events, Some(StoredLog { failed, terminal }))
            } else {
                let (tx, rx) = mpsc::channel(DIRECT_CAPACITY);
                (
                    Box::new(DirectSink::new(tx)),
                    Subscription::direct(rx),
                    None,
                )
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
        // From here the owner ends the run on every path, even a panic.
        let owner = RunOwner::new(self.clone(), id.clone(), modes.store, claim, done_tx, slot);
        let parts = RunParts {
            emitter: RunEmitter::new(sink, self.ids.clone()),
            header,
            ctx: RunContext {
                response_id: id.clone(),
                request: Arc::new(request),
                history,
            },
            agent,
            cancel,
            log,
        };
        self.tracker.spawn(owner.run(parts));
        // The run's task is tracked now; the admission count can go.
        drop(admission);
        Ok(StartedRun {
            id,
            background: modes.background,
            events,
        })
    }

    /// Lets a run in unless the server is stopping or already runs as many
    /// as it may. The shutdown check and the tracker's count change
    /// together under the active-set lock, which [`Runtime::shutdown`] also
    /// takes to begin stopping. The slot is held until the run is closed.
    fn admit(
        &self,
    ) -> Result<
        (
            tokio_util::task::task_tracker::TaskTrackerToken,
            OwnedSemaphorePermit,
        ),
        StartError,
    > {
        let _active = self.active();
        if self.draining.is_cancelled() {
            return Err(StartError::ShuttingDown);
        }
        let slot = self
            .run_slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| StartError::TooManyRuns(self.limits.max_concurrent_runs))?;
        Ok((self.tracker.token(), slot))
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
    pub async fn history(&self, prev: &ResponseId) -> Result<Vec<Item>, StartError> {
        // The chain in one read: newest first, cut where a turn was deleted.
        let chain = self.store.response_chain(prev, MAX_CHAIN).await?;
        if chain.is_empty() {
            return Err(StartError::PreviousNotFound(prev.clone()));
        }
        if let Some(running) = chain.iter().find(|link| !link.status.is_terminal()) {
            return Err(StartError::PreviousInProgress(running.id.clone()));
        }
        let mut items = Vec::new();
        for link in chain.iter().rev() {
            items.extend(self.store.turn_items(&link.id).await?);
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
            if let Some(mut done) = self.cancel_here(id) {
                tokio::time::timeout(CANCEL_WAIT, done.wait_for(|d| *d))
                    .await
                    .map_err(|_| CancelError::NotStopped)?
                    .ok();
            } else if self.bus.request_cancel(id).await? {
                // Another instance executes it: its end is in the store
                // once that instance has cancelled it.
                self.wait_for_end(id).await?;
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

    /// Cancels a run if it executes in this process; returns what signals
    /// its end.
    fn cancel_here(&self, id: &ResponseId) -> Option<watch::Receiver<bool>> {
        let active = self.active();
        active.get(id).map(|run| {
            run.cancel.cancel();
            run.done.clone()
        })
    }

    /// Waits (at most [`CANCEL_WAIT`]) until a run executing elsewhere has
    /// its end stored.
    async fn wait_for_end(&self, id: &ResponseId) -> Result<(), CancelError> {
        let deadline = tokio::time::Instant::now() + CANCEL_WAIT;
        loop {
            match self.store.response(id).await? {
                Some(record) if !record.status.is_terminal() => {}
                _ => return Ok(()),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(CancelError::NotStopped);
            }
            tokio::time::sleep(END_POLL).await;
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

    /// Stops taking runs, lets live runs finish for the drain's grace
    /// period, ends the rest (`failed`, `server_shutdown`), waits for their
    /// ends to be stored, and gives up this instance's lease.
    pub async fn shutdown(&self) {
        {
            // Under the lock that admission takes: every run is either
            // admitted (and so tracked) before this, or refused after it.
            let _active = self.active();
            self.draining.cancel();
        }
        self.tracker.close();
        if !self.drain_grace.is_zero()
            && tokio::time::timeout(self.drain_grace, self.tracker.wait())
                .await
                .is_err()
        {
            tracing::warn!(
                runs = self.active().len(),
                "the drain's grace period is over; ending the runs still going"
            );
        }
        self.shutdown.cancel();
        self.tracker.wait().await;
        if let Err(e) = self.writer.flush().await {
            tracing::error!(error = %e, "the log could not be flushed at shutdown");
        }
        self.stopped.cancel();
        if let Some(settings) = &self.leases
            && let Err(e) = settings.leases.retire().await
        {
            tracing::warn!(error = %e, "cannot give up this instance's lease; it expires on its own");
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

/// Serves the cancel requests other instances send for runs executing
/// here, for as long as the runtime lives.
async fn serve_cancel_requests(
    runtime: std::sync::Weak<Runtime>,
    mut requests: mpsc::Receiver<ResponseId>,
) {
    while let Some(id) = requests.recv().await {
        let Some(runtime) = runtime.upgrade() else {
            return;
        };
        if runtime.cancel_here(&id).is_some() {
            tracing::info!(response_id = %id, "cancelled at another instance's request");
        }
    }
}

/// What the model is asked for when a conversation is compacted.
const SUMMARY_INSTRUCTIONS: &str = "You compact conversations. Write a summary of the conversation \
so far that lets the assistant continue it without the original: the user's goals and \
constraints, decisions made, facts and results learned (tool outputs included), work done, \
and what remains to do. Be concise but leave out nothing the assistant would need.";

/// Why a conversation could not be summarized.
#[derive(Debug, thiserror::Error)]
pub enum SummarizeError {
    #[error(transparent)]
    ModelUnavailable(#[from] spool_provider::ModelUnavailable),
    #[error(transparent)]
    Provider(#[from] spool_provider::ProviderError),
    #[error("the model returned an empty summary")]
    Empty,
}

/// Checks that every `item_reference` in `input` names an item of the
/// history or earlier in the input: the model is shown what it stands for.
fn check_references(history: &[Item], input: &[Item]) -> Result<(), StartError> {
    for (index, item) in input.iter().enumerate() {
        if let Item::ItemReference(reference) = item {
            let found = history
                .iter()
                .chain(&input[..index])
                .any(|i| i.id() == reference.id && !matches!(i, Item::ItemReference(_)));
            if !found {
                return Err(StartError::UnresolvedReference {
                    index,
                    id: reference.id.clone(),
                });
            }
        }
    }
    Ok(())
}
