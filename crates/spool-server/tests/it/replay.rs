//! Replay: every stored response replays byte-identically, from any cursor,
//! and a client that drops mid-stream resumes without gap or duplicate.

use crate::helpers::{events_of, poll_for, spawn_app};
use crate::upstream::{slow_script, text_script};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_finished_foreground_stream_replays_byte_identically_from_any_cursor() {
    let app = spawn_app().await;
    app.upstream.push(text_script(&["a", "b", "c", "d"]));
    let live = events_of(
        app.stream(&json!({"model": "up", "input": "x", "stream": true}))
            .await,
    );
    let id = live[0].json()["response"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let full = events_of(app.replay(&id, None).await);
    assert_eq!(full, live, "a replay is the live stream, byte for byte");
    for k in [0, 3, 7, live.len() as i64 - 2] {
        let tail = events_of(app.replay(&id, Some(k)).await);
        assert_eq!(tail, live[(k + 1) as usize..], "starting_after={k}");
    }
    // Past the end: nothing but the end of the stream.
    assert!(events_of(app.replay(&id, Some(10_000)).await).is_empty());
    // A negative cursor means from the start.
    assert_eq!(events_of(app.replay(&id, Some(-1)).await), live);
    // An EventSource reconnecting sends the last frame's id instead.
    let r = app
        .http
        .get(app.url(&format!("/v1/responses/{id}?stream=true")))
        .header("last-event-id", "3")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let tail = events_of(crate::helpers::parse_sse(
        &crate::helpers::read_to_end(r).await,
    ));
    assert_eq!(tail, live[4..], "Last-Event-ID: 3");
}

#[tokio::test]
async fn a_background_stream_resumes_after_the_client_drops() {
    let app = spawn_app().await;
    app.upstream
        .push(slow_script(12, Duration::from_millis(40)));
    let body = json!({"model": "up", "input": "x", "stream": true, "background": true});
    let first = app.stream_first(&body, 5).await;
    let id = first[0].json()["response"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let last_seen = first.last().unwrap().json()["sequence_number"]
        .as_i64()
        .unwrap();
    // The run goes on without its client.
    let rest = events_of(app.replay(&id, Some(last_seen)).await);
    assert_eq!(rest[0].json()["sequence_number"], last_seen + 1);
    assert_eq!(
        rest.last().unwrap().event.as_deref(),
        Some("response.completed")
    );
    let stitched: Vec<_> = first.into_iter().chain(rest).collect();
    let full = events_of(app.replay(&id, None).await);
    assert_eq!(stitched, full, "resumed stream has no gap and no duplicate");
    let text = full.last().unwrap().json()["response"]["output"][0]["content"][0]["text"].clone();
    assert_eq!(text, (0..12).map(|i| format!("w{i} ")).collect::<String>());
}

#[tokio::test]
async fn a_second_client_tails_a_running_background_run() {
    let app = spawn_app().await;
    app.upstream
        .push(slow_script(10, Duration::from_millis(30)));
    let (status, created) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "x", "background": true}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(created["status"], "queued");
    let id = created["id"].as_str().unwrap().to_owned();
    let (a, b) = tokio::join!(app.replay(&id, None), app.replay(&id, Some(2)));
    let (a, b) = (events_of(a), events_of(b));
    assert_eq!(
        a.last().unwrap().event.as_deref(),
        Some("response.completed")
    );
    assert_eq!(b, a[3..]);
    let types: Vec<_> = a.iter().take(3).map(|f| f.event.clone().unwrap()).collect();
    assert_eq!(
        types,
        [
            "response.created",
            "response.queued",
            "response.in_progress"
        ]
    );
}

#[tokio::test]
async fn input_items_are_normalized_and_paginated() {
    let app = spawn_app().await;
    let input = json!([
        {"role": "user", "content": "one"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "two"}]},
        {"role": "assistant", "content": "three"},
    ]);
    let (_, created) = app
        .post("/v1/responses", &json!({"model": "up", "input": input}))
        .await;
    let id = created["id"].as_str().unwrap();
    let (status, page) = app.get(&format!("/v1/responses/{id}/input_items")).await;
    assert_eq!(status, 200);
    assert_eq!(page["object"], "list");
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(
        data[0]["content"][0]["text"], "three",
        "default order is desc"
    );
    assert_eq!(
        data[2]["content"][0],
        json!({"type": "input_text", "text": "one"})
    );
    assert!(
        data.iter()
            .all(|i| i["id"].as_str().is_some_and(|s| s.starts_with("msg_")))
    );
    let (_, p1) = app
        .get(&format!("/v1/responses/{id}/input_items?order=asc&limit=2"))
        .await;
    assert_eq!(p1["has_more"], true);
    assert_eq!(p1["data"][0]["content"][0]["text"], "one");
    let after = p1["last_id"].as_str().unwrap();
    assert_eq!(after, p1["data"][1]["id"].as_str().unwrap());
    let (_, p2) = app
        .get(&format!(
            "/v1/responses/{id}/input_items?order=asc&limit=2&after={after}"
        ))
        .await;
    assert_eq!(p2["has_more"], false);
    assert_eq!(p2["data"].as_array().unwrap().len(), 1);
    assert_eq!(p2["data"][0]["content"][0]["text"], "three");
    let before = p2["first_id"].as_str().unwrap();
    let (_, p0) = app
        .get(&format!(
            "/v1/responses/{id}/input_items?order=asc&before={before}"
        ))
        .await;
    assert_eq!(p0["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_client_that_stops_reading_neither_slows_the_run_nor_loses_events() {
    let app = spawn_app().await;
    // Far more than the socket buffers (~13 MB of frames) and the live
    // topic (3,009 events) hold.
    let pieces: Vec<String> = (0..3000)
        .map(|i| format!("{i:05}{} ", "x".repeat(1000)))
        .collect();
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    app.upstream.push(crate::upstream::text_script(&refs));
    let stalled = app
        .open(&json!({"model": "up", "input": "x", "stream": true, "background": true}))
        .await;
    // Find the run without reading the stalled stream: the newest response.
    let id: String = poll_for("the run is stored", || async {
        let conn = rusqlite::Connection::open(&app.db_path).unwrap();
        conn.query_row(
            "SELECT id FROM responses ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .ok()
    })
    .await;
    // The run completes while its client reads nothing.
    let done = app.wait_terminal(&id).await;
    assert_eq!(done["status"], "completed");
    // The stalled client then gets every event, in order, as a replay does.
    let text = tokio::time::timeout(Duration::from_secs(20), stalled.text())
        .await
        .unwrap()
        .unwrap();
    let live = events_of(crate::helpers::parse_sse(&text));
    assert_eq!(live, events_of(app.replay(&id, None).await));
    // created, queued, in_progress, item and part added, the deltas, text
    // and part and item done, completed.
    assert_eq!(live.len(), 3000 + 9);
}
