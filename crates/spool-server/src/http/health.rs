//! `GET /healthz` and `GET /readyz`.
//!
//! `/healthz` says the process serves requests: the listener is bound only
//! after the store is open and interrupted runs are recovered, so answering
//! at all means alive. `/readyz` says whether it can take new work: a 503
//! in the error shape (`store_unwritable`, with the cause) while the
//! latest write to the store failed, so a load balancer sends new runs
//! elsewhere until a write succeeds again.

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
    match state.runtime.store_writable() {
        Ok(()) => Ok(Json(json!({"status": "ready"}))),
        Err(cause) => Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: Some("store_unwritable".into()),
            ..ApiError::unavailable(format!("The store cannot be written: {cause}"))
        }),
    }
}
