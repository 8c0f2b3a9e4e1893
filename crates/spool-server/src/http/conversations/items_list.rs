//! `GET /v1/conversations/{id}/items`: a page of a conversation's items
//! (`limit` 1–100, default 20; `order` default `desc`; `after`, `before`).

use super::{item_list, not_found, parse_conversation_id};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::QueryPairs;
use crate::http::responses::input_items::parse_page_query;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::Value;

pub async fn list_items(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: QueryPairs,
) -> Result<Json<Value>, ApiError> {
    let id = parse_conversation_id(&id)?;
    let store = state.runtime.store();
    if store.conversation(&id).await?.is_none() {
        return Err(not_found(id.as_str()));
    }
    let page = store
        .conversation_items(&id, &parse_page_query(&query)?)
        .await?;
    Ok(Json(item_list(&page.items, page.has_more)))
}
