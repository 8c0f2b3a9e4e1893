//! `GET /v1/threads/{id}/turns?limit=&after=`: a thread's turns, oldest
//! first, each as the Codex SDKs reduce it.

use super::{TurnReduction, list_json, page_params, parse_thread_id, thread_not_found};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::QueryPairs;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::Value;
use spool_core::ids::ResponseId;

pub async fn list_turns(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: QueryPairs,
) -> Result<Json<Value>, ApiError> {
    let (limit, after) = page_params(&query)?;
    let id = parse_thread_id(&id)?;
    let store = state.runtime.store();
    if store.conversation(&id).await?.is_none() {
        return Err(thread_not_found(id.as_str()));
    }
    let after = after
        .map(|a| {
            ResponseId::parse(&a).map_err(|_| {
                ApiError::bad_request(
                    format!("No turn with id '{a}' in this thread."),
                    Some("after"),
                    Some("invalid_value"),
                )
            })
        })
        .transpose()?;
    let page = store
        .conversation_responses(&id, after.as_ref(), limit)
        .await?;
    let mut data = Vec::with_capacity(page.data.len());
    for turn in &page.data {
        let mut reduction = TurnReduction::default();
        for envelope in store.events(turn, None).await? {
            reduction.apply(&envelope)?;
        }
        data.push(reduction.into_json(&id));
    }
    Ok(Json(list_json(data, page.has_more)))
}
