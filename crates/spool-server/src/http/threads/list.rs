//! `GET /v1/threads?limit=&after=`: threads, newest first. Every
//! conversation is a thread.

use super::{list_json, page_params, thread_json};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::QueryPairs;
use axum::Json;
use axum::extract::State;
use serde_json::Value;
use spool_core::ids::ConversationId;

pub async fn list_threads(
    State(state): State<AppState>,
    query: QueryPairs,
) -> Result<Json<Value>, ApiError> {
    let (limit, after) = page_params(&query)?;
    let after = after
        .map(|a| {
            ConversationId::parse(&a).map_err(|_| {
                ApiError::bad_request(
                    format!("No thread with id '{a}' in this list."),
                    Some("after"),
                    Some("invalid_value"),
                )
            })
        })
        .transpose()?;
    let page = state
        .runtime
        .store()
        .list_conversations(after.as_ref(), limit)
        .await?;
    let data = page.data.iter().map(thread_json).collect();
    Ok(Json(list_json(data, page.has_more)))
}
