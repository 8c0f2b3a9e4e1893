//! `GET /v1/agents/{agent_id}/session/{session_id}/turn/{turn_id}/step/{step_id}`:
//! one step of a turn (`{step}`).

use super::{agent, find_turn, session, turns};
use crate::http::AppState;
use crate::http::error::ApiError;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

pub async fn retrieve_step(
    State(state): State<AppState>,
    Path((agent_id, session_id, turn_id, step_id)): Path<(String, String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let store = state.runtime.store();
    agent(store.as_ref(), &agent_id).await?;
    let session = session(store.as_ref(), &agent_id, &session_id).await?;
    let turns = turns(store.as_ref(), &session.id).await?;
    let step = find_turn(&turns, &turn_id)?
        .step(&step_id)
        .ok_or_else(|| ApiError {
            param: Some("step_id".into()),
            ..ApiError::not_found(format!("Step '{step_id}' not found in turn '{turn_id}'."))
        })?;
    Ok(Json(json!({"step": step})))
}
