//! `DELETE /v1/agents/{agent_id}/session/{session_id}`: the session, its
//! conversation and its turns.

use super::{agent, session_not_found};
use crate::http::AppState;
use crate::http::error::ApiError;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use spool_core::ids::ConversationId;

pub async fn delete_session(
    State(state): State<AppState>,
    Path((agent_id, session_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let store = state.runtime.store();
    agent(store.as_ref(), &agent_id).await?;
    let id = ConversationId::parse(&session_id).map_err(|_| session_not_found(&session_id))?;
    if store.delete_api_session(&agent_id, &id).await? {
        Ok(StatusCode::OK)
    } else {
        Err(session_not_found(&session_id))
    }
}
