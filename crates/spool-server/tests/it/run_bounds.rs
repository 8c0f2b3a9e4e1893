//! Every run ends within its bounds, whatever the upstream does: one that
//! only sends keep-alives or empty chunks, one that streams forever, one
//! that ignores `max_output_tokens`, one with a huge error body, one that
//! answers garbage. Each run ends with the cause named, its upstream
//! connection is dropped, and nothing is left locked.

use crate::helpers::{config, events_of, spawn_with, temp_db};
use crate::upstream::{Script, Step, Upstream, text_chunk};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// spool with a 2 s no-progress timeout and a run deadline of `deadline`.
async fn bounded_app(deadline_secs: Option<u64>) -> crate::helpers::TestApp {
    let upstream = Upstream::start().await;
    let mut config = config(&temp_db(), Some(&upstream.base_url));
    config.limits.run_deadline_secs = deadline_secs;
    spawn_with(config, upstream).await
}

fn chunk_bytes(delta: Value) -> String {
    let chunk = json!({"id":"c","object":"chat.completion.chunk","created":0,"model":"m",
        "choices":[{"index":0,"delta":delta,"finish_reason":null}]});
    format!("data: {chunk}\n\n")
}

/// Streams a request and returns its last response object and how long
/// the stream took.
async fn last_response(app: &crate::helpers::TestApp, body: Value) -> (Value, Duration) {
    let started = Instant::now();
    let events = events_of(app.stream(&body).await);
    let elapsed = started.elapsed();
    let last = events.last().unwrap();
    (last.json()["response"].clone(), elapsed)
}

async fn assert_upstream_released(app: &crate::helpers::TestApp) {
    crate::helpers::eventually("the upstream stream is dropped", || async {
        app.upstream.open_streams() == 0
    })
    .await;
}

#[tokio::test]
async fn an_upstream_sending_only_keep_alives_times_out() {
    let app = bounded_app(None).await;
    app.upstream.push(Script::Stream(vec![
        text_chunk("started "),
        Step::Forever(": keep-alive\n\n".into(), Duration::from_millis(100)),
    ]));
    let (response, elapsed) =
        last_response(&app, json!({"model": "up", "input": "x", "stream": true})).await;
    assert_eq!(response["status"], "failed");
    assert_eq!(response["error"]["code"], "upstream_timeout");
    assert!(
        response["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no output for 2 seconds"),
        "{response}"
    );
    // The test config's no-progress timeout is 2 s.
    assert!(elapsed < Duration::from_secs(8), "{elapsed:?}");
    assert_upstream_released(&app).await;
}

#[tokio::test]
async fn an_upstream_sending_only_empty_deltas_times_out() {
    for empty in [
        chunk_bytes(json!({"content": ""})),
        chunk_bytes(json!({})),
        chunk_bytes(json!({"tool_calls": [{"index": 0, "function": {"arguments": ""}}]})),
    ] {
        let app = bounded_app(None).await;
        app.upstream.push(Script::Stream(vec![Step::Forever(
            empty,
            Duration::from_millis(50),
        )]));
        let (response, _) =
            last_response(&app, json!({"model": "up", "input": "x", "stream": true})).await;
        assert_eq!(response["error"]["code"], "upstream_timeout", "{response}");
        assert_upstream_released(&app).await;
    }
}

#[tokio::test]
async fn an_upstream_streaming_forever_is_ended_at_the_run_deadline() {
    let app = bounded_app(Some(2)).await;
    app.upstream.push(Script::Stream(vec![Step::Forever(
        chunk_bytes(json!({"content": "more "})),
        Duration::from_millis(20),
    )]));
    let (response, elapsed) =
        last_response(&app, json!({"model": "up", "input": "x", "stream": true})).await;
    assert_eq!(response["status"], "failed");
    assert_eq!(response["error"]["code"], "run_deadline_exceeded");
    assert!(elapsed >= Duration::from_secs(2), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(8), "{elapsed:?}");
    // What streamed before the deadline is kept, marked incomplete.
    assert_eq!(response["output"][0]["status"], "incomplete");
    assert_upstream_released(&app).await;
    let id = response["id"].as_str().unwrap();
    let (_, stored) = app.get(&format!("/v1/responses/{id}")).await;
    assert_eq!(stored["status"], "failed");
}

#[tokio::test]
async fn a_background_run_on_a_conversation_is_ended_at_the_deadline_and_releases_it() {
    let app = bounded_app(Some(1)).await;
    let (_, conversation) = app.post("/v1/conversations", &json!({})).await;
    let conversation = conversation["id"].as_str().unwrap().to_owned();
    app.upstream.push(Script::Stream(vec![Step::Forever(
        chunk_bytes(json!({"content": "more "})),
        Duration::from_millis(20),
    )]));
    let (status, created) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "x", "background": true, "conversation": conversation}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let ended = app.wait_terminal(created["id"].as_str().unwrap()).await;
    assert_eq!(ended["error"]["code"], "run_deadline_exceeded");
    // The conversation takes the next turn.
    let (status, next) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "again", "conversation": conversation}),
        )
        .await;
    assert_eq!(status, 200, "{next}");
    assert_eq!(next["status"], "completed");
}

#[tokio::test]
async fn spool_enforces_max_output_tokens_on_an_upstream_that_ignores_it() {
    let app = bounded_app(None).await;
    app.upstream.push(Script::Stream(vec![Step::Forever(
        chunk_bytes(json!({"content": "tok "})),
        Duration::from_millis(1),
    )]));
    let (response, _) = last_response(
        &app,
        json!({"model": "up", "input": "x", "stream": true, "max_output_tokens": 20}),
    )
    .await;
    assert_eq!(response["status"], "incomplete", "{response}");
    assert_eq!(
        response["incomplete_details"]["reason"],
        "max_output_tokens"
    );
    let text = response["output"][0]["content"][0]["text"]
        .as_str()
        .unwrap();
    assert_eq!(text, "tok ".repeat(20));
    assert_eq!(response["output"][0]["status"], "incomplete");
    // The upstream was asked for the limit too.
    let sent = &app.upstream.requests()[0];
    let asked = sent
        .get("max_completion_tokens")
        .or_else(|| sent.get("max_tokens"))
        .cloned();
    assert_eq!(asked, Some(json!(20)), "{sent}");
    assert_upstream_released(&app).await;
}

#[tokio::test]
async fn an_upstream_within_max_output_tokens_is_not_cut() {
    let app = bounded_app(None).await;
    app.upstream
        .push(crate::upstream::text_script(&["a", "b", "c", "d"]));
    let (response, _) = last_response(
        &app,
        json!({"model": "up", "input": "x", "stream": true, "max_output_tokens": 16}),
    )
    .await;
    assert_eq!(response["status"], "completed", "{response}");
}

#[tokio::test]
async fn a_huge_error_body_is_read_only_a_few_kib_of() {
    let app = bounded_app(None).await;
    let huge = 200 * 1024 * 1024;
    app.upstream.push(Script::HugeError(500, huge));
    let (response, elapsed) =
        last_response(&app, json!({"model": "up", "input": "x", "stream": true})).await;
    assert_eq!(response["error"]["code"], "upstream_http_error");
    let message = response["error"]["message"].as_str().unwrap();
    assert!(message.contains("HTTP 500"), "{message}");
    assert!(message.len() < 5 * 1024, "{} bytes", message.len());
    assert!(elapsed < Duration::from_secs(8), "{elapsed:?}");
    // spool stopped reading: the upstream could hand over no more than
    // the socket buffers hold, nowhere near the whole body.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = app.upstream.body_bytes_sent();
    assert!(sent < huge / 4, "{sent} bytes of {huge} were sent");
}

/// An upstream that answers every connection with `answer` and closes.
async fn raw_upstream(answer: &'static [u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                // The request head and body arrive; then the answer.
                let _ =
                    tokio::time::timeout(Duration::from_millis(200), socket.read(&mut buf)).await;
                let _ = socket.write_all(answer).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}/v1")
}

async fn run_against(base_url: &str) -> Value {
    let upstream = Upstream::start().await;
    let app = spawn_with(config(&temp_db(), Some(base_url)), upstream).await;
    let (status, body) = app
        .post("/v1/responses", &json!({"model": "up", "input": "x"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "failed", "{body}");
    body["error"].clone()
}

#[tokio::test]
async fn an_answer_that_is_not_http_is_a_protocol_error() {
    let error = run_against(&raw_upstream(b"SSH-2.0-OpenSSH_9.6\r\n\r\n").await).await;
    assert_eq!(error["code"], "upstream_protocol_error", "{error}");
}

#[tokio::test]
async fn a_body_that_is_not_an_event_stream_is_a_protocol_error() {
    let error = run_against(
        &raw_upstream(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 23\r\n\r\n<html>login page</html>",
        )
        .await,
    )
    .await;
    assert_eq!(error["code"], "upstream_protocol_error", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("login page"),
        "{error}"
    );
}

#[tokio::test]
async fn a_bad_chunked_body_is_a_protocol_error() {
    let error = run_against(
        &raw_upstream(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\nzz-not-a-size\r\n",
        )
        .await,
    )
    .await;
    assert_eq!(error["code"], "upstream_protocol_error", "{error}");
}

#[tokio::test]
async fn a_connection_closed_before_the_answer_is_a_disconnect() {
    let error = run_against(&raw_upstream(b"").await).await;
    assert_eq!(error["code"], "upstream_disconnected", "{error}");
}

#[tokio::test]
async fn a_reset_mid_body_is_a_disconnect_with_its_cause() {
    let error = run_against(
        &raw_upstream(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 10000\r\n\r\ndata: {\"choices\":[]}\n\n",
        )
        .await,
    )
    .await;
    assert_eq!(error["code"], "upstream_disconnected", "{error}");
    let message = error["message"].as_str().unwrap();
    // reqwest's own words ("error decoding response body") name no cause.
    assert!(message.contains(": "), "{message}");
}
