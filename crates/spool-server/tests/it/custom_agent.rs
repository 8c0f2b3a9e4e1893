//! Agents hosted through the handler trait run like the built-in one.

use crate::helpers::{SseReader, assert_error, config, events_of, spawn_with_agents, temp_db};
use async_trait::async_trait;
use serde_json::json;
use spool_core::agent::{Agent, RunContext, RunOutcome};
use spool_core::emit::RunWriter;
use spool_core::run::RunError;
use spool_server::Agents;
use std::sync::Arc;
use std::time::Duration;

/// Writes a fixed answer and a client function call.
struct Scripted;

#[async_trait]
impl Agent for Scripted {
    async fn run(&self, ctx: RunContext, out: &mut RunWriter<'_>) -> Result<RunOutcome, RunError> {
        let err = |e: spool_core::emit::EmitError| RunError::new("server_error", e.to_string());
        let turns = ctx.history.len();
        out.message_text(&format!("history has {turns} items"))
            .await
            .map_err(err)?;
        let mut call = out.function_call("call_x", "lookup").await.map_err(err)?;
        call.arguments_delta("{}").await.map_err(err)?;
        call.done().await.map_err(err)?;
        Ok(RunOutcome::Completed)
    }
}

/// Fails with its own error code.
struct Failing;

#[async_trait]
impl Agent for Failing {
    async fn run(&self, _: RunContext, out: &mut RunWriter<'_>) -> Result<RunOutcome, RunError> {
        let mut m = out
            .message()
            .await
            .map_err(|e| RunError::new("server_error", e.to_string()))?;
        m.text("halfway").await.ok();
        Err(RunError::new("tool_failed", "the lookup service is down"))
    }
}

/// Panics mid-run.
struct Panicking;

#[async_trait]
impl Agent for Panicking {
    async fn run(&self, _: RunContext, _: &mut RunWriter<'_>) -> Result<RunOutcome, RunError> {
        panic!("agent bug");
    }
}

#[tokio::test]
async fn hosted_agents_serve_by_name_and_end_as_they_say() {
    let agents = Agents::default()
        .with("scripted", Arc::new(Scripted))
        .with("failing", Arc::new(Failing))
        .with("panicking", Arc::new(Panicking));
    let upstream = crate::upstream::Upstream::start().await;
    let app = spawn_with_agents(config(&temp_db(), None), upstream, agents).await;

    let events = events_of(
        app.stream(&json!({"model": "scripted", "input": "hi", "stream": true}))
            .await,
    );
    let response = events.last().unwrap().json()["response"].clone();
    assert_eq!(response["status"], "completed");
    assert_eq!(
        response["output"][0]["content"][0]["text"],
        "history has 0 items"
    );
    assert_eq!(response["output"][1]["name"], "lookup");
    let (_, next) = app
        .post(
            "/v1/responses",
            &json!({"model": "scripted", "previous_response_id": response["id"],
            "input": [{"type": "function_call_output", "call_id": "call_x", "output": "42"}]}),
        )
        .await;
    // history: the first turn's input (1) and output (2).
    assert_eq!(
        next["output"][0]["content"][0]["text"],
        "history has 3 items"
    );

    let (_, failed) = app
        .post("/v1/responses", &json!({"model": "failing", "input": "x"}))
        .await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], "tool_failed");
    assert_eq!(failed["output"][0]["status"], "incomplete");

    let events = events_of(
        app.stream(&json!({"model": "panicking", "input": "x", "stream": true}))
            .await,
    );
    let last = events.last().unwrap().json();
    assert_eq!(last["type"], "response.failed");
    assert_eq!(last["response"]["error"]["code"], "server_error");
}

/// Panics when dropped outside a panic: a resource whose cleanup is buggy.
struct CleanupBomb;

impl Drop for CleanupBomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("cleanup bug");
        }
    }
}

/// Writes a message, then waits forever holding a resource whose cleanup
/// panics: cancelling the run drops the agent's future outside the guard
/// around the agent call, in the drive loop.
struct PanicsWhenCancelled;

#[async_trait]
impl Agent for PanicsWhenCancelled {
    async fn run(&self, _: RunContext, out: &mut RunWriter<'_>) -> Result<RunOutcome, RunError> {
        let _resource = CleanupBomb;
        out.message_text("working")
            .await
            .map_err(|e| RunError::new("server_error", e.to_string()))?;
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_panic_outside_the_agent_still_ends_the_run_for_everyone() {
    let agents = Agents::default().with("fragile", Arc::new(PanicsWhenCancelled));
    let upstream = crate::upstream::Upstream::start().await;
    let app = spawn_with_agents(config(&temp_db(), None), upstream, agents).await;
    let (_, conversation) = app.post("/v1/conversations", &json!({})).await;
    let conversation = conversation["id"].as_str().unwrap().to_owned();
    let (status, created) = app
        .post(
            "/v1/responses",
            &json!({"model": "fragile", "input": "x", "background": true,
                "conversation": conversation}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let r = app
        .http
        .get(app.url(&format!("/v1/responses/{id}?stream=true")))
        .send()
        .await
        .unwrap();
    let mut live = SseReader::new(r);
    // The agent holds its resource once its message is done.
    live.until("response.output_item.done").await;

    let (status, body) = tokio::time::timeout(
        Duration::from_secs(5),
        app.post(&format!("/v1/responses/{id}/cancel"), &json!({})),
    )
    .await
    .expect("the cancel is answered once the run has ended");
    let error = assert_error(status, &body, 400);
    assert_eq!(error["message"], "Cannot cancel a failed response.");

    let rest = events_of(live.rest().await);
    let last = rest.last().expect("a terminal event").json();
    assert_eq!(last["type"], "response.failed");
    assert_eq!(last["response"]["error"]["code"], "server_error");
    let (_, stored) = app.get(&format!("/v1/responses/{id}")).await;
    assert_eq!(stored["status"], "failed");
    assert_eq!(last["response"], stored);
    // The message written before the panic is kept.
    assert_eq!(stored["output"][0]["content"][0]["text"], "working");

    let (status, body) = app.delete(&format!("/v1/responses/{id}")).await;
    assert_eq!(status, 200, "{body}");
    // The conversation is free for the next turn.
    let (status, body) = app
        .post(
            "/v1/responses",
            &json!({"model": "echo", "input": "y", "conversation": conversation}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}
