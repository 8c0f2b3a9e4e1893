//! WebSocket mode on `GET /v1/responses`: sequential responses, frames
//! identical to the SSE payloads, `store: false` continuation from the
//! connection's cache, reconnect, eviction, `generate: false`, bad frames,
//! a client that goes away mid-response, the subprotocol, and a thousand
//! responses on one socket.

use crate::helpers::{TestApp, events_of, spawn_app};
use crate::upstream::{Script, slow_script, text_script};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &TestApp) -> Socket {
    let url = app.url("/v1/responses").replacen("http://", "ws://", 1);
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrades");
    socket
}

async fn send(socket: &mut Socket, frame: Value) {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

/// The next JSON text frame (pings and pongs skipped); fails after 20 s.
async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("a frame within 20 s")
            .expect("the socket is open")
            .expect("a frame");
        match message {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("not a text frame: {other:?}"),
        }
    }
}

/// The frames of one response, up to its terminal event or an error frame.
async fn one_response(socket: &mut Socket) -> Vec<Value> {
    let mut frames = Vec::new();
    loop {
        let frame = next_json(socket).await;
        let ty = frame["type"].as_str().unwrap_or_default().to_owned();
        frames.push(frame);
        if [
            "response.completed",
            "response.failed",
            "response.incomplete",
            "error",
        ]
        .contains(&ty.as_str())
        {
            return frames;
        }
    }
}

fn create(body: Value) -> Value {
    let mut frame = body;
    frame["type"] = json!("response.create");
    frame
}

fn last_response(frames: &[Value]) -> &Value {
    &frames.last().expect("frames")["response"]
}

#[tokio::test]
async fn responses_run_one_after_another_and_replay_over_http_byte_for_byte() {
    let app = spawn_app().await;
    app.upstream.push(text_script(&["one"]));
    app.upstream.push(text_script(&["two"]));
    let mut socket = connect(&app).await;
    send(
        &mut socket,
        create(json!({"model": "up", "input": "first"})),
    )
    .await;
    let first = one_response(&mut socket).await;
    send(
        &mut socket,
        create(json!({"model": "up", "input": "second"})),
    )
    .await;
    let second = one_response(&mut socket).await;
    for (frames, text) in [(&first, "one"), (&second, "two")] {
        assert_eq!(frames[0]["type"], "response.created");
        assert_eq!(frames[0]["sequence_number"], 0);
        let done = last_response(frames);
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(done["output"][0]["content"][0]["text"], text);
    }
    // A stored WebSocket response is a run like any other: its HTTP replay
    // carries the same payloads.
    let id = last_response(&first)["id"].as_str().unwrap().to_owned();
    let replayed: Vec<Value> = events_of(app.replay(&id, None).await)
        .iter()
        .map(|f| f.json())
        .collect();
    assert_eq!(replayed, first);
}

#[tokio::test]
async fn a_store_false_chain_continues_from_the_connection_and_not_after_a_reconnect() {
    let app = spawn_app().await;
    app.upstream.push(text_script(&["Hi Ann"]));
    app.upstream.push(text_script(&["Your name is Ann"]));
    let mut socket = connect(&app).await;
    send(
        &mut socket,
        create(json!({"model": "up", "store": false, "input": "I am Ann"})),
    )
    .await;
    let first = one_response(&mut socket).await;
    let id = last_response(&first)["id"].as_str().unwrap().to_owned();
    let (status, _) = app.get(&format!("/v1/responses/{id}")).await;
    assert_eq!(status, 404, "store:false is never persisted");
    send(
        &mut socket,
        create(
            json!({"model": "up", "store": false, "previous_response_id": id,
                      "input": "Who am I?"}),
        ),
    )
    .await;
    let second = one_response(&mut socket).await;
    assert_eq!(last_response(&second)["status"], "completed");
    assert_eq!(last_response(&second)["previous_response_id"], id);
    let messages = &app.upstream.requests()[1]["messages"];
    assert_eq!(
        *messages,
        json!([
            {"role": "user", "content": "I am Ann"},
            {"role": "assistant", "content": "Hi Ann"},
            {"role": "user", "content": "Who am I?"}
        ])
    );

    // A new connection has none of it.
    drop(socket);
    let mut socket = connect(&app).await;
    send(
        &mut socket,
        create(
            json!({"model": "up", "store": false, "previous_response_id": id,
                      "input": "Again?"}),
        ),
    )
    .await;
    let error = next_json(&mut socket).await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["status"], 400);
    assert_eq!(error["error"]["code"], "previous_response_not_found");
    assert_eq!(error["error"]["param"], "previous_response_id");
    // The socket stays open.
    send(
        &mut socket,
        create(json!({"model": "echo", "input": "still here"})),
    )
    .await;
    let frames = one_response(&mut socket).await;
    assert_eq!(last_response(&frames)["status"], "completed");
}

#[tokio::test]
async fn a_failed_continuation_evicts_its_cache_entry() {
    let app = spawn_app().await;
    app.upstream.push(text_script(&["ok"]));
    app.upstream
        .push(Script::Error(500, r#"{"error":{"message":"down"}}"#));
    let mut socket = connect(&app).await;
    send(
        &mut socket,
        create(json!({"model": "up", "store": false, "input": "a"})),
    )
    .await;
    let id = last_response(&one_response(&mut socket).await)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let continuation =
        create(json!({"model": "up", "store": false, "previous_response_id": id, "input": "b"}));
    send(&mut socket, continuation.clone()).await;
    let failed = one_response(&mut socket).await;
    assert_eq!(failed.last().unwrap()["type"], "response.failed");
    send(&mut socket, continuation).await;
    let error = next_json(&mut socket).await;
    assert_eq!(
        error["error"]["code"], "previous_response_not_found",
        "{error}"
    );
    assert_eq!(app.upstream.requests().len(), 2, "no third model call");
}

#[tokio::test]
async fn a_continuation_refused_for_an_unanswerable_tool_result_evicts_its_cache_entry() {
    let app = spawn_app().await;
    app.upstream.push(text_script(&["ok"]));
    let mut socket = connect(&app).await;
    send(
        &mut socket,
        create(json!({"model": "up", "store": false, "input": "a"})),
    )
    .await;
    let id = last_response(&one_response(&mut socket).await)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The first response made no call: this result answers nothing.
    send(
        &mut socket,
        create(json!({"model": "up", "store": false, "previous_response_id": id,
                      "input": [{"type": "function_call_output", "call_id": "call_missing", "output": "x"}]})),
    )
    .await;
    let refused = next_json(&mut socket).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["status"], 400, "{refused}");
    assert_eq!(refused["error"]["param"], "input[0].call_id", "{refused}");
    send(
        &mut socket,
        create(json!({"model": "up", "store": false, "previous_response_id": id, "input": "b"})),
    )
    .await;
    let error = next_json(&mut socket).await;
    assert_eq!(
        error["error"]["code"], "previous_response_not_found",
        "{error}"
    );
    assert_eq!(app.upstream.requests().len(), 1, "only the first turn ran");
}

#[tokio::test]
async fn generate_false_warms_a_chain_without_calling_the_model() {
    let app = spawn_app().await;
    app.upstream.push(text_script(&["answered"]));
    let mut socket = connect(&app).await;
    send(
        &mut socket,
        create(json!({"model": "up", "store": false, "generate": false,
                      "instructions": "be brief", "input": "context"})),
    )
    .await;
    let warm = one_response(&mut socket).await;
    assert_eq!(warm[0]["type"], "response.created");
    let done = last_response(&warm);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"], json!([]));
    assert!(app.upstream.requests().is_empty(), "no model call");
    let id = done["id"].as_str().unwrap();
    send(
        &mut socket,
        create(
            json!({"model": "up", "store": false, "previous_response_id": id,
                      "input": "question"}),
        ),
    )
    .await;
    let frames = one_response(&mut socket).await;
    assert_eq!(last_response(&frames)["status"], "completed");
    let messages = &app.upstream.requests()[0]["messages"];
    assert_eq!(messages[0], json!({"role": "user", "content": "context"}));
    assert_eq!(messages[1], json!({"role": "user", "content": "question"}));
}

#[tokio::test]
async fn bad_frames_get_error_frames_and_the_socket_stays_open() {
    let app = spawn_app().await;
    let mut socket = connect(&app).await;
    socket.send(Message::Text("not json".into())).await.unwrap();
    let e = next_json(&mut socket).await;
    assert_eq!(
        (e["type"].clone(), e["status"].clone()),
        (json!("error"), json!(400))
    );
    assert_eq!(e["error"]["code"], "invalid_json");
    assert_eq!(e["error"]["type"], "invalid_request_error");
    send(&mut socket, json!({"type": "response.cancel"})).await;
    let e = next_json(&mut socket).await;
    assert_eq!(e["error"]["code"], "unknown_message_type");
    for (refused, value) in [
        ("stream", json!(false)),
        ("background", json!(true)),
        ("stream_options", json!({"include_usage": true})),
    ] {
        let mut frame = create(json!({"model": "echo", "input": "x"}));
        frame[refused] = value;
        send(&mut socket, frame).await;
        let e = next_json(&mut socket).await;
        assert_eq!(e["error"]["param"], refused, "{e}");
        assert_eq!(e["status"], 400);
    }
    // `"stream": true`, as Codex CLI sends it, is accepted: it changes nothing.
    send(
        &mut socket,
        create(json!({"model": "echo", "input": "streamed anyway", "stream": true})),
    )
    .await;
    let frames = one_response(&mut socket).await;
    assert_eq!(last_response(&frames)["status"], "completed");
    send(&mut socket, create(json!({"input": "no model"}))).await;
    let e = next_json(&mut socket).await;
    assert_eq!(e["error"]["param"], "model", "{e}");
    send(
        &mut socket,
        create(json!({"model": "echo", "input": "fine"})),
    )
    .await;
    let frames = one_response(&mut socket).await;
    assert_eq!(last_response(&frames)["status"], "completed");
}

/// After the client's Close frame: the server's answering Close, within
/// 5 s (pings and pongs skipped).
async fn close_reply(socket: &mut Socket) -> Message {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("an answer within 5 s")
            .expect("a frame before the end of the stream")
            .expect("a clean close, not a dropped connection");
        if !matches!(
            message,
            Message::Ping(_) | Message::Pong(_) | Message::Text(_)
        ) {
            return message;
        }
    }
}

#[tokio::test]
async fn a_close_from_the_client_is_answered_with_a_close() {
    let app = spawn_app().await;
    // Idle, after a response.
    let mut socket = connect(&app).await;
    send(&mut socket, create(json!({"model": "echo", "input": "hi"}))).await;
    one_response(&mut socket).await;
    socket.close(None).await.unwrap();
    assert!(matches!(close_reply(&mut socket).await, Message::Close(_)));
    // In the middle of one.
    app.upstream
        .push(slow_script(50, Duration::from_millis(100)));
    let mut socket = connect(&app).await;
    send(&mut socket, create(json!({"model": "up", "input": "long"}))).await;
    assert_eq!(next_json(&mut socket).await["type"], "response.created");
    socket.close(None).await.unwrap();
    assert!(matches!(close_reply(&mut socket).await, Message::Close(_)));
}

#[tokio::test]
async fn a_client_that_goes_away_mid_response_cancels_it() {
    let app = spawn_app().await;
    app.upstream
        .push(slow_script(50, Duration::from_millis(100)));
    let mut socket = connect(&app).await;
    send(&mut socket, create(json!({"model": "up", "input": "long"}))).await;
    let created = next_json(&mut socket).await;
    assert_eq!(created["type"], "response.created");
    let id = created["response"]["id"].as_str().unwrap().to_owned();
    // A second request while one runs is refused; the first goes on.
    send(&mut socket, create(json!({"model": "echo", "input": "x"}))).await;
    loop {
        let frame = next_json(&mut socket).await;
        if frame["type"] == "error" {
            assert_eq!(frame["error"]["code"], "response_already_in_flight");
            break;
        }
    }
    drop(socket);
    let ended = app.wait_terminal(&id).await;
    assert_eq!(ended["status"], "cancelled", "{ended}");
}

/// At its age limit a connection cancels the response still running, says
/// why in an error frame and closes; a response that ended before it is
/// untouched.
#[tokio::test]
async fn a_connection_at_its_age_limit_cancels_its_response_and_closes() {
    let upstream = crate::upstream::Upstream::start().await;
    let mut config = crate::helpers::config(&crate::helpers::temp_db(), Some(&upstream.base_url));
    config.websocket_max_age_secs = 2;
    let app = crate::helpers::spawn_with(config, upstream).await;
    app.upstream.push(text_script(&["quick"]));
    app.upstream
        .push(slow_script(100, Duration::from_millis(100)));
    let mut socket = connect(&app).await;
    send(
        &mut socket,
        create(json!({"model": "up", "input": "first"})),
    )
    .await;
    let first = one_response(&mut socket).await;
    assert_eq!(last_response(&first)["status"], "completed");
    send(&mut socket, create(json!({"model": "up", "input": "long"}))).await;
    let created = next_json(&mut socket).await;
    let id = created["response"]["id"].as_str().unwrap().to_owned();
    let error = loop {
        let frame = next_json(&mut socket).await;
        if frame["type"] == "error" {
            break frame;
        }
        assert!(frame["type"] != "response.completed", "ran past the limit");
    };
    assert_eq!(error["error"]["code"], "websocket_connection_limit_reached");
    assert_eq!(error["status"], 400);
    let closed = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("the socket closes");
    assert!(
        matches!(closed, None | Some(Ok(Message::Close(_))) | Some(Err(_))),
        "{closed:?}"
    );
    assert_eq!(app.wait_terminal(&id).await["status"], "cancelled");
}

#[tokio::test]
async fn the_key_subprotocol_is_negotiated() {
    let app = spawn_app().await;
    let url = app.url("/v1/responses").replacen("http://", "ws://", 1);
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "openai-insecure-api-key.sk-test".parse().unwrap(),
    );
    let (mut socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "openai-insecure-api-key.sk-test"
    );
    socket.send(Message::Ping(vec![7].into())).await.unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(pong, Message::Pong(vec![7].into()));
    socket.close(None).await.unwrap();
}

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

#[tokio::test]
async fn a_thousand_responses_on_one_socket_do_not_grow_memory() {
    let app = spawn_app().await;
    let mut socket = connect(&app).await;
    let mut after_warm_up = 0;
    for i in 0..1000 {
        if i == 200 {
            after_warm_up = rss();
        }
        // Unstored: the connection's cache is all that remembers them.
        send(
            &mut socket,
            create(json!({"model": "echo", "store": false, "input": format!("message {i}")})),
        )
        .await;
        let frames = one_response(&mut socket).await;
        assert_eq!(last_response(&frames)["status"], "completed");
    }
    let grown = rss().saturating_sub(after_warm_up);
    assert!(
        grown < 32 * 1024 * 1024,
        "memory grew by {grown} bytes over 800 responses"
    );
}
