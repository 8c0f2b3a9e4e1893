//! `POST /v1/threads`: create a thread (an empty conversation with the
//! defaults its turns run with).

use super::thread_json;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use crate::runtime::sink::now_ms;
use axum::Json;
use axum::extract::State;
use serde_json::Value;
use spool_core::ids::ConversationId;
use spool_core::request::threads::CreateThreadBody;
use spool_store::{ConversationRecord, NewConversation};

pub async fn create_thread(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CreateThreadBody>,
) -> Result<Json<Value>, ApiError> {
    let (defaults, mut metadata) = body.parse()?;
    let store = state.runtime.store();
    if let Some(agent) = &defaults.agent
        && store.agent(agent).await?.is_none()
    {
        return Err(ApiError {
            param: Some("agent".into()),
            ..ApiError::not_found(format!("Agent '{agent}' not found."))
        });
    }
    defaults.write_metadata(&mut metadata);
    let conversation = NewConversation {
        id: ConversationId::generate(state.runtime.ids()),
        created_at: now_ms().div_euclid(1000),
        metadata,
        items: Vec::new(),
    };
    store.create_conversation(&conversation).await?;
    Ok(Json(thread_json(&ConversationRecord {
        id: conversation.id,
        created_at: conversation.created_at,
        metadata: conversation.metadata,
        active_response: None,
    })))
}
