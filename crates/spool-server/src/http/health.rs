//! `GET /healthz`: 200 once the server serves requests.
//!
//! The listener is bound only after the store is open and interrupted runs
//! are recovered, so answering at all means ready.

use axum::Json;
use serde_json::{Value, json};

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}
