//! `POST /v1/conversations`: create a conversation, optionally with items.

use super::{conversation_json, new_items};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use crate::runtime::sink::now_ms;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::Value;
use spool_core::ids::ConversationId;
use spool_core::request::check_metadata;
use spool_store::{ConversationRecord, NewConversation};
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
pub struct CreateConversationBody {
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    items: Option<Vec<Value>>,
}

pub async fn create_conversation(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CreateConversationBody>,
) -> Result<Json<Value>, ApiError> {
    let metadata = body.metadata.unwrap_or_default();
    check_metadata(&metadata)?;
    let ids = state.runtime.ids();
    let items = new_items(body.items.unwrap_or_default(), ids)?;
    let conversation = NewConversation {
        id: ConversationId::generate(ids),
        created_at: now_ms().div_euclid(1000),
        metadata,
        items,
    };
    state
        .runtime
        .store()
        .create_conversation(&conversation)
        .await?;
    Ok(Json(conversation_json(&ConversationRecord {
        id: conversation.id,
        created_at: conversation.created_at,
        metadata: conversation.metadata,
        active_response: None,
    })))
}
