//! `POST /v1/conversations/{id}/items`: append items (at most 20). Refused
//! with 409 while a response is running on the conversation, so a turn's
//! items are never interleaved with others.

use super::{item_list, new_items, not_found, parse_conversation_id};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::Value;
use spool_store::ConversationAccess;

#[derive(Debug, Deserialize)]
pub struct AddItemsBody {
    items: Vec<Value>,
}

pub async fn create_items(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<AddItemsBody>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_conversation_id(&id)?;
    let items = new_items(body.items, state.runtime.ids())?;
    match state
        .runtime
        .store()
        .append_conversation_items(&id, &items)
        .await?
    {
        ConversationAccess::Done => Ok(Json(item_list(&items, false))),
        ConversationAccess::NotFound => Err(not_found(id.as_str())),
        ConversationAccess::Duplicate(item) => Err(ApiError::bad_request(
            format!("An item with id '{item}' is already in conversation '{id}'."),
            Some("items"),
            Some("duplicate_item"),
        )),
        ConversationAccess::Busy(response) => Err(ApiError::conflict(
            format!(
                "Conversation '{id}' has a response in progress ({response}); add items once it ends."
            ),
            "conversation_locked",
        )),
    }
}
