//! `GET /v1/ai/threads/{id}`: a thread's `AgentThreadRecord`, its messages
//! unless `load_messages=false`, with the token to poll from.

use super::{RobotoError, data, flag, load_thread, read_thread, record_json};
use crate::http::AppState;
use crate::http::extract::QueryPairs;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::Value;

pub async fn retrieve_thread(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: QueryPairs,
) -> Result<Json<Value>, RobotoError> {
    let load_messages = flag(query.get("load_messages"), "load_messages", true)?;
    let thread = load_thread(&state, &id).await?;
    let read = read_thread(&state, &thread, None).await?;
    Ok(data(record_json(
        state.runtime.compaction(),
        &thread,
        &read,
        load_messages,
    )?))
}
