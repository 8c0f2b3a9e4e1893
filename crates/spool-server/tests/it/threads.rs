//! Threads and turns (the Codex dialect) over HTTP: a turn streams its
//! thread events as SSE or NDJSON, replays byte for byte, resumes from
//! `Last-Event-ID`, and is answered whole without streaming; threads and
//! turns are listed; bad input is refused in the OpenAI error shape.

use crate::helpers::{
    SseReader, TestApp, assert_error, parse_sse, poll_for, read_to_end, spawn_app,
};
use crate::upstream::{Script, slow_script, text_script};
use serde_json::{Value, json};
use std::time::Duration;

async fn new_thread(app: &TestApp, body: Value) -> String {
    let (status, thread) = app.post("/v1/threads", &body).await;
    assert_eq!(status, 200, "{thread}");
    assert_eq!(thread["object"], "thread");
    thread["id"].as_str().unwrap().to_owned()
}

async fn open_turn(app: &TestApp, thread: &str, body: &Value, accept: &str) -> reqwest::Response {
    app.http
        .post(app.url(&format!("/v1/threads/{thread}/turns")))
        .header("content-type", "application/json")
        .header("accept", accept)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// Runs a turn and returns its SSE frames, each with its `id:`.
async fn sse_turn(app: &TestApp, thread: &str, body: &Value) -> String {
    let r = open_turn(app, thread, body, "text/event-stream").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    read_to_end(r).await
}

fn types(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .map(|f| f["type"].as_str().unwrap().to_owned())
        .collect()
}

async fn events_route(app: &TestApp, thread: &str, turn: &str, last: Option<&str>) -> String {
    let mut request = app
        .http
        .get(app.url(&format!("/v1/threads/{thread}/turns/{turn}/events")));
    if let Some(last) = last {
        request = request.header("last-event-id", last);
    }
    let r = request.send().await.unwrap();
    assert_eq!(r.status(), 200);
    read_to_end(r).await
}

#[tokio::test]
async fn a_turn_streams_thread_events_as_sse_with_ids() {
    let app = spawn_app().await;
    let thread = new_thread(&app, json!({"model": "up", "metadata": {"k": "v"}})).await;
    app.upstream.push(text_script(&["Hel", "lo"]));
    let text = sse_turn(&app, &thread, &json!({"input": "hi"})).await;
    let frames: Vec<Value> = parse_sse(&text).iter().map(|f| f.json()).collect();
    assert_eq!(
        types(&frames),
        [
            "thread.started",
            "turn.started",
            "item.completed",
            "turn.completed"
        ]
    );
    assert_eq!(frames[0]["thread_id"], thread);
    assert_eq!(
        frames[2]["item"],
        json!({"type": "agent_message", "id": "item_0", "text": "Hello"})
    );
    assert_eq!(
        frames[3]["usage"],
        json!({"input_tokens": 7, "cached_input_tokens": 0, "output_tokens": 2})
    );
    let ids: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .collect();
    assert_eq!(ids, ["0", "1", "2", "3"]);
}

#[tokio::test]
async fn a_turn_streams_ndjson_when_asked_and_keeps_the_thread_history() {
    let app = spawn_app().await;
    let thread = new_thread(&app, json!({"model": "up", "instructions": "be brief"})).await;
    app.upstream.push(text_script(&["one"]));
    sse_turn(&app, &thread, &json!({"input": "first"})).await;
    app.upstream.push(text_script(&["two"]));
    let r = open_turn(
        &app,
        &thread,
        &json!({"input": [{"type": "text", "text": "second"}]}),
        "application/x-ndjson",
    )
    .await;
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let body = read_to_end(r).await;
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.last().unwrap()["type"], "turn.completed");
    assert_eq!(lines[2]["item"]["text"], "two");
    // The second model call saw the first turn and the thread's
    // instructions.
    let second = app.upstream.requests().pop().unwrap();
    let messages = second["messages"].to_string();
    for seen in ["be brief", "first", "one", "second"] {
        assert!(messages.contains(seen), "{seen} missing from {messages}");
    }
}

#[tokio::test]
async fn a_turn_without_streaming_is_answered_as_the_sdk_reduces_it() {
    let app = spawn_app().await;
    let thread = new_thread(&app, json!({})).await;
    app.upstream.push(text_script(&["{\"a\":", "1}"]));
    let (status, turn) = app
        .post(
            &format!("/v1/threads/{thread}/turns"),
            &json!({"input": "json please", "model": "up", "stream": false,
                    "output_schema": {"type": "object", "properties": {"a": {"type": "number"}}}}),
        )
        .await;
    assert_eq!(status, 200, "{turn}");
    assert_eq!(turn["object"], "thread.turn");
    assert_eq!(turn["thread_id"], thread);
    assert_eq!(turn["status"], "completed");
    assert_eq!(turn["final_response"], "{\"a\":1}");
    assert_eq!(turn["items"].as_array().unwrap().len(), 1);
    assert_eq!(turn["usage"]["output_tokens"], 2);
    let sent = app.upstream.requests().pop().unwrap();
    assert_eq!(
        sent["response_format"]["json_schema"]["name"],
        "codex_output_schema"
    );
}

#[tokio::test]
async fn an_upstream_failure_ends_the_turn_with_error_then_turn_failed() {
    let app = spawn_app().await;
    let thread = new_thread(&app, json!({"model": "up"})).await;
    app.upstream.push(Script::Error(500, "the model is down"));
    let text = sse_turn(&app, &thread, &json!({"input": "hi"})).await;
    let frames: Vec<Value> = parse_sse(&text).iter().map(|f| f.json()).collect();
    let t = types(&frames);
    assert_eq!(t[t.len() - 2..], ["error", "turn.failed"]);
    assert!(frames.last().unwrap()["error"]["message"].is_string());
}

#[tokio::test]
async fn a_replay_equals_the_live_stream_and_resumes_after_last_event_id() {
    let app = spawn_app().await;
    let thread = new_thread(&app, json!({"model": "up"})).await;
    app.upstream.push(text_script(&["a", "b"]));
    let live = sse_turn(&app, &thread, &json!({"input": "x"})).await;
    let (_, turns) = app.get(&format!("/v1/threads/{thread}/turns")).await;
    let turn = turns["data"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(events_route(&app, &thread, &turn, None).await, live);
    let resumed = events_route(&app, &thread, &turn, Some("1")).await;
    let expected: String = live.split_inclusive("\n\n").skip(2).collect();
    assert_eq!(resumed, expected);
    assert!(resumed.starts_with("id: 2\n"));
    let (status, body) = app
        .get(&format!("/v1/threads/{thread}/turns/{turn}/events?after=x"))
        .await;
    assert_error(status, &body, 400);
}

#[tokio::test]
async fn threads_and_their_turns_are_listed_retrieved_and_deleted() {
    let app = spawn_app().await;
    let first = new_thread(&app, json!({"model": "up"})).await;
    let second = new_thread(&app, json!({"model": "up"})).await;
    let (status, page) = app.get("/v1/threads?limit=1").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["data"][0]["id"], second);
    assert_eq!(page["has_more"], true);
    let (_, page) = app
        .get(&format!("/v1/threads?limit=1&after={second}"))
        .await;
    assert_eq!(page["data"][0]["id"], first);

    for word in ["one", "two"] {
        app.upstream.push(text_script(&[word]));
        sse_turn(&app, &first, &json!({"input": word})).await;
    }
    let (_, turns) = app.get(&format!("/v1/threads/{first}/turns")).await;
    let finals: Vec<_> = turns["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["final_response"].clone())
        .collect();
    assert_eq!(finals, [json!("one"), json!("two")]);
    let turn = turns["data"][1]["id"].as_str().unwrap();
    let (_, page) = app
        .get(&format!(
            "/v1/threads/{first}/turns?after={}",
            turns["data"][0]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(page["data"][0]["id"], turn);
    let (status, one) = app.get(&format!("/v1/threads/{first}/turns/{turn}")).await;
    assert_eq!(status, 200);
    assert_eq!(one["final_response"], "two");
    // A turn is found only under its own thread.
    let (status, body) = app.get(&format!("/v1/threads/{second}/turns/{turn}")).await;
    assert_error(status, &body, 404);

    let (status, thread) = app.get(&format!("/v1/threads/{first}")).await;
    assert_eq!(status, 200);
    assert_eq!(thread["model"], "up");
    assert_eq!(thread["metadata"], json!({}));
    let (status, deleted) = app.delete(&format!("/v1/threads/{first}")).await;
    assert_eq!((status, deleted["deleted"].clone()), (200, json!(true)));
    let (status, body) = app.get(&format!("/v1/threads/{first}")).await;
    assert_error(status, &body, 404);
}

#[tokio::test]
async fn bad_thread_input_is_refused_in_the_openai_error_shape() {
    let app = spawn_app().await;
    for path in ["/v1/threads/conv_nope", "/v1/threads/x/turns"] {
        let (status, body) = app.get(path).await;
        let error = assert_error(status, &body, 404);
        assert!(error["message"].as_str().unwrap().contains("not found"));
    }
    let (status, body) = app
        .post("/v1/threads/conv_nope/turns", &json!({"input": "hi"}))
        .await;
    assert_error(status, &body, 404);
    let thread = new_thread(&app, json!({"model": "up"})).await;
    let (status, body) = app
        .post(&format!("/v1/threads/{thread}/turns"), &json!({}))
        .await;
    assert_eq!(assert_error(status, &body, 400)["param"], "input");
    let (status, body) = app
        .post(
            &format!("/v1/threads/{thread}/turns"),
            &json!({"input": "x", "output_schema": "not a schema"}),
        )
        .await;
    assert_eq!(assert_error(status, &body, 400)["param"], "output_schema");
    let (status, body) = app.post("/v1/threads", &json!({"agent": "nobody"})).await;
    assert_error(status, &body, 404);
    let (status, body) = app.get("/v1/threads?limit=0").await;
    assert_error(status, &body, 400);
    // Nothing ran.
    assert!(app.upstream.requests().is_empty());
}

#[tokio::test]
async fn a_turn_whose_client_goes_away_is_cancelled_and_ends_turn_failed() {
    let app = spawn_app().await;
    let thread = new_thread(&app, json!({"model": "up"})).await;
    app.upstream
        .push(slow_script(50, Duration::from_millis(100)));
    let r = open_turn(&app, &thread, &json!({"input": "x"}), "text/event-stream").await;
    let mut reader = SseReader::new(r);
    reader.until("turn.started").await;
    drop(reader);
    let turn = poll_for("the turn is cancelled", || async {
        let (_, turns) = app.get(&format!("/v1/threads/{thread}/turns")).await;
        let turn = turns["data"][0].clone();
        (turn["status"] == "cancelled").then_some(turn)
    })
    .await;
    assert_eq!(turn["error"]["message"], "The turn was cancelled.");
    let id = turn["id"].as_str().unwrap();
    let replay = events_route(&app, &thread, id, None).await;
    let last = parse_sse(&replay).pop().unwrap().json();
    assert_eq!(
        last,
        json!({"type": "turn.failed", "error": {"message": "The turn was cancelled."}})
    );
}
