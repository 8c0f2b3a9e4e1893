//! The shape of a live Responses stream and of the objects it carries.

use crate::helpers::{events_of, spawn_app};
use crate::upstream::{
    DONE, Script, finish_chunk, refusal_chunk, text_script, tool_chunk, usage_chunk,
};
use serde_json::json;

#[tokio::test]
async fn a_text_stream_has_the_responses_order_dense_sequence_numbers_and_done() {
    let app = spawn_app().await;
    app.upstream.push(text_script(&["Hel", "lo", " world"]));
    let frames = app
        .stream(&json!({"model": "up", "input": "hi", "stream": true}))
        .await;
    assert_eq!(frames.last().unwrap().data, "[DONE]");
    let events = events_of(frames);
    let types: Vec<_> = events.iter().map(|f| f.event.clone().unwrap()).collect();
    assert_eq!(
        types,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (i, f) in events.iter().enumerate() {
        let v = f.json();
        assert_eq!(v["sequence_number"], i as u64);
        assert_eq!(v["type"], f.event.clone().unwrap());
    }
    let deltas: String = events
        .iter()
        .filter(|f| f.event.as_deref() == Some("response.output_text.delta"))
        .map(|f| f.json()["delta"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(deltas, "Hello world");
    let completed = events.last().unwrap().json();
    let response = &completed["response"];
    assert_eq!(response["status"], "completed");
    assert_eq!(response["output"][0]["content"][0]["text"], "Hello world");
    assert_eq!(response["usage"]["input_tokens"], 7);
    assert_eq!(response["usage"]["output_tokens"], 3);
    // The stored object is the terminal event's object.
    let id = response["id"].as_str().unwrap();
    let (status, stored) = app.get(&format!("/v1/responses/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(&stored, response);
}

#[tokio::test]
async fn the_request_reaches_the_upstream_as_chat_messages() {
    let app = spawn_app().await;
    let (status, _) = app
        .post(
            "/v1/responses",
            &json!({"model": "up-model", "instructions": "be brief", "input": "hi",
                    "temperature": 0.2, "max_output_tokens": 50}),
        )
        .await;
    assert_eq!(status, 200);
    let sent = &app.upstream.requests()[0];
    assert_eq!(sent["model"], "up-model");
    assert_eq!(sent["stream"], true);
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"}
        ])
    );
    assert_eq!(sent["temperature"], 0.2);
    assert_eq!(sent["max_completion_tokens"], 50);
}

#[tokio::test]
async fn streamed_tool_calls_become_function_call_items() {
    let app = spawn_app().await;
    app.upstream.push(Script::Stream(vec![
        tool_chunk(0, Some("call_a"), Some("get_weather"), ""),
        tool_chunk(0, None, None, "{\"city\":"),
        tool_chunk(1, Some("call_b"), Some("get_time"), "{}"),
        tool_chunk(0, None, None, "\"Paris\"}"),
        finish_chunk("tool_calls"),
        usage_chunk(5, 5),
        DONE,
    ]));
    let tools = json!([
        {"type": "function", "name": "get_weather", "parameters": {"type": "object"}},
        {"type": "function", "name": "get_time"}
    ]);
    let events = events_of(
        app.stream(&json!({"model": "up", "input": "weather?", "tools": tools, "stream": true}))
            .await,
    );
    // Items stream one after another even though the upstream interleaved
    // the two calls: item 0 is done before item 1 is added.
    let item_events: Vec<(String, u64)> = events
        .iter()
        .filter_map(|f| {
            let v = f.json();
            v.get("output_index")
                .and_then(serde_json::Value::as_u64)
                .map(|i| (f.event.clone().unwrap(), i))
        })
        .collect();
    let last_of_0 = item_events.iter().rposition(|(_, i)| *i == 0).unwrap();
    let first_of_1 = item_events.iter().position(|(_, i)| *i == 1).unwrap();
    assert!(last_of_0 < first_of_1, "{item_events:?}");
    assert_eq!(item_events[last_of_0].0, "response.output_item.done");
    assert_eq!(item_events[first_of_1].0, "response.output_item.added");
    let done: Vec<_> = events
        .iter()
        .filter(|f| f.event.as_deref() == Some("response.function_call_arguments.done"))
        .map(|f| f.json())
        .collect();
    assert_eq!(done.len(), 2);
    assert_eq!(done[0]["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(done[0]["name"], "get_weather");
    let response = events.last().unwrap().json()["response"].clone();
    assert_eq!(response["status"], "completed");
    let output = response["output"].as_array().unwrap();
    assert_eq!(output[0]["type"], "function_call");
    assert_eq!(output[0]["call_id"], "call_a");
    assert_eq!(output[1]["call_id"], "call_b");
    assert_eq!(output[1]["arguments"], "{}");
    assert_eq!(response["tools"][1]["name"], "get_time");
    // The upstream saw the tools in chat-completions form.
    assert_eq!(
        app.upstream.requests()[0]["tools"][0]["function"]["name"],
        "get_weather"
    );
}

#[tokio::test]
async fn a_refusal_is_its_own_content_part() {
    let app = spawn_app().await;
    app.upstream.push(Script::Stream(vec![
        refusal_chunk("I can't"),
        refusal_chunk(" help with that."),
        finish_chunk("stop"),
        DONE,
    ]));
    let events = events_of(
        app.stream(&json!({"model": "up", "input": "x", "stream": true}))
            .await,
    );
    let types: Vec<_> = events.iter().map(|f| f.event.clone().unwrap()).collect();
    assert!(types.contains(&"response.refusal.delta".to_owned()));
    let done = events
        .iter()
        .find(|f| f.event.as_deref() == Some("response.refusal.done"))
        .unwrap()
        .json();
    assert_eq!(done["refusal"], "I can't help with that.");
    let response = events.last().unwrap().json()["response"].clone();
    assert_eq!(
        response["output"][0]["content"][0],
        json!({"type": "refusal", "refusal": "I can't help with that."})
    );
}

#[tokio::test]
async fn hitting_max_output_tokens_ends_incomplete() {
    let app = spawn_app().await;
    app.upstream.push(Script::Stream(vec![
        crate::upstream::text_chunk("cut"),
        finish_chunk("length"),
        DONE,
    ]));
    let events = events_of(
        app.stream(&json!({"model": "up", "input": "x", "stream": true, "max_output_tokens": 16}))
            .await,
    );
    let last = events.last().unwrap();
    assert_eq!(last.event.as_deref(), Some("response.incomplete"));
    let response = last.json()["response"].clone();
    assert_eq!(response["status"], "incomplete");
    assert_eq!(
        response["incomplete_details"]["reason"],
        "max_output_tokens"
    );
    // The message the model was cut off in is incomplete too.
    assert_eq!(response["output"][0]["status"], "incomplete");
}

#[tokio::test]
async fn echo_needs_no_upstream_and_other_models_name_the_missing_setting() {
    let db = crate::helpers::temp_db();
    let upstream = crate::upstream::Upstream::start().await;
    let app = crate::helpers::spawn_with(crate::helpers::config(&db, None), upstream).await;
    let (status, body) = app
        .post(
            "/v1/responses",
            &json!({"model": "echo", "input": "hello brave new world"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["output"][0]["content"][0]["text"],
        "hello brave new world"
    );
    let (status, body) = app
        .post("/v1/responses", &json!({"model": "llama", "input": "x"}))
        .await;
    let e = crate::helpers::assert_error(status, &body, 400);
    assert_eq!(e["param"], "model");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("SPOOL_UPSTREAM_URL")
    );
}

#[tokio::test]
async fn a_store_false_run_streams_but_leaves_nothing_retrievable() {
    let app = spawn_app().await;
    let events = events_of(
        app.stream(&json!({"model": "up", "input": "x", "stream": true, "store": false}))
            .await,
    );
    let response = events.last().unwrap().json()["response"].clone();
    assert_eq!(response["status"], "completed");
    assert_eq!(response["store"], false);
    let id = response["id"].as_str().unwrap();
    let (status, _) = app.get(&format!("/v1/responses/{id}")).await;
    assert_eq!(status, 404);
    let (status, _) = app.get(&format!("/v1/responses/{id}/input_items")).await;
    assert_eq!(status, 404);
    let (status, body) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "x", "store": false}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "completed");
}

#[tokio::test]
async fn the_done_marker_can_be_turned_off_and_idle_streams_get_keep_alives() {
    let upstream = crate::upstream::Upstream::start().await;
    let mut config = crate::helpers::config(&crate::helpers::temp_db(), Some(&upstream.base_url));
    config.sse_done = false;
    config.sse_keepalive_secs = 1;
    upstream.push(crate::upstream::slow_script(
        1,
        std::time::Duration::from_millis(1500),
    ));
    let app = crate::helpers::spawn_with(config, upstream).await;
    let text = crate::helpers::read_to_end(
        app.open(&json!({"model": "up", "input": "x", "stream": true}))
            .await,
    )
    .await;
    assert!(text.contains("\n\n: keep-alive\n\n"), "{text}");
    assert!(!text.contains("[DONE]"));
    let frames = crate::helpers::parse_sse(&text);
    assert_eq!(
        frames.last().unwrap().event.as_deref(),
        Some("response.completed")
    );
}

#[tokio::test]
async fn streamed_reasoning_becomes_a_reasoning_item_and_usage_keeps_its_details() {
    let app = spawn_app().await;
    let reasoning = |text: &str| {
        crate::upstream::Step::Chunk(
            json!({"id":"c","object":"chat.completion.chunk","created":0,"model":"m",
            "choices":[{"index":0,"delta":{"reasoning_content":text},"finish_reason":null}]}),
        )
    };
    app.upstream.push(Script::Stream(vec![
        reasoning("Let me"),
        reasoning(" think."),
        crate::upstream::text_chunk("42"),
        finish_chunk("stop"),
        crate::upstream::Step::Chunk(json!({"id":"c","object":"chat.completion.chunk","created":0,"model":"m",
            "choices":[],"usage":{"prompt_tokens":10,"completion_tokens":6,"total_tokens":16,
            "prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":3}}})),
        DONE,
    ]));
    let events = events_of(
        app.stream(&json!({"model": "up", "input": "x", "stream": true}))
            .await,
    );
    let types: Vec<_> = events.iter().map(|f| f.event.clone().unwrap()).collect();
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "response.reasoning_text.delta")
            .count(),
        2
    );
    let done = events
        .iter()
        .find(|f| f.event.as_deref() == Some("response.reasoning_text.done"))
        .unwrap()
        .json();
    assert_eq!(done["text"], "Let me think.");
    let response = events.last().unwrap().json()["response"].clone();
    assert_eq!(response["output"][0]["type"], "reasoning");
    assert_eq!(
        response["output"][0]["content"],
        json!([{"type": "reasoning_text", "text": "Let me think."}])
    );
    assert_eq!(response["output"][0]["summary"], json!([]));
    assert_eq!(response["output"][1]["content"][0]["text"], "42");
    assert_eq!(
        response["usage"]["input_tokens_details"]["cached_tokens"],
        4
    );
    assert_eq!(
        response["usage"]["output_tokens_details"]["reasoning_tokens"],
        3
    );
    // The reasoning item is not sent back upstream on the next turn.
    let id = response["id"].as_str().unwrap();
    app.post(
        "/v1/responses",
        &json!({"model": "up", "input": "y", "previous_response_id": id}),
    )
    .await;
    let sent = &app.upstream.requests()[1]["messages"];
    assert_eq!(sent.as_array().unwrap().len(), 3, "{sent}");
}
