//! `DELETE /v1/conversations/{id}/items/{item_id}`: remove one item; answers
//! with the conversation.

use super::{conversation_json, not_found, parse_conversation_id};
use crate::http::AppState;
use crate::http::error::ApiError;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::Value;

pub async fn delete_item(
    State(state): State<AppState>,
    Path((id, item_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_conversation_id(&id)?;
    let store = state.runtime.store();
    let conversation = store
        .conversation(&id)
        .await?
        .ok_or_else(|| not_found(id.as_str()))?;
    if !store.delete_conversation_item(&id, &item_id).await? {
        return Err(ApiError::not_found(format!(
            "Item with id '{item_id}' not found in conversation '{id}'."
        )));
    }
    Ok(Json(conversation_json(&conversation)))
}
