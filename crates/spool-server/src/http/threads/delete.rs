//! `DELETE /v1/threads/{id}`: delete a thread (its conversation). Its
//! turns stay readable as responses.

use super::{parse_thread_id, thread_not_found};
use crate::http::AppState;
use crate::http::error::ApiError;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

pub async fn delete_thread(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_thread_id(&id)?;
    if !state.runtime.store().delete_conversation(&id).await? {
        return Err(thread_not_found(id.as_str()));
    }
    Ok(Json(
        json!({"id": id.as_str(), "object": "thread.deleted", "deleted": true}),
    ))
}
