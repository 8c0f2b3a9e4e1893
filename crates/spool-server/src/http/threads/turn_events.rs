//! `GET /v1/threads/{id}/turns/{turn_id}/events`: a turn's thread events,
//! replayed from its log and followed live while it runs.
//!
//! The replay is the same projection as the live stream, so the two are
//! byte-identical; `Last-Event-ID: N` (or `?after=N`) skips the frames up
//! to `N`.

use super::parse_thread_id;
use super::turn_retrieve::turn_of_thread;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::QueryPairs;
use crate::http::sse::{Framing, framed_stream};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use spool_core::projection::Dialect;

pub async fn turn_events(
    State(state): State<AppState>,
    Path((id, turn_id)): Path<(String, String)>,
    headers: HeaderMap,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    let from_header = headers
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let after = match from_header.as_deref().or(query.get("after")) {
        None | Some("") => None,
        Some(raw) => Some(raw.trim().parse::<u64>().map_err(|_| {
            ApiError::bad_request(
                format!("Invalid event id '{raw}': expected a non-negative integer."),
                Some("Last-Event-ID"),
                Some("invalid_value"),
            )
        })?),
    };
    let id = parse_thread_id(&id)?;
    let (turn, _) = turn_of_thread(state.runtime.store().as_ref(), &id, &turn_id).await?;
    let events = state.runtime.subscribe(&turn);
    Ok(framed_stream(
        Dialect::Codex,
        Framing::from_headers(&headers),
        events,
        after,
        state.sse,
        None,
    ))
}
