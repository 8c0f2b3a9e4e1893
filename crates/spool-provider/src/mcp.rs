//! MCP servers as tool sources, through the official Rust SDK (rmcp).
//!
//! [`McpClients`] keeps one client session per server (a streamable HTTP
//! endpoint with its headers, or a command it started), shared by every run,
//! and caches each server's tool list for a while. A session that fails is
//! dropped, so the next use reconnects.

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use serde_json::Value;
use spool_core::item::McpToolInfo;
use spool_core::tool::{McpServerSpec, McpTransport};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

type Session = RunningService<RoleClient, ()>;

/// One server's session and its cached tool list.
struct Server {
    session: Session,
    tools: Mutex<Option<(Instant, Vec<McpToolInfo>)>>,
}

/// Client sessions to MCP servers, by transport.
pub struct McpClients {
    http: reqwest::Client,
    servers: Mutex<HashMap<McpTransport, Arc<Server>>>,
    /// How long a server's tool list is reused.
    tools_ttl: Duration,
    connect_timeout: Duration,
}

impl McpClients {
    pub fn new(tools_ttl: Duration, connect_timeout: Duration) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self {
            http: reqwest::Client::new(),
            servers: Mutex::new(HashMap::new()),
            tools_ttl,
            connect_timeout,
        }
    }

    async fn connect(&self, transport: &McpTransport) -> Result<Session, String> {
        let session = match transport {
            McpTransport::Http { url, headers } => {
                let mut custom = HashMap::new();
                let mut auth = None;
                for (name, value) in headers {
                    // The SDK sends the bearer token itself.
                    if name.eq_ignore_ascii_case("authorization") {
                        auth = Some(value.strip_prefix("Bearer ").unwrap_or(value).to_owned());
                        continue;
                    }
                    let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                        .map_err(|e| format!("bad header name '{name}': {e}"))?;
                    let value = reqwest::header::HeaderValue::from_str(value)
                        .map_err(|e| format!("bad header value: {e}"))?;
                    custom.insert(name, value);
                }
                let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str())
                    .custom_headers(custom);
                if let Some(token) = auth {
                    config = config.auth_header(token);
                }
                let transport =
                    StreamableHttpClientTransport::with_client(self.http.clone(), config);
                tokio::time::timeout(self.connect_timeout, ().serve(transport)).await
            }
            McpTransport::Stdio { command } => {
                let (program, args) = command.split_first().ok_or("empty command")?;
                let mut cmd = tokio::process::Command::new(program);
                cmd.args(args);
                let transport = TokioChildProcess::new(cmd)
                    .map_err(|e| format!("cannot start '{program}': {e}"))?;
                tokio::time::timeout(self.connect_timeout, ().serve(transport)).await
            }
        };
        session
            .map_err(|_| format!("no answer within {} s", self.connect_timeout.as_secs()))?
            .map_err(|e| format!("cannot connect: {e}"))
    }

    async fn server(&self, spec: &McpServerSpec) -> Result<Arc<Server>, String> {
        if let Some(server) = self.servers.lock().await.get(&spec.transport) {
            return Ok(server.clone());
        }
        // Connect without holding the map: other runs' servers stay usable
        // while this one answers (or times out).
        let server = Arc::new(Server {
            session: self.connect(&spec.transport).await?,
            tools: Mutex::new(None),
        });
        let mut servers = self.servers.lock().await;
        // A concurrent run may have connected first; keep one session.
        Ok(servers
            .entry(spec.transport.clone())
            .or_insert(server)
            .clone())
    }

    /// Forgets a server whose session failed.
    async fn drop_server(&self, spec: &McpServerSpec) {
        self.servers.lock().await.remove(&spec.transport);
    }

    /// The tools a server offers (cached for the TTL).
    pub async fn list_tools(&self, spec: &McpServerSpec) -> Result<Vec<McpToolInfo>, String> {
        let server = self.server(spec).await?;
        let mut cached = server.tools.lock().await;
        if let Some((at, tools)) = cached.as_ref()
            && at.elapsed() < self.tools_ttl
        {
            return Ok(tools.clone());
        }
        let listed =
            match tokio::time::timeout(self.connect_timeout, server.session.list_all_tools()).await
            {
                Ok(Ok(listed)) => listed,
                Ok(Err(e)) => {
                    drop(cached);
                    self.drop_server(spec).await;
                    return Err(format!("cannot list tools: {e}"));
                }
                Err(_) => {
                    drop(cached);
                    self.drop_server(spec).await;
                    return Err(format!(
                        "the server did not list its tools within {} s",
                        self.connect_timeout.as_secs()
                    ));
                }
            };
        let tools: Vec<McpToolInfo> = listed
            .into_iter()
            .map(|t| McpToolInfo {
                name: t.name.to_string(),
                description: t.description.map(|d| d.to_string()),
                input_schema: Value::Object((*t.input_schema).clone()),
                annotations: t.annotations.and_then(|a| serde_json::to_value(a).ok()),
            })
            .collect();
        *cached = Some((Instant::now(), tools.clone()));
        Ok(tools)
    }

    /// Calls a tool. `Ok` is its text output; `Err` a failure (the server's
    /// error result, or a transport failure).
    pub async fn call_tool(
        &self,
        spec: &McpServerSpec,
        name: &str,
        arguments: Value,
    ) -> Result<String, String> {
        let server = self.server(spec).await?;
        let mut params = CallToolRequestParams::new(name.to_owned());
        match arguments {
            Value::Object(map) => params = params.with_arguments(map),
            Value::Null => {}
            _ => return Err("the arguments must be a JSON object".into()),
        }
        let result = match server.session.call_tool(params).await {
            Ok(result) => result,
            Err(e) => {
                self.drop_server(spec).await;
                return Err(format!("the call failed: {e}"));
            }
        };
        let content = serde_json::to_value(&result.content).unwrap_or(Value::Null);
        let text: Vec<String> = content
            .as_array()
            .into_iter()
            .flatten()
            .map(|block| match block.get("text").and_then(Value::as_str) {
                Some(text) => text.to_owned(),
                None => block.to_string(),
            })
            .collect();
        let mut output = text.join("\n");
        if output.is_empty()
            && let Some(structured) = &result.structured_content
        {
            output = structured.to_string();
        }
        if result.is_error == Some(true) {
            Err(output)
        } else {
            Ok(output)
        }
    }
}
