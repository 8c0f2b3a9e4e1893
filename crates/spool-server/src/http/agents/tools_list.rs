//! `GET /v1/tools?toolgroup_id=…`: the tools of a toolgroup (of every
//! toolgroup when none is named), as its MCP server lists them.

use super::{mcp_spec, toolgroup_not_found};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::QueryPairs;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

/// The `provider_id` llama-stack gives MCP toolgroups and their tools.
pub(crate) const MCP_PROVIDER: &str = "model-context-protocol";

pub async fn list_tools(
    State(state): State<AppState>,
    query: QueryPairs,
) -> Result<Json<Value>, ApiError> {
    let groups: Vec<(&String, &Value)> = match query.get("toolgroup_id").filter(|g| !g.is_empty()) {
        Some(id) => {
            let server = state
                .toolgroups
                .get_key_value(id)
                .ok_or_else(|| toolgroup_not_found(id, &state))?;
            vec![server]
        }
        None => state.toolgroups.iter().collect(),
    };
    let mut data = Vec::new();
    for (id, server) in groups {
        let spec = mcp_spec(server)?;
        let tools = state
            .runtime
            .mcp_clients()
            .list_tools(&spec)
            .await
            .map_err(|e| ApiError {
                status: StatusCode::BAD_GATEWAY,
                ..ApiError::unavailable(format!("The tools of '{id}' could not be listed: {e}"))
            })?;
        data.extend(tools.iter().map(|tool| {
            json!({
                "identifier": tool.name,
                "description": tool.description.clone().unwrap_or_default(),
                "parameters": parameters(&tool.input_schema),
                "input_schema": tool.input_schema,
                "provider_id": MCP_PROVIDER,
                "provider_resource_id": tool.name,
                "toolgroup_id": id,
                "type": "tool",
                "metadata": {"endpoint": server.get("server_url")},
            })
        }));
    }
    Ok(Json(json!({"data": data})))
}

/// An MCP input schema as llama-stack 0.2's parameter list.
fn parameters(schema: &Value) -> Vec<Value> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    schema["properties"]
        .as_object()
        .map(|properties| {
            properties
                .iter()
                .map(|(name, property)| {
                    json!({
                        "name": name,
                        "parameter_type": property["type"].as_str().unwrap_or("string"),
                        "description": property["description"].as_str().unwrap_or_default(),
                        "required": required.contains(&name.as_str()),
                        "default": property.get("default"),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}
