//! `GET /v1/runs/{run_id}/events`: any stored run's log as an SSE stream
//! in any dialect (`?dialect=responses|chat|wxo|codex|llama_stack`,
//! `responses` if unset).
//!
//! The stored log is projected from its start; frames at or below the
//! cursor (`Last-Event-ID`, or the `after` query parameter) are skipped, and
//! a running run continues live until its terminal event. A run started in
//! one dialect can be watched in another.

use crate::http::AppState;
use crate::http::agents;
use crate::http::error::ApiError;
use crate::http::extract::QueryPairs;
use crate::http::responses::parse_response_id;
use crate::http::sse::{Framing, dialect_stream, projected_stream};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use spool_core::projection::Dialect;

pub async fn run_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    let dialect = match query.get("dialect") {
        None | Some("") => Dialect::Responses,
        Some(name) => Dialect::parse(name).ok_or_else(|| {
            let known: Vec<_> = Dialect::ALL.iter().map(|d| d.name()).collect();
            ApiError::bad_request(
                format!(
                    "Unknown dialect '{name}'; expected one of: {}.",
                    known.join(", ")
                ),
                Some("dialect"),
                Some("invalid_value"),
            )
        })?,
    };
    let after = last_event_id(&headers, &query)?;
    let id = parse_response_id(&id)?;
    let runtime = &state.runtime;
    // A run just started may not be committed yet, but it is running.
    if !runtime.is_running(&id) && runtime.store().response(&id).await?.is_none() {
        return Err(ApiError::response_not_found(id.as_str()));
    }
    if dialect == Dialect::LlamaStack {
        // A llama-stack turn may span runs: a run that resumes one is read
        // on from the turn as its earlier runs left it.
        let projection = agents::run_projection(runtime.store().as_ref(), &id).await?;
        let mut options = state.sse;
        options.done_marker &= dialect.takes_done_marker();
        let events = runtime.subscribe(&id);
        return Ok(projected_stream(
            Box::new(projection),
            Framing::Sse,
            events,
            after,
            options,
            None,
        ));
    }
    let events = runtime.subscribe(&id);
    Ok(dialect_stream(dialect, events, after, state.sse, None))
}

/// The position of the last frame the client has: the `Last-Event-ID`
/// header, else the `after` query parameter.
pub(crate) fn last_event_id(
    headers: &HeaderMap,
    query: &QueryPairs,
) -> Result<Option<u64>, ApiError> {
    let (raw, param) = match headers.get("last-event-id") {
        Some(value) => (
            value
                .to_str()
                .map_err(|_| bad_cursor("Last-Event-ID", "?"))?,
            "Last-Event-ID",
        ),
        None => match query.get("after") {
            Some(raw) => (raw, "after"),
            None => return Ok(None),
        },
    };
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse::<u64>()
        .map(Some)
        .map_err(|_| bad_cursor(param, raw))
}

fn bad_cursor(param: &str, raw: &str) -> ApiError {
    ApiError::bad_request(
        format!(
            "Invalid value for '{param}': expected a frame position (an integer at least 0), got '{raw}'."
        ),
        Some(param),
        Some("invalid_value"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    /// Cursors as clients send them, and as nobody should.
    fn cursor() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| format!(" {n}\t")),
            "[ -~]{0,24}",
            Just("18446744073709551616".to_owned()),
            Just("-1".to_owned()),
            Just("+7".to_owned()),
            Just(String::new()),
        ]
    }

    proptest! {
        #[test]
        fn a_cursor_is_a_frame_position_or_a_400_naming_it(raw in cursor(), in_header in any::<bool>()) {
            let mut headers = HeaderMap::new();
            let mut query = QueryPairs(Vec::new());
            let param = if in_header {
                headers.insert("last-event-id", HeaderValue::from_str(&raw).unwrap());
                "Last-Event-ID"
            } else {
                query.0.push(("after".to_owned(), raw.clone()));
                "after"
            };
            let trimmed = raw.trim();
            match last_event_id(&headers, &query) {
                Ok(None) => prop_assert!(trimmed.is_empty()),
                Ok(Some(n)) => prop_assert_eq!(trimmed.parse::<u64>(), Ok(n)),
                Err(e) => {
                    prop_assert!(trimmed.parse::<u64>().is_err());
                    prop_assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
                    prop_assert_eq!(e.param.as_deref(), Some(param));
                }
            }
        }
    }
}
