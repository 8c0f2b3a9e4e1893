//! `DELETE /v1/agents/{agent_id}`: the agent, its sessions and their turns
//! (409 while a turn runs).

use super::{agent_not_found, turn_running};
use crate::http::AppState;
use crate::http::error::ApiError;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use spool_store::ConversationAccess;

pub async fn delete_agent(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    match state.runtime.store().delete_api_agent(&agent_id).await? {
        ConversationAccess::Done => Ok(StatusCode::OK),
        ConversationAccess::Busy(run) => Err(turn_running(&run)),
        ConversationAccess::NotFound | ConversationAccess::Duplicate(_) => {
            Err(agent_not_found(&agent_id))
        }
    }
}
