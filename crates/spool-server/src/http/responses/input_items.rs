//! `GET /v1/responses/{id}/input_items`: a page of a response's input.
//!
//! Items come in their normalized form (a string input is a message item
//! with an id and an `input_text` part). `limit` is 1–100 (default 20),
//! `order` `asc` or `desc` (default `desc`), `after`/`before` item ids.

use super::parse_response_id;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::QueryPairs;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use spool_core::ids::parse_item_id;
use spool_core::item::Item;
use spool_store::{ItemPageQuery, Order};

const DEFAULT_LIMIT: u32 = 20;
const MAX_LIMIT: u32 = 100;

fn cursor(query: &QueryPairs, name: &str) -> Result<Option<String>, ApiError> {
    query
        .get(name)
        .filter(|v| !v.is_empty())
        .map(|v| {
            parse_item_id(v).map_err(|e| {
                ApiError::bad_request(
                    format!("Invalid '{name}': {e}."),
                    Some(name),
                    Some("invalid_value"),
                )
            })
        })
        .transpose()
}

pub(crate) fn parse_page_query(query: &QueryPairs) -> Result<ItemPageQuery, ApiError> {
    let limit = match query.get("limit") {
        None => DEFAULT_LIMIT,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(
                    format!(
                        "Invalid 'limit': expected an integer from 1 to {MAX_LIMIT}, got '{raw}'."
                    ),
                    Some("limit"),
                    Some("invalid_value"),
                ));
            }
        },
    };
    let order = match query.get("order") {
        None | Some("desc") => Order::Desc,
        Some("asc") => Order::Asc,
        Some(other) => {
            return Err(ApiError::bad_request(
                format!("Invalid 'order': expected 'asc' or 'desc', got '{other}'."),
                Some("order"),
                Some("invalid_value"),
            ));
        }
    };
    Ok(ItemPageQuery {
        limit,
        order,
        after: cursor(query, "after")?,
        before: cursor(query, "before")?,
    })
}

pub async fn list_input_items(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: QueryPairs,
) -> Result<Json<Value>, ApiError> {
    let id = parse_response_id(&id)?;
    let store = state.runtime.store();
    if store.response(&id).await?.is_none() {
        return Err(ApiError::response_not_found(id.as_str()));
    }
    let page_query = parse_page_query(&query)?;
    let page = store.input_items(&id, &page_query).await?;
    Ok(Json(json!({
        "object": "list",
        "first_id": page.items.first().map(Item::id),
        "last_id": page.items.last().map(Item::id),
        "has_more": page.has_more,
        "data": page.items,
    })))
}
