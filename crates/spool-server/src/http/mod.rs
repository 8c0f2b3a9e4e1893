//! The HTTP layer: routes, extractors, errors and SSE framing.
//!
//! # Layout
//! - [`router`]: the one list of every route.
//! - [`error`]: the OpenAI error shape and which status each failure gets.
//! - [`extract`]: JSON body and query extractors with clear errors.
//! - [`sse`]: the Responses event stream over a run's log.
//! - [`responses`]: one file per `/v1/responses` action.
//! - [`conversations`]: one file per `/v1/conversations` action.
//! - [`health`]: `GET /healthz`.

pub mod conversations;
pub mod error;
pub mod extract;
pub mod health;
pub mod responses;
pub mod router;
pub mod sse;

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
}
