//! `spool serve` settings, from flags and `SPOOL_*` environment variables,
//! and the config file (`--config`) that defines named agents, run
//! deadlines and request limits (`[limits]`) and browser access (`[http]`).
//! A flag or variable wins over the file; the file over the default.

use anyhow::Context;
use clap::Args;
use serde::Deserialize;
use spool_core::agent_config::AgentDefinition;
use spool_core::ids::SequentialIds;
use spool_core::request::llama_stack::MCP_TOOLGROUP_PREFIX;
use spool_core::request::{CreateResponseBody, HOSTED_TOOL_TYPES, RunRequest};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Settings of `spool serve`. Every flag can also be set by its variable.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address to listen on.
    #[arg(long, env = "SPOOL_ADDR", default_value = "127.0.0.1:8321")]
    pub addr: String,

    /// A TOML file defining named agents (`[[agents]]` tables).
    #[arg(long, env = "SPOOL_CONFIG")]
    pub config: Option<PathBuf>,

    /// Where the log is stored: `sqlite://PATH` (created if missing), or
    /// `postgres://USER@HOST:PORT/DATABASE` for several instances sharing
    /// one database (add `?options=-csearch_path%3DSCHEMA` for a schema).
    #[arg(
        long,
        env = "SPOOL_DATABASE_URL",
        default_value = "sqlite://./spool.db"
    )]
    pub database_url: String,

    /// An OpenAI-compatible base URL ending in /v1 (vLLM, Ollama, llama.cpp,
    /// OpenAI, …). Without it only the built-in `echo` model is served.
    #[arg(long, env = "SPOOL_UPSTREAM_URL")]
    pub upstream_url: Option<String>,

    /// API key sent to the upstream as a bearer token.
    #[arg(long, env = "SPOOL_UPSTREAM_API_KEY", hide_env_values = true)]
    pub upstream_api_key: Option<String>,

    /// The no-progress timeout: seconds the upstream may go without sending
    /// output (its answer's start, then any delta with text, reasoning, a
    /// tool call, usage or a finish; keep-alive comments and empty chunks
    /// do not count) before the run fails with `upstream_timeout`.
    /// Default 300, or `[limits] upstream_timeout_secs`.
    #[arg(long, env = "SPOOL_UPSTREAM_TIMEOUT_SECS")]
    pub upstream_timeout_secs: Option<u64>,

    /// Seconds to wait for a TCP/TLS connection to the upstream.
    #[arg(
        long,
        env = "SPOOL_UPSTREAM_CONNECT_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub upstream_connect_timeout_secs: u64,

    /// URL prefixes of the MCP servers requests may name (comma-separated);
    /// a request naming any other server is refused before any connection.
    #[arg(long, env = "SPOOL_MCP_ALLOWED_URLS", value_delimiter = ',')]
    pub mcp_allowed_urls: Vec<String>,

    /// Largest request body accepted, in bytes; larger bodies get a 413.
    #[arg(long, env = "SPOOL_MAX_BODY_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Send `data: [DONE]` after the terminal event of every stream.
    #[arg(long, env = "SPOOL_SSE_DONE", default_value_t = true, action = clap::ArgAction::Set)]
    pub sse_done: bool,

    /// The file holding the 32-byte key that seals compaction summaries;
    /// created if missing. Defaults to `compaction.key` beside the database.
    #[arg(long, env = "SPOOL_COMPACTION_KEY_FILE")]
    pub compaction_key_file: Option<PathBuf>,

    /// Seconds of silence after which a stream gets a keep-alive comment
    /// (0 turns them off).
    #[arg(long, env = "SPOOL_SSE_KEEPALIVE_SECS", default_value_t = 15)]
    pub sse_keepalive_secs: u64,

    /// Seconds a Responses WebSocket connection may stay open (OpenAI's
    /// limit is 60 minutes); then it is closed with an error frame.
    #[arg(long, env = "SPOOL_WEBSOCKET_MAX_AGE_SECS", default_value_t = 3600)]
    pub websocket_max_age_secs: u64,

    /// What a stored event survives once a client has seen it: `process`
    /// (the default: a killed process, not an OS crash or power loss) or
    /// `fsync` (also an OS crash: one disk sync per group-commit batch).
    #[arg(long, env = "SPOOL_DURABILITY", value_enum, default_value_t = DurabilityMode::Process)]
    pub durability: DurabilityMode,

    #[command(flatten)]
    pub limits: LimitArgs,

    #[command(flatten)]
    pub cluster: ClusterConfig,
}

/// How an instance shares a PostgreSQL database with others, and how it
/// stops.
#[derive(Debug, Clone, Args)]
pub struct ClusterConfig {
    /// This instance's id, recorded as the executor of its runs (a fresh
    /// one per process by default; give each instance its own).
    #[arg(long, env = "SPOOL_INSTANCE_ID")]
    pub instance_id: Option<String>,

    /// Milliseconds an instance's execution lease lasts unrenewed (it is
    /// renewed every third of it): how soon the runs of an instance that
    /// died are ended by another. PostgreSQL only.
    #[arg(long, env = "SPOOL_LEASE_TTL_MS", default_value_t = 10_000)]
    pub lease_ttl_ms: u64,

    /// Seconds a stopping instance lets its runs finish (its readiness
    /// route answering 503 meanwhile) before it ends the rest
    /// `server_shutdown`.
    #[arg(long, env = "SPOOL_DRAIN_GRACE_SECS", default_value_t = 0)]
    pub drain_grace_secs: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            instance_id: None,
            lease_ttl_ms: 10_000,
            drain_grace_secs: 0,
        }
    }
}

impl ClusterConfig {
    /// The lease's time-to-live; never so short that renewals cannot keep up.
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.lease_ttl_ms.max(300))
    }

    pub fn drain_grace(&self) -> Duration {
        Duration::from_secs(self.drain_grace_secs)
    }
}

/// Settings of `spool migrate`.
#[derive(Debug, Clone, Args)]
pub struct MigrateConfig {
    /// The database to bring up to date (as `spool serve` takes it).
    #[arg(
        long,
        env = "SPOOL_DATABASE_URL",
        default_value = "sqlite://./spool.db"
    )]
    pub database_url: String,
}

/// `SPOOL_DURABILITY`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DurabilityMode {
    #[default]
    Process,
    Fsync,
}

impl From<DurabilityMode> for spool_store::Durability {
    fn from(mode: DurabilityMode) -> Self {
        match mode {
            DurabilityMode::Process => Self::Process,
            DurabilityMode::Fsync => Self::Fsync,
        }
    }
}

/// Run deadlines, request limits and browser access, as flags and
/// variables; each unset one comes from the config file, else its default.
#[derive(Debug, Clone, Default, Args)]
pub struct LimitArgs {
    /// Longest a run may last, in seconds, however its upstream behaves;
    /// past it the run fails with `run_deadline_exceeded`. Default 3600.
    #[arg(long, env = "SPOOL_RUN_DEADLINE_SECS")]
    pub run_deadline_secs: Option<u64>,

    /// Most runs executing at once; more are refused with a 429 and
    /// `Retry-After`. Default 10000 (the ~1 GiB of 10,000 open streams).
    #[arg(long, env = "SPOOL_MAX_CONCURRENT_RUNS")]
    pub max_concurrent_runs: Option<usize>,

    /// Most input items one request may carry. Default 10000.
    #[arg(long, env = "SPOOL_MAX_INPUT_ITEMS")]
    pub max_input_items: Option<usize>,

    /// Most tools (functions, MCP servers, hosted tools) one request may
    /// offer. Default 512.
    #[arg(long, env = "SPOOL_MAX_TOOLS")]
    pub max_tools: Option<usize>,

    /// Longest model name accepted, in bytes. Default 256.
    #[arg(long, env = "SPOOL_MAX_MODEL_NAME_BYTES")]
    pub max_model_name_bytes: Option<usize>,

    /// Browser origins allowed to call the API (CORS), comma-separated,
    /// e.g. `https://app.example.com`; `*` allows any. Without any, no CORS
    /// headers are sent and requests from other origins are refused.
    #[arg(long, env = "SPOOL_CORS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub cors_allowed_origins: Vec<String>,

    /// Host names accepted beside loopback ones while spool listens on a
    /// loopback address (e.g. the name a reverse proxy forwards),
    /// comma-separated. Any other `Host` is refused, against DNS rebinding.
    #[arg(long, env = "SPOOL_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
}

/// `[limits]` in the config file: the same settings as [`LimitArgs`]
/// (and the upstream's no-progress timeout), under the same names.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFileConfig {
    pub run_deadline_secs: Option<u64>,
    pub upstream_timeout_secs: Option<u64>,
    pub max_concurrent_runs: Option<usize>,
    pub max_input_items: Option<usize>,
    pub max_tools: Option<usize>,
    pub max_model_name_bytes: Option<usize>,
}

/// `[http]` in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpFileConfig {
    /// Browser origins allowed beside SPOOL_CORS_ALLOWED_ORIGINS.
    #[serde(default)]
    pub cors_allowed_origins: Vec<String>,
    /// Host names accepted beside SPOOL_ALLOWED_HOSTS.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

/// The settings of [`LimitArgs`] and `[limits]`, resolved.
#[derive(Debug, Clone)]
pub struct Limits {
    pub run_deadline: Duration,
    pub upstream_timeout: Duration,
    pub max_concurrent_runs: usize,
    pub max_input_items: usize,
    pub max_tools: usize,
    pub max_model_name_bytes: usize,
    /// Allowed browser origins, normalised (no trailing `/`); empty: CORS off.
    pub cors_allowed_origins: Vec<String>,
    /// Host names accepted beside loopback ones, lower-case, without port.
    pub allowed_hosts: Vec<String>,
}

/// Defaults of the limits.
pub const DEFAULT_RUN_DEADLINE_SECS: u64 = 3600;
pub const DEFAULT_UPSTREAM_TIMEOUT_SECS: u64 = 300;
pub const DEFAULT_MAX_CONCURRENT_RUNS: usize = 10_000;
pub const DEFAULT_MAX_INPUT_ITEMS: usize = 10_000;
pub const DEFAULT_MAX_TOOLS: usize = 512;
pub const DEFAULT_MAX_MODEL_NAME_BYTES: usize = 256;

/// The config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Named agents, selected by `agent: {"type": "agent_reference", "name": …}`
    /// or `model: "agent:NAME"`.
    #[serde(default)]
    pub agents: Vec<AgentDefinition>,
    #[serde(default)]
    pub mcp: McpFileConfig,
    #[serde(default)]
    pub limits: LimitsFileConfig,
    #[serde(default)]
    pub http: HttpFileConfig,
    /// Shields llama-stack agents may name (`input_shields`,
    /// `output_shields`): `[[shields]]` with an `id` and the upstream's
    /// `moderation_model` (its `/v1/moderations`).
    #[serde(default)]
    pub shields: Vec<ShieldConfig>,
}

/// `[[shields]]` in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShieldConfig {
    pub id: String,
    pub moderation_model: String,
}

/// `[mcp]` in the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpFileConfig {
    /// URL prefixes of the MCP servers requests may name, beside
    /// SPOOL_MCP_ALLOWED_URLS.
    #[serde(default)]
    pub allowed_urls: Vec<String>,
    /// The MCP server serving a hosted tool type a client may offer
    /// (`web_search`, `file_search`, …): `[mcp.hosted_tools.web_search]`
    /// with the fields of an `mcp` tool. Hosted tools mapped to none are
    /// not offered to the model.
    #[serde(default)]
    pub hosted_tools: BTreeMap<String, serde_json::Value>,
    /// MCP servers of the operator's (`[[mcp.servers]]`, each with the
    /// fields of an `mcp` tool: `server_label`, `server_url` or `command`,
    /// `headers`): the llama-stack Agents API offers each as the toolgroup
    /// `mcp::LABEL`, as it does a named agent's MCP servers.
    #[serde(default)]
    pub servers: Vec<serde_json::Value>,
}

impl FileConfig {
    /// Reads and checks a config file: every agent must make valid requests
    /// and names must be unique.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the config file {}", path.display()))?;
        let config: FileConfig = toml::from_str(&text)
            .with_context(|| format!("invalid config file {}", path.display()))?;
        for (kind, server) in &config.mcp.hosted_tools {
            check_hosted_tool_server(kind, server).map_err(|e| {
                anyhow::anyhow!("{}: [mcp.hosted_tools.{kind}]: {e}", path.display())
            })?;
        }
        let mut labels = std::collections::HashSet::new();
        for (i, server) in config.mcp.servers.iter().enumerate() {
            let label = check_mcp_server(server).map_err(|e| {
                anyhow::anyhow!("{}: [[mcp.servers]] #{}: {e}", path.display(), i + 1)
            })?;
            anyhow::ensure!(
                labels.insert(label.clone()),
                "{}: MCP server '{label}' is defined twice",
                path.display()
            );
        }
        let mut shields = std::collections::HashSet::new();
        for shield in &config.shields {
            anyhow::ensure!(
                !shield.id.trim().is_empty() && !shield.moderation_model.trim().is_empty(),
                "{}: a shield needs an id and a moderation_model",
                path.display()
            );
            anyhow::ensure!(
                shields.insert(shield.id.as_str()),
                "{}: shield '{}' is defined twice",
                path.display(),
                shield.id
            );
        }
        let mut names = std::collections::HashSet::new();
        for agent in &config.agents {
            agent
                .validate()
                .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message))?;
            anyhow::ensure!(
                names.insert(agent.name.as_str()),
                "{}: agent '{}' is defined twice",
                path.display(),
                agent.name
            );
        }
        Ok(config)
    }
}

/// Checks that `server` is an MCP tool the operator may configure, by
/// parsing a request offering it; returns its label.
fn check_mcp_server(server: &serde_json::Value) -> Result<String, String> {
    if server.get("type").and_then(serde_json::Value::as_str) != Some("mcp") {
        return Err("type must be \"mcp\"".to_owned());
    }
    let body = CreateResponseBody {
        model: Some("check".into()),
        input: Some(serde_json::json!("check")),
        trusted_tools: vec![server.clone()],
        ..CreateResponseBody::default()
    };
    let request = RunRequest::parse(body, &SequentialIds::default()).map_err(|e| e.message)?;
    request
        .mcp_servers
        .first()
        .map(|s| s.server_label.clone())
        .ok_or_else(|| "not an MCP server".to_owned())
}

impl FileConfig {
    /// The shields of the llama-stack Agents API: id → moderation model.
    pub fn shields(&self) -> BTreeMap<String, String> {
        self.shields
            .iter()
            .map(|s| (s.id.clone(), s.moderation_model.clone()))
            .collect()
    }

    /// The toolgroups of the llama-stack Agents API, by id (`mcp::LABEL`):
    /// the `[[mcp.servers]]`, then the named agents' MCP servers whose
    /// labels those do not take.
    pub fn toolgroups(&self) -> BTreeMap<String, serde_json::Value> {
        let agents_servers = self
            .agents
            .iter()
            .flat_map(|a| a.tools.iter())
            .filter(|t| t.get("type").and_then(serde_json::Value::as_str) == Some("mcp"));
        let mut toolgroups = BTreeMap::new();
        for server in self.mcp.servers.iter().chain(agents_servers) {
            if let Some(label) = server
                .get("server_label")
                .and_then(serde_json::Value::as_str)
            {
                toolgroups
                    .entry(format!("{MCP_TOOLGROUP_PREFIX}{label}"))
                    .or_insert_with(|| server.clone());
            }
        }
        toolgroups
    }
}

/// Checks that `server` is an MCP tool that can serve the hosted tool type
/// `kind`, by parsing a request offering that type.
fn check_hosted_tool_server(kind: &str, server: &serde_json::Value) -> Result<(), String> {
    if !HOSTED_TOOL_TYPES.contains(&kind) {
        return Err(format!(
            "'{kind}' is not a hosted tool type; they are {}",
            HOSTED_TOOL_TYPES.join(", ")
        ));
    }
    if server.get("type").and_then(serde_json::Value::as_str) != Some("mcp") {
        return Err("type must be \"mcp\"".to_owned());
    }
    let body = CreateResponseBody {
        model: Some("check".into()),
        input: Some(serde_json::json!("check")),
        tools: Some(vec![serde_json::json!({"type": kind})]),
        hosted_tool_servers: BTreeMap::from([(kind.to_owned(), server.clone())]),
        ..CreateResponseBody::default()
    };
    RunRequest::parse(body, &SequentialIds::default())
        .map(drop)
        .map_err(|e| e.message)
}

impl ServeConfig {
    /// Where the compaction key is: as configured, or `compaction.key` in
    /// the directory of the SQLite database.
    pub fn compaction_key_path(&self) -> PathBuf {
        if let Some(path) = &self.compaction_key_file {
            return path.clone();
        }
        let database = self
            .database_url
            .strip_prefix("sqlite://")
            .or_else(|| self.database_url.strip_prefix("sqlite:"))
            .unwrap_or(&self.database_url);
        let dir = Path::new(database)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        dir.join("compaction.key")
    }

    /// The upstream's no-progress timeout, as the flag or variable says
    /// (the config file is read by [`ServeConfig::limits`]).
    pub fn upstream_timeout(&self) -> Duration {
        let secs = self
            .upstream_timeout_secs
            .unwrap_or(DEFAULT_UPSTREAM_TIMEOUT_SECS);
        Duration::from_secs(secs.max(1))
    }

    /// Deadlines, limits, origins and hosts: each flag or variable, else
    /// the config file's `[limits]`/`[http]`, else the default. A limit of 0
    /// counts as 1, so nothing is configured into refusing everything.
    pub fn limits(&self, file: &FileConfig) -> anyhow::Result<Limits> {
        let args = &self.limits;
        let f = &file.limits;
        let mut origins = Vec::new();
        for origin in args
            .cors_allowed_origins
            .iter()
            .chain(&file.http.cors_allowed_origins)
        {
            let origin = origin.trim().trim_end_matches('/');
            if origin.is_empty() {
                continue;
            }
            anyhow::ensure!(
                origin == "*" || origin.starts_with("http://") || origin.starts_with("https://"),
                "a CORS origin is * or an http(s):// origin such as https://app.example.com, got '{origin}'"
            );
            origins.push(origin.to_ascii_lowercase());
        }
        Ok(Limits {
            run_deadline: Duration::from_secs(
                args.run_deadline_secs
                    .or(f.run_deadline_secs)
                    .unwrap_or(DEFAULT_RUN_DEADLINE_SECS)
                    .max(1),
            ),
            upstream_timeout: Duration::from_secs(
                self.upstream_timeout_secs
                    .or(f.upstream_timeout_secs)
                    .unwrap_or(DEFAULT_UPSTREAM_TIMEOUT_SECS)
                    .max(1),
            ),
            max_concurrent_runs: args
                .max_concurrent_runs
                .or(f.max_concurrent_runs)
                .unwrap_or(DEFAULT_MAX_CONCURRENT_RUNS)
                .max(1),
            max_input_items: args
                .max_input_items
                .or(f.max_input_items)
                .unwrap_or(DEFAULT_MAX_INPUT_ITEMS)
                .max(1),
            max_tools: args
                .max_tools
                .or(f.max_tools)
                .unwrap_or(DEFAULT_MAX_TOOLS)
                .max(1),
            max_model_name_bytes: args
                .max_model_name_bytes
                .or(f.max_model_name_bytes)
                .unwrap_or(DEFAULT_MAX_MODEL_NAME_BYTES)
                .max(1),
            cors_allowed_origins: origins,
            allowed_hosts: args
                .allowed_hosts
                .iter()
                .chain(&file.http.allowed_hosts)
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
        })
    }

    pub fn upstream_connect_timeout(&self) -> Duration {
        Duration::from_secs(self.upstream_connect_timeout_secs.max(1))
    }

    pub fn sse_keepalive(&self) -> Option<Duration> {
        (self.sse_keepalive_secs > 0).then(|| Duration::from_secs(self.sse_keepalive_secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `text` as a config file and loads it.
    fn load(text: &str) -> anyhow::Result<FileConfig> {
        let dir = std::env::temp_dir().join(format!(
            "spool-config-{}-{}",
            std::process::id(),
            text.len()
        ));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("spool.toml");
        std::fs::write(&path, text)?;
        FileConfig::load(&path)
    }

    #[test]
    fn mcp_servers_and_agents_mcp_tools_are_toolgroups() {
        let config = load(
            r#"
[[mcp.servers]]
type = "mcp"
server_label = "calc"
server_url = "http://127.0.0.1:9/mcp"

[[agents]]
name = "helper"
model = "m"
tools = [
  { type = "mcp", server_label = "calc", server_url = "http://127.0.0.1:8/other" },
  { type = "mcp", server_label = "local", command = ["python", "server.py"] },
]
"#,
        )
        .unwrap();
        let toolgroups = config.toolgroups();
        assert_eq!(
            toolgroups.keys().collect::<Vec<_>>(),
            ["mcp::calc", "mcp::local"]
        );
        // A top-level server takes its label before an agent's.
        assert_eq!(
            toolgroups["mcp::calc"]["server_url"],
            "http://127.0.0.1:9/mcp"
        );
    }

    #[test]
    fn shields_name_moderation_models() {
        let config =
            load("[[shields]]\nid = \"safety\"\nmoderation_model = \"omni-moderation-latest\"\n")
                .unwrap();
        assert_eq!(
            config.shields(),
            BTreeMap::from([("safety".to_owned(), "omni-moderation-latest".to_owned())])
        );
        let twice = "[[shields]]\nid = \"s\"\nmoderation_model = \"m\"\n";
        let e = load(&format!("{twice}{twice}")).unwrap_err();
        assert!(e.to_string().contains("defined twice"), "{e}");
    }

    #[test]
    fn a_bad_or_repeated_mcp_server_is_refused() {
        let e = load("[[mcp.servers]]\nserver_label = \"x\"\nserver_url = \"http://h/mcp\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("type must be"), "{e}");
        let twice = "[[mcp.servers]]\ntype = \"mcp\"\nserver_label = \"x\"\nserver_url = \"http://h/mcp\"\n";
        let e = load(&format!("{twice}{twice}")).unwrap_err();
        assert!(e.to_string().contains("defined twice"), "{e}");
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeConfig,
    }

    fn serve(args: &[&str]) -> ServeConfig {
        Cli::try_parse_from(std::iter::once("spool").chain(args.iter().copied()))
            .unwrap()
            .serve
    }

    fn file(text: &str) -> FileConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn a_flag_wins_over_the_file_and_the_file_over_the_default() {
        let file = file(
            "[limits]\nrun_deadline_secs = 5\nupstream_timeout_secs = 7\nmax_tools = 3\n\
             [http]\ncors_allowed_origins = [\"https://a.example/\"]\nallowed_hosts = [\"Proxy.Internal\"]\n",
        );
        let limits = serve(&["--run-deadline-secs", "9"]).limits(&file).unwrap();
        assert_eq!(limits.run_deadline, Duration::from_secs(9));
        assert_eq!(limits.upstream_timeout, Duration::from_secs(7));
        assert_eq!(limits.max_tools, 3);
        assert_eq!(limits.max_input_items, DEFAULT_MAX_INPUT_ITEMS);
        assert_eq!(limits.cors_allowed_origins, ["https://a.example"]);
        assert_eq!(limits.allowed_hosts, ["proxy.internal"]);
        let defaults = serve(&[]).limits(&FileConfig::default()).unwrap();
        assert_eq!(
            defaults.run_deadline,
            Duration::from_secs(DEFAULT_RUN_DEADLINE_SECS)
        );
        assert!(defaults.cors_allowed_origins.is_empty());
    }

    #[test]
    fn a_zero_limit_counts_as_one_and_a_bad_origin_is_refused() {
        let limits = serve(&["--max-concurrent-runs", "0"])
            .limits(&FileConfig::default())
            .unwrap();
        assert_eq!(limits.max_concurrent_runs, 1);
        let bad = serve(&["--cors-allowed-origins", "evil.example"]);
        assert!(bad.limits(&FileConfig::default()).is_err());
        assert!(
            toml::from_str::<FileConfig>("[limits]\nmax_tool = 1\n").is_err(),
            "unknown keys are refused"
        );
    }

    #[test]
    fn durability_is_process_unless_fsync_is_asked_for() {
        assert_eq!(serve(&[]).durability, DurabilityMode::Process);
        assert_eq!(
            serve(&["--durability", "fsync"]).durability,
            DurabilityMode::Fsync
        );
        assert!(Cli::try_parse_from(["spool", "--durability", "sometimes"]).is_err());
    }
}
