//! `POST /v1/conversations/{id}`: replace a conversation's metadata.

use super::{conversation_json, not_found, parse_conversation_id};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::Value;
use spool_core::request::check_metadata;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
pub struct UpdateConversationBody {
    metadata: BTreeMap<String, String>,
}

pub async fn update_conversation(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateConversationBody>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_conversation_id(&id)?;
    check_metadata(&body.metadata)?;
    let store = state.runtime.store();
    if !store.update_conversation(&id, &body.metadata).await? {
        return Err(not_found(id.as_str()));
    }
    let conversation = store
        .conversation(&id)
        .await?
        .ok_or_else(|| not_found(id.as_str()))?;
    Ok(Json(conversation_json(&conversation)))
}
