//! The llama-stack Agents API (seed 004), one file per action, served
//! under `/v1` (llama-stack-client 0.2.x) and `/v1alpha` (0.3.x).
//!
//! An agent is an [`ApiAgentRecord`] holding the caller's agent config; a
//! session is a conversation (recorded as the agent's session); a turn is
//! one run on it, or several when the model called the caller's tools: the
//! run that waits and the run that resumes it (its header names the turn,
//! `continues_turn`) are one turn, whose id is its first run's. Turns,
//! their steps and the turn stream are all read from the runs' logs by the
//! `llama_stack` projection; nothing about a turn is stored twice.

pub mod create;
pub mod delete;
pub mod list;
pub mod retrieve;
pub mod session_create;
pub mod session_delete;
pub mod session_list;
pub mod session_retrieve;
pub mod shields_list;
pub mod step_retrieve;
pub mod toolgroup_retrieve;
pub mod toolgroups_list;
pub mod tools_list;
pub mod turn_create;
pub mod turn_resume;
pub mod turn_retrieve;

use super::AppState;
use super::error::ApiError;
use super::extract::QueryPairs;
use super::sse::{CancelOnDrop, Framing, projected_stream};
use crate::runtime::StartedRun;
use crate::runtime::sink::now_ms;
use crate::runtime::subscribe::SubscribeError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use spool_core::agent_config::selected_agent;
use spool_core::event::{Envelope, Event};
use spool_core::ids::SequentialIds;
use spool_core::ids::{ConversationId, ResponseId};
use spool_core::projection::llama_stack::{
    LlamaStackProjection, TurnOutcome, TurnState, iso8601, session_turns,
};
use spool_core::projection::{Dialect, Projection};
use spool_core::request::llama_stack::{
    AgentConfig, ToolConfig, resolve_shields, resolve_toolgroups,
};
use spool_core::request::{CreateResponseBody, RunRequest};
use spool_core::tool::McpServerSpec;
use spool_store::{ApiAgentRecord, ApiSessionRecord, Store};

pub(crate) fn toolgroup_not_found(id: &str, state: &AppState) -> ApiError {
    let known: Vec<&str> = state.toolgroups.keys().map(String::as_str).collect();
    ApiError {
        param: Some("toolgroup_id".into()),
        ..ApiError::not_found(format!(
            "Toolgroup '{id}' not found; this server has {}.",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ))
    }
}

/// A toolgroup object for the MCP server `server`.
pub(crate) fn toolgroup_json(id: &str, server: &Value) -> Value {
    json!({
        "identifier": id,
        "provider_id": tools_list::MCP_PROVIDER,
        "provider_resource_id": id,
        "type": "tool_group",
        "mcp_endpoint": server.get("server_url").map(|url| json!({"uri": url})),
        "args": null,
    })
}

/// The MCP server an `mcp` tool of the config names.
pub(crate) fn mcp_spec(server: &Value) -> Result<McpServerSpec, ApiError> {
    let probe = CreateResponseBody {
        model: Some("probe".into()),
        input: Some(json!("probe")),
        trusted_tools: vec![server.clone()],
        ..CreateResponseBody::default()
    };
    // Checked when the config was loaded.
    RunRequest::parse(probe, &SequentialIds::default())
        .map_err(ApiError::internal)?
        .mcp_servers
        .pop()
        .ok_or_else(|| ApiError::internal("a toolgroup is not an MCP server"))
}

/// The MCP tools the agent's toolgroups and the turn's name.
pub(crate) fn toolgroup_tools(
    state: &AppState,
    config: &AgentConfig,
    turn: Option<&[Value]>,
) -> Result<Vec<Value>, ApiError> {
    let mut tools = resolve_toolgroups(
        config.toolgroups.as_deref().unwrap_or_default(),
        "agent_config.toolgroups",
        &state.toolgroups,
    )?;
    tools.extend(resolve_toolgroups(
        turn.unwrap_or_default(),
        "toolgroups",
        &state.toolgroups,
    )?);
    Ok(tools)
}

/// 409 while a turn runs on a session being deleted.
pub(crate) fn turn_running(response: &spool_core::ids::ResponseId) -> ApiError {
    ApiError::conflict(
        format!(
            "A turn is running on this session (run '{}'); delete it once the turn ends.",
            response.as_str()
        ),
        "turn_running",
    )
}

pub(crate) fn agent_not_found(id: &str) -> ApiError {
    ApiError {
        param: Some("agent_id".into()),
        ..ApiError::not_found(format!("Agent '{id}' not found."))
    }
}

pub(crate) fn session_not_found(id: &str) -> ApiError {
    ApiError {
        param: Some("session_id".into()),
        ..ApiError::not_found(format!("Session '{id}' not found."))
    }
}

pub(crate) fn turn_not_found(id: &str) -> ApiError {
    ApiError {
        param: Some("turn_id".into()),
        ..ApiError::not_found(format!("Turn '{id}' not found in this session."))
    }
}

/// The agent `id` with its config, or 404.
pub(crate) async fn agent(
    store: &dyn Store,
    id: &str,
) -> Result<(ApiAgentRecord, AgentConfig), ApiError> {
    let record = store
        .api_agent(id)
        .await?
        .ok_or_else(|| agent_not_found(id))?;
    let value: Value = serde_json::from_str(&record.config).map_err(ApiError::internal)?;
    // Checked when the agent was created; a config that no longer parses
    // is a stored fault, not the caller's.
    let config = AgentConfig::parse(value).map_err(ApiError::internal)?;
    Ok((record, config))
}

/// The session `id` of agent `agent_id`, or 404.
pub(crate) async fn session(
    store: &dyn Store,
    agent_id: &str,
    id: &str,
) -> Result<ApiSessionRecord, ApiError> {
    let parsed = ConversationId::parse(id).map_err(|_| session_not_found(id))?;
    store
        .api_session(agent_id, &parsed)
        .await?
        .ok_or_else(|| session_not_found(id))
}

/// Every turn of a session so far, folded from its runs' logs.
pub(crate) async fn turns(
    store: &dyn Store,
    session: &ConversationId,
) -> Result<Vec<TurnState>, ApiError> {
    turns_before(store, session, None).await
}

/// The turns of a session folded from its runs before `run` (all of them
/// when `None`).
async fn turns_before(
    store: &dyn Store,
    session: &ConversationId,
    run: Option<&ResponseId>,
) -> Result<Vec<TurnState>, ApiError> {
    let mut logs: Vec<Vec<Envelope>> = Vec::new();
    let mut after: Option<ResponseId> = None;
    'pages: loop {
        let page = store
            .conversation_responses(session, after.as_ref(), 100)
            .await
            .map_err(ApiError::internal)?;
        for id in &page.data {
            if Some(id) == run {
                break 'pages;
            }
            logs.push(store.events(id, None).await?);
        }
        after = page.data.last().cloned();
        if !page.has_more || after.is_none() {
            break;
        }
    }
    session_turns(logs.iter().map(Vec::as_slice)).map_err(ApiError::internal)
}

/// The projection a run's log is read through in the llama-stack dialect:
/// a run that resumes a turn starts from the turn its earlier runs left.
pub(crate) async fn run_projection(
    store: &dyn Store,
    run: &ResponseId,
) -> Result<LlamaStackProjection, ApiError> {
    let log = store.events(run, None).await?;
    let Some(Event::RunCreated(created)) = log.first().map(|e| &e.event) else {
        return Ok(LlamaStackProjection::new());
    };
    let (Some(turn_id), Some(session)) = (&created.run.continues_turn, &created.run.conversation)
    else {
        return Ok(LlamaStackProjection::new());
    };
    let turn = turns_before(store, session, Some(run))
        .await?
        .pop()
        .filter(|t| t.turn_id == turn_id.as_str());
    Ok(turn.map_or_else(LlamaStackProjection::new, LlamaStackProjection::continuing))
}

/// Whether a turn is shown in its session: it ended, or waits for the
/// caller's tools (llama-stack keeps no turn that failed or still runs).
fn shown(turn: &TurnState) -> bool {
    matches!(
        turn.outcome(),
        TurnOutcome::Completed | TurnOutcome::AwaitingInput
    )
}

/// The session object, with its turns (only `turn_ids`, when given).
pub(crate) fn session_json(
    session: &ApiSessionRecord,
    turns: &[TurnState],
    turn_ids: Option<&[String]>,
) -> Value {
    let turns: Vec<Value> = turns
        .iter()
        .filter(|t| shown(t))
        .filter(|t| turn_ids.is_none_or(|ids| ids.contains(&t.turn_id)))
        .map(|t| json!(t.turn()))
        .collect();
    json!({
        "session_id": session.id.as_str(),
        "session_name": session.name,
        "started_at": iso8601(session.created_at),
        "turns": turns,
    })
}

/// The agent object.
pub(crate) fn agent_json(record: &ApiAgentRecord) -> Result<Value, ApiError> {
    let config: Value = serde_json::from_str(&record.config).map_err(ApiError::internal)?;
    Ok(json!({
        "agent_id": record.id,
        "agent_config": config,
        "created_at": iso8601(record.created_at),
    }))
}

/// The turn `turn_id` of a session, if it is shown.
pub(crate) fn find_turn<'a>(
    turns: &'a [TurnState],
    turn_id: &str,
) -> Result<&'a TurnState, ApiError> {
    turns
        .iter()
        .find(|t| t.turn_id == turn_id && shown(t))
        .ok_or_else(|| turn_not_found(turn_id))
}

/// `start_index` and `limit` of a listing.
pub(crate) fn page_params(query: &QueryPairs) -> Result<(u32, Option<u32>), ApiError> {
    let number = |name: &str, min: u32| -> Result<Option<u32>, ApiError> {
        match query.get(name) {
            None | Some("") => Ok(None),
            Some(raw) => raw.parse::<u32>().ok().filter(|n| *n >= min).map(Some).ok_or_else(|| {
                ApiError::bad_request(
                    format!("Invalid value for '{name}': expected an integer of at least {min}, got '{raw}'."),
                    Some(name),
                    Some("invalid_value"),
                )
            }),
        }
    };
    Ok((number("start_index", 0)?.unwrap_or(0), number("limit", 1)?))
}

/// One run of a turn: its input (Responses items), the turn's tool
/// config, the MCP servers its toolgroups name, the turn it resumes (as it
/// stands), and whether it streams.
pub(crate) struct TurnRun {
    pub input: Vec<Value>,
    pub tool_config: Option<ToolConfig>,
    pub mcp_tools: Vec<Value>,
    pub continues: Option<TurnState>,
    pub stream: bool,
}

/// Runs one run of a turn: the agent's config over the run's input on the
/// session.
pub(crate) async fn run_turn(
    state: &AppState,
    config: &AgentConfig,
    session: &ConversationId,
    run: TurnRun,
) -> Result<Response, ApiError> {
    let store = state.runtime.store();
    let TurnRun {
        input,
        tool_config,
        mcp_tools,
        continues,
        stream,
    } = run;
    let mut body = config.run_body(session, input, tool_config.as_ref());
    if let Some(name) = selected_agent(&body)? {
        let named = store.agent(&name).await?.ok_or_else(|| ApiError {
            param: Some("agent_config.model".into()),
            ..ApiError::not_found(format!("Agent '{name}' not found."))
        })?;
        named.apply(&mut body);
    }
    // The toolgroups' servers are the operator's (they may be commands).
    let labels: Vec<Value> = body
        .trusted_tools
        .iter()
        .filter_map(|t| t.get("server_label").cloned())
        .collect();
    body.trusted_tools.extend(
        mcp_tools
            .into_iter()
            .filter(|t| t.get("server_label").is_none_or(|l| !labels.contains(l))),
    );
    let mut request = RunRequest::parse(body, state.runtime.ids())?;
    request.stop = config.stop();
    request.shields = resolve_shields(config, &state.shields)?;
    let projection = match continues {
        Some(turn) => {
            request.continues_turn =
                Some(ResponseId::parse(&turn.turn_id).map_err(ApiError::internal)?);
            LlamaStackProjection::continuing(turn)
        }
        None => LlamaStackProjection::new(),
    };
    let started = state.runtime.start(request).await?;
    let run_id = HeaderValue::from_str(started.id.as_str()).map_err(ApiError::internal)?;
    let guard = CancelOnDrop::new(state.runtime.clone(), started.id.clone());
    let mut response = if stream {
        let mut options = state.sse;
        options.done_marker &= Dialect::LlamaStack.takes_done_marker();
        projected_stream(
            Box::new(projection),
            Framing::Sse,
            started.events,
            None,
            options,
            Some(guard),
        )
    } else {
        finished_turn(projection, started, guard).await?
    };
    // The run this request started: its stream is
    // `GET /v1/runs/{id}/events?dialect=llama_stack` (and `Last-Event-ID`
    // resumes it), which the turn's id names only for the turn's first run.
    response.headers_mut().insert(RUN_ID_HEADER, run_id);
    Ok(response)
}

/// The response header naming the run a turn or resume request started.
pub const RUN_ID_HEADER: &str = "x-spool-run-id";

/// Follows a run to its end and answers with the turn it leaves.
async fn finished_turn(
    mut projection: LlamaStackProjection,
    started: StartedRun,
    mut guard: CancelOnDrop,
) -> Result<Response, ApiError> {
    let mut events = started.events;
    while let Some(next) = events.next().await {
        let envelope = match next {
            Ok(envelope) => envelope,
            Err(SubscribeError::RunAborted(error)) => std::sync::Arc::new(Envelope {
                seq: projection.fold().next_seq(),
                ts_ms: now_ms(),
                event: Event::RunFailed { error },
            }),
            Err(e) => return Err(e.into()),
        };
        projection
            .apply(&envelope, &mut |_| {})
            .map_err(ApiError::internal)?;
        if envelope.event.is_terminal() {
            break;
        }
    }
    guard.disarm();
    let turn = projection.turn();
    match turn.outcome() {
        TurnOutcome::Completed | TurnOutcome::AwaitingInput => {
            Ok(Json(turn.turn()).into_response())
        }
        TurnOutcome::Failed(message) => Err(ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.clone(),
            kind: "server_error",
            param: None,
            code: Some("turn_failed".into()),
            retry_after: None,
        }),
        TurnOutcome::Cancelled | TurnOutcome::Running => Err(ApiError::unavailable(
            "The turn was cancelled before it ended.",
        )),
    }
}
