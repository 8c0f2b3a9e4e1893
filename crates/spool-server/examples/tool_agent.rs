//! An agent with its own tools, hosted in spool.
//!
//! `assistant` runs on the upstream's model with two Rust tools, `word_count`
//! and `utc_now`. When the model calls one, spool runs it inside the run
//! (concurrently with the other calls, under a timeout), records the call
//! as an `mcp_call` item labelled `spool`, and calls the model again.
//!
//! ```sh
//! SPOOL_UPSTREAM_URL=http://localhost:11434/v1 UPSTREAM_MODEL=llama3.2 \
//!   cargo run -p spool-server --example tool_agent
//! curl -s localhost:8321/v1/responses -H 'content-type: application/json' \
//!   -d '{"model":"assistant","input":"How many words are in: the quick brown fox?"}'
//! ```

use async_trait::async_trait;
use clap::Parser;
use serde_json::{Value, json};
use spool_core::request::FunctionTool;
use spool_core::tool::{Tool, ToolSet};
use spool_provider::ModelAgent;
use spool_provider::openai_chat::{OpenAiChat, OpenAiChatConfig};
use spool_server::{Agents, App, ServeConfig};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Counts the words of a text.
struct WordCount;

#[async_trait]
impl Tool for WordCount {
    fn definition(&self) -> FunctionTool {
        FunctionTool {
            name: "word_count".into(),
            description: Some("Counts the words in a text.".into()),
            parameters: Some(json!({
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
            })),
            strict: None,
        }
    }

    async fn call(&self, arguments: Value) -> Result<String, String> {
        let text = arguments["text"]
            .as_str()
            .ok_or("'text' must be a string")?;
        Ok(text.split_whitespace().count().to_string())
    }
}

/// The current time, in Unix seconds.
struct UtcNow;

#[async_trait]
impl Tool for UtcNow {
    fn definition(&self) -> FunctionTool {
        FunctionTool {
            name: "utc_now".into(),
            description: Some("The current UTC time as Unix seconds.".into()),
            parameters: Some(json!({"type": "object", "properties": {}})),
            strict: None,
        }
    }

    async fn call(&self, _: Value) -> Result<String, String> {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs().to_string())
            .map_err(|e| e.to_string())
    }
}

/// The example takes the same flags and SPOOL_* variables as `spool serve`.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    config: ServeConfig,
    /// The upstream model the agent runs on.
    #[arg(long, env = "UPSTREAM_MODEL", default_value = "gpt-4o-mini")]
    upstream_model: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().init();
    let cli = Cli::parse();
    let Some(url) = cli.config.upstream_url.clone() else {
        anyhow::bail!("this example needs a model: set SPOOL_UPSTREAM_URL (and UPSTREAM_MODEL)");
    };
    let provider = OpenAiChat::new(OpenAiChatConfig {
        base_url: url,
        api_key: cli.config.upstream_api_key.clone(),
        connect_timeout: cli.config.upstream_connect_timeout(),
        idle_timeout: cli.config.upstream_timeout(),
    })?;
    let agent = ModelAgent::new(Arc::new(provider))
        .with_model(cli.upstream_model)
        .with_tools(
            ToolSet::default()
                .with(Arc::new(WordCount))
                .with(Arc::new(UtcNow)),
        );
    let app = App::build_with_agents(
        &cli.config,
        Agents::default().with("assistant", Arc::new(agent)),
    )
    .await?;
    println!(
        "assistant agent at http://{}/v1 (model \"assistant\")",
        app.local_addr()?
    );
    app.run_until_stopped(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
