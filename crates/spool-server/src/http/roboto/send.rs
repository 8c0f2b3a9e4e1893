//! `POST /v1/ai/threads/{id}/messages`: the user's next message
//! (`SendMessageRequest`) starts the thread's next turn; client tools sent
//! with it join the thread's. Only on the user's turn: while the model
//! works or waits for client tool results, a 409.

use super::{RobotoError, conflict, data, load_thread, read_thread, start_turn};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use spool_core::projection::roboto::ThreadStatus;
use spool_core::request::roboto::{SendMessageBody, merge_client_tools};

pub async fn send_message(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<JsonBody<SendMessageBody>, ApiError>,
) -> Result<Json<Value>, RobotoError> {
    let JsonBody(body) = body?;
    let mut thread = load_thread(&state, &id).await?;
    let input = body.input()?;
    let read = read_thread(&state, &thread, None).await?;
    match read.end.status {
        ThreadStatus::UserTurn | ThreadStatus::NotStarted => {}
        ThreadStatus::RobotoTurn => {
            return Err(conflict(
                "The thread is generating; wait for the user's turn.",
            ));
        }
        ThreadStatus::ClientToolTurn => {
            return Err(conflict(
                "The thread waits for client tool results; submit them to tool-results first.",
            ));
        }
    }
    if merge_client_tools(&mut thread.metadata, body.client_tools.as_deref()) {
        state
            .runtime
            .store()
            .update_conversation(&thread.id, &thread.metadata)
            .await?;
    }
    start_turn(&state, &thread, input, |_| {}).await?;
    Ok(data(json!({})))
}
