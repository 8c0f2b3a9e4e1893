//! `GET /healthz` (liveness) and `GET /readyz` (readiness, for a load
//! balancer).
//!
//! `/healthz` says the process serves requests: the listener is bound only
//! after the store is open and interrupted runs are recovered, so answering
//! at all means alive. `/readyz` says whether it takes new work: a 503 in
//! the error shape once shutdown begins (`draining`: running runs go on,
//! their streams stay open) or while the latest write to the store failed
//! (`store_unwritable`, with the cause), so a load balancer sends new runs
//! elsewhere.

use super::AppState;
use super::error::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    if state.runtime.is_draining() {
        return Err(ApiError {
            code: Some("draining".into()),
            ..ApiError::unavailable("This instance is shutting down and takes no new runs.")
        });
    }
    match state.runtime.store_writable() {
        Ok(()) => Ok(Json(json!({"status": "ready"}))),
        Err(cause) => Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: Some("store_unwritable".into()),
            ..ApiError::unavailable(format!("The store cannot be written: {cause}"))
        }),
    }
}
