//! `GET /v1/toolgroups`: the toolgroups agents may name: the MCP servers
//! of the config file, as `mcp::LABEL`.

use super::toolgroup_json;
use crate::http::AppState;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

pub async fn list_toolgroups(State(state): State<AppState>) -> Json<Value> {
    let data: Vec<Value> = state
        .toolgroups
        .iter()
        .map(|(id, server)| toolgroup_json(id, server))
        .collect();
    Json(json!({"data": data}))
}
