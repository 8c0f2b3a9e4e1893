//! `DELETE /v1/agents/{agent_id}`: the agent, its sessions and their turns.

use super::agent_not_found;
use crate::http::AppState;
use crate::http::error::ApiError;
use axum::extract::{Path, State};
use axum::http::StatusCode;

pub async fn delete_agent(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.runtime.store().delete_api_agent(&agent_id).await? {
        Ok(StatusCode::OK)
    } else {
        Err(agent_not_found(&agent_id))
    }
}
