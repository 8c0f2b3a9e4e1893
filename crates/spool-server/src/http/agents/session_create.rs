//! `POST /v1/agents/{agent_id}/session`: a new session, a conversation of
//! its own.

use super::agent;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use crate::runtime::sink::now_ms;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use spool_core::ids::ConversationId;
use spool_core::request::llama_stack::{CreateSessionBody, parse_body};
use spool_store::{ApiSessionRecord, NewConversation};
use std::collections::BTreeMap;

pub async fn create_session(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let body: CreateSessionBody = parse_body(body)?;
    let store = state.runtime.store();
    agent(store.as_ref(), &agent_id).await?;
    let now = now_ms();
    let conversation = NewConversation {
        id: ConversationId::generate(state.runtime.ids()),
        created_at: now.div_euclid(1000),
        metadata: BTreeMap::new(),
        items: Vec::new(),
    };
    store.create_conversation(&conversation).await?;
    store
        .create_api_session(&ApiSessionRecord {
            id: conversation.id.clone(),
            agent_id,
            name: body.session_name,
            created_at: now,
        })
        .await?;
    Ok(Json(json!({"session_id": conversation.id.as_str()})))
}
