//! `GET /v1/shields`: the shields agents may name, from the config file:
//! each a moderation model of the upstream.

use crate::http::AppState;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

/// The `provider_id` of shields backed by an OpenAI-compatible
/// `/v1/moderations`.
const MODERATION_PROVIDER: &str = "openai-moderation";

pub async fn list_shields(State(state): State<AppState>) -> Json<Value> {
    let data: Vec<Value> = state
        .shields
        .iter()
        .map(|(id, model)| {
            json!({
                "identifier": id,
                "provider_id": MODERATION_PROVIDER,
                "provider_resource_id": model,
                "type": "shield",
                "params": {},
            })
        })
        .collect();
    Json(json!({"data": data}))
}
