//! `/v1/threads`: the Codex dialect's threads and turns, one file per action.
//!
//! A thread is a conversation (its defaults, a model or a named agent and
//! instructions, kept in the conversation's metadata) and a turn is a run
//! on it: the turn's input and output land in the conversation, and its log
//! is read through the codex projection. A turn streams its thread events
//! as SSE by default and as NDJSON on `Accept: application/x-ndjson`;
//! without streaming it is answered as the Codex SDKs reduce it: the
//! completed items, the final response and the usage.

pub mod create;
pub mod delete;
pub mod list;
pub mod retrieve;
pub mod turn_events;
pub mod turn_retrieve;
pub mod turns_create;
pub mod turns_list;

use super::error::ApiError;
use crate::runtime::sink::now_ms;
use crate::runtime::subscribe::{SubscribeError, Subscription};
use serde_json::{Value, json};
use spool_core::event::{Envelope, Event};
use spool_core::ids::{ConversationId, ResponseId};
use spool_core::projection::{CodexProjection, Projection};
use spool_core::request::threads::ThreadDefaults;
use spool_store::ConversationRecord;

/// Most threads or turns one page may hold, and how many it holds unasked.
const MAX_PAGE: u32 = 100;
const DEFAULT_PAGE: u32 = 20;

/// Parses a path id; an id that cannot be ours is simply not found.
pub(crate) fn parse_thread_id(id: &str) -> Result<ConversationId, ApiError> {
    ConversationId::parse(id).map_err(|_| thread_not_found(id))
}

pub(crate) fn thread_not_found(id: &str) -> ApiError {
    ApiError {
        param: Some("thread_id".into()),
        ..ApiError::not_found(format!("Thread with id '{id}' not found."))
    }
}

pub(crate) fn turn_not_found(id: &str) -> ApiError {
    ApiError {
        param: Some("turn_id".into()),
        ..ApiError::not_found(format!("Turn with id '{id}' not found in this thread."))
    }
}

/// The thread object.
pub(crate) fn thread_json(c: &ConversationRecord) -> Value {
    let defaults = ThreadDefaults::from_metadata(&c.metadata);
    json!({
        "id": c.id.as_str(),
        "object": "thread",
        "created_at": c.created_at,
        "model": defaults.model,
        "agent": defaults.agent,
        "instructions": defaults.instructions,
        "metadata": ThreadDefaults::caller_metadata(&c.metadata),
        "active_turn_id": c.active_response.as_ref().map(ResponseId::as_str),
    })
}

/// `limit` and `after` of a listing.
pub(crate) fn page_params(
    query: &super::extract::QueryPairs,
) -> Result<(u32, Option<String>), ApiError> {
    let limit = match query.get("limit") {
        None | Some("") => DEFAULT_PAGE,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    format!("Invalid value for 'limit': expected 1 to {MAX_PAGE}, got '{raw}'."),
                    Some("limit"),
                    Some("invalid_value"),
                )
            })?,
    };
    let after = query
        .get("after")
        .filter(|a| !a.is_empty())
        .map(str::to_owned);
    Ok((limit, after))
}

/// A list in the API's list shape.
pub(crate) fn list_json(data: Vec<Value>, has_more: bool) -> Value {
    let first = data.first().and_then(|d| d.get("id")).cloned();
    let last = data.last().and_then(|d| d.get("id")).cloned();
    json!({
        "object": "list",
        "data": data,
        "first_id": first,
        "last_id": last,
        "has_more": has_more,
    })
}

/// A turn as the Codex SDKs reduce its events: the items that completed,
/// the last agent message, the usage, and the failure if it failed.
#[derive(Default)]
pub(crate) struct TurnReduction {
    projection: CodexProjection,
    items: Vec<Value>,
    final_response: String,
    usage: Option<Value>,
    error: Option<Value>,
}

impl TurnReduction {
    pub(crate) fn apply(&mut self, envelope: &Envelope) -> Result<(), ApiError> {
        let mut frames = Vec::new();
        self.projection
            .apply(envelope, &mut |frame| frames.push(frame))
            .map_err(ApiError::internal)?;
        for frame in frames {
            let event: Value = serde_json::from_str(&frame.data).map_err(ApiError::internal)?;
            match frame.event {
                Some("item.completed") => {
                    let item = event["item"].clone();
                    if item["type"] == "agent_message"
                        && let Some(text) = item["text"].as_str()
                    {
                        self.final_response = text.to_owned();
                    }
                    self.items.push(item);
                }
                Some("turn.completed") => self.usage = Some(event["usage"].clone()),
                Some("turn.failed") => self.error = Some(event["error"].clone()),
                _ => {}
            }
        }
        Ok(())
    }

    /// Folds a live run's events until its end.
    pub(crate) async fn follow(&mut self, mut events: Subscription) -> Result<(), ApiError> {
        while let Some(next) = events.next().await {
            match next {
                Ok(envelope) => self.apply(&envelope)?,
                Err(SubscribeError::RunAborted(error)) => {
                    let envelope = Envelope {
                        seq: self.projection.fold().next_seq(),
                        ts_ms: now_ms(),
                        event: Event::RunFailed { error },
                    };
                    self.apply(&envelope)?;
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The turn object.
    pub(crate) fn into_json(self, thread: &ConversationId) -> Value {
        let fold = self.projection.fold();
        let header = fold.header();
        json!({
            "id": header.map(|h| h.id.as_str()),
            "object": "thread.turn",
            "thread_id": thread.as_str(),
            "created_at": header.map(|h| h.created_at),
            "model": header.map(|h| h.model.as_str()),
            "status": fold.status(),
            "items": self.items,
            "final_response": self.final_response,
            "usage": self.usage,
            "error": self.error,
        })
    }
}
