//! Building and running the server: store, recovery, runtime, listener.

use crate::compaction::CompactionSeal;
use crate::config::{ClusterConfig, FileConfig, ServeConfig};
use crate::http::AppState;
use crate::http::access::AccessPolicy;
use crate::http::router::router;
use crate::http::sse::SseOptions;
use crate::runtime::bus::PostgresBus;
use crate::runtime::ids::Uuid7Ids;
use crate::runtime::{Agents, Deployment, LeaseSettings, McpAccess, RunLimits, Runtime, recovery};
use spool_core::ids::IdSource;
use spool_provider::mcp::{McpClients, check_allowed_url};
use std::time::Duration;

/// How long an MCP server's tool list is reused before it is listed again.
const MCP_TOOLS_TTL_SECS: u64 = 300;
use anyhow::Context;
use axum::serve::ListenerExt;
use spool_provider::openai_chat::{OpenAiChat, OpenAiChatConfig};
use spool_provider::{ModelProvider, ModelRouter};
use spool_store::{Durability, PostgresStore, SqliteStore, Store};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// A built server, bound and ready to serve.
pub struct App {
    listener: TcpListener,
    runtime: Arc<Runtime>,
    writer_task: tokio::task::JoinHandle<()>,
    router: axum::Router,
}

/// Whether a database URL names PostgreSQL.
fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Opens the store named by a database URL (bringing its schema up to
/// date), its commits as durable as `durability` says, as one instance
/// alone on it.
pub async fn open_store(url: &str, durability: Durability) -> anyhow::Result<Arc<dyn Store>> {
    let (store, _) = open_backend(url, durability, &ClusterConfig::default()).await?;
    Ok(store)
}

/// Opens the store named by a database URL and what the instance shares
/// through it: on PostgreSQL the cross-instance bus and execution leases,
/// on SQLite the in-process bus alone.
pub async fn open_backend(
    url: &str,
    durability: Durability,
    cluster: &ClusterConfig,
) -> anyhow::Result<(Arc<dyn Store>, Deployment)> {
    if url.starts_with("sqlite:") {
        let store = SqliteStore::open_with_durability(url, durability)
            .await
            .with_context(|| format!("cannot open the SQLite database {url}"))?;
        let deployment = Deployment {
            drain_grace: cluster.drain_grace(),
            ..Deployment::single()
        };
        return Ok((Arc::new(store), deployment));
    }
    if is_postgres(url) {
        let instance = cluster
            .instance_id
            .clone()
            .unwrap_or_else(|| Uuid7Ids.new_id("inst"));
        let store = PostgresStore::open(url, &instance, cluster.lease_ttl())
            .await
            .context("cannot open the PostgreSQL database (SPOOL_DATABASE_URL)")?;
        tracing::info!(
            instance,
            "sharing a PostgreSQL database with other instances"
        );
        let deployment = Deployment {
            bus: Arc::new(PostgresBus::start(store.clone())),
            leases: Some(LeaseSettings {
                leases: Arc::new(store.clone()),
                ttl: cluster.lease_ttl(),
            }),
            drain_grace: cluster.drain_grace(),
        };
        return Ok((Arc::new(store), deployment));
    }
    anyhow::bail!(
        "unsupported SPOOL_DATABASE_URL '{url}': use sqlite://PATH or postgres://USER@HOST:PORT/DATABASE"
    )
}

/// Brings the schema of the database at `url` up to date: `spool migrate`.
pub async fn migrate(url: &str) -> anyhow::Result<()> {
    if is_postgres(url) {
        spool_store::postgres::migrate(url)
            .await
            .context("cannot migrate the PostgreSQL database")?;
        return Ok(());
    }
    // Opening a SQLite database applies its migrations.
    open_store(url, Durability::Process).await.map(drop)
}

impl App {
    /// Opens the store, ends runs a previous process left unfinished, and
    /// binds the listener. The server answers once [`App::run_until_stopped`]
    /// runs.
    pub async fn build(config: &ServeConfig) -> anyhow::Result<Self> {
        Self::build_with_agents(config, Agents::default()).await
    }

    /// Like [`App::build`], also hosting `agents`: a request whose `model`
    /// is an agent's name runs that agent.
    pub async fn build_with_agents(config: &ServeConfig, agents: Agents) -> anyhow::Result<Self> {
        let durability = config.durability.into();
        let (store, deployment) =
            open_backend(&config.database_url, durability, &config.cluster).await?;
        if config.durability == crate::config::DurabilityMode::Fsync {
            tracing::info!(
                "durability: fsync (each commit is synced to disk before clients see it)"
            );
        }
        Self::build_with_deployment(config, store, deployment, agents).await
    }

    /// Like [`App::build_with_agents`] over a store the caller opened
    /// (`config.database_url` is not used), alone on it.
    pub async fn build_with_store(
        config: &ServeConfig,
        store: Arc<dyn Store>,
        agents: Agents,
    ) -> anyhow::Result<Self> {
        Self::build_with_deployment(config, store, Deployment::single(), agents).await
    }

    async fn build_with_deployment(
        config: &ServeConfig,
        store: Arc<dyn Store>,
        deployment: Deployment,
        agents: Agents,
    ) -> anyhow::Result<Self> {
        let mut allowed_urls: Vec<String> = config.mcp_allowed_urls.clone();
        let mut hosted_tool_servers = Default::default();
        let mut toolgroups = Default::default();
        let mut shields = Default::default();
        let file = match &config.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let limits = config.limits(&file)?;
        if let Some(path) = &config.config {
            let file = &file;
            allowed_urls.extend(file.mcp.allowed_urls.iter().cloned());
            toolgroups = file.toolgroups();
            shields = file.shields();
            hosted_tool_servers = file.mcp.hosted_tools.clone();
            // The file is the source of truth for the agents it defines.
            let names: Vec<String> = file.agents.iter().map(|a| a.name.clone()).collect();
            store
                .retain_agents(&names)
                .await
                .context("cannot update the stored agents")?;
            for agent in &file.agents {
                store
                    .put_agent(agent)
                    .await
                    .with_context(|| format!("cannot store agent '{}'", agent.name))?;
            }
            tracing::info!(agents = file.agents.len(), path = %path.display(), "loaded the config file");
        }
        let allowed_urls: Vec<String> = allowed_urls
            .iter()
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
            .collect();
        for prefix in &allowed_urls {
            check_allowed_url(prefix)
                .map_err(|e| anyhow::anyhow!("invalid MCP allowed URL: {e}"))?;
        }
        // Never fails: a log that cannot be used is quarantined and logged.
        let leases = deployment.leases.as_ref().map(|l| l.leases.as_ref());
        let recovered = recovery::recover(store.as_ref(), leases).await;
        if recovered != recovery::Recovered::default() {
            tracing::warn!(
                ended = recovered.ended,
                quarantined = recovered.quarantined,
                left = recovered.left,
                "ended runs left unfinished by a previous process"
            );
        }
        let upstream: Option<Arc<dyn ModelProvider>> = match &config.upstream_url {
            Some(url) => {
                let url = url.trim();
                anyhow::ensure!(
                    url.starts_with("http://") || url.starts_with("https://"),
                    "SPOOL_UPSTREAM_URL must be an http:// or https:// URL, got '{url}'"
                );
                if !url.trim_end_matches('/').ends_with("/v1") {
                    tracing::warn!(
                        url,
                        "SPOOL_UPSTREAM_URL usually ends in /v1; requests go to {url}/chat/completions"
                    );
                }
                tracing::info!(url, "model upstream configured");
                let chat = OpenAiChat::new(OpenAiChatConfig {
                    base_url: url.to_owned(),
                    api_key: config.upstream_api_key.clone(),
                    connect_timeout: config.upstream_connect_timeout(),
                    idle_timeout: limits.upstream_timeout,
                })?;
                Some(Arc::new(chat))
            }
            None => {
                tracing::warn!(
                    "no model upstream configured: only the built-in 'echo' model is served. \
                     Set SPOOL_UPSTREAM_URL (or --upstream-url) to an OpenAI-compatible base URL \
                     ending in /v1, e.g. http://localhost:11434/v1"
                );
                None
            }
        };
        // Without a client that follows no redirects, MCP could be led out
        // of the allowlist: refuse to start rather than fall back.
        let mcp_clients = McpClients::new(
            Duration::from_secs(MCP_TOOLS_TTL_SECS),
            config.upstream_connect_timeout(),
        )?;
        let compaction = Arc::new(CompactionSeal::load_or_create(
            &config.compaction_key_path(),
        )?);
        let (runtime, writer_task) = Runtime::new(
            store,
            deployment,
            ModelRouter::new(upstream),
            agents,
            McpAccess {
                clients: Arc::new(mcp_clients),
                allowed_urls,
            },
            compaction,
            RunLimits {
                deadline: limits.run_deadline,
                max_concurrent_runs: limits.max_concurrent_runs,
                max_input_items: limits.max_input_items,
                max_tools: limits.max_tools,
                max_model_name_bytes: limits.max_model_name_bytes,
            },
        );
        let state = AppState {
            runtime: runtime.clone(),
            sse: SseOptions {
                done_marker: config.sse_done,
                keep_alive: config.sse_keepalive(),
            },
            hosted_tool_servers: Arc::new(hosted_tool_servers),
            websocket_max_age: Duration::from_secs(config.websocket_max_age_secs),
            roboto: Default::default(),
            toolgroups: Arc::new(toolgroups),
            shields: Arc::new(shields),
        };
        let listener = TcpListener::bind(&config.addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.addr))?;
        let local = listener.local_addr()?;
        let loopback = local.ip().is_loopback();
        if !loopback {
            tracing::warn!(
                "spool listens on {local}, reachable beyond this machine, and has NO API KEYS: \
                 anyone who can connect can start runs on your model upstream and read every \
                 stored response and conversation. Listen on 127.0.0.1 (SPOOL_ADDR) or put an \
                 authenticating proxy in front."
            );
        }
        let access = AccessPolicy {
            loopback_hosts_only: loopback,
            allowed_hosts: limits.allowed_hosts.clone(),
            allowed_origins: limits.cors_allowed_origins.clone(),
        };
        if !access.allowed_origins.is_empty() {
            tracing::info!(origins = ?access.allowed_origins, "CORS is on for these browser origins");
        }
        Ok(Self {
            listener,
            runtime,
            writer_task,
            router: router(state, config.max_body_bytes, access),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// Serves until `stop` resolves, then ends live runs (`server_shutdown`),
    /// stores their ends, and returns.
    pub async fn run_until_stopped(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            runtime,
            writer_task,
            router,
        } = self;
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let runtime_for_stop = runtime.clone();
        // Each SSE frame is its own small write; without TCP_NODELAY, Nagle's
        // algorithm holds it back until the client's delayed ACK (~40 ms).
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        let server = axum::serve(listener, router).with_graceful_shutdown(async move {
            stop.await;
            tracing::info!("stopping: ending live runs");
            // Ending the runs ends their streams, which lets the open
            // connections close.
            runtime_for_stop.shutdown().await;
            let _ = stopping_tx.send(());
        });
        server.await.context("the HTTP server failed")?;
        let _ = stopping_rx.await;
        drop(runtime);
        // The writer ends once every run (and so every handle) is gone.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), writer_task).await;
        Ok(())
    }
}
