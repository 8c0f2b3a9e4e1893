//! `GET /v1/conversations/{id}/items/{item_id}`.

use super::{not_found, parse_conversation_id};
use crate::http::AppState;
use crate::http::error::ApiError;
use axum::Json;
use axum::extract::{Path, State};
use spool_core::item::Item;

pub async fn retrieve_item(
    State(state): State<AppState>,
    Path((id, item_id)): Path<(String, String)>,
) -> Result<Json<Item>, ApiError> {
    let id = parse_conversation_id(&id)?;
    let store = state.runtime.store();
    if store.conversation(&id).await?.is_none() {
        return Err(not_found(id.as_str()));
    }
    store
        .conversation_item(&id, &item_id)
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "Item with id '{item_id}' not found in conversation '{id}'."
            ))
        })
}
