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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

type Session = RunningService<RoleClient, ()>;

/// One server's session and its cached tool list.
struct Server {
    session: Session,
    tools: Mutex<Option<(Instant, Vec<McpToolInfo>)>>,
    /// Set when the session failed: runs waiting on it give up at once.
    failed: AtomicBool,
    last_used: std::sync::Mutex<Instant>,
}

/// Most sessions kept; the least recently used is closed past it (every
/// distinct URL and header set, e.g. per-user tokens, is a session).
const MAX_SESSIONS: usize = 64;

/// Whether `url` is under one of the operator's `allowed` URLs: same
/// scheme, host and port, and a path at or below the allowed path, compared
/// after parsing (dot segments resolved, no credentials in the URL).
pub fn url_allowed(url: &str, allowed: &[String]) -> bool {
    let Ok(url) = reqwest::Url::parse(url) else {
        return false;
    };
    if !url.username().is_empty() || url.password().is_some() {
        return false;
    }
    allowed.iter().any(|prefix| {
        let Ok(prefix) = reqwest::Url::parse(prefix) else {
            return false;
        };
        let base = prefix.path();
        let path = url.path();
        let under = path == base
            || (path.starts_with(base)
                && (base.ends_with('/') || path[base.len()..].starts_with('/')));
        url.scheme() == prefix.scheme()
            && url.host_str() == prefix.host_str()
            && url.port_or_known_default() == prefix.port_or_known_default()
            && under
    })
}

/// Checks an operator's allowed URL: an http(s) URL without credentials.
pub fn check_allowed_url(prefix: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(prefix).map_err(|e| format!("'{prefix}' is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "'{prefix}' must be an http:// or https:// URL with a host"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("'{prefix}' must not hold credentials"));
    }
    Ok(())
}

/// The environment a server started as a command gets: enough to run, and
/// none of spool's own settings (such as its upstream API key).
const CHILD_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "TMP",
    "TEMP",
    "SYSTEMROOT",
];

/// Client sessions to MCP servers, by transport.
pub struct McpClients {
    http: reqwest::Client,
    servers: Mutex<HashMap<McpTransport, Arc<Server>>>,
    /// How long a server's tool list is reused.
    tools_ttl: Duration,
    connect_timeout: Duration,
}

/// The HTTP client for MCP servers could not be built. spool does not
/// fall back to a default client: that one follows redirects, which could
/// lead a request (with its headers) away from the servers the operator
/// allows.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client for MCP servers (one that follows no redirects): {0}")]
pub struct McpClientError(#[source] reqwest::Error);

impl McpClients {
    pub fn new(tools_ttl: Duration, connect_timeout: Duration) -> Result<Self, McpClientError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self::with_client_builder(reqwest::Client::builder(), tools_ttl, connect_timeout)
    }

    /// Like [`McpClients::new`] from a caller's client settings; redirects
    /// are turned off whatever `builder` says.
    pub fn with_client_builder(
        builder: reqwest::ClientBuilder,
        tools_ttl: Duration,
        connect_timeout: Duration,
    ) -> Result<Self, McpClientError> {
        // Redirects are not followed: a redirect could lead away from the
        // servers the operator allows, with the request's headers.
        let http = builder
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(McpClientError)?;
        Ok(Self {
            http,
            servers: Mutex::new(HashMap::new()),
            tools_ttl,
            connect_timeout,
        })
    }

    async fn connect(&self, transport: &McpTransport) -> Result<Session, String> {
        let session = match transport {
            McpTransport::Http { url, headers } => {
                let mut custom = HashMap::new();
                let mut auth = None;
                for (name, value) in headers {
                    // The SDK sends a bearer token itself; other schemes go
                    // as they are.
                    if name.eq_ignore_ascii_case("authorization")
                        && value.len() > 7
                        && value[..7].eq_ignore_ascii_case("bearer ")
                    {
                        auth = Some(value[7..].to_owned());
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
                cmd.args(args).env_clear();
                for name in CHILD_ENV {
                    if let Some(value) = std::env::var_os(name) {
                        cmd.env(name, value);
                    }
                }
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
            *server
                .last_used
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Instant::now();
            return Ok(server.clone());
        }
        // Connect without holding the map: other runs' servers stay usable
        // while this one answers (or times out).
        let server = Arc::new(Server {
            session: self.connect(&spec.transport).await?,
            tools: Mutex::new(None),
            failed: AtomicBool::new(false),
            last_used: std::sync::Mutex::new(Instant::now()),
        });
        let mut servers = self.servers.lock().await;
        if servers.len() >= MAX_SESSIONS && !servers.contains_key(&spec.transport) {
            let oldest = servers
                .iter()
                .min_by_key(|(_, s)| *s.last_used.lock().unwrap_or_else(PoisonError::into_inner))
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                servers.remove(&oldest);
            }
        }
        // A concurrent run may have connected first; keep one session.
        Ok(servers
            .entry(spec.transport.clone())
            .or_insert(server)
            .clone())
    }

    /// Forgets a server whose session failed (if it is still the current
    /// one), and tells runs waiting on it.
    async fn drop_server(&self, spec: &McpServerSpec, failed: &Arc<Server>) {
        failed.failed.store(true, Ordering::Relaxed);
        let mut servers = self.servers.lock().await;
        if servers
            .get(&spec.transport)
            .is_some_and(|s| Arc::ptr_eq(s, failed))
        {
            servers.remove(&spec.transport);
        }
    }

    /// The tools a server offers (cached for the TTL).
    pub async fn list_tools(&self, spec: &McpServerSpec) -> Result<Vec<McpToolInfo>, String> {
        let server = self.server(spec).await?;
        let mut cached = server.tools.lock().await;
        if server.failed.load(Ordering::Relaxed) {
            return Err("the server's session failed".into());
        }
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
                    self.drop_server(spec, &server).await;
                    return Err(format!("cannot list tools: {e}"));
                }
                Err(_) => {
                    drop(cached);
                    self.drop_server(spec, &server).await;
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
                self.drop_server(spec, &server).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_urls_under_an_allowed_one_pass() {
        let allowed = vec![
            "https://mcp.corp/".to_owned(),
            "http://127.0.0.1:9000/tools".to_owned(),
        ];
        for ok in [
            "https://mcp.corp/mcp",
            "https://mcp.corp:443/x",
            "http://127.0.0.1:9000/tools",
            "http://127.0.0.1:9000/tools/mcp",
        ] {
            assert!(url_allowed(ok, &allowed), "{ok}");
        }
        for bad in [
            "https://mcp.corp.evil.net/mcp",
            "https://mcp.corp@evil.net/mcp",
            "https://user:pw@mcp.corp/mcp",
            "http://mcp.corp/mcp",
            "https://mcp.corp:8443/mcp",
            "http://127.0.0.1:9000/toolsmith",
            "http://127.0.0.1:9000/tools/../admin",
            "http://127.0.0.1:9001/tools",
            "not a url",
        ] {
            assert!(!url_allowed(bad, &allowed), "{bad}");
        }
        assert!(!url_allowed("https://mcp.corp/mcp", &[]));
    }

    #[test]
    fn a_client_that_cannot_be_built_is_an_error_not_a_redirecting_default() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        // rustls speaks no TLS below 1.2, so this client cannot be built.
        let unbuildable =
            reqwest::Client::builder().max_tls_version(reqwest::tls::Version::TLS_1_0);
        let built = McpClients::with_client_builder(
            unbuildable,
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        assert!(built.is_err());
        assert!(McpClients::new(Duration::from_secs(1), Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn allowed_urls_must_be_plain_http_urls() {
        assert!(check_allowed_url("https://mcp.corp/").is_ok());
        assert!(check_allowed_url("").is_err());
        assert!(check_allowed_url("file:///etc").is_err());
        assert!(check_allowed_url("https://u:p@mcp.corp/").is_err());
    }
}
