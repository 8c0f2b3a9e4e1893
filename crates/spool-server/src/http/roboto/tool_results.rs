//! `POST /v1/ai/threads/{id}/tool-results`: the client's results for the
//! client tool calls the thread waits for (`SubmitToolResultsRequest`)
//! continue the turn in a new run whose input they are, each with its
//! status and runtime; a declined or failed result is told to the model as
//! such. Every awaited call is answered in one submission. Results when no
//! call is awaited are a 409; a result for a call that is not awaited, a
//! missing or a repeated one, a 400.

use super::{RobotoError, conflict, data, load_thread, read_thread, start_turn};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use spool_core::item::{ClientToolOutcome, Item};
use spool_core::projection::roboto::ThreadStatus;
use spool_core::request::roboto::{SubmitToolResultsBody, merge_client_tools};

pub async fn submit_tool_results(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<JsonBody<SubmitToolResultsBody>, ApiError>,
) -> Result<Json<Value>, RobotoError> {
    let JsonBody(body) = body?;
    let mut thread = load_thread(&state, &id).await?;
    let read = read_thread(&state, &thread, None).await?;
    if read.end.status != ThreadStatus::ClientToolTurn {
        return Err(conflict(
            "No client tool use awaits a result in this thread.",
        ));
    }
    let input = body.input(read.fold.awaited_calls())?;
    if merge_client_tools(&mut thread.metadata, body.client_tools.as_deref()) {
        state
            .runtime
            .store()
            .update_conversation(&thread.id, &thread.metadata)
            .await?;
    }
    let outcomes: Vec<_> = body.outcomes().collect();
    start_turn(&state, &thread, input, |request| {
        for item in &mut request.input {
            if let Item::FunctionCallOutput(output) = item
                && let Some((_, status, runtime_ms)) =
                    outcomes.iter().find(|(id, ..)| *id == output.call_id)
            {
                output.outcome = Some(ClientToolOutcome {
                    status: *status,
                    runtime_ms: *runtime_ms,
                });
            }
        }
    })
    .await?;
    Ok(data(json!({})))
}
