//! `GET /v1/conversations/{id}`.

use super::{conversation_json, not_found, parse_conversation_id};
use crate::http::AppState;
use crate::http::error::ApiError;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::Value;

pub async fn retrieve_conversation(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_conversation_id(&id)?;
    let conversation = state
        .runtime
        .store()
        .conversation(&id)
        .await?
        .ok_or_else(|| not_found(id.as_str()))?;
    Ok(Json(conversation_json(&conversation)))
}
