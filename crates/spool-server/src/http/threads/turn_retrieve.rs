//! `GET /v1/threads/{id}/turns/{turn_id}`: one turn as the Codex SDKs
//! reduce it (so far, if it is still running).

use super::{TurnReduction, parse_thread_id, turn_not_found};
use crate::http::AppState;
use crate::http::error::ApiError;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::Value;
use spool_core::event::{Envelope, Event};
use spool_core::ids::{ConversationId, ResponseId};
use spool_store::Store;

pub async fn retrieve_turn(
    State(state): State<AppState>,
    Path((id, turn_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_thread_id(&id)?;
    let store = state.runtime.store();
    let (_, log) = turn_of_thread(store.as_ref(), &id, &turn_id).await?;
    let mut reduction = TurnReduction::default();
    for envelope in &log {
        reduction.apply(envelope)?;
    }
    Ok(Json(reduction.into_json(&id)))
}

/// The turn `turn_id` and its log so far, if it is a run on `thread`.
pub(crate) async fn turn_of_thread(
    store: &dyn Store,
    thread: &ConversationId,
    turn_id: &str,
) -> Result<(ResponseId, Vec<Envelope>), ApiError> {
    let turn = ResponseId::parse(turn_id).map_err(|_| turn_not_found(turn_id))?;
    let log = store.events(&turn, None).await?;
    match log.first().map(|e| &e.event) {
        Some(Event::RunCreated(created)) if created.run.conversation.as_ref() == Some(thread) => {
            Ok((turn, log))
        }
        _ => Err(turn_not_found(turn_id)),
    }
}
