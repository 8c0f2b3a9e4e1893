//! `/v1/runs`: a run's log read in any dialect, one file per action.

pub mod events;

use axum::http::HeaderValue;
use axum::response::Response;
use spool_core::ids::ResponseId;

/// The header every response that starts a run carries, whatever the
/// dialect: the run's id, for `GET /v1/runs/{id}/events`.
pub const RUN_ID_HEADER: &str = "x-spool-run-id";

/// Adds [`RUN_ID_HEADER`] to a response.
pub(crate) fn with_run_id(mut response: Response, id: &ResponseId) -> Response {
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert(RUN_ID_HEADER, value);
    }
    response
}
