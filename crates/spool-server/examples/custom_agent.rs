//! Hosting your own agent logic in spool.
//!
//! `shouter` streams the caller's last message back in capitals, word by
//! word, through spool's typed writer; when the caller offers a `save_note`
//! function tool it also asks the caller to run it. spool does the rest:
//! ids, the durable log, replay, cancellation and the Responses API.
//!
//! Run it, then talk to it with any OpenAI client:
//!
//! ```sh
//! cargo run -p spool-server --example custom_agent
//! curl -N localhost:8321/v1/responses -H 'content-type: application/json' \
//!   -d '{"model":"shouter","input":"hello there","stream":true}'
//! ```

use async_trait::async_trait;
use clap::Parser;
use spool_core::agent::{Agent, RunContext, RunOutcome};
use spool_core::emit::RunWriter;
use spool_core::item::{Item, Role};
use spool_core::run::RunError;
use spool_server::{Agents, App, ServeConfig};
use std::sync::Arc;

struct Shouter;

fn emit_error(e: impl std::fmt::Display) -> RunError {
    RunError::new("server_error", e.to_string())
}

#[async_trait]
impl Agent for Shouter {
    async fn run(&self, ctx: RunContext, out: &mut RunWriter<'_>) -> Result<RunOutcome, RunError> {
        let said = ctx
            .conversation()
            .filter_map(|item| match item {
                Item::Message(m) if m.role == Role::User => Some(m.text()),
                _ => None,
            })
            .last()
            .ok_or_else(|| RunError::new("invalid_prompt", "Say something first."))?;

        // A message, streamed word by word. The writer borrows `out` while
        // the message is open, so nothing else can start until it is done.
        let mut message = out.message().await.map_err(emit_error)?;
        let mut text = message.output_text().await.map_err(emit_error)?;
        for (i, word) in said.split_whitespace().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            text.delta(&format!("{sep}{}", word.to_uppercase()))
                .await
                .map_err(emit_error)?;
        }
        text.done().await.map_err(emit_error)?;
        message.done().await.map_err(emit_error)?;

        // A client-side tool call: the run ends with it, and the caller
        // continues with a function_call_output and previous_response_id.
        if ctx.request.tools.iter().any(|t| t.name == "save_note") {
            let call_id = out.new_id("call");
            let mut call = out
                .function_call(call_id, "save_note")
                .await
                .map_err(emit_error)?;
            let args = serde_json::json!({ "note": said }).to_string();
            call.arguments_delta(&args).await.map_err(emit_error)?;
            call.done().await.map_err(emit_error)?;
        }
        Ok(RunOutcome::Completed)
    }
}

/// The example takes the same flags and SPOOL_* variables as `spool serve`.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    config: ServeConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().init();
    let config = Cli::parse().config;
    let agents = Agents::default().with("shouter", Arc::new(Shouter));
    let app = App::build_with_agents(&config, agents).await?;
    println!(
        "shouter agent at http://{}/v1 (model \"shouter\")",
        app.local_addr()?
    );
    app.run_until_stopped(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
