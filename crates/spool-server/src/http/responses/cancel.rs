//! `POST /v1/responses/{id}/cancel`: cancel a background response.
//!
//! Idempotent: a cancelled response is returned as it is. A foreground
//! response, or one that ended another way, is a 400.

use super::{json_response, parse_response_id};
use crate::http::AppState;
use crate::http::error::ApiError;
use axum::extract::{Path, State};
use axum::response::Response;

pub async fn cancel_response(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_response_id(&id)?;
    let snapshot = state.runtime.cancel(&id).await?;
    Ok(json_response(snapshot))
}
