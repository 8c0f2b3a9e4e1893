//! `GET /v1/agents/{agent_id}/session/{session_id}`: the session and its
//! turns, only those named by `turn_ids` when given (comma-separated or
//! repeated).

use super::{agent, session, session_json, turns};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::QueryPairs;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::Value;

pub async fn retrieve_session(
    State(state): State<AppState>,
    Path((agent_id, session_id)): Path<(String, String)>,
    query: QueryPairs,
) -> Result<Json<Value>, ApiError> {
    let store = state.runtime.store();
    agent(store.as_ref(), &agent_id).await?;
    let record = session(store.as_ref(), &agent_id, &session_id).await?;
    let turn_ids: Vec<String> = query
        .0
        .iter()
        .filter(|(k, _)| k == "turn_ids" || k == "turn_ids[]")
        .flat_map(|(_, v)| v.split(','))
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect();
    let filter = (!turn_ids.is_empty()).then_some(turn_ids.as_slice());
    let turns = turns(store.as_ref(), &record.id).await?;
    Ok(Json(session_json(&record, &turns, filter)))
}
