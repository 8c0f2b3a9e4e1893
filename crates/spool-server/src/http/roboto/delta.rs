//! `GET /v1/ai/threads/{id}/delta?next_token=…&wait_ms=…`: what is new in
//! a thread since a continuation token (`AgentThreadDelta`): new messages
//! whole and grown ones with only their new blocks, by message index, the
//! thread status and the next token. Without a token, the whole thread.
//!
//! A poll with nothing new is answered from the token and at most one
//! indexed read. `wait_ms` (at most 60 000) holds a poll with nothing new
//! until something happens or the time is up: the live run's events, or a
//! new turn on a thread at rest.

use super::{
    Cursor, RobotoError, bad_request, data, delta_json, load_thread, may_have_news, read_thread,
    status_name, thread_not_found, wait_for_news,
};
use crate::http::AppState;
use crate::http::extract::QueryPairs;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use spool_core::ids::ConversationId;
use std::time::Duration;

/// The longest a poll may wait.
const MAX_WAIT_MS: u64 = 60_000;

pub async fn thread_delta(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: QueryPairs,
) -> Result<Json<Value>, RobotoError> {
    let wait = match query.get("wait_ms") {
        None | Some("") => Duration::ZERO,
        Some(raw) => raw
            .parse::<u64>()
            .ok()
            .filter(|ms| *ms <= MAX_WAIT_MS)
            .map(Duration::from_millis)
            .ok_or_else(|| {
                bad_request(
                    format!(
                        "Invalid value for 'wait_ms': expected 0 to {MAX_WAIT_MS}, got '{raw}'."
                    ),
                    "wait_ms",
                )
            })?,
    };
    let deadline = tokio::time::Instant::now() + wait;
    // A sealed token names its thread: the thread is read only when there
    // is news to read, so a poll with nothing new costs one indexed read.
    let thread_id = ConversationId::parse(&id).map_err(|_| thread_not_found(&id))?;
    let mut cursor = match query.get("next_token").filter(|t| !t.is_empty()) {
        Some(token) => Some(Cursor::parse(
            token,
            &thread_id,
            state.runtime.compaction(),
        )?),
        None => None,
    };
    let mut turns = state.roboto.turns();
    loop {
        let news = match &cursor {
            Some(cursor) => may_have_news(&state, cursor).await?,
            None => true,
        };
        let waiting = tokio::time::Instant::now() < deadline;
        if news {
            let thread = load_thread(&state, &id).await?;
            let read = read_thread(&state, &thread, cursor.as_ref()).await?;
            let delta = match &read.at_cursor {
                Some(before) => read.fold.delta_since(before),
                None => read.fold.delta_since(&Default::default()),
            };
            let status_changed = cursor.as_ref().is_none_or(|c| c.status != read.end.status);
            if !delta.is_empty() || status_changed || !waiting {
                return Ok(data(delta_json(
                    state.runtime.compaction(),
                    delta,
                    &read.end,
                )?));
            }
            // Events that show nothing (a step began, a status): the
            // position moves on and the poll goes on waiting from there.
            cursor = Some(read.end);
        } else if let Some(cursor) = cursor.as_ref().filter(|_| !waiting) {
            return Ok(nothing_new(
                cursor,
                query.get("next_token").unwrap_or_default(),
            ));
        }
        if let Some(cursor) = &cursor {
            wait_for_news(&state, cursor, deadline, &mut turns).await;
        }
    }
}

/// The answer to a poll with nothing new: the same token and status.
fn nothing_new(cursor: &Cursor, token: &str) -> Json<Value> {
    data(json!({
        "messages_by_idx": {},
        "status": status_name(cursor.status),
        "continuation_token": token,
        "activity": null,
    }))
}
