//! `GET /v1/ai/threads`: threads, newest first, as roboto's paginated list
//! (`{"items", "next_token"}`): `limit` (1 to 100, 20 by default) and
//! `next_token` (the token the previous page gave). Records are listed
//! without their messages.

use super::{RobotoError, bad_request, data, read_thread, record_json};
use crate::http::AppState;
use crate::http::extract::QueryPairs;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use spool_core::ids::ConversationId;

const DEFAULT_PAGE: u32 = 20;
const MAX_PAGE: u32 = 100;

pub async fn list_threads(
    State(state): State<AppState>,
    query: QueryPairs,
) -> Result<Json<Value>, RobotoError> {
    let limit = match query.get("limit") {
        None | Some("") => DEFAULT_PAGE,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                bad_request(
                    format!("Invalid value for 'limit': expected 1 to {MAX_PAGE}, got '{raw}'."),
                    "limit",
                )
            })?,
    };
    let after = match query.get("next_token").filter(|t| !t.is_empty()) {
        None => None,
        Some(token) => Some(
            ConversationId::parse(token)
                .map_err(|_| bad_request("Invalid next_token.", "next_token"))?,
        ),
    };
    let page = state
        .runtime
        .store()
        .list_conversations(after.as_ref(), limit)
        .await?;
    let mut items = Vec::with_capacity(page.data.len());
    for thread in &page.data {
        let read = read_thread(&state, thread, None).await?;
        items.push(record_json(
            state.runtime.compaction(),
            thread,
            &read,
            false,
        )?);
    }
    let next_token = page
        .has_more
        .then(|| page.data.last().map(|t| t.id.as_str().to_owned()))
        .flatten();
    Ok(data(json!({ "items": items, "next_token": next_token })))
}
