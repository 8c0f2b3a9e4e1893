//! `GET /healthz` (liveness) and `GET /readyz` (readiness, for a load
//! balancer).
//!
//! The listener is bound only after the store is open and interrupted runs
//! are recovered, so answering at all means alive. Readiness also says
//! whether new runs are taken: once shutdown begins the instance drains
//! (its running runs go on, its streams stay open) and `/readyz` answers
//! 503, so a load balancer sends new requests elsewhere.

use super::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    if state.runtime.is_draining() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "draining"})),
        )
    } else {
        (StatusCode::OK, Json(json!({"status": "ready"})))
    }
}
