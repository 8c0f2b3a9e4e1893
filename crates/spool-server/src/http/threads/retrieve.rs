//! `GET /v1/threads/{id}`.

use super::{parse_thread_id, thread_json, thread_not_found};
use crate::http::AppState;
use crate::http::error::ApiError;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::Value;

pub async fn retrieve_thread(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_thread_id(&id)?;
    let thread = state
        .runtime
        .store()
        .conversation(&id)
        .await?
        .ok_or_else(|| thread_not_found(id.as_str()))?;
    Ok(Json(thread_json(&thread)))
}
