//! `POST /v1/agents`: create an agent from its `agent_config`, checked
//! before anything is written.

use super::toolgroup_tools;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use crate::runtime::sink::now_ms;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use spool_core::request::llama_stack::{AgentConfig, resolve_shields};
use spool_store::ApiAgentRecord;

pub async fn create_agent(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let config = body.get("agent_config").cloned().unwrap_or(Value::Null);
    let parsed = AgentConfig::parse(config.clone())?;
    toolgroup_tools(&state, &parsed, None)?;
    resolve_shields(&parsed, &state.shields)?;
    let record = ApiAgentRecord {
        id: state.runtime.ids().new_id("agent"),
        config: config.to_string(),
        created_at: now_ms(),
    };
    state.runtime.store().create_api_agent(&record).await?;
    Ok(Json(json!({"agent_id": record.id})))
}
