//! `DELETE /v1/conversations/{id}`: delete a conversation and its item list.
//! Responses that belonged to it keep their own items.

use super::{not_found, parse_conversation_id};
use crate::http::AppState;
use crate::http::error::ApiError;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

pub async fn delete_conversation(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_conversation_id(&id)?;
    if !state.runtime.store().delete_conversation(&id).await? {
        return Err(not_found(id.as_str()));
    }
    Ok(Json(
        json!({"id": id.as_str(), "object": "conversation.deleted", "deleted": true}),
    ))
}
