//! Request fields honoured, not only echoed: `service_tier`,
//! `prompt_cache_key` and `safety_identifier` reach the upstream;
//! `truncation: "auto"` drops the oldest input and retries once when the
//! context is too long; `max_output_tokens` ends the response incomplete;
//! logprobs asked for by `include` are requested and returned;
//! `tool_choice: allowed_tools` narrows the tools the model is offered.

use crate::helpers::{events_of, spawn_app};
use crate::upstream::{DONE, Script, Step, finish_chunk, text_chunk, text_script};
use serde_json::json;

const TOO_LONG: &str = r#"{"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;

fn long_input() -> serde_json::Value {
    json!([
        {"role": "user", "content": "oldest"},
        {"role": "assistant", "content": "old answer"},
        {"role": "user", "content": "older"},
        {"role": "user", "content": "latest question"}
    ])
}

#[tokio::test]
async fn routing_and_caching_hints_reach_the_upstream() {
    let app = spawn_app().await;
    app.upstream.push(text_script(&["a"]));
    app.upstream.push(text_script(&["b"]));
    let (status, r) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "x", "service_tier": "flex",
                    "prompt_cache_key": "session-7", "safety_identifier": "user-hash"}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["service_tier"], "flex");
    let (status, _) = app
        .post("/v1/responses", &json!({"model": "up", "input": "x"}))
        .await;
    assert_eq!(status, 200);
    let sent = app.upstream.requests();
    assert_eq!(sent[0]["service_tier"], "flex");
    assert_eq!(sent[0]["prompt_cache_key"], "session-7");
    assert_eq!(sent[0]["safety_identifier"], "user-hash");
    for absent in ["service_tier", "prompt_cache_key", "safety_identifier"] {
        assert!(sent[1].get(absent).is_none(), "{absent} sent unasked");
    }
}

#[tokio::test]
async fn truncation_auto_drops_the_oldest_input_and_retries_once() {
    let app = spawn_app().await;
    app.upstream.push(Script::Error(400, TOO_LONG));
    app.upstream.push(text_script(&["fits now"]));
    let (status, r) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "truncation": "auto", "input": long_input()}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(r["truncation"], "auto");
    assert_eq!(r["output"][0]["content"][0]["text"], "fits now");
    let sent = app.upstream.requests();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0]["messages"].as_array().unwrap().len(), 4);
    assert_eq!(
        sent[1]["messages"],
        json!([{"role": "user", "content": "older"},
               {"role": "user", "content": "latest question"}])
    );

    // Once only: a second refusal fails the run.
    app.upstream.push(Script::Error(400, TOO_LONG));
    app.upstream.push(Script::Error(400, TOO_LONG));
    let (_, r) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "truncation": "auto", "input": long_input()}),
        )
        .await;
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(app.upstream.requests().len(), 4);
}

#[tokio::test]
async fn without_truncation_a_context_too_long_fails_the_run() {
    let app = spawn_app().await;
    app.upstream.push(Script::Error(400, TOO_LONG));
    let (_, r) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": long_input()}),
        )
        .await;
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(r["error"]["code"], "upstream_http_error");
    assert_eq!(app.upstream.requests().len(), 1, "no retry");
}

#[tokio::test]
async fn max_output_tokens_ends_the_response_incomplete() {
    let app = spawn_app().await;
    app.upstream.push(Script::Stream(vec![
        text_chunk("cut o"),
        finish_chunk("length"),
        DONE,
    ]));
    let (_, r) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "x", "max_output_tokens": 16}),
        )
        .await;
    assert_eq!(r["status"], "incomplete", "{r}");
    assert_eq!(r["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(r["output"][0]["status"], "incomplete");
    assert_eq!(app.upstream.requests()[0]["max_completion_tokens"], 16);
}

fn logprob(token: &str) -> serde_json::Value {
    json!({"token": token, "logprob": -0.25, "bytes": token.as_bytes(),
           "top_logprobs": [{"token": token, "logprob": -0.25, "bytes": token.as_bytes()}]})
}

fn text_with_logprobs(token: &str) -> Step {
    Step::Chunk(
        json!({"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
        "choices": [{"index": 0, "delta": {"content": token}, "finish_reason": null,
                     "logprobs": {"content": [logprob(token)]}}]}),
    )
}

#[tokio::test]
async fn logprobs_asked_for_are_requested_streamed_and_returned() {
    let app = spawn_app().await;
    let answer = || {
        Script::Stream(vec![
            text_with_logprobs("Hi"),
            text_with_logprobs(" there"),
            finish_chunk("stop"),
            DONE,
        ])
    };
    app.upstream.push(answer());
    let body = json!({"model": "up", "input": "x", "stream": true, "top_logprobs": 1,
                      "include": ["message.output_text.logprobs"]});
    let frames = events_of(app.stream(&body).await);
    let events: Vec<serde_json::Value> = frames.iter().map(|f| f.json()).collect();
    let deltas: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .collect();
    assert_eq!(deltas[0]["logprobs"], json!([logprob("Hi")]));
    assert_eq!(deltas[1]["logprobs"], json!([logprob(" there")]));
    let done = events
        .iter()
        .find(|e| e["type"] == "response.output_text.done")
        .unwrap();
    assert_eq!(done["logprobs"], json!([logprob("Hi"), logprob(" there")]));
    let response = &events.last().unwrap()["response"];
    assert_eq!(
        response["output"][0]["content"][0]["logprobs"],
        json!([logprob("Hi"), logprob(" there")])
    );
    let sent = &app.upstream.requests()[0];
    assert_eq!(sent["logprobs"], true);
    assert_eq!(sent["top_logprobs"], 1);
    // Replayed from the log, the same.
    let id = response["id"].as_str().unwrap();
    let replayed: Vec<serde_json::Value> = events_of(app.replay(id, None).await)
        .iter()
        .map(|f| f.json())
        .collect();
    assert_eq!(replayed, events);

    // Not asked for: not requested, and none shown.
    app.upstream.push(answer());
    let (_, r) = app
        .post("/v1/responses", &json!({"model": "up", "input": "x"}))
        .await;
    assert!(app.upstream.requests()[1].get("logprobs").is_none());
    assert_eq!(
        r["output"][0]["content"][0]["logprobs"],
        json!([]),
        "an upstream that sends them unasked is not shown"
    );
}

#[tokio::test]
async fn allowed_tools_narrow_what_the_model_is_offered_and_are_echoed_with_their_mode() {
    let app = spawn_app().await;
    app.upstream.push(text_script(&["a"]));
    app.upstream.push(text_script(&["b"]));
    let tools = json!([
        {"type": "function", "name": "get_weather"},
        {"type": "function", "name": "get_time"},
        {"type": "custom", "name": "apply_patch"},
    ]);
    let (status, r) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "x", "tools": tools,
                    "tool_choice": {"type": "allowed_tools", "mode": "required",
                                    "tools": [{"type": "function", "name": "get_time"},
                                              {"type": "custom", "name": "apply_patch"}]}}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    // Without a mode, `auto` is meant, and the echo says so.
    let (status, auto) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "x", "tools": tools,
                    "tool_choice": {"type": "allowed_tools",
                                    "tools": [{"type": "function", "name": "get_weather"}]}}),
        )
        .await;
    assert_eq!(status, 200, "{auto}");
    assert_eq!(
        auto["tool_choice"],
        json!({"type": "allowed_tools", "mode": "auto",
               "tools": [{"type": "function", "name": "get_weather"}]})
    );
    assert_eq!(r["tools"].as_array().unwrap().len(), 3, "every tool echoed");
    let sent = app.upstream.requests();
    let offered = |n: usize| -> Vec<String> {
        sent[n]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["function"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(offered(0), ["get_time", "apply_patch"]);
    assert_eq!(sent[0]["tool_choice"], "required");
    assert_eq!(offered(1), ["get_weather"]);
    assert_eq!(sent[1]["tool_choice"], "auto");

    let (status, refused) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "x", "tools": tools,
                    "tool_choice": {"type": "allowed_tools", "mode": "auto",
                                    "tools": [{"type": "function", "name": "nope"}]}}),
        )
        .await;
    let e = crate::helpers::assert_error(status, &refused, 400);
    assert_eq!(e["param"], "tool_choice.tools[0].name");
    assert_eq!(app.upstream.requests().len(), 2);
}
