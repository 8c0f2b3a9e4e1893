//! `GET /v1/toolgroups/{toolgroup_id}`: one toolgroup.

use super::{toolgroup_json, toolgroup_not_found};
use crate::http::AppState;
use crate::http::error::ApiError;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::Value;

pub async fn retrieve_toolgroup(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let server = state
        .toolgroups
        .get(&id)
        .ok_or_else(|| toolgroup_not_found(&id, &state))?;
    Ok(Json(toolgroup_json(&id, server)))
}
