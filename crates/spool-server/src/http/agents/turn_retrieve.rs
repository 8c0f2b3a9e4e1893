//! `GET /v1/agents/{agent_id}/session/{session_id}/turn/{turn_id}`: the
//! `Turn`, as its runs' logs tell it.

use super::{agent, find_turn, session, turns};
use crate::http::AppState;
use crate::http::error::ApiError;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

pub async fn retrieve_turn(
    State(state): State<AppState>,
    Path((agent_id, session_id, turn_id)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let store = state.runtime.store();
    agent(store.as_ref(), &agent_id).await?;
    let session = session(store.as_ref(), &agent_id, &session_id).await?;
    let turns = turns(store.as_ref(), &session.id).await?;
    Ok(Json(json!(find_turn(&turns, &turn_id)?.turn())))
}
