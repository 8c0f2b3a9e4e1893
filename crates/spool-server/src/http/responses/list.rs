//! `GET /v1/responses` (without a WebSocket upgrade): a page of the stored
//! responses, as llama-stack lists them (`/v1/openai/v1/responses`).
//!
//! `limit` is 1–100 (default 50), `order` `asc` or `desc` by creation
//! (default `desc`), `after` a response id, `model` keeps only the
//! responses of that model. Each is the response object `GET
//! /v1/responses/{id}` returns, running ones as they stand.

use super::parse_response_id;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::QueryPairs;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use spool_store::Order;

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 100;

pub async fn list_responses(
    State(state): State<AppState>,
    query: QueryPairs,
) -> Result<Json<Value>, ApiError> {
    let limit = match query.get("limit").filter(|l| !l.is_empty()) {
        None => DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    format!(
                        "Invalid 'limit': expected an integer from 1 to {MAX_LIMIT}, got '{raw}'."
                    ),
                    Some("limit"),
                    Some("invalid_value"),
                )
            })?,
    };
    let order = match query.get("order") {
        None | Some("") | Some("desc") => Order::Desc,
        Some("asc") => Order::Asc,
        Some(other) => {
            return Err(ApiError::bad_request(
                format!("Invalid 'order': expected 'asc' or 'desc', got '{other}'."),
                Some("order"),
                Some("invalid_value"),
            ));
        }
    };
    let after = match query.get("after").filter(|a| !a.is_empty()) {
        None => None,
        Some(id) => Some(parse_response_id(id).map_err(|_| {
            ApiError::bad_request(
                format!("No response with id '{id}' to list after."),
                Some("after"),
                Some("invalid_value"),
            )
        })?),
    };
    let model = query.get("model").filter(|m| !m.is_empty());
    let runtime = &state.runtime;
    let page = runtime
        .store()
        .list_responses(after.as_ref(), limit, model, order)
        .await?;
    let mut data = Vec::with_capacity(page.data.len());
    for id in &page.data {
        // A response deleted since the page was read is left out.
        if let Some(snapshot) = runtime.snapshot(id).await? {
            data.push(serde_json::from_str::<Value>(&snapshot).map_err(ApiError::internal)?);
        }
    }
    Ok(Json(json!({
        "object": "list",
        "first_id": data.first().and_then(|r| r.get("id")),
        "last_id": data.last().and_then(|r| r.get("id")),
        "has_more": page.has_more,
        "data": data,
    })))
}
