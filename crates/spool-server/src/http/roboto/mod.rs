//! `/v1/ai/threads`: roboto's agent threads (seed 003), one file per
//! action, so that roboto's own SDK (`AgentThread`) drives spool.
//!
//! A roboto thread is a conversation (its model profile, system prompt and
//! client tools kept in its metadata beside the Codex threads' defaults),
//! and every turn that makes the model work is a background run on it. The
//! records roboto reads (`AgentThreadRecord`, `AgentThreadDelta`) are folded
//! from the thread's run logs by [`spool_core::projection::roboto`]; every
//! answer is roboto's envelope `{"data": …}`, every error roboto's
//! `{"error": {"error_code", "message"}}`, which the SDK raises as its own
//! exception classes.
//!
//! A continuation token names a position in the thread's logs (the last
//! run read, how far, whether it had ended, and the thread status there),
//! sealed with the server's key so clients can neither read nor forge it.
//! A poll with nothing new is answered from the token and one indexed read;
//! a token that is not this thread's, or names a position its logs no
//! longer have (a deleted run), is a 400.

pub mod delta;
pub mod events;
pub mod list;
pub mod retrieve;
pub mod send;
pub mod start;
pub mod tool_results;

use super::AppState;
use super::error::ApiError;
use crate::compaction::CompactionSeal;
use crate::runtime::StartedRun;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use spool_core::agent_config::selected_agent;
use spool_core::event::Envelope;
use spool_core::ids::{ConversationId, ResponseId};
use spool_core::projection::roboto::{
    ThreadDelta, ThreadFold, ThreadSnapshot, ThreadStatus, format_ts,
};
use spool_core::request::roboto::{Profile, client_tools, turn_body};
use spool_core::request::threads::ThreadDefaults;
use spool_core::request::{RequestError, RunRequest};
use spool_store::{ConversationRecord, PageError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// What a record says for the owner and organisation spool does not have.
const NO_OWNER: &str = "spool";
/// Most responses read per page when a thread's runs are listed.
const RUNS_PAGE: u32 = 100;

/// State the roboto routes share: a bell rung whenever one of them starts
/// a turn, so a long poll on a thread at rest wakes when it may have news,
/// and the folds of threads' finished runs.
#[derive(Clone)]
pub struct RobotoState {
    turns: Arc<watch::Sender<u64>>,
    folds: Arc<FoldCache>,
}

impl Default for RobotoState {
    fn default() -> Self {
        Self {
            turns: Arc::new(watch::channel(0).0),
            folds: Arc::default(),
        }
    }
}

impl RobotoState {
    fn turns(&self) -> watch::Receiver<u64> {
        self.turns.subscribe()
    }

    fn turn_started(&self) {
        self.turns.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Most threads whose folds are kept.
const CACHED_THREADS: usize = 256;

/// The folds of threads as far as they were last read (a log only grows),
/// so a poll folds only what was written since. Bounded: past
/// [`CACHED_THREADS`] threads, one is dropped for each added.
#[derive(Default)]
struct FoldCache {
    by_thread: Mutex<HashMap<ConversationId, CachedFold>>,
}

/// A thread folded through its runs, the last one perhaps only in part.
struct CachedFold {
    /// The runs folded, each with how many of its events were.
    runs: Vec<(ResponseId, u64)>,
    fold: ThreadFold,
}

impl CachedFold {
    /// Whether it begins the thread's `runs` and `cursor` is not inside it
    /// (at its end, or later): a position inside is checked by a full read.
    fn serves(&self, runs: &[ResponseId], cursor: Option<&Cursor>) -> bool {
        let begins = self.runs.len() <= runs.len()
            && self
                .runs
                .iter()
                .zip(runs)
                .all(|((cached, _), run)| cached == run);
        let cursor_after = match cursor.map(|c| &c.run) {
            None => true,
            Some(None) => self.runs.is_empty(),
            Some(Some((id, read, _))) => match self.runs.iter().position(|(run, _)| run == id) {
                None => true,
                Some(i) => i + 1 == self.runs.len() && self.runs[i].1 <= *read,
            },
        };
        begins && cursor_after
    }
}

impl FoldCache {
    /// The thread's kept fold, taken out while a reader extends it.
    fn take(&self, thread: &ConversationId) -> Option<CachedFold> {
        self.lock().remove(thread)
    }

    fn put(&self, thread: &ConversationId, cached: CachedFold) {
        let mut by_thread = self.lock();
        if by_thread.len() >= CACHED_THREADS
            && !by_thread.contains_key(thread)
            && let Some(evicted) = by_thread.keys().next().cloned()
        {
            by_thread.remove(&evicted);
        }
        by_thread.insert(thread.clone(), cached);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ConversationId, CachedFold>> {
        // The map is consistent at every step: a panic elsewhere cannot
        // leave it half-written.
        self.by_thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// An error in roboto's shape; the SDK maps `error_code` to its exception
/// class (`RobotoNotFoundException`, …).
#[derive(Debug)]
pub struct RobotoError(ApiError);

impl IntoResponse for RobotoError {
    fn into_response(self) -> Response {
        let ApiError {
            status, message, ..
        } = self.0;
        let code = match status {
            StatusCode::NOT_FOUND => "RobotoNotFoundException",
            StatusCode::CONFLICT => "RobotoConflictException",
            StatusCode::SERVICE_UNAVAILABLE => "RobotoServiceUnavailableException",
            s if s.is_client_error() => "RobotoInvalidRequestException",
            _ => "RobotoServiceException",
        };
        let body = json!({"error": {"error_code": code, "message": message}});
        (status, Json(body)).into_response()
    }
}

impl<E: Into<ApiError>> From<E> for RobotoError {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

/// roboto's answer envelope.
fn data(value: Value) -> Json<Value> {
    Json(json!({ "data": value }))
}

fn bad_request(message: impl Into<String>, param: &str) -> RobotoError {
    RobotoError(ApiError::bad_request(
        message,
        Some(param),
        Some("invalid_value"),
    ))
}

fn conflict(message: impl Into<String>) -> RobotoError {
    RobotoError(ApiError::conflict(message, "thread_busy"))
}

fn thread_not_found(id: &str) -> RobotoError {
    RobotoError(ApiError::not_found(format!("Thread '{id}' not found.")))
}

/// The thread, or a 404.
async fn load_thread(state: &AppState, id: &str) -> Result<ConversationRecord, RobotoError> {
    let not_found = || thread_not_found(id);
    let id = ConversationId::parse(id).map_err(|_| not_found())?;
    state
        .runtime
        .store()
        .conversation(&id)
        .await?
        .ok_or_else(not_found)
}

/// A position in a thread's logs, as a continuation token carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    thread: ConversationId,
    /// The last run read, how many of its events, and whether the last of
    /// them ended it; `None` before the thread's first run.
    run: Option<(ResponseId, u64, bool)>,
    /// The thread's status there.
    status: ThreadStatus,
}

fn status_name(status: ThreadStatus) -> &'static str {
    match status {
        ThreadStatus::NotStarted => "not_started",
        ThreadStatus::UserTurn => "user_turn",
        ThreadStatus::RobotoTurn => "roboto_turn",
        ThreadStatus::ClientToolTurn => "client_tool_turn",
    }
}

impl Cursor {
    /// The position, sealed with the server's key: opaque to clients,
    /// and not forgeable.
    fn token(&self, seal: &CompactionSeal) -> Result<String, RobotoError> {
        let run = match &self.run {
            Some((id, read, ended)) => format!("{}:{read}:{}", id.as_str(), u8::from(*ended)),
            None => "-".into(),
        };
        let text = format!(
            "v1:{}:{run}:{}",
            self.thread.as_str(),
            status_name(self.status)
        );
        seal.seal_token(&text)
            .map_err(|e| RobotoError(ApiError::internal(e)))
    }

    /// Reads a token of `thread`; anything else is a 400.
    fn parse(
        token: &str,
        thread: &ConversationId,
        seal: &CompactionSeal,
    ) -> Result<Self, RobotoError> {
        let invalid = || {
            bad_request(
                "Invalid continuation token: it was not issued for this thread.",
                "next_token",
            )
        };
        let text = seal.open_token(token).map_err(|_| invalid())?;
        let parts: Vec<&str> = text.split(':').collect();
        let status = |name: &str| {
            [
                ThreadStatus::NotStarted,
                ThreadStatus::UserTurn,
                ThreadStatus::RobotoTurn,
                ThreadStatus::ClientToolTurn,
            ]
            .into_iter()
            .find(|s| status_name(*s) == name)
        };
        let cursor = match parts.as_slice() {
            ["v1", t, "-", s] => Cursor {
                thread: ConversationId::parse(t).map_err(|_| invalid())?,
                run: None,
                status: status(s).ok_or_else(invalid)?,
            },
            ["v1", t, run, read, ended, s] => Cursor {
                thread: ConversationId::parse(t).map_err(|_| invalid())?,
                run: Some((
                    ResponseId::parse(run).map_err(|_| invalid())?,
                    read.parse().map_err(|_| invalid())?,
                    match *ended {
                        "0" => false,
                        "1" => true,
                        _ => return Err(invalid()),
                    },
                )),
                status: status(s).ok_or_else(invalid)?,
            },
            _ => return Err(invalid()),
        };
        if &cursor.thread != thread {
            return Err(invalid());
        }
        Ok(cursor)
    }
}

/// A thread folded from its logs: the fold, where it ended, and (when a
/// cursor was given) the snapshot at the cursor.
struct ThreadRead {
    fold: ThreadFold,
    end: Cursor,
    at_cursor: Option<ThreadSnapshot>,
}

/// The responses run on a thread, oldest first.
async fn thread_runs(
    state: &AppState,
    thread: &ConversationId,
) -> Result<Vec<ResponseId>, RobotoError> {
    let store = state.runtime.store();
    let mut runs = Vec::new();
    loop {
        let page = store
            .conversation_responses(thread, runs.last(), RUNS_PAGE)
            .await?;
        runs.extend(page.data);
        if !page.has_more {
            return Ok(runs);
        }
    }
}

/// Folds every run of `thread`, noting the snapshot at `cursor`. A cursor
/// that is not a position of the thread's logs is stale (its run was
/// deleted) or forged: a 400.
///
/// The fold is kept ([`FoldCache`]) where it ended: the next poll, whose
/// cursor is there or later, reads only the events written since.
async fn read_thread(
    state: &AppState,
    thread: &ConversationRecord,
    cursor: Option<&Cursor>,
) -> Result<ThreadRead, RobotoError> {
    let store = state.runtime.store();
    let runs = thread_runs(state, &thread.id).await?;
    let cursor_run = cursor.and_then(|c| c.run.as_ref());
    let kept = match state.roboto.folds.take(&thread.id) {
        Some(kept) if kept.serves(&runs, cursor) => Some(kept),
        Some(other) => {
            state.roboto.folds.put(&thread.id, other);
            None
        }
        None => None,
    };
    let (mut fold, mut read_runs) = match kept {
        Some(CachedFold { runs, fold }) => (fold, runs),
        None => (ThreadFold::new(), Vec::new()),
    };
    let mut at_cursor = match cursor {
        Some(Cursor { run: None, .. }) if read_runs.is_empty() => Some(fold.snapshot()),
        _ => None,
    };
    // The run read last may have been read in part: it is read on from there.
    let resume = read_runs.pop();
    let first = read_runs.len();
    let mut last: Option<(ResponseId, u64, bool)> = None;
    let total = runs.len();
    // Only the last run may be read on later: a fold with an earlier run
    // not ended (its run lost to a crash, say) is not kept.
    let mut keepable = true;
    for (index, run) in runs.into_iter().enumerate().skip(first) {
        let before = match &resume {
            Some((id, read)) if *id == run => *read,
            _ => 0,
        };
        let events: Vec<Envelope> = store.events(&run, before.checked_sub(1)).await?;
        let read = before + events.len() as u64;
        let ended = match events.last() {
            Some(envelope) => envelope.event.is_terminal(),
            None => fold.run().is_terminal() && before > 0,
        };
        let mark = cursor_run.filter(|(id, ..)| *id == run);
        if let Some((_, at, _)) = mark
            && *at == before
        {
            at_cursor = Some(fold.snapshot());
        }
        for envelope in &events {
            if let Some((_, at, _)) = mark
                && envelope.seq == *at
                && *at != before
            {
                at_cursor = Some(fold.snapshot());
            }
            fold.apply(envelope).map_err(ApiError::internal)?;
        }
        if let Some((_, at, was_ended)) = mark {
            if *at > read || (*was_ended && (*at != read || !ended)) {
                return Err(forged());
            }
            if *at == read {
                at_cursor = Some(fold.snapshot());
            }
        }
        keepable &= ended || index + 1 == total;
        read_runs.push((run.clone(), read));
        last = Some((run, read, ended));
    }
    if keepable && !read_runs.is_empty() {
        let kept = CachedFold {
            runs: read_runs,
            fold: fold.clone(),
        };
        state.roboto.folds.put(&thread.id, kept);
    }
    // The status a token carries is the logs' there, or `roboto_turn` for
    // a turn that had begun and was not yet read.
    if let (Some(cursor), Some(snapshot)) = (cursor, &at_cursor)
        && cursor.status != ThreadStatus::RobotoTurn
        && cursor.status != snapshot.status().unwrap_or(ThreadStatus::NotStarted)
    {
        return Err(forged());
    }
    if cursor.is_some() && at_cursor.is_none() {
        return Err(stale());
    }
    // A turn just started holds the thread before its first event is read.
    let last_run = last.as_ref().map(|(id, ..)| id);
    let status = match &thread.active_response {
        Some(active) if Some(active) != last_run => ThreadStatus::RobotoTurn,
        _ => fold.status(),
    };
    Ok(ThreadRead {
        end: Cursor {
            thread: thread.id.clone(),
            run: last,
            status,
        },
        fold,
        at_cursor,
    })
}

/// A new thread as its first turn begins: its `run.created` alone.
fn begun(thread: &ConversationRecord, created: &Envelope) -> Result<ThreadRead, RobotoError> {
    let mut fold = ThreadFold::new();
    fold.apply(created).map_err(ApiError::internal)?;
    let run = fold.run().header().map(|h| (h.id.clone(), 1, false));
    Ok(ThreadRead {
        end: Cursor {
            thread: thread.id.clone(),
            run,
            status: fold.status(),
        },
        fold,
        at_cursor: None,
    })
}

fn stale() -> RobotoError {
    bad_request(
        "Stale continuation token: the run it points into is no longer in this thread.",
        "next_token",
    )
}

fn forged() -> RobotoError {
    bad_request(
        "Invalid continuation token: it names no position of this thread.",
        "next_token",
    )
}

/// Whether the thread may have news since `cursor`, from memory and at
/// most one indexed read. `false` means certainly nothing new.
async fn may_have_news(state: &AppState, cursor: &Cursor) -> Result<bool, RobotoError> {
    let store = state.runtime.store();
    match &cursor.run {
        None => Ok(!store
            .conversation_responses(&cursor.thread, None, 1)
            .await?
            .data
            .is_empty()),
        Some((run, read, _)) if state.runtime.is_running(run) => {
            let after = read.checked_sub(1);
            Ok(!store.events(run, after).await?.is_empty())
        }
        // A run that ended where the token was taken, at rest: news is a
        // newer run.
        Some((run, _, true)) if cursor.status != ThreadStatus::RobotoTurn => {
            match store
                .conversation_responses(&cursor.thread, Some(run), 1)
                .await
            {
                Ok(newer) => Ok(!newer.data.is_empty()),
                Err(PageError::UnknownCursor { .. }) => Err(stale()),
                Err(e) => Err(e.into()),
            }
        }
        Some(_) => Ok(true),
    }
}

/// Waits until the thread may have news after `cursor`, or `deadline`.
/// `turns` was subscribed before the thread was last checked, so a turn
/// started since then is not missed.
async fn wait_for_news(
    state: &AppState,
    cursor: &Cursor,
    deadline: tokio::time::Instant,
    turns: &mut watch::Receiver<u64>,
) {
    match &cursor.run {
        Some((run, read, false)) if state.runtime.is_running(run) => {
            let mut events = state.runtime.subscribe(run);
            while let Ok(next) = tokio::time::timeout_at(deadline, events.next()).await {
                match next {
                    Some(Ok(envelope)) if envelope.seq < *read => continue,
                    _ => return,
                }
            }
        }
        _ => {
            let _ = tokio::time::timeout_at(deadline, turns.changed()).await;
            turns.borrow_and_update();
        }
    }
}

/// `AgentThreadRecord`.
fn record_json(
    seal: &CompactionSeal,
    thread: &ConversationRecord,
    read: &ThreadRead,
    load_messages: bool,
) -> Result<Value, RobotoError> {
    let defaults = ThreadDefaults::from_metadata(&thread.metadata);
    let messages: Vec<_> = if load_messages {
        read.fold.messages().iter().map(|m| m.coalesced()).collect()
    } else {
        Vec::new()
    };
    Ok(json!({
        "thread_id": thread.id.as_str(),
        "created": format_ts(thread.created_at.saturating_mul(1000)),
        "created_by": NO_OWNER,
        "org_id": NO_OWNER,
        "messages": serde_json::to_value(messages).map_err(ApiError::internal)?,
        "continuation_token": read.end.token(seal)?,
        "status": status_name(read.end.status),
        "activity": null,
        "title": null,
        "model_profile": Profile::name(&defaults),
        "visibility": "private",
        "origin": "api",
        "goals": [],
        "tasks": [],
    }))
}

/// `AgentThreadDelta`.
fn delta_json(
    seal: &CompactionSeal,
    delta: ThreadDelta,
    end: &Cursor,
) -> Result<Value, RobotoError> {
    let mut value = serde_json::to_value(&delta).map_err(ApiError::internal)?;
    value["status"] = json!(status_name(end.status));
    value["continuation_token"] = json!(end.token(seal)?);
    value["activity"] = Value::Null;
    Ok(value)
}

/// Starts a turn on `thread`: a background run with the thread's defaults
/// and client tools, `input` its input. Returns the run's `run.created`
/// once it is stored, so the turn is in the thread's logs when the caller
/// is answered.
async fn start_turn(
    state: &AppState,
    thread: &ConversationRecord,
    input: Value,
    prepare: impl FnOnce(&mut RunRequest),
) -> Result<Arc<Envelope>, RobotoError> {
    let defaults = ThreadDefaults::from_metadata(&thread.metadata);
    let tools = client_tools(&thread.metadata);
    let mut body = turn_body(&thread.id, &defaults, &tools, input);
    if let Some(name) = selected_agent(&body)? {
        let agent = state.runtime.store().agent(&name).await?.ok_or_else(|| {
            RobotoError(ApiError::not_found(format!("Agent '{name}' not found.")))
        })?;
        agent.apply(&mut body);
    }
    let mut request = RunRequest::parse(body, state.runtime.ids())?;
    prepare(&mut request);
    let StartedRun { mut events, .. } = state.runtime.start(request).await?;
    // The first event is `run.created`, delivered once it is durable; the
    // polls waiting on the thread wake then, when they can read the run.
    match events.next().await {
        Some(Ok(created)) => {
            state.roboto.turn_started();
            Ok(created)
        }
        Some(Err(e)) => Err(e.into()),
        None => Err(RobotoError(ApiError::internal(
            "a run ended before its first event",
        ))),
    }
}

/// What a `model_profile` names: `agent:NAME` or a stored agent's name is
/// that agent, anything else a model (checked when the turn starts).
async fn resolve_profile(state: &AppState, profile: Option<&str>) -> Result<Profile, RobotoError> {
    let Some(profile) = profile.filter(|p| !p.is_empty()) else {
        return Err(RobotoError(ApiError::from(RequestError {
            message: "model_profile is required: name a spool agent or a model.".into(),
            param: Some("model_profile".into()),
            code: "missing_required_parameter",
        })));
    };
    let store = state.runtime.store();
    if let Some(name) = profile.strip_prefix("agent:") {
        return match store.agent(name).await? {
            Some(_) => Ok(Profile::Agent(name.to_owned())),
            None => Err(RobotoError(ApiError::not_found(format!(
                "Agent '{name}' not found."
            )))),
        };
    }
    Ok(match store.agent(profile).await? {
        Some(_) => Profile::Agent(profile.to_owned()),
        None => Profile::Model(profile.to_owned()),
    })
}

/// `load_messages` as Python sends it (`True`/`False`).
fn flag(raw: Option<&str>, param: &str, default: bool) -> Result<bool, RobotoError> {
    match raw.map(str::to_ascii_lowercase).as_deref() {
        None | Some("") => Ok(default),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(other) => Err(bad_request(
            format!("Invalid value for '{param}': expected true or false, got '{other}'."),
            param,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spool_core::ids::SequentialIds;

    #[test]
    fn a_kept_fold_serves_cursors_at_or_past_its_end_on_the_same_runs() {
        let ids = SequentialIds::default();
        let (a, b, c) = (
            ResponseId::generate(&ids),
            ResponseId::generate(&ids),
            ResponseId::generate(&ids),
        );
        let thread = ConversationId::generate(&ids);
        let kept = CachedFold {
            runs: vec![(a.clone(), 10), (b.clone(), 7)],
            fold: ThreadFold::new(),
        };
        let at = |run: Option<(&ResponseId, u64)>| Cursor {
            thread: thread.clone(),
            run: run.map(|(id, read)| (id.clone(), read, true)),
            status: ThreadStatus::UserTurn,
        };
        let runs = [a.clone(), b.clone(), c.clone()];
        assert!(kept.serves(&runs, None));
        assert!(kept.serves(&runs, Some(&at(Some((&b, 7))))));
        // Further into the run it read last (it may have been read in part).
        assert!(kept.serves(&runs, Some(&at(Some((&b, 9))))));
        assert!(kept.serves(&runs, Some(&at(Some((&c, 3))))));
        // Inside it: a full read checks the position.
        assert!(!kept.serves(&runs, Some(&at(Some((&a, 10))))));
        assert!(!kept.serves(&runs, Some(&at(Some((&b, 3))))));
        assert!(!kept.serves(&runs, Some(&at(None))));
        // A run of it was deleted: it no longer begins the thread.
        assert!(!kept.serves(&[b.clone(), c.clone()], None));
        assert!(!kept.serves(std::slice::from_ref(&a), None));
    }
}
