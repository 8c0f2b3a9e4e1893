//! `/v1/responses`: one file per action.

pub mod cancel;
pub mod compact;
pub mod create;
pub mod delete;
pub mod input_items;
pub mod retrieve;
pub mod ws;

use super::error::ApiError;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use spool_core::ids::ResponseId;

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
