//! `POST /v1/responses/compact`: a conversation made short.
//!
//! The conversation (the `previous_response_id` chain, then `input`) is
//! summarised by the model, through its provider, in one call. The answer,
//! a `response.compaction`, holds the conversation's user messages and one
//! `compaction` item whose `encrypted_content` is the summary sealed by
//! this server ([`crate::compaction`]). Sent back in a later request's
//! input, that item gives the model the summary in place of everything it
//! stands for; an altered one is refused. Nothing is stored.

use super::json_response;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use crate::runtime::SummarizeError;
use crate::runtime::sink::now_ms;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use spool_core::ids::ResponseId;
use spool_core::item::{CompactionItem, Item, Role};
use spool_core::request::normalize_input;
use spool_core::run::Usage;

/// The body of `POST /v1/responses/compact`; unknown fields are ignored,
/// as the hosted API does.
#[derive(Debug, Deserialize)]
pub struct CompactBody {
    model: Option<String>,
    input: Option<Value>,
    previous_response_id: Option<String>,
    instructions: Option<String>,
}

/// `{"id", "object": "response.compaction", "created_at", "output", "usage"}`.
#[derive(Debug, Serialize)]
struct Compacted {
    id: ResponseId,
    object: &'static str,
    created_at: i64,
    output: Vec<Item>,
    usage: Usage,
}

pub async fn compact_response(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CompactBody>,
) -> Result<Response, ApiError> {
    let model = match body.model {
        Some(model) if !model.trim().is_empty() => model,
        _ => {
            return Err(ApiError::bad_request(
                "Missing required parameter: 'model'.",
                Some("model"),
                Some("missing_required_parameter"),
            ));
        }
    };
    let runtime = &state.runtime;
    let mut input = match body.input {
        None | Some(Value::Null) => Vec::new(),
        Some(input) => normalize_input(input, runtime.ids())?,
    };
    let mut history = match &body.previous_response_id {
        Some(prev) => {
            let prev = ResponseId::parse(prev).map_err(|e| {
                ApiError::bad_request(
                    format!("Invalid previous_response_id '{prev}': {e}."),
                    Some("previous_response_id"),
                    Some("invalid_value"),
                )
            })?;
            runtime.history(&prev).await?
        }
        None => Vec::new(),
    };
    if history.is_empty() && input.is_empty() {
        return Err(ApiError::bad_request(
            "Nothing to compact: give input or previous_response_id.",
            Some("input"),
            Some("missing_required_parameter"),
        ));
    }
    runtime.open_compactions(&mut history, &mut input)?;
    let conversation: Vec<Item> = history.into_iter().chain(input).collect();
    let (summary, usage) = runtime
        .summarize(&model, body.instructions.as_deref(), conversation.clone())
        .await
        .map_err(summarize_failed)?;
    let encrypted_content = runtime
        .compaction()
        .seal(&summary)
        .map_err(ApiError::internal)?;
    // The user's own words are kept as they were; everything else is the
    // summary's.
    let mut output: Vec<Item> = conversation
        .into_iter()
        .filter(|item| matches!(item, Item::Message(m) if m.role == Role::User))
        .collect();
    output.push(Item::Compaction(CompactionItem {
        id: runtime.ids().new_id("cmp"),
        encrypted_content,
        summary: None,
    }));
    let compacted = Compacted {
        id: ResponseId::generate(runtime.ids()),
        object: "response.compaction",
        created_at: now_ms().div_euclid(1000),
        output,
        usage,
    };
    let json = serde_json::to_string(&compacted).map_err(ApiError::internal)?;
    Ok(json_response(json))
}

fn summarize_failed(e: SummarizeError) -> ApiError {
    match e {
        SummarizeError::ModelUnavailable(e) => {
            ApiError::bad_request(e.to_string(), Some("model"), Some("model_not_found"))
        }
        SummarizeError::Provider(e) => ApiError {
            status: StatusCode::BAD_GATEWAY,
            message: e.to_string(),
            kind: "server_error",
            param: None,
            code: Some(e.code().as_str().to_owned()),
            retry_after: None,
        },
        SummarizeError::Empty => ApiError {
            status: StatusCode::BAD_GATEWAY,
            message: e.to_string(),
            kind: "server_error",
            param: None,
            code: Some("upstream_error".into()),
            retry_after: None,
        },
    }
}
