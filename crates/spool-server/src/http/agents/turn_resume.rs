//! `POST /v1/agents/{agent_id}/session/{session_id}/turn/{turn_id}/resume`:
//! the caller's results for the client tools a turn waits for. The turn
//! continues in a new run; its stream opens by closing the waiting
//! tool-execution step with those results.

use super::{TurnRun, agent, run_turn, session, toolgroup_tools, turn_not_found, turns};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::Value;
use spool_core::projection::llama_stack::TurnOutcome;
use spool_core::request::llama_stack::{ResumeTurnBody, parse_body};

pub async fn resume_turn(
    State(state): State<AppState>,
    Path((agent_id, session_id, turn_id)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let body: ResumeTurnBody = parse_body(body)?;
    let store = state.runtime.store();
    let (_, config) = agent(store.as_ref(), &agent_id).await?;
    let session = session(store.as_ref(), &agent_id, &session_id).await?;
    let mut turns = turns(store.as_ref(), &session.id).await?;
    let position = turns
        .iter()
        .position(|t| t.turn_id == turn_id)
        .ok_or_else(|| turn_not_found(&turn_id))?;
    let not_awaiting = |why: &str| {
        ApiError::bad_request(
            format!("Turn '{turn_id}' {why}; only a turn awaiting input can be resumed."),
            Some("turn_id"),
            Some("turn_not_awaiting_input"),
        )
    };
    if turns[position].outcome() != &TurnOutcome::AwaitingInput {
        return Err(not_awaiting("is not awaiting input"));
    }
    if position + 1 != turns.len() {
        return Err(not_awaiting("was followed by a later turn"));
    }
    let turn = turns.swap_remove(position);
    let awaited: Vec<String> = turn
        .awaited_calls()
        .unwrap_or_default()
        .iter()
        .map(|c| c.call_id.clone())
        .collect();
    let input = body.input(&awaited)?;
    let mcp_tools = toolgroup_tools(&state, &config, None)?;
    run_turn(
        &state,
        &config,
        &session.id,
        TurnRun {
            input,
            tool_config: None,
            mcp_tools,
            continues: Some(turn),
            stream: body.stream.unwrap_or(false),
        },
    )
    .await
}
