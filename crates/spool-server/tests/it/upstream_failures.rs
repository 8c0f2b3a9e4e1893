//! Every way the upstream can fail ends the run `failed` with a meaningful
//! code, a terminal event, and no hung stream.

use crate::helpers::{events_of, spawn_app};
use crate::upstream::{DONE, Script, Step, finish_chunk, text_chunk};
use serde_json::{Value, json};
use std::time::Duration;

async fn failed_with(script: Script) -> (Value, Vec<crate::helpers::Frame>) {
    let app = spawn_app().await;
    app.upstream.push(script);
    let events = events_of(
        app.stream(&json!({"model": "up", "input": "x", "stream": true}))
            .await,
    );
    let last = events.last().unwrap();
    assert_eq!(last.event.as_deref(), Some("response.failed"));
    let response = last.json()["response"].clone();
    assert_eq!(response["status"], "failed");
    let id = response["id"].as_str().unwrap();
    let (_, stored) = app.get(&format!("/v1/responses/{id}")).await;
    assert_eq!(stored, response);
    (response["error"].clone(), events)
}

#[tokio::test]
async fn an_upstream_http_500_fails_the_run_with_its_message() {
    let (error, _) = failed_with(Script::Error(
        500,
        r#"{"error":{"message":"model crashed"}}"#,
    ))
    .await;
    assert_eq!(error["code"], "upstream_http_error");
    assert!(error["message"].as_str().unwrap().contains("model crashed"));
    // Strict clients (the Vercel AI SDK) read code, message and type.
    assert_eq!(error["type"], "server_error");
}

#[tokio::test]
async fn an_upstream_429_is_a_rate_limit() {
    let (error, _) = failed_with(Script::Error(429, "slow down")).await;
    assert_eq!(error["code"], "rate_limit_exceeded");
}

#[tokio::test]
async fn a_stream_dropped_midway_fails_with_upstream_disconnected() {
    let (error, events) = failed_with(Script::Stream(vec![
        text_chunk("partial "),
        Step::Sleep(Duration::from_millis(50)),
        Step::Drop,
    ]))
    .await;
    assert_eq!(error["code"], "upstream_disconnected");
    // What was streamed before the drop is kept, marked incomplete.
    let response = events.last().unwrap().json()["response"].clone();
    assert_eq!(response["output"][0]["status"], "incomplete");
    assert_eq!(response["output"][0]["content"][0]["text"], "partial ");
}

#[tokio::test]
async fn a_stream_that_just_ends_is_a_disconnect() {
    let (error, _) = failed_with(Script::Stream(vec![text_chunk("a")])).await;
    assert_eq!(error["code"], "upstream_disconnected");
}

#[tokio::test]
async fn a_malformed_chunk_is_a_protocol_error() {
    let (error, _) = failed_with(Script::Stream(vec![
        text_chunk("a"),
        Step::Raw("data: {this is not json\n\n"),
        DONE,
    ]))
    .await;
    assert_eq!(error["code"], "upstream_protocol_error");
}

#[tokio::test]
async fn a_stalled_stream_times_out() {
    // The test config allows 2 s of silence.
    let (error, _) = failed_with(Script::Stream(vec![
        text_chunk("a"),
        Step::Sleep(Duration::from_secs(4)),
        finish_chunk("stop"),
        DONE,
    ]))
    .await;
    assert_eq!(error["code"], "upstream_timeout");
}

#[tokio::test]
async fn a_slow_stream_within_the_timeout_completes() {
    let app = spawn_app().await;
    app.upstream
        .push(crate::upstream::slow_script(4, Duration::from_millis(500)));
    let events = events_of(
        app.stream(&json!({"model": "up", "input": "x", "stream": true}))
            .await,
    );
    assert_eq!(
        events.last().unwrap().event.as_deref(),
        Some("response.completed")
    );
}

#[tokio::test]
async fn an_unreachable_upstream_fails_the_run() {
    let db = crate::helpers::temp_db();
    let upstream = crate::upstream::Upstream::start().await;
    // Nothing listens on port 9 of loopback.
    let config = crate::helpers::config(&db, Some("http://127.0.0.1:9/v1"));
    let app = crate::helpers::spawn_with(config, upstream).await;
    let (status, body) = app
        .post("/v1/responses", &json!({"model": "up", "input": "x"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "failed");
    assert_eq!(body["error"]["code"], "upstream_unreachable");
}
