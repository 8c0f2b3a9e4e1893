//! `GET /v1/agents/{agent_id}`: the agent and its config.

use super::{agent, agent_json};
use crate::http::AppState;
use crate::http::error::ApiError;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::Value;

pub async fn retrieve_agent(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (record, _) = agent(state.runtime.store().as_ref(), &agent_id).await?;
    Ok(Json(agent_json(&record)?))
}
