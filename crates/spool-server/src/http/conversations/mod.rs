//! `/v1/conversations`: one file per action.
//!
//! A conversation is a durable list of items. A response created with
//! `conversation` sees its items as history, and its input and output are
//! appended to it; one response runs on a conversation at a time, and a
//! second is refused with 409 (`conversation_locked`) until the first ends.

pub mod create;
pub mod delete;
pub mod item_delete;
pub mod item_retrieve;
pub mod items_create;
pub mod items_list;
pub mod retrieve;
pub mod update;

use super::error::ApiError;
use serde_json::{Value, json};
use spool_core::ids::ConversationId;
use spool_core::ids::IdSource;
use spool_core::item::Item;
use spool_core::request::{RequestError, normalize_items};
use spool_store::ConversationRecord;

/// Most items one request may add, as in the hosted API.
const MAX_ITEMS_PER_REQUEST: usize = 20;

/// Parses a path id; an id that cannot be ours is simply not found.
pub(crate) fn parse_conversation_id(id: &str) -> Result<ConversationId, ApiError> {
    ConversationId::parse(id).map_err(|_| not_found(id))
}

pub(crate) fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Conversation with id '{id}' not found."))
}

/// The conversation object.
pub(crate) fn conversation_json(c: &ConversationRecord) -> Value {
    json!({
        "id": c.id.as_str(),
        "object": "conversation",
        "created_at": c.created_at,
        "metadata": c.metadata,
    })
}

/// Normalizes items a request adds (at most 20).
pub(crate) fn new_items(items: Vec<Value>, ids: &dyn IdSource) -> Result<Vec<Item>, ApiError> {
    if items.len() > MAX_ITEMS_PER_REQUEST {
        return Err(ApiError::bad_request(
            format!("At most {MAX_ITEMS_PER_REQUEST} items may be added at once."),
            Some("items"),
            Some("invalid_value"),
        ));
    }
    normalize_items(items, "items", ids).map_err(|e: RequestError| e.into())
}

/// A list of items in the API's list shape.
pub(crate) fn item_list(items: &[Item], has_more: bool) -> Value {
    json!({
        "object": "list",
        "data": items,
        "first_id": items.first().map(Item::id),
        "last_id": items.last().map(Item::id),
        "has_more": has_more,
    })
}
