//! `DELETE /v1/responses/{id}`: delete a response, its items and its log.

use super::parse_response_id;
use crate::http::AppState;
use crate::http::error::ApiError;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

pub async fn delete_response(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_response_id(&id)?;
    state.runtime.delete(&id).await?;
    Ok(Json(
        json!({"id": id, "object": "response", "deleted": true}),
    ))
}
