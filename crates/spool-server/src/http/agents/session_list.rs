//! `GET /v1/agents/{agent_id}/sessions`: the agent's sessions with their
//! turns, paged by `start_index` and `limit` (`{data, has_more}`).

use super::{agent, page_params, session_json, turns};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::QueryPairs;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

pub async fn list_sessions(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    query: QueryPairs,
) -> Result<Json<Value>, ApiError> {
    let (start_index, limit) = page_params(&query)?;
    let store = state.runtime.store();
    agent(store.as_ref(), &agent_id).await?;
    let page = store
        .list_api_sessions(&agent_id, start_index, limit)
        .await?;
    let mut data = Vec::with_capacity(page.data.len());
    for record in &page.data {
        let turns = turns(store.as_ref(), &record.id).await?;
        data.push(session_json(record, &turns, None));
    }
    Ok(Json(json!({"data": data, "has_more": page.has_more})))
}
