//! `POST /v1/responses`: create a response.
//!
//! A named agent the request selects fills in what the request leaves
//! unset. The body is validated completely (and the model and previous
//! response resolved) before anything is written. Then, by mode:
//! - `stream`: the run's events as SSE, live;
//! - `background` without `stream`: the response as soon as it exists
//!   (`queued`), while the run goes on;
//! - otherwise: the final response once the run ends.
//!
//! A foreground run is cancelled if its client goes away before it ends.

use super::json_response;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use crate::http::runs::with_run_id;
use crate::http::sse::{CancelOnDrop, responses_stream};
use crate::runtime::sink::now_ms;
use crate::runtime::subscribe::{SubscribeError, Subscription};
use axum::extract::State;
use axum::response::Response;
use spool_core::agent_config::selected_agent;
use spool_core::event::{Envelope, Event};
use spool_core::fold::RunFold;
use spool_core::projection::responses;
use spool_core::request::{CreateResponseBody, RunRequest};

pub async fn create_response(
    State(state): State<AppState>,
    JsonBody(mut body): JsonBody<CreateResponseBody>,
) -> Result<Response, ApiError> {
    if let Some(name) = selected_agent(&body)? {
        let param = if body.agent.is_some() {
            "agent"
        } else {
            "model"
        };
        let agent = state
            .runtime
            .store()
            .agent(&name)
            .await?
            .ok_or_else(|| ApiError {
                param: Some(param.into()),
                ..ApiError::not_found(format!("Agent '{name}' not found."))
            })?;
        agent.apply(&mut body);
    }
    if body.tools.as_ref().is_some_and(|tools| !tools.is_empty()) {
        body.hosted_tool_servers = (*state.hosted_tool_servers).clone();
    }
    let request = RunRequest::parse(body, state.runtime.ids())?;
    let modes = request.modes;
    let mut started = state.runtime.start(request).await?;
    let guard =
        (!started.background).then(|| CancelOnDrop::new(state.runtime.clone(), started.id.clone()));
    if modes.stream {
        // The answer begins once the run exists in the log: a store that
        // cannot write is an error answer, not a 200 with nothing in it.
        started.events.wait_first().await?;
    }
    let run_id = started.id.clone();
    if modes.stream {
        let stream = responses_stream(started.events, None, state.sse, guard);
        return Ok(with_run_id(stream, &run_id));
    }
    let stop_after_first = started.background;
    let fold = collect(started.events, stop_after_first).await?;
    if let Some(mut guard) = guard {
        guard.disarm();
    }
    let json = responses::object(&fold)
        .map(|o| serde_json::to_string(&o))
        .transpose()
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::internal("the run ended before it was created"))?;
    Ok(with_run_id(json_response(json), &run_id))
}

/// Folds a run's events until its end (or only its first event).
pub(crate) async fn collect(
    mut events: Subscription,
    first_only: bool,
) -> Result<RunFold, ApiError> {
    let mut fold = RunFold::new();
    while let Some(next) = events.next().await {
        match next {
            Ok(envelope) => fold.apply(&envelope).map_err(ApiError::internal)?,
            Err(SubscribeError::RunAborted(error)) => {
                let envelope = Envelope {
                    seq: fold.next_seq(),
                    ts_ms: now_ms(),
                    event: Event::RunFailed { error },
                };
                fold.apply(&envelope).map_err(ApiError::internal)?;
                break;
            }
            Err(e) => return Err(e.into()),
        }
        if first_only {
            break;
        }
    }
    Ok(fold)
}
