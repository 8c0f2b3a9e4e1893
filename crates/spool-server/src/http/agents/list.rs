//! `GET /v1/agents`: agents in the order they were created, paged by
//! `start_index` and `limit` (`{data, has_more}`).

use super::{agent_json, page_params};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::QueryPairs;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

pub async fn list_agents(
    State(state): State<AppState>,
    query: QueryPairs,
) -> Result<Json<Value>, ApiError> {
    let (start_index, limit) = page_params(&query)?;
    let page = state
        .runtime
        .store()
        .list_api_agents(start_index, limit)
        .await?;
    let data = page
        .data
        .iter()
        .map(agent_json)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({"data": data, "has_more": page.has_more})))
}
