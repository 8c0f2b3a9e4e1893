//! `DELETE /v1/agents/{agent_id}/session/{session_id}`: the session, its
//! conversation and its turns (409 while a turn runs).

use super::{agent, session_not_found, turn_running};
use crate::http::AppState;
use crate::http::error::ApiError;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use spool_core::ids::ConversationId;
use spool_store::ConversationAccess;

pub async fn delete_session(
    State(state): State<AppState>,
    Path((agent_id, session_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let store = state.runtime.store();
    agent(store.as_ref(), &agent_id).await?;
    let id = ConversationId::parse(&session_id).map_err(|_| session_not_found(&session_id))?;
    match store.delete_api_session(&agent_id, &id).await? {
        ConversationAccess::Done => Ok(StatusCode::OK),
        ConversationAccess::Busy(run) => Err(turn_running(&run)),
        ConversationAccess::NotFound | ConversationAccess::Duplicate(_) => {
            Err(session_not_found(&session_id))
        }
    }
}
