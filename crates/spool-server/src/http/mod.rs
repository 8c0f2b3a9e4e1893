//! The HTTP layer: routes, extractors, errors and SSE framing.
//!
//! # Layout
//! - [`router`]: the one list of every route.
//! - [`access`]: Host, Origin and CORS checks against hostile web pages.
//! - [`error`]: the OpenAI error shape and which status each failure gets.
//! - [`extract`]: JSON body and query extractors with clear errors.
//! - [`framing`]: URI and header size, and path encoding, checked first.
//! - [`sse`]: a run's log as an SSE stream in any dialect.
//! - [`responses`]: one file per `/v1/responses` action.
//! - [`conversations`]: one file per `/v1/conversations` action.
//! - [`chat`]: `POST /v1/chat/completions` (chat chunks and Orchestrate).
//! - [`threads`]: one file per `/v1/threads` action (the Codex dialect),
//!   and the thread-event stream (SSE or NDJSON).
//! - [`runs`]: `GET /v1/runs/{id}/events`, any run in any dialect.
//! - [`roboto`]: one file per `/v1/ai/threads` action (roboto's agent
//!   threads), and the thread's agent-session event stream.
//! - [`health`]: `GET /healthz` and `GET /readyz`.
//! - [`agents`]: one file per llama-stack Agents API action (`/v1/agents…`
//!   and `/v1alpha/agents…`).

pub mod access;
pub mod agents;
pub mod chat;
pub mod conversations;
pub mod error;
pub mod extract;
pub mod framing;
pub mod health;
pub mod responses;
pub mod roboto;
pub mod router;
pub mod runs;
pub mod sse;
pub mod threads;

use crate::runtime::Runtime;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub runtime: Arc<Runtime>,
    pub sse: sse::SseOptions,
    /// The MCP tool serving each hosted tool type (`web_search`, …) a client
    /// may offer, from the config file's `[mcp.hosted_tools]`.
    pub hosted_tool_servers: Arc<BTreeMap<String, serde_json::Value>>,
    /// How long a Responses WebSocket connection may stay open.
    pub websocket_max_age: std::time::Duration,
    /// What the roboto routes share (the bell long polls wait on).
    pub roboto: roboto::RobotoState,
    /// The llama-stack toolgroups (`mcp::LABEL`): MCP servers of the
    /// config file, as `mcp` tools.
    pub toolgroups: Arc<BTreeMap<String, serde_json::Value>>,
    /// The llama-stack shields: id → the upstream's moderation model.
    pub shields: Arc<BTreeMap<String, String>>,
}
