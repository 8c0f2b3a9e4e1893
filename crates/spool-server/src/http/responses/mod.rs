//! `/v1/responses`: one file per action.

pub mod cancel;
pub mod compact;
pub mod create;
pub mod delete;
pub mod input_items;
pub mod list;
pub mod retrieve;
pub mod ws;

use super::AppState;
use super::error::ApiError;
use super::extract::QueryPairs;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use spool_core::ids::ResponseId;

/// `GET /v1/responses`: WebSocket mode when the client asks to upgrade,
/// the list of stored responses otherwise.
pub async fn get_responses(State(state): State<AppState>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    let upgrade = parts
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if upgrade {
        // A broken handshake is answered in the error shape there.
        let socket = WebSocketUpgrade::from_request_parts(&mut parts, &state).await;
        return ws::responses_socket(State(state), parts.headers, socket).await;
    }
    match QueryPairs::from_request_parts(&mut parts, &state).await {
        Ok(query) => list::list_responses(State(state), query)
            .await
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Parses a path id; an id that cannot be ours is simply not found.
pub(crate) fn parse_response_id(id: &str) -> Result<ResponseId, ApiError> {
    ResponseId::parse(id).map_err(|_| ApiError::response_not_found(id))
}

/// A 200 answer whose body is already-serialized JSON.
pub(crate) fn json_response(json: String) -> Response {
    let mut response = json.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
