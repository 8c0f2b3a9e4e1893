//! `POST /v1/agents/{agent_id}/session/{session_id}/turn`: run a turn on
//! the session with the agent's config. Streams the turn (`stream: true`)
//! or answers with the finished `Turn`; the body is checked before
//! anything is written. While the session's last turn waits for client
//! tools, a new turn must answer their calls in its messages (role
//! `tool`), or the turn is resumed instead.

use super::{TurnRun, agent, run_turn, session, toolgroup_tools, turns};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::Value;
use spool_core::projection::llama_stack::TurnState;
use spool_core::request::llama_stack::{CreateTurnBody, parse_body};

pub async fn create_turn(
    State(state): State<AppState>,
    Path((agent_id, session_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let body: CreateTurnBody = parse_body(body)?;
    let store = state.runtime.store();
    let (_, config) = agent(store.as_ref(), &agent_id).await?;
    let session = session(store.as_ref(), &agent_id, &session_id).await?;
    let input = body.input()?;
    answers_a_waiting_turn(&turns(store.as_ref(), &session.id).await?, &input)?;
    let mcp_tools = toolgroup_tools(&state, &config, body.toolgroups.as_deref())?;
    run_turn(
        &state,
        &config,
        &session.id,
        TurnRun {
            input,
            tool_config: body.tool_config,
            mcp_tools,
            continues: None,
            stream: body.stream.unwrap_or(false),
        },
    )
    .await
}

/// Refuses a turn that would leave the calls of the session's waiting turn
/// unanswered (the model cannot be called with them open).
fn answers_a_waiting_turn(turns: &[TurnState], input: &[Value]) -> Result<(), ApiError> {
    let Some(awaited) = turns.last().and_then(TurnState::awaited_calls) else {
        return Ok(());
    };
    let answered = |call_id: &str| {
        input
            .iter()
            .any(|item| item["type"] == "function_call_output" && item["call_id"] == call_id)
    };
    match awaited.iter().find(|c| !answered(&c.call_id)) {
        None => Ok(()),
        Some(open) => Err(ApiError::bad_request(
            format!(
                "Turn '{}' awaits the result of tool call '{}': resume it, or answer the call \
                 in this turn's messages (role 'tool').",
                turns.last().map_or("", |t| t.turn_id.as_str()),
                open.call_id
            ),
            Some("messages"),
            Some("turn_awaiting_input"),
        )),
    }
}
