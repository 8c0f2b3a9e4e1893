//! `POST /v1/agents/{agent_id}/session/{session_id}/turn`: run a turn on
//! the session with the agent's config. Streams the turn (`stream: true`)
//! or answers with the finished `Turn`; the body is checked before
//! anything is written.

use super::{TurnRun, agent, run_turn, session, toolgroup_tools};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::Value;
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
