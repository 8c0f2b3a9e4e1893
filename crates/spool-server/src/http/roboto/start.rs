//! `POST /v1/ai/threads`: start a thread (`StartAgentThreadRequest`).
//!
//! The thread is a new conversation holding its model profile (a spool
//! agent or a model), system prompt and client tools; its first turn is
//! started at once with the request's messages. Everything is checked
//! before anything is written; if the turn cannot start, the conversation
//! is removed again. Answers the `AgentThreadRecord` once the turn is in
//! the thread's log.

use super::{RobotoError, bad_request, begun, data, record_json, resolve_profile, start_turn};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use crate::runtime::sink::now_ms;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::Value;
use spool_core::ids::ConversationId;
use spool_core::request::roboto::{StartThreadBody, merge_client_tools};
use spool_store::{ConversationRecord, NewConversation};
use std::collections::BTreeMap;

/// The header roboto's SDK names a caller's organisation with.
const ORG_HEADER: &str = "x-roboto-org-id";

pub async fn start_thread(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<JsonBody<StartThreadBody>, ApiError>,
) -> Result<Json<Value>, RobotoError> {
    let JsonBody(body) = body?;
    if headers.contains_key(ORG_HEADER) {
        return Err(bad_request(
            "spool has no organisations: start the thread without an org_id.",
            "org_id",
        ));
    }
    let input = body.input()?;
    let profile = resolve_profile(&state, body.model_profile.as_deref()).await?;
    let mut metadata = BTreeMap::new();
    profile
        .defaults(body.system_prompt.clone())
        .write_metadata(&mut metadata);
    merge_client_tools(&mut metadata, body.client_tools.as_deref());
    let store = state.runtime.store();
    let conversation = NewConversation {
        id: ConversationId::generate(state.runtime.ids()),
        created_at: now_ms().div_euclid(1000),
        metadata,
        items: Vec::new(),
    };
    store.create_conversation(&conversation).await?;
    let thread = ConversationRecord {
        id: conversation.id,
        created_at: conversation.created_at,
        metadata: conversation.metadata,
        active_response: None,
    };
    let created = match start_turn(&state, &thread, input, |_| {}).await {
        Ok(created) => created,
        Err(e) => {
            // Nothing ran on it: the thread is not kept.
            if let Err(cleanup) = store.delete_conversation(&thread.id).await {
                tracing::warn!(error = %cleanup, "a thread whose turn could not start was not removed");
            }
            return Err(e);
        }
    };
    // The record is the thread as the turn begins: what the model writes
    // next comes in the deltas (the SDK tells events only for those).
    let read = begun(&thread, &created)?;
    Ok(data(record_json(
        state.runtime.compaction(),
        &thread,
        &read,
        true,
    )?))
}
