//! `GET /v1/responses/{id}`: a response as JSON, or its event stream.
//!
//! With `stream=true` the stored log is replayed through the Responses
//! projection from the start, frames up to `starting_after` (or the
//! `Last-Event-ID` a reconnecting SSE client sends) are skipped, and
//! a running response continues live until its terminal event. Every stored
//! response replays, foreground or background, running or finished.

use super::{json_response, parse_response_id};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::QueryPairs;
use crate::http::runs::events::last_event_id;
use crate::http::sse::responses_stream;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;

pub async fn retrieve_response(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    let stream = query.bool("stream")?.unwrap_or(false);
    // The frame ids of the stream are its sequence numbers, so the header
    // an EventSource sends on reconnecting means what `starting_after` does.
    let resumed = if headers.contains_key("last-event-id") {
        last_event_id(&headers, &QueryPairs(Vec::new()))?
    } else {
        None
    };
    let starting_after = match query.get("starting_after") {
        None | Some("") => None,
        Some(raw) => {
            let n: i64 = raw.parse().map_err(|_| {
                ApiError::bad_request(
                    format!(
                        "Invalid value for 'starting_after': expected an integer, got '{raw}'."
                    ),
                    Some("starting_after"),
                    Some("invalid_value"),
                )
            })?;
            // A negative cursor means "from the first event".
            u64::try_from(n).ok()
        }
    };
    let starting_after = resumed.or(starting_after);
    if starting_after.is_some() && !stream {
        return Err(ApiError::bad_request(
            "starting_after may only be used with stream=true.",
            Some("starting_after"),
            Some("invalid_value"),
        ));
    }
    query.bool("include_obfuscation")?;
    let id = parse_response_id(&id)?;
    let runtime = &state.runtime;
    if runtime.store().response(&id).await?.is_none() {
        return Err(ApiError::response_not_found(id.as_str()));
    }
    if stream {
        let events = runtime.subscribe(&id);
        return Ok(responses_stream(events, starting_after, state.sse, None));
    }
    let snapshot = runtime
        .snapshot(&id)
        .await?
        .ok_or_else(|| ApiError::response_not_found(id.as_str()))?;
    Ok(json_response(snapshot))
}
