//! `POST /v1/threads/{id}/turns`: run a turn on a thread.
//!
//! The body (`input`, `model`, `output_schema`, `stream`) becomes a
//! Responses request on the thread's conversation with the thread's
//! defaults, validated before anything is written. By default the turn's
//! thread events stream back (SSE, or NDJSON on `Accept:
//! application/x-ndjson`); with `"stream": false` the finished turn is
//! returned. A client that goes away before the turn ends cancels it.

use super::{TurnReduction, parse_thread_id, thread_not_found};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use crate::http::sse::CancelOnDrop;
use crate::http::sse::{Framing, framed_stream};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use spool_core::agent_config::selected_agent;
use spool_core::projection::Dialect;
use spool_core::request::RunRequest;
use spool_core::request::threads::{CreateTurnBody, ThreadDefaults};

pub async fn create_turn(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateTurnBody>,
) -> Result<Response, ApiError> {
    let id = parse_thread_id(&id)?;
    let store = state.runtime.store();
    let thread = store
        .conversation(&id)
        .await?
        .ok_or_else(|| thread_not_found(id.as_str()))?;
    let streams = body.streams();
    let defaults = ThreadDefaults::from_metadata(&thread.metadata);
    let mut request = body.into_response_body(&id, &defaults)?;
    if let Some(name) = selected_agent(&request)? {
        let agent = store.agent(&name).await?.ok_or_else(|| ApiError {
            param: Some("model".into()),
            ..ApiError::not_found(format!("Agent '{name}' not found."))
        })?;
        agent.apply(&mut request);
    }
    let request = RunRequest::parse(request, state.runtime.ids())?;
    let mut started = state.runtime.start(request).await?;
    let mut guard = CancelOnDrop::new(state.runtime.clone(), started.id.clone());
    if streams {
        // Begun once the turn exists in the log: a store that cannot write
        // is an error answer, not an empty stream.
        started.events.wait_first().await?;
        return Ok(framed_stream(
            Dialect::Codex,
            Framing::from_headers(&headers),
            started.events,
            None,
            state.sse,
            Some(guard),
        ));
    }
    let mut reduction = TurnReduction::default();
    reduction.follow(started.events).await?;
    guard.disarm();
    Ok(Json(reduction.into_json(&id)).into_response())
}
